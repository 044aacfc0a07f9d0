//! EAP over RADIUS (RFC 3579): EAP-Message reassembly, State correlation, conversations with
//! a timeout and a bound, Identity and NAK, and the TLS-based methods PEAPv0 (inner
//! EAP-MS-CHAPv2) and EAP-TTLS (inner PAP or MS-CHAPv2). Sans-IO: `EapServer::process` takes
//! one reassembled EAP packet and returns the next EAP packet and what to tell the NAS.

pub mod eap_tls;
pub mod peap;
pub mod pki;
pub mod tls;
pub mod ttls;

use crate::directory::Directory;
use rand::RngCore;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tls::{Received, TlsSession};

pub const CODE_REQUEST: u8 = 1;
pub const CODE_RESPONSE: u8 = 2;
pub const CODE_SUCCESS: u8 = 3;
pub const CODE_FAILURE: u8 = 4;

pub const TYPE_IDENTITY: u8 = 1;
pub const TYPE_NAK: u8 = 3;
pub const TYPE_TLS: u8 = 13;
pub const TYPE_TTLS: u8 = 21;
pub const TYPE_PEAP: u8 = 25;
pub const TYPE_MSCHAPV2: u8 = 26;
pub const TYPE_TLV: u8 = 33;

/// One EAP packet (RFC 3748 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapPacket<'a> {
    pub code: u8,
    pub id: u8,
    /// Type and Type-Data for Request/Response; `None` for Success/Failure.
    pub typ: Option<u8>,
    pub data: &'a [u8],
}

impl<'a> EapPacket<'a> {
    pub fn parse(b: &'a [u8]) -> Option<EapPacket<'a>> {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        if len < 4 || len > b.len() {
            return None;
        }
        let b = &b[..len];
        match b[0] {
            CODE_REQUEST | CODE_RESPONSE => {
                let (&typ, data) = b[4..].split_first()?;
                Some(EapPacket {
                    code: b[0],
                    id: b[1],
                    typ: Some(typ),
                    data,
                })
            }
            CODE_SUCCESS | CODE_FAILURE if len == 4 => Some(EapPacket {
                code: b[0],
                id: b[1],
                typ: None,
                data: &[],
            }),
            _ => None,
        }
    }
}

pub fn encode(code: u8, id: u8, typ: Option<u8>, data: &[u8]) -> Vec<u8> {
    let len = 4 + usize::from(typ.is_some()) + data.len();
    let mut out = Vec::with_capacity(len);
    out.extend([code, id]);
    out.extend((len as u16).to_be_bytes());
    out.extend(typ);
    out.extend_from_slice(data);
    out
}

/// The EAP-Message attributes of a request joined into one packet (RFC 3579 §3.1).
pub fn reassemble<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    parts.fold(Vec::new(), |mut acc, p| {
        acc.extend_from_slice(p);
        acc
    })
}

/// Why a conversation ended without success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    UnknownUser,
    BadPassword,
    /// A protocol error: garbled or unexpected packet, TLS failure, unknown State.
    Protocol,
}

/// The inner method that authenticated a member (for the auth log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InnerMethod {
    PeapMsChapV2,
    TtlsPap,
    TtlsMsChapV2,
    /// EAP-TLS: the client certificate, no inner method.
    EapTls,
}

impl InnerMethod {
    /// The MSK from the TLS exporter: over TLS 1.2 the RFC 5216 §2.3 label (PEAPv0 uses it
    /// too) or RFC 5281 §8's for TTLS; over TLS 1.3 one label for all (RFC 9190 §2.3 for
    /// EAP-TLS, RFC 9427 §2.1 for PEAP and TTLS) with the method's type code as context, 128
    /// octets of which the MSK is the first 64.
    fn msk(self, session: &TlsSession) -> Result<[u8; 64], tls::TlsError> {
        let mut msk = [0u8; 64];
        let tls13 = session.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if tls13 {
            let code = match self {
                InnerMethod::EapTls => TYPE_TLS,
                InnerMethod::PeapMsChapV2 => TYPE_PEAP,
                InnerMethod::TtlsPap | InnerMethod::TtlsMsChapV2 => TYPE_TTLS,
            };
            let mut material = [0u8; 128];
            session.export(
                b"EXPORTER_EAP_TLS_Key_Material",
                Some(&[code]),
                &mut material,
            )?;
            msk.copy_from_slice(&material[..64]);
            return Ok(msk);
        }
        match self {
            InnerMethod::PeapMsChapV2 | InnerMethod::EapTls => {
                session.export(b"client EAP encryption", None, &mut msk)?
            }
            InnerMethod::TtlsPap | InnerMethod::TtlsMsChapV2 => {
                session.export(b"ttls keying material", None, &mut msk)?
            }
        }
        Ok(msk)
    }
}

/// What the handler sends next.
#[derive(Debug)]
pub enum Step {
    /// Access-Challenge with this EAP packet and State.
    Challenge { eap: Vec<u8>, state: [u8; 16] },
    /// The inner method authenticated `user`; `decide()` has the last word. `id` is the EAP
    /// identifier the final Success (or Failure) must carry; the MSK gives the MS-MPPE keys.
    Authenticated {
        id: u8,
        msk: [u8; 64],
        user: String,
        method: InnerMethod,
    },
    /// Access-Reject with an EAP-Failure carrying `id`.
    Reject {
        id: u8,
        user: Option<String>,
        why: Failure,
        detail: String,
    },
    /// Not answered (a retransmitted or stray packet with the wrong EAP identifier).
    Discard,
}

/// Why a step failed, and the detail for the operator's log.
pub type Fail = (Failure, String);

impl From<tls::TlsError> for Fail {
    fn from(e: tls::TlsError) -> Fail {
        (Failure::Protocol, e.to_string())
    }
}

fn protocol(detail: impl Into<String>) -> Fail {
    (Failure::Protocol, detail.into())
}

pub struct EapSettings {
    pub fragment_size: usize,
    pub max_conversations: usize,
    pub timeout: Duration,
    pub server_name: String,
    /// TLS 1.3 offered on PEAP / TTLS (see [`EapServer::with_tls13`]).
    pub peap_tls13: bool,
    pub ttls_tls13: bool,
}

impl Default for EapSettings {
    fn default() -> Self {
        EapSettings {
            fragment_size: 1020,
            max_conversations: 4096,
            timeout: Duration::from_secs(30),
            server_name: "frontdesk".into(),
            peap_tls13: false,
            ttls_tls13: false,
        }
    }
}

/// The TLS-based method in progress.
enum Method {
    /// Identity received, method (PEAP or TTLS) proposed, waiting for the peer to start TLS
    /// or NAK.
    Proposed(u8),
    /// Boxed: half-open conversations (the many, under a flood) stay small.
    Tunnel {
        typ: u8,
        tls: Box<TlsSession>,
        inner: Inner,
    },
}

enum Inner {
    Peap(peap::Inner),
    Ttls(ttls::Inner),
    Tls(eap_tls::Inner),
}

impl Inner {
    fn step(
        &mut self,
        tls: &mut TlsSession,
        plain: &[u8],
        dir: &Directory,
        settings: &EapSettings,
    ) -> Result<InnerStep, Fail> {
        match self {
            Inner::Peap(i) => i.step(plain, dir, settings),
            Inner::Ttls(i) => i.step(tls, plain, dir),
            Inner::Tls(i) => i.step(tls, plain),
        }
    }

    fn user(&self) -> Option<String> {
        match self {
            Inner::Peap(i) => i.user(),
            Inner::Ttls(i) => i.user(),
            Inner::Tls(i) => i.user(),
        }
    }
}

struct Conversation {
    nas_id: i64,
    /// Identifier of our last request; the response must carry it.
    last_id: u8,
    outer_identity: String,
    method: Method,
    expires: Instant,
    fragment: usize,
}

/// Conversations in flight, keyed by the State we sent last (a new random State every round,
/// so a replayed State finds nothing).
pub struct EapServer {
    tunnel: Arc<ServerConfig>,
    /// PEAP / TTLS offering TLS 1.3 (RFC 9427), for the methods `settings` enables it on.
    tunnel13: Option<Arc<ServerConfig>>,
    /// EAP-TLS (client certificates); `None` when there is no Frontdesk CA to trust.
    eap_tls: Option<Arc<ServerConfig>>,
    settings: EapSettings,
    table: Mutex<HashMap<[u8; 16], Conversation>>,
}

impl std::fmt::Debug for EapServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapServer")
            .field("conversations", &self.conversations())
            .finish_non_exhaustive()
    }
}

/// What the handler knows about the request, besides the EAP packet.
pub struct Context<'a> {
    pub nas_id: i64,
    pub state: Option<&'a [u8]>,
    pub framed_mtu: Option<u32>,
    pub dir: &'a Directory,
}

impl EapServer {
    pub fn new(
        tunnel: Arc<ServerConfig>,
        eap_tls: Option<Arc<ServerConfig>>,
        settings: EapSettings,
    ) -> EapServer {
        EapServer {
            tunnel,
            tunnel13: None,
            eap_tls,
            settings,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Offers TLS 1.3 (with 1.2 as fallback) on PEAP and/or TTLS: RFC 9427 key derivation.
    /// Off by default: some supplicants (older Windows) fail PEAP over TLS 1.3.
    pub fn with_tls13(mut self, tunnel13: Arc<ServerConfig>, peap: bool, ttls: bool) -> Self {
        self.tunnel13 = Some(tunnel13);
        self.settings.peap_tls13 = peap;
        self.settings.ttls_tls13 = ttls;
        self
    }

    pub fn conversations(&self) -> usize {
        self.table.lock().expect("eap table").len()
    }

    /// Fragment size for this request: the configured size, lowered to fit Framed-MTU
    /// (EAP header 5, Flags 1, TLS length 4, and the EAPOL header 4 on the wire).
    fn fragment_for(&self, framed_mtu: Option<u32>) -> usize {
        let mut f = self.settings.fragment_size.clamp(64, 4000);
        if let Some(mtu) = framed_mtu {
            f = f.min((mtu as usize).saturating_sub(14).max(64));
        }
        f
    }

    pub fn process(&self, eap: &[u8], ctx: &Context<'_>) -> Step {
        let Some(pkt) = EapPacket::parse(eap) else {
            return reject(0, None, protocol("garbled EAP-Message"));
        };
        if pkt.code != CODE_RESPONSE {
            return reject(pkt.id, None, protocol("EAP packet is not a Response"));
        }
        let now = Instant::now();
        let Some(state) = ctx.state else {
            // A new conversation: it must start with the Identity; we propose PEAP.
            if pkt.typ != Some(TYPE_IDENTITY) {
                return reject(
                    pkt.id,
                    None,
                    protocol("conversation must start with Identity"),
                );
            }
            let conv = Conversation {
                nas_id: ctx.nas_id,
                last_id: pkt.id,
                outer_identity: String::from_utf8_lossy(pkt.data)
                    .trim_end_matches('\0')
                    .to_string(),
                method: Method::Proposed(TYPE_PEAP),
                expires: now + self.settings.timeout,
                fragment: self.fragment_for(ctx.framed_mtu),
            };
            return self.request(conv, TYPE_PEAP, &[tls::FLAG_START], now);
        };
        let found = <[u8; 16]>::try_from(state)
            .ok()
            .and_then(|key| self.table.lock().expect("eap table").remove(&key));
        let mut conv = match found {
            Some(c) if c.nas_id == ctx.nas_id && c.expires > now => c,
            _ => return reject(pkt.id, None, protocol("unknown or expired State")),
        };
        if pkt.id != conv.last_id {
            // A stale copy; keep the conversation and let the NAS retransmit.
            self.store(conv, now);
            return Step::Discard;
        }
        match self.advance(&mut conv, &pkt, ctx) {
            Ok(Next::Request(typ, data)) => self.request(conv, typ, &data, now),
            Ok(Next::Done(step)) => step,
            Err(fail) => {
                let user = conv.inner_user();
                reject(pkt.id, user, fail)
            }
        }
    }

    /// Sends the next request of `conv` (the next identifier) under a fresh State.
    fn request(&self, mut conv: Conversation, typ: u8, data: &[u8], now: Instant) -> Step {
        conv.last_id = conv.last_id.wrapping_add(1);
        let eap = encode(CODE_REQUEST, conv.last_id, Some(typ), data);
        let state = self.store(conv, now);
        Step::Challenge { eap, state }
    }

    /// Keeps `conv` under a new random State, which it returns.
    fn store(&self, conv: Conversation, now: Instant) -> [u8; 16] {
        let mut state = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut state);
        let mut t = self.table.lock().expect("eap table");
        if t.len() >= self.settings.max_conversations {
            t.retain(|_, c| c.expires > now);
        }
        if t.len() >= self.settings.max_conversations {
            // Still full of live conversations (a flood of half-open handshakes): the oldest
            // goes, so memory stays bounded and a real login keeps getting through.
            if let Some(oldest) = t.iter().min_by_key(|(_, c)| c.expires).map(|(k, _)| *k) {
                t.remove(&oldest);
            }
        }
        t.insert(state, conv);
        state
    }

    fn advance(
        &self,
        conv: &mut Conversation,
        pkt: &EapPacket<'_>,
        ctx: &Context<'_>,
    ) -> Result<Next, Fail> {
        let typ = pkt.typ.unwrap_or(0);
        if let Method::Proposed(proposed) = conv.method {
            if typ == TYPE_NAK {
                let wanted = pkt.data.iter().copied().find(|&t| {
                    t == TYPE_PEAP || t == TYPE_TTLS || (t == TYPE_TLS && self.eap_tls.is_some())
                });
                let Some(t) = wanted else {
                    return Err(protocol(format!(
                        "peer wants none of our methods (asked for {:?})",
                        pkt.data
                    )));
                };
                conv.method = Method::Proposed(t);
                return Ok(Next::Request(t, vec![tls::FLAG_START]));
            }
            if typ != proposed {
                return Err(protocol(format!("expected EAP type {proposed}, got {typ}")));
            }
            let tls13 = match typ {
                TYPE_PEAP => self.settings.peap_tls13,
                TYPE_TTLS => self.settings.ttls_tls13,
                _ => false,
            };
            let config = match (typ, &self.eap_tls, &self.tunnel13) {
                (TYPE_TLS, Some(c), _) => c.clone(),
                (_, _, Some(c)) if tls13 => c.clone(),
                _ => self.tunnel.clone(),
            };
            let conn =
                rustls::ServerConnection::new(config).map_err(|e| protocol(e.to_string()))?;
            conv.method = Method::Tunnel {
                typ,
                tls: Box::new(TlsSession::new(conn, 0)),
                inner: match typ {
                    TYPE_PEAP => Inner::Peap(peap::Inner::default()),
                    TYPE_TLS => Inner::Tls(eap_tls::Inner::default()),
                    _ => Inner::Ttls(ttls::Inner::default()),
                },
            };
        }
        let Method::Tunnel {
            typ: expected,
            tls: session,
            inner,
        } = &mut conv.method
        else {
            unreachable!("a proposed method became a tunnel above")
        };
        let expected = *expected;
        if typ == TYPE_NAK {
            return Err(protocol("NAK after the method started"));
        }
        if typ != expected {
            return Err(protocol(format!("expected EAP type {expected}, got {typ}")));
        }
        let fragment = conv.fragment;
        let plain = match session.receive(pkt.data)? {
            Received::Continue => {
                return Ok(Next::Request(expected, session.next_request(fragment)?))
            }
            Received::Message(plain) => plain,
        };
        let output = session.has_output()?;
        if output || !session.handshake_done() {
            if !plain.is_empty() {
                return Err(protocol("application data during the handshake"));
            }
            if !output {
                return Err(protocol("TLS handshake stalled"));
            }
            return Ok(Next::Request(expected, session.next_request(fragment)?));
        }
        match inner.step(session, &plain, ctx.dir, &self.settings)? {
            InnerStep::Send(data) => {
                session.send_plaintext(&data)?;
                Ok(Next::Request(expected, session.next_request(fragment)?))
            }
            InnerStep::Success { user, method } => Ok(Next::Done(Step::Authenticated {
                id: conv.last_id,
                msk: method.msk(session)?,
                user,
                method,
            })),
        }
    }
}

/// What a method's inner state machine does with one decrypted message.
pub enum InnerStep {
    /// Encrypt and send this.
    Send(Vec<u8>),
    /// The inner method authenticated `user`.
    Success { user: String, method: InnerMethod },
}

enum Next {
    Request(u8, Vec<u8>),
    Done(Step),
}

impl Conversation {
    fn inner_user(&self) -> Option<String> {
        match &self.method {
            Method::Tunnel { inner, .. } => inner.user(),
            Method::Proposed(_) => None,
        }
        .or_else(|| Some(self.outer_identity.clone()).filter(|s| !s.is_empty()))
    }
}

fn reject(id: u8, user: Option<String>, (why, detail): Fail) -> Step {
    Step::Reject {
        id,
        user,
        why,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;

    fn server(max: usize) -> EapServer {
        let pki = pki::generate("Lab", "radius.test").unwrap();
        EapServer::new(
            pki::tunnel_config(&pki, false).unwrap(),
            Some(pki::eap_tls_config(&pki).unwrap()),
            EapSettings {
                max_conversations: max,
                ..EapSettings::default()
            },
        )
    }

    fn ctx<'a>(dir: &'a Directory, state: Option<&'a [u8]>) -> Context<'a> {
        Context {
            nas_id: 1,
            state,
            framed_mtu: None,
            dir,
        }
    }

    #[test]
    fn packets_parse_and_encode() {
        let p = encode(CODE_RESPONSE, 7, Some(TYPE_IDENTITY), b"ada");
        assert_eq!(p, [2, 7, 0, 8, 1, b'a', b'd', b'a']);
        let e = EapPacket::parse(&p).unwrap();
        assert_eq!((e.code, e.id, e.typ, e.data), (2, 7, Some(1), &b"ada"[..]));
        // Trailing bytes beyond Length are ignored; short or inconsistent packets are not EAP.
        let mut longer = p.clone();
        longer.push(0xff);
        assert_eq!(EapPacket::parse(&longer).unwrap().data, b"ada");
        for bad in [
            &[2u8, 7, 0][..],
            &[2, 7, 0, 3],
            &[2, 7, 0, 9, 1],
            &[3, 1, 0, 5, 0],
            &[9, 1, 0, 4],
        ] {
            assert!(EapPacket::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(reassemble([&p[..3], &p[3..]].into_iter()), p);
    }

    #[test]
    fn identity_starts_peap_and_each_round_gets_a_new_state() {
        let eap = server(16);
        let dir = Directory::default();
        let id = encode(CODE_RESPONSE, 1, Some(TYPE_IDENTITY), b"anonymous");
        let Step::Challenge { eap: req, state } = eap.process(&id, &ctx(&dir, None)) else {
            panic!("challenge expected")
        };
        assert_eq!(req, [1, 2, 0, 6, TYPE_PEAP, tls::FLAG_START]);
        // NAK asking for TTLS: a TTLS Start under a fresh State; the old one is gone.
        let nak = encode(CODE_RESPONSE, 2, Some(TYPE_NAK), &[TYPE_TTLS]);
        let Step::Challenge {
            eap: req,
            state: s2,
        } = eap.process(&nak, &ctx(&dir, Some(&state)))
        else {
            panic!("challenge expected")
        };
        assert_eq!(req, [1, 3, 0, 6, TYPE_TTLS, tls::FLAG_START]);
        assert_ne!(state, s2);
        assert!(matches!(
            eap.process(&nak, &ctx(&dir, Some(&state))),
            Step::Reject {
                why: Failure::Protocol,
                ..
            }
        ));
        // A response with a stale identifier is discarded, the conversation kept.
        let stale = encode(CODE_RESPONSE, 2, Some(TYPE_TTLS), &[0]);
        assert!(matches!(
            eap.process(&stale, &ctx(&dir, Some(&s2))),
            Step::Discard
        ));
        assert_eq!(eap.conversations(), 1);
        // Garbage where a ClientHello belongs ends the conversation with a failure.
        let junk = encode(CODE_RESPONSE, 3, Some(TYPE_TTLS), &[0, 22, 3, 1, 0, 1, 0]);
        let mut state = None;
        if let Step::Challenge { state: s, .. } = eap.process(&stale, &ctx(&dir, Some(&s2))) {
            state = Some(s);
        }
        let s3 = state.unwrap_or(s2);
        assert!(matches!(
            eap.process(&junk, &ctx(&dir, Some(&s3))),
            Step::Reject {
                why: Failure::Protocol,
                ..
            } | Step::Discard
        ));
    }

    #[test]
    fn half_open_conversations_are_bounded() {
        let eap = server(100);
        let dir = Directory::default();
        let id = encode(CODE_RESPONSE, 1, Some(TYPE_IDENTITY), b"flood");
        for _ in 0..1000 {
            assert!(matches!(
                eap.process(&id, &ctx(&dir, None)),
                Step::Challenge { .. }
            ));
        }
        assert_eq!(eap.conversations(), 100);
    }

    #[test]
    fn tls_framing_fragments_and_acknowledges_both_ways() {
        let pki = pki::generate("Lab", "radius.test").unwrap();
        let cfg = pki::tunnel_config(&pki, false).unwrap();
        let mut s = TlsSession::new(rustls::ServerConnection::new(cfg).unwrap(), 0);
        // The peer's first fragment (L + M) is acknowledged with an empty request.
        let mut first = vec![tls::FLAG_LENGTH | tls::FLAG_MORE];
        first.extend(10u32.to_be_bytes());
        first.extend([22, 3, 1, 0, 5]);
        assert_eq!(s.receive(&first), Ok(Received::Continue));
        assert_eq!(s.next_request(100).unwrap(), [0]);
        // A last fragment that does not add up to the announced length is an error.
        assert!(s.receive(&[0, 1, 2]).is_err());
        // Outbound: L and M on the first of several fragments, M until the last.
        let mut s = TlsSession::new(
            rustls::ServerConnection::new(pki::tunnel_config(&pki, false).unwrap()).unwrap(),
            0,
        );
        s.outbound = vec![7; 250];
        let a = s.next_request(100).unwrap();
        assert_eq!(a[0], tls::FLAG_LENGTH | tls::FLAG_MORE);
        assert_eq!(a[1..5], 250u32.to_be_bytes());
        assert_eq!(a.len(), 105);
        assert_eq!(s.receive(&[0]), Ok(Received::Continue), "ack");
        let b = s.next_request(100).unwrap();
        assert_eq!((b[0], b.len()), (tls::FLAG_MORE, 101));
        assert!(
            s.receive(&[0, 1]).is_err(),
            "data while our fragments are outstanding"
        );
    }
}
