//! EAP-TLS (RFC 5216, and RFC 9190 for TLS 1.3): the client certificate, issued by
//! Frontdesk's CA, names the member; `decide()` then has the last word as for every method.

use super::{pki, protocol, Fail, InnerMethod, InnerStep};
use crate::eap::tls::TlsSession;

#[derive(Default)]
pub enum Inner {
    /// The handshake just completed.
    #[default]
    Start,
    /// TLS 1.3: the one-byte commitment message is out; the peer's empty response ends it.
    WaitAck { user: String },
}

impl Inner {
    pub fn user(&self) -> Option<String> {
        match self {
            Inner::WaitAck { user } => Some(user.clone()),
            Inner::Start => None,
        }
    }

    pub fn step(&mut self, tls: &mut TlsSession, plain: &[u8]) -> Result<InnerStep, Fail> {
        if !plain.is_empty() {
            return Err(protocol("EAP-TLS peers send no application data"));
        }
        let user = match std::mem::take(self) {
            Inner::WaitAck { user } => user,
            Inner::Start => {
                let cert = tls
                    .conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| protocol("no client certificate"))?;
                let user = pki::client_identity(cert)
                    .ok_or_else(|| protocol("the client certificate names no member"))?;
                if tls.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                    // RFC 9190 §2.5: a single 0x00 of application data says the handshake
                    // is over; the peer acknowledges it before EAP-Success.
                    *self = Inner::WaitAck { user };
                    return Ok(InnerStep::Send(vec![0]));
                }
                user
            }
        };
        Ok(InnerStep::Success {
            user,
            method: InnerMethod::EapTls,
        })
    }
}
