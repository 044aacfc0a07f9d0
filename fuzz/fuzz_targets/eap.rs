//! EAP parsing and reassembly: EAP packets, TTLS AVPs, the TLS framing layer (fragments, L/M
//! flags, lengths) and a whole conversation fed arbitrary responses. Nothing may panic.
#![no_main]

use frontdesk_radius::directory::Directory;
use frontdesk_radius::eap::{self, pki, tls::TlsSession, EapServer, EapSettings};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn server() -> &'static (EapServer, std::sync::Arc<rustls::ServerConfig>) {
    static S: OnceLock<(EapServer, std::sync::Arc<rustls::ServerConfig>)> = OnceLock::new();
    S.get_or_init(|| {
        let pki = pki::generate("Fuzz", "radius.fuzz").unwrap();
        let cfg = pki::tunnel_config(&pki, false).unwrap();
        (EapServer::new(cfg.clone(), pki::eap_tls_config(&pki).ok(), EapSettings::default()), cfg)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = eap::EapPacket::parse(data);
    let _ = eap::ttls::parse_avps(data);
    let (srv, cfg) = server();
    let mut s = TlsSession::new(rustls::ServerConnection::new(cfg.clone()).unwrap(), 0);
    for chunk in data.split(|&b| b == 0xA5) {
        if s.receive(chunk).is_err() {
            break;
        }
        let _ = s.next_request(64);
    }
    let dir = Directory::default();
    // An Identity, then the input as the next response under the State we were given.
    let id = eap::encode(eap::CODE_RESPONSE, 1, Some(eap::TYPE_IDENTITY), b"fuzz");
    let ctx = |state| eap::Context { nas_id: 1, state, framed_mtu: Some(300), dir: &dir };
    if let eap::Step::Challenge { state, .. } = srv.process(&id, &ctx(None)) {
        let _ = srv.process(data, &ctx(Some(&state)));
    }
});
