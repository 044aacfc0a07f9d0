//! The sans-IO request handler: datagram + source + directory + sessions + `now` → effects.
//! The server persists what an effect says must be durable, then sends its bytes.

use crate::attr::{self, vendor};
use crate::auth::mschap;
use crate::directory::Pick;
use crate::directory::{Directory, MemberRef};
use crate::eap::{self, EapServer, Step};
use crate::nas::{parse_called_station, profile, VlanStyle};
use crate::packet::{self, Code, Packet, PacketRef};
use crate::psk;
use chrono::{DateTime, Utc};
use frontdesk_core::decide::{decide, Decision, Reason, Resource, Subject};
use frontdesk_core::model::{Nas, Voucher};
use frontdesk_core::store::radius::{AccountingRecord, AcctStatus};
use frontdesk_core::MacAddr;
use md5::{Digest, Md5};
use rand::Rng;
use std::io::Write as _;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

#[derive(Clone, Debug)]
pub struct HandlerConfig {
    /// Upper bound for Session-Timeout, seconds.
    pub max_session: u32,
    /// Send the reason as Reply-Message in Access-Reject.
    pub reject_reply_message: bool,
    /// 802.1X (PEAP, TTLS, EAP-TLS); `None` rejects EAP.
    pub eap: Option<std::sync::Arc<EapServer>>,
    /// Over the plan's device limit: accept the new device and end the member's oldest
    /// session (true), or reject the new one (false).
    pub disconnect_oldest: bool,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            max_session: 12 * 3600,
            reject_reply_message: false,
            eap: None,
            disconnect_oldest: false,
        }
    }
}

/// Which listener a datagram arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Auth,
    Acct,
}

/// Why a datagram got no answer. Counted per NAS and shown to the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropCause {
    UnknownNas,
    Malformed,
    BadAuthenticator,
    MissingMessageAuthenticator,
    ProxyStateWithoutMessageAuthenticator,
    UnexpectedCode,
    RateLimited,
    EapOutOfOrder,
}

impl DropCause {
    pub fn as_str(&self) -> &'static str {
        match self {
            DropCause::UnknownNas => "unknown-nas",
            DropCause::Malformed => "malformed",
            DropCause::BadAuthenticator => "bad-authenticator",
            DropCause::MissingMessageAuthenticator => "no-message-authenticator",
            DropCause::ProxyStateWithoutMessageAuthenticator => {
                "proxy-state-without-message-authenticator"
            }
            DropCause::UnexpectedCode => "unexpected-code",
            DropCause::RateLimited => "rate-limited",
            DropCause::EapOutOfOrder => "eap-out-of-order",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Pap,
    Chap,
    MsChapV2,
    Mab,
    Eap,
    PeapMsChapV2,
    TtlsPap,
    TtlsMsChapV2,
    EapTls,
    /// Identity PSK, MAC-bound: the answer carries the device's passphrase.
    PskMac,
    /// Identity PSK, unbound: the passphrase found from the forwarded 4-way handshake.
    PskHandshake,
    Unknown,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Pap => "pap",
            Method::Chap => "chap",
            Method::MsChapV2 => "mschapv2",
            Method::Mab => "mab",
            Method::Eap => "eap",
            Method::PeapMsChapV2 => "peap-mschapv2",
            Method::TtlsPap => "ttls-pap",
            Method::TtlsMsChapV2 => "ttls-mschapv2",
            Method::EapTls => "eap-tls",
            Method::PskMac => "psk-mac",
            Method::PskHandshake => "psk-handshake",
            Method::Unknown => "none",
        }
    }
}

/// One authentication decision, for the log and the auth_log table.
#[derive(Clone, Debug)]
pub struct AuthEvent {
    pub nas_id: i64,
    pub user_name: String,
    pub mac: Option<MacAddr>,
    pub method: Method,
    pub accepted: bool,
    pub reason: String,
    pub vlan: Option<u16>,
    pub member_id: Option<String>,
    /// When an accepted session's access ends (the scheduler's alarm is set to it).
    pub valid_until: Option<DateTime<Utc>>,
    /// Device limit with `disconnect_oldest`: the session to end for this one,
    /// (NAS id, Acct-Session-Id).
    pub evict: Option<(i64, String)>,
    /// An accepted voucher login: its code (the server records the use and the device).
    pub voucher: Option<String>,
    /// An accepted private-passphrase login: the passphrase's id (the server records the
    /// device with it; the SSID's join passphrase binds nobody).
    pub passphrase: Option<i64>,
}

/// What the server must do.
#[derive(Debug)]
pub enum Outcome {
    Drop {
        cause: DropCause,
        nas_id: Option<i64>,
    },
    /// Persist `accounting` (if any) durably, then send `bytes` to the source.
    Reply {
        nas_id: i64,
        bytes: Vec<u8>,
        auth: Option<Box<AuthEvent>>,
        accounting: Option<Box<AccountingRecord>>,
    },
}

/// Live sessions, for the device limit (SPEC §4: distinct MACs with a live session).
/// A voucher's first use and the devices bound to it.
pub type VoucherUse = (DateTime<Utc>, Vec<MacAddr>);

pub trait Sessions {
    fn devices_online(&self, member_id: &str) -> Vec<MacAddr>;
    /// The member's longest-running session of a device other than `except`:
    /// (NAS id, Acct-Session-Id).
    fn oldest(&self, _member_id: &str, _except: Option<MacAddr>) -> Option<(i64, String)> {
        None
    }
    /// A voucher's use over RADIUS that the directory may not show yet.
    fn voucher_use(&self, _code: &str) -> Option<VoucherUse> {
        None
    }
    /// Devices learned with a passphrase that the directory may not show yet.
    fn psk_devices(&self, _passphrase_id: i64) -> Vec<MacAddr> {
        Vec::new()
    }
    /// May this station's handshake be checked against every passphrase of an SSID now?
    /// (Each full scan costs a few µs a passphrase: rate-limited per MAC and overall.)
    fn psk_scan_allowed(&self, _station: MacAddr) -> bool {
        true
    }
    /// Records a handshake's nonces; `true` if they were seen before (a replay).
    fn psk_replayed(&self, _nonces: &[u8; 64]) -> bool {
        false
    }
}

/// No sessions known (tests, or before accounting arrives).
pub struct NoSessions;

impl Sessions for NoSessions {
    fn devices_online(&self, _: &str) -> Vec<MacAddr> {
        Vec::new()
    }
}

fn drop(cause: DropCause, nas: Option<&Nas>) -> Outcome {
    Outcome::Drop {
        cause,
        nas_id: nas.map(|n| n.id),
    }
}

pub fn handle(
    raw: &[u8],
    src: SocketAddr,
    port: Port,
    dir: &Directory,
    sessions: &dyn Sessions,
    cfg: &HandlerConfig,
    now: DateTime<Utc>,
) -> Outcome {
    // RFC 2865 §3: requests from unknown clients are silently discarded.
    let Some(nas) = dir.nas_for(src.ip()) else {
        return drop(DropCause::UnknownNas, None);
    };
    let Ok(req) = PacketRef::parse(raw) else {
        return drop(DropCause::Malformed, Some(nas));
    };
    let raw = &raw[..u16::from_be_bytes([raw[2], raw[3]]) as usize];
    let secret = nas.secret.as_bytes();
    match (req.code, port) {
        (Code::AccessRequest, Port::Auth) | (Code::StatusServer, _) => {
            match packet::verify_request_message_authenticator(raw, secret) {
                Some(false) => return drop(DropCause::BadAuthenticator, Some(nas)),
                None if req.code == Code::StatusServer => {
                    // RFC 5997 §3: Status-Server MUST carry Message-Authenticator.
                    return drop(DropCause::MissingMessageAuthenticator, Some(nas));
                }
                None if nas.require_message_authenticator || req.has(attr::EAP_MESSAGE) => {
                    return drop(DropCause::MissingMessageAuthenticator, Some(nas));
                }
                // BlastRADIUS mitigation: Proxy-State without Message-Authenticator is forged.
                None if req.has(attr::PROXY_STATE) => {
                    return drop(DropCause::ProxyStateWithoutMessageAuthenticator, Some(nas));
                }
                _ => {}
            }
            if req.code == Code::StatusServer {
                // RFC 5997 §3: Access-Accept on the auth port, Accounting-Response on acct.
                let code = if port == Port::Auth {
                    Code::AccessAccept
                } else {
                    Code::AccountingResponse
                };
                let mut resp = reply_to(&req, code);
                resp.add(attr::REPLY_MESSAGE, b"Frontdesk alive".to_vec());
                return reply(nas, &req, resp, None, None);
            }
            access(&req, nas, dir, sessions, cfg, now)
        }
        (Code::AccountingRequest, Port::Acct) => {
            if !packet::verify_digest_request_authenticator(raw, secret) {
                return drop(DropCause::BadAuthenticator, Some(nas));
            }
            if packet::verify_request_message_authenticator(raw, secret) == Some(false) {
                return drop(DropCause::BadAuthenticator, Some(nas));
            }
            accounting(&req, nas, src, dir, now)
        }
        _ => drop(DropCause::UnexpectedCode, Some(nas)),
    }
}

/// A response skeleton: Message-Authenticator first (BlastRADIUS guidance), then Proxy-State
/// copied in order (RFC 2865 §5.33); callers add the rest.
fn reply_to(req: &PacketRef<'_>, code: Code) -> Packet {
    let mut resp = Packet::new(code, req.identifier, [0; 16]);
    // Accounting-Response to an Accounting-Request carries none: RFC 2866 has no use for it,
    // and peers disagree on its computation (FreeRADIUS zeroes the authenticator there).
    if !(code == Code::AccountingResponse && req.code == Code::AccountingRequest) {
        resp.add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
    }
    for ps in req.all(attr::PROXY_STATE) {
        resp.add(attr::PROXY_STATE, ps);
    }
    resp
}

fn reply(
    nas: &Nas,
    req: &PacketRef<'_>,
    resp: Packet,
    auth: Option<Box<AuthEvent>>,
    accounting: Option<Box<AccountingRecord>>,
) -> Outcome {
    match packet::encode_response(&resp, &req.authenticator, nas.secret.as_bytes()) {
        Ok(bytes) => Outcome::Reply {
            nas_id: nas.id,
            bytes,
            auth,
            accounting,
        },
        // Only possible if our own reply is oversized; never answer with garbage.
        Err(_) => drop(DropCause::Malformed, Some(nas)),
    }
}

enum Credential {
    Pap(Vec<u8>),
    Chap {
        id: u8,
        response: [u8; 16],
        challenge: Vec<u8>,
    },
    MsChapV2 {
        ident: u8,
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        challenge: [u8; 16],
    },
    Eap,
    None,
}

fn credential(req: &PacketRef<'_>, secret: &[u8]) -> Option<Credential> {
    if req.has(attr::EAP_MESSAGE) {
        return Some(Credential::Eap);
    }
    if let Some(v) = req.get(attr::USER_PASSWORD) {
        return packet::decrypt_user_password(v, secret, &req.authenticator).map(Credential::Pap);
    }
    if let Some(v) = req.get(attr::CHAP_PASSWORD) {
        if v.len() != 17 {
            return None;
        }
        let challenge = req
            .get(attr::CHAP_CHALLENGE)
            .map(<[u8]>::to_vec)
            .unwrap_or(req.authenticator.to_vec());
        return Some(Credential::Chap {
            id: v[0],
            response: v[1..17].try_into().expect("16"),
            challenge,
        });
    }
    if let (Some(resp), Some(chal)) = (
        req.vsa(vendor::MICROSOFT, vendor::ms::CHAP2_RESPONSE),
        req.vsa(vendor::MICROSOFT, vendor::ms::CHAP_CHALLENGE),
    ) {
        // RFC 2548 §2.3.2: Ident, Flags, Peer-Challenge(16), Reserved(8), Response(24).
        if resp.len() != 50 || chal.len() != 16 {
            return None;
        }
        return Some(Credential::MsChapV2 {
            ident: resp[0],
            peer_challenge: resp[2..18].try_into().expect("16"),
            nt_response: resp[26..50].try_into().expect("24"),
            challenge: chal.try_into().expect("16"),
        });
    }
    Some(Credential::None)
}

fn chap_ok(id: u8, password: &[u8], challenge: &[u8], response: &[u8; 16]) -> bool {
    let mut h = Md5::new();
    h.update([id]);
    h.update(password);
    h.update(challenge);
    let digest: [u8; 16] = h.finalize().into();
    bool::from(digest.ct_eq(response))
}

/// MAB passwords vendors send: empty, or the MAC in some format.
fn mab_password_ok(cred: &Credential, user_name: &str, mac: MacAddr) -> bool {
    use frontdesk_core::mac::MacFormat;
    let mut candidates: Vec<String> = MacFormat::ALL.iter().map(|f| mac.format(*f)).collect();
    candidates.push(mac.format(MacFormat::LowerBare).to_uppercase());
    candidates.push(user_name.to_string());
    match cred {
        Credential::None => true,
        Credential::Pap(p) => {
            p.is_empty() || std::str::from_utf8(p).is_ok_and(|p| MacAddr::parse(p) == Some(mac))
        }
        Credential::Chap {
            id,
            response,
            challenge,
        } => candidates
            .iter()
            .any(|c| chap_ok(*id, c.as_bytes(), challenge, response)),
        _ => false,
    }
}

struct Verdict<'a> {
    method: Method,
    member: Option<MemberRef<'a>>,
    decision: Decision,
    /// MS-CHAPv2 success material: (ident, authenticator response, send key, recv key).
    mschap: Option<(u8, String, [u8; 16], [u8; 16])>,
    mschap_ident: Option<u8>,
    /// EAP: the identifier the final EAP-Success or EAP-Failure answers, and the MSK when the
    /// inner method succeeded (for the MS-MPPE keys).
    eap: Option<(u8, Option<Box<[u8; 64]>>)>,
    /// A voucher code that logged in (the server records its use).
    voucher: Option<String>,
    /// A private passphrase that answered.
    psk: Option<PskVerdict>,
}

#[derive(Clone, Copy)]
struct PskVerdict {
    /// Its place in the directory.
    index: u32,
    /// The handshake's dictionary when it came from unbound mode (the answer matches it).
    shape: Option<psk::Shape>,
}

fn deny<'a>(method: Method, member: Option<MemberRef<'a>>, reason: Reason) -> Verdict<'a> {
    Verdict {
        method,
        member,
        decision: Decision::deny(reason),
        mschap: None,
        mschap_ident: None,
        eap: None,
        voucher: None,
        psk: None,
    }
}

fn access(
    req: &PacketRef<'_>,
    nas: &Nas,
    dir: &Directory,
    sessions: &dyn Sessions,
    cfg: &HandlerConfig,
    now: DateTime<Utc>,
) -> Outcome {
    let secret = nas.secret.as_bytes();
    let user_name = req.get_string(attr::USER_NAME).unwrap_or_default();
    let calling = req
        .get_string(attr::CALLING_STATION_ID)
        .and_then(|s| MacAddr::parse(&s));
    let (ap, ssid) = req
        .get_string(attr::CALLED_STATION_ID)
        .map(|c| parse_called_station(&c))
        .unwrap_or((None, None));
    let resource = Resource::Wifi {
        ssid: ssid.as_deref(),
    };
    let catalog = dir.catalog();
    let mut user_name = user_name;

    // Identity PSK, unbound mode: the AP forwarded a 4-way handshake.
    let station = calling.or_else(|| MacAddr::parse(&user_name));
    if let Some(handshake) = psk::from_request(req, station, (ap, ssid.as_deref())) {
        let (verdict, label) = psk_handshake(handshake, nas, dir, sessions, now);
        return finish(
            req, nas, dir, sessions, cfg, now, user_name, station, verdict, label,
        );
    }

    let verdict = match credential(req, secret) {
        None => deny(Method::Unknown, None, Reason::BadPassword),
        Some(Credential::Eap) => {
            let Some(eap) = cfg.eap.as_deref() else {
                let mut v = deny(Method::Eap, None, Reason::UnknownUser);
                v.eap = Some((eap_id(req), None));
                return finish(
                    req,
                    nas,
                    dir,
                    sessions,
                    cfg,
                    now,
                    user_name,
                    calling,
                    v,
                    Some("eap-not-enabled"),
                );
            };
            let packet = eap::reassemble(req.all(attr::EAP_MESSAGE));
            let ctx = eap::Context {
                nas_id: nas.id,
                state: req.get(attr::STATE),
                framed_mtu: req.get_u32(attr::FRAMED_MTU),
                dir,
            };
            match eap.process(&packet, &ctx) {
                Step::Discard => return drop(DropCause::EapOutOfOrder, Some(nas)),
                Step::Challenge { eap, state } => {
                    let mut resp = reply_to(req, Code::AccessChallenge);
                    for chunk in eap.chunks(253) {
                        resp.add(attr::EAP_MESSAGE, chunk.to_vec());
                    }
                    resp.add(attr::STATE, state.to_vec());
                    return reply(nas, req, resp, None, None);
                }
                Step::Reject {
                    id,
                    user,
                    why,
                    detail,
                } => {
                    tracing::debug!(nas = %nas.name, user = user.as_deref().unwrap_or(""), %detail, "EAP conversation failed");
                    let (reason, label) = match why {
                        eap::Failure::UnknownUser => (Reason::UnknownUser, None),
                        eap::Failure::BadPassword => (Reason::BadPassword, None),
                        eap::Failure::Protocol => (Reason::UnknownUser, Some("eap-protocol-error")),
                    };
                    let member = user.as_deref().and_then(|u| dir.member_by_username(u));
                    if let Some(u) = user {
                        user_name = u;
                    }
                    let mut v = deny(Method::Eap, member, reason);
                    v.eap = Some((id, None));
                    return finish(
                        req, nas, dir, sessions, cfg, now, user_name, calling, v, label,
                    );
                }
                Step::Authenticated {
                    id,
                    msk,
                    user,
                    method,
                } => {
                    let method = match method {
                        eap::InnerMethod::PeapMsChapV2 => Method::PeapMsChapV2,
                        eap::InnerMethod::TtlsPap => Method::TtlsPap,
                        eap::InnerMethod::TtlsMsChapV2 => Method::TtlsMsChapV2,
                        eap::InnerMethod::EapTls => Method::EapTls,
                    };
                    let member = dir.member_by_username(&user);
                    user_name = user;
                    let mut v = match member {
                        None => deny(method, None, Reason::UnknownUser),
                        Some(m) => Verdict {
                            method,
                            member: Some(m),
                            decision: decide(catalog, Subject::Member(m.holder), resource, now),
                            mschap: None,
                            mschap_ident: None,
                            eap: None,
                            voucher: None,
                            psk: None,
                        },
                    };
                    v.eap = Some((id, Some(Box::new(msk))));
                    v
                }
            }
        }
        Some(cred) => {
            let service_call_check =
                req.get_u32(attr::SERVICE_TYPE) == Some(attr::SERVICE_TYPE_CALL_CHECK);
            let mab_ok = |mac| {
                mab_password_ok(&cred, &user_name, mac)
                    || (service_call_check && matches!(cred, Credential::None))
            };
            // Identity PSK, MAC-bound mode: a MAC-auth request on an SSID with passphrases.
            let psk_ssid = ssid.as_deref().filter(|s| dir.psk_ssid(s));
            let mab_mac = MacAddr::parse(&user_name)
                .filter(|m| psk_ssid.is_some() || dir.device(m).is_some());
            if let (Some(mac), Some(s)) = (mab_mac, psk_ssid) {
                if mab_ok(mac) {
                    psk_for_mac(mac, s, dir, sessions, resource, now)
                } else {
                    deny(Method::PskMac, None, Reason::BadPassword)
                }
            } else if let Some(mac) = mab_mac {
                let device = dir.device(&mac).expect("checked");
                if !mab_ok(mac) {
                    deny(Method::Mab, None, Reason::BadPassword)
                } else {
                    let owner = device
                        .member_id
                        .as_deref()
                        .and_then(|id| dir.member_by_id(id));
                    Verdict {
                        method: Method::Mab,
                        member: owner,
                        decision: decide(
                            catalog,
                            Subject::Device {
                                device,
                                owner: owner.map(|o| o.holder),
                            },
                            resource,
                            now,
                        ),
                        mschap: None,
                        mschap_ident: None,
                        eap: None,
                        voucher: None,
                        psk: None,
                    }
                }
            } else {
                // One lookup: a member, else (the controller's RADIUS hotspot) a voucher.
                let member = dir.member_by_username(&user_name);
                match member.is_none().then(|| dir.voucher(&user_name)).flatten() {
                    Some((v, macs)) => {
                        voucher_verdict(cred, v, macs, sessions, calling, dir, resource, now)
                    }
                    None => member_verdict(cred, member, &user_name, dir, resource, now),
                }
            }
        }
    };

    // A passphrase device is learned by its MAC, from User-Name if the AP sends no
    // Calling-Station-Id.
    let mac = match verdict.psk {
        Some(_) => calling.or_else(|| MacAddr::parse(&user_name)),
        None => calling,
    };
    finish(
        req, nas, dir, sessions, cfg, now, user_name, mac, verdict, None,
    )
}

/// The EAP identifier a final Success/Failure must carry: the one of the Response it answers.
fn eap_id(req: &PacketRef<'_>) -> u8 {
    req.get(attr::EAP_MESSAGE)
        .and_then(|m| m.get(1).copied())
        .unwrap_or(0)
}

/// Device limit, auth event, and the Access-Accept or Access-Reject for a verdict.
#[allow(clippy::too_many_arguments)]
fn finish(
    req: &PacketRef<'_>,
    nas: &Nas,
    dir: &Directory,
    sessions: &dyn Sessions,
    cfg: &HandlerConfig,
    now: DateTime<Utc>,
    user_name: String,
    calling: Option<MacAddr>,
    verdict: Verdict<'_>,
    reason_label: Option<&str>,
) -> Outcome {
    let secret = nas.secret.as_bytes();
    let catalog = dir.catalog();
    // Device limit: distinct MACs online, a roam of a known MAC is not a new device.
    let mut decision = verdict.decision;
    let mut evict = None;
    // MAC-authenticated devices and passphrase devices (limited by the passphrase's own
    // device count) do not use up a member's plan device limit.
    if decision.allowed
        && !matches!(
            verdict.method,
            Method::Mab | Method::PskMac | Method::PskHandshake
        )
    {
        if let Some(entry) = verdict.member {
            let limit = decision
                .plan
                .as_deref()
                .and_then(|p| catalog.plan_by_name(p))
                .and_then(|p| p.device_limit);
            if let Some(limit) = limit {
                let online = sessions.devices_online(entry.id);
                let roam = calling.is_some_and(|m| online.contains(&m));
                if !roam && online.len() >= limit as usize {
                    evict = cfg
                        .disconnect_oldest
                        .then(|| sessions.oldest(entry.id, calling))
                        .flatten();
                    if evict.is_none() {
                        decision = Decision::deny(Reason::DeviceLimit);
                    }
                }
            }
        }
    }

    let event = AuthEvent {
        nas_id: nas.id,
        user_name: user_name.clone(),
        mac: calling,
        method: verdict.method,
        accepted: decision.allowed,
        reason: match reason_label {
            Some(label) => label.into(),
            None => decision.reason.to_string(),
        },
        vlan: decision.vlan,
        member_id: verdict.member.map(|m| m.id.to_owned()),
        valid_until: decision.valid_until,
        evict,
        voucher: verdict.voucher.clone().filter(|_| decision.allowed),
        passphrase: verdict
            .psk
            .map(|p| dir.psk_entry(p.index))
            .filter(|e| decision.allowed && !matches!(e.owner, crate::directory::PskOwner::Plan(_)))
            .map(|e| e.id),
    };

    if !decision.allowed {
        let mut resp = reply_to(req, Code::AccessReject);
        if cfg.reject_reply_message {
            resp.add(
                attr::REPLY_MESSAGE,
                reject_text(decision.reason).as_bytes().to_vec(),
            );
        }
        if let Some(ident) = verdict.mschap_ident {
            let mut err = vec![ident];
            err.extend(b"E=691 R=0 V=3");
            resp.add_vsa(vendor::MICROSOFT, vendor::ms::CHAP_ERROR, &err);
        }
        if let Some((id, _)) = verdict.eap {
            // Also when the inner method succeeded but decide() said no.
            resp.add(
                attr::EAP_MESSAGE,
                eap::encode(eap::CODE_FAILURE, id, None, &[]),
            );
        }
        return reply(nas, req, resp, Some(Box::new(event)), None);
    }

    let prof = profile(nas.vendor);
    let mut resp = reply_to(req, Code::AccessAccept);
    if let Some(vlan) = decision.vlan {
        let tag = prof.tunnel_tag;
        let tagged = |v: u32| {
            let mut b = v.to_be_bytes();
            b[0] = tag;
            b
        };
        // RFC 2868 §3.1/3.2: tag in the first octet; RFC 3580 §3.31: group id as ASCII decimal.
        resp.add(attr::TUNNEL_TYPE, tagged(attr::TUNNEL_TYPE_VLAN));
        resp.add(
            attr::TUNNEL_MEDIUM_TYPE,
            tagged(attr::TUNNEL_MEDIUM_IEEE_802),
        );
        let mut group = [0u8; 6];
        let start = usize::from(tag != 0);
        group[0] = tag;
        let mut digits = &mut group[start..];
        write!(digits, "{vlan}").expect("a u16 fits in 5 octets");
        let end = 6 - digits.len();
        resp.add(attr::TUNNEL_PRIVATE_GROUP_ID, &group[..end]);
        if prof.vlan_style == VlanStyle::TunnelAndMikrotik {
            resp.add_vsa(
                vendor::MIKROTIK,
                vendor::mikrotik::WIRELESS_VLANID,
                &u32::from(vlan).to_be_bytes(),
            );
            resp.add_vsa(
                vendor::MIKROTIK,
                vendor::mikrotik::WIRELESS_VLANID_TYPE,
                &0u32.to_be_bytes(),
            );
        }
    }
    resp.add_u32(
        attr::SESSION_TIMEOUT,
        session_timeout(&decision, cfg, prof, now),
    );
    resp.add_u32(attr::TERMINATION_ACTION, attr::TERMINATION_RADIUS_REQUEST);
    resp.add_u32(attr::ACCT_INTERIM_INTERVAL, prof.acct_interim_interval);
    resp.add(attr::CLASS, class_token(decision.vlan));
    if let Some(p) = verdict.psk {
        add_passphrase(&mut resp, dir, p, prof, secret, &req.authenticator);
    }
    if let Some((ident, success, send, recv)) = &verdict.mschap {
        let mut v = vec![*ident];
        v.extend(success.as_bytes());
        resp.add_vsa(vendor::MICROSOFT, vendor::ms::CHAP2_SUCCESS, &v);
        add_mppe_keys(&mut resp, send, recv, secret, &req.authenticator);
        resp.add_vsa(
            vendor::MICROSOFT,
            vendor::ms::MPPE_ENCRYPTION_POLICY,
            &1u32.to_be_bytes(),
        );
        resp.add_vsa(
            vendor::MICROSOFT,
            vendor::ms::MPPE_ENCRYPTION_TYPES,
            &6u32.to_be_bytes(),
        );
    }
    if let Some((id, Some(msk))) = &verdict.eap {
        resp.add(
            attr::EAP_MESSAGE,
            eap::encode(eap::CODE_SUCCESS, *id, None, &[]),
        );
        // RFC 5216 §2.3: Recv = MSK[0..32], Send = MSK[32..64] (the NAS's receive key is the
        // peer's send key).
        add_mppe_keys(
            &mut resp,
            &msk[32..],
            &msk[..32],
            secret,
            &req.authenticator,
        );
    }
    reply(nas, req, resp, Some(Box::new(event)), None)
}

/// The passphrase (or, for a Ruckus handshake, its PMK) in the attribute the AP reads
/// (VENDORS.md "Identity / private PSK attributes").
fn add_passphrase(
    resp: &mut Packet,
    dir: &Directory,
    p: PskVerdict,
    prof: &crate::nas::Profile,
    secret: &[u8],
    request_authenticator: &[u8; 16],
) {
    use crate::nas::PskAttribute;
    let e = dir.psk_entry(p.index);
    let salt = || rand::thread_rng().gen::<[u8; 2]>();
    let style = match p.shape {
        // Ruckus DPSK takes the PMK back (rlm_dpsk's Ruckus adapter: MS-MPPE-Recv-Key).
        Some(psk::Shape::Ruckus) => {
            let sealed = packet::salt_encrypt(&e.pmk, secret, request_authenticator, salt());
            resp.add_vsa(vendor::MICROSOFT, vendor::ms::MPPE_RECV_KEY, &sealed);
            return;
        }
        Some(psk::Shape::Eleven) if prof.psk != PskAttribute::CiscoAvPair => {
            PskAttribute::TunnelPassword
        }
        _ => prof.psk,
    };
    let pass = e.secret.as_bytes();
    match style {
        PskAttribute::TunnelPassword => {
            // RFC 2868 §3.5: Tag ‖ Salt ‖ encrypted(length ‖ password ‖ padding).
            let mut v = vec![prof.tunnel_tag];
            v.extend(packet::salt_encrypt(
                pass,
                secret,
                request_authenticator,
                salt(),
            ));
            resp.add(attr::TUNNEL_PASSWORD, v);
        }
        PskAttribute::CiscoAvPair => {
            resp.add_vsa(vendor::CISCO, vendor::cisco::AVPAIR, b"psk-mode=ascii");
            let mut v = b"psk=".to_vec();
            v.extend(pass);
            resp.add_vsa(vendor::CISCO, vendor::cisco::AVPAIR, &v);
        }
        PskAttribute::ArubaMpsk => {
            let sealed = packet::salt_encrypt(pass, secret, request_authenticator, salt());
            resp.add_vsa(vendor::ARUBA, vendor::aruba::MPSK_PASSPHRASE, &sealed);
        }
        PskAttribute::MikrotikPsk => {
            resp.add_vsa(vendor::MIKROTIK, vendor::mikrotik::WIRELESS_PSK, pass);
        }
    }
}

/// MAC-bound mode: the passphrase for this device, and the decision for its owner.
fn psk_for_mac<'a>(
    mac: MacAddr,
    ssid: &str,
    dir: &'a Directory,
    sessions: &dyn Sessions,
    resource: Resource<'_>,
    now: DateTime<Utc>,
) -> Verdict<'a> {
    let Some(pick) = dir.psk_for_mac(&mac, ssid) else {
        // Nobody's device and no join passphrase: the operator binds it first
        // (`frontdesk passphrase bind`), or registers it to its member.
        return deny(Method::PskMac, None, Reason::UnknownUser);
    };
    let i = pick.index();
    if !matches!(pick, Pick::Bound(_) | Pick::Join(_)) && over_device_limit(dir, sessions, i, mac) {
        return deny(Method::PskMac, dir.psk_member(i), Reason::DeviceLimit);
    }
    psk_verdict(Method::PskMac, i, None, dir, resource, now)
}

/// Would binding `mac` exceed the passphrase's device count?
fn over_device_limit(dir: &Directory, sessions: &dyn Sessions, i: u32, mac: MacAddr) -> bool {
    let e = dir.psk_entry(i);
    let Some(max) = e.max_devices else {
        return false;
    };
    let learned = sessions.psk_devices(e.id);
    if learned.contains(&mac) {
        return false;
    }
    let extra = learned
        .iter()
        .filter(|m| !dir.psk_bound(m).contains(&i))
        .count() as u32;
    dir.psk_device_count(i) + extra >= max
}

fn psk_verdict<'a>(
    method: Method,
    i: u32,
    shape: Option<psk::Shape>,
    dir: &'a Directory,
    resource: Resource<'_>,
    now: DateTime<Utc>,
) -> Verdict<'a> {
    let mut v = deny(method, dir.psk_member(i), Reason::Ok);
    v.decision = dir.psk_decide(i, resource, now);
    v.psk = Some(PskVerdict { index: i, shape });
    v
}

/// Unbound mode: find the passphrase whose PMK produces message 2's MIC: the ones this
/// station used before first, then (rate-limited) every passphrase of the SSID.
fn psk_handshake<'a>(
    h: Result<psk::Handshake, psk::Bad>,
    nas: &Nas,
    dir: &'a Directory,
    sessions: &dyn Sessions,
    now: DateTime<Utc>,
) -> (Verdict<'a>, Option<&'static str>) {
    let method = Method::PskHandshake;
    let h = match h {
        Ok(h) => h,
        Err(bad) => {
            tracing::debug!(nas = %nas.name, error = %bad, "malformed identity-PSK handshake");
            return (
                deny(method, None, Reason::BadPassword),
                Some("psk-malformed-handshake"),
            );
        }
    };
    let Some(ssid) = h.ssid.as_deref() else {
        return (deny(method, None, Reason::UnknownUser), Some("psk-no-ssid"));
    };
    let check = psk::Check::new(&h);
    let on_ssid = dir.psk_on(ssid);
    let known: Vec<u32> = dir
        .psk_bound(&h.station)
        .iter()
        .copied()
        .filter(|&i| dir.psk_in_force_on(i, ssid))
        .collect();
    let mut found = known
        .iter()
        .copied()
        .find(|&i| check.matches(dir.psk_keyed(i)));
    if found.is_none() && !on_ssid.is_empty() {
        if !sessions.psk_scan_allowed(h.station) {
            return (
                deny(method, None, Reason::BadPassword),
                Some("psk-scan-rate-limited"),
            );
        }
        found = on_ssid
            .iter()
            .copied()
            .filter(|i| !known.contains(i))
            .find(|&i| check.matches(dir.psk_keyed(i)));
    }
    let Some(i) = found else {
        return (deny(method, None, Reason::BadPassword), None);
    };
    if sessions.psk_replayed(&check.nonces()) {
        return (
            deny(method, dir.psk_member(i), Reason::BadPassword),
            Some("psk-replayed-handshake"),
        );
    }
    let resource = Resource::Wifi { ssid: Some(ssid) };
    let is_join = matches!(dir.psk_entry(i).owner, crate::directory::PskOwner::Plan(_));
    if !is_join && !known.contains(&i) && over_device_limit(dir, sessions, i, h.station) {
        return (deny(method, dir.psk_member(i), Reason::DeviceLimit), None);
    }
    (
        psk_verdict(method, i, Some(h.shape), dir, resource, now),
        None,
    )
}

/// MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC 2548 §2.4.2/2.4.3), salt-encrypted.
fn add_mppe_keys(
    resp: &mut Packet,
    send: &[u8],
    recv: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) {
    let mut rng = rand::thread_rng();
    for (typ, key) in [
        (vendor::ms::MPPE_SEND_KEY, send),
        (vendor::ms::MPPE_RECV_KEY, recv),
    ] {
        let sealed = packet::salt_encrypt(key, secret, request_authenticator, rng.gen());
        resp.add_vsa(vendor::MICROSOFT, typ, &sealed);
    }
}

fn member_verdict<'a>(
    cred: Credential,
    member: Option<MemberRef<'a>>,
    user_name: &str,
    dir: &'a Directory,
    resource: Resource<'_>,
    now: DateTime<Utc>,
) -> Verdict<'a> {
    let method = match cred {
        Credential::Pap(_) => Method::Pap,
        Credential::Chap { .. } => Method::Chap,
        Credential::MsChapV2 { .. } => Method::MsChapV2,
        _ => Method::Unknown,
    };
    let mschap_ident = match &cred {
        Credential::MsChapV2 { ident, .. } => Some(*ident),
        _ => None,
    };
    let Some(entry) = member else {
        let mut v = deny(
            method,
            None,
            if method == Method::Unknown {
                Reason::BadPassword
            } else {
                Reason::UnknownUser
            },
        );
        v.mschap_ident = mschap_ident;
        return v;
    };
    let mut mschap = None;
    let ok = match &cred {
        Credential::Pap(p) => {
            let given = String::from_utf8_lossy(p);
            bool::from(frontdesk_core::secrets::nt_hash(&given).ct_eq(entry.nt_hash))
        }
        Credential::Chap {
            id,
            response,
            challenge,
        } => chap_ok(*id, entry.password.as_bytes(), challenge, response),
        Credential::MsChapV2 {
            ident,
            peer_challenge,
            nt_response,
            challenge,
        } => {
            let name = user_name.as_bytes();
            let success =
                mschap::check(challenge, peer_challenge, name, entry.nt_hash, nt_response);
            if let Some(success) = success {
                let (send, recv) = mschap::mppe_keys(entry.nt_hash, nt_response);
                mschap = Some((*ident, success, send, recv));
                true
            } else {
                false
            }
        }
        _ => false,
    };
    if !ok {
        let mut v = deny(method, Some(entry), Reason::BadPassword);
        v.mschap_ident = mschap_ident;
        return v;
    }
    Verdict {
        method,
        member: Some(entry),
        decision: decide(dir.catalog(), Subject::Member(entry.holder), resource, now),
        mschap,
        mschap_ident,
        eap: None,
        voucher: None,
        psk: None,
    }
}

/// A guest logging in with a voucher code through a controller's own RADIUS hotspot (PAP or
/// CHAP; the code is the password, as typed or in capitals). The device limit and the
/// validity count from the first use, wherever it happened (portal or RADIUS).
#[allow(clippy::too_many_arguments)]
fn voucher_verdict<'a>(
    cred: Credential,
    v: &Voucher,
    macs: &[MacAddr],
    sessions: &dyn Sessions,
    calling: Option<MacAddr>,
    dir: &'a Directory,
    resource: Resource<'_>,
    now: DateTime<Utc>,
) -> Verdict<'a> {
    let (method, ok) = match &cred {
        Credential::Pap(p) => (
            Method::Pap,
            frontdesk_core::store::normalise_voucher_code(&String::from_utf8_lossy(p))
                .as_bytes()
                .ct_eq(v.code.as_bytes())
                .into(),
        ),
        Credential::Chap {
            id,
            response,
            challenge,
        } => (
            Method::Chap,
            chap_ok(*id, v.code.as_bytes(), challenge, response)
                || chap_ok(
                    *id,
                    v.code.to_ascii_lowercase().as_bytes(),
                    challenge,
                    response,
                ),
        ),
        Credential::MsChapV2 { .. } => (Method::MsChapV2, false),
        _ => (Method::Unknown, false),
    };
    if !ok {
        return deny(method, None, Reason::BadPassword);
    }
    let (first, mut known) = (v.first_used_at, macs.to_vec());
    let first = match sessions.voucher_use(&v.code) {
        Some((t, m)) => {
            known.extend(m);
            Some(first.map_or(t, |f| f.min(t)))
        }
        None => first,
    };
    known.sort();
    known.dedup();
    let new_device = calling.is_none_or(|m| !known.contains(&m));
    if new_device && known.len() >= v.devices as usize {
        return deny(method, None, Reason::DeviceLimit);
    }
    let used = Voucher {
        first_used_at: Some(first.unwrap_or(now)),
        ..v.clone()
    };
    let mut verdict = Verdict {
        method,
        member: None,
        decision: decide(dir.catalog(), Subject::Voucher(&used), resource, now),
        mschap: None,
        mschap_ident: None,
        eap: None,
        voucher: None,
        psk: None,
    };
    verdict.voucher = Some(v.code.clone());
    verdict
}

/// Seconds until `valid_until`, capped by `max_session`; unbounded sessions get up to 10 %
/// jitter below the cap so re-authentications do not arrive as a storm (SPEC §4). Clamped to
/// what the NAS accepts.
fn session_timeout(
    d: &Decision,
    cfg: &HandlerConfig,
    prof: &crate::nas::Profile,
    now: DateTime<Utc>,
) -> u32 {
    let secs = match d.valid_until {
        Some(until) => {
            ((until - now).num_seconds().max(1) as u64).min(u64::from(cfg.max_session)) as u32
        }
        None => {
            let jitter = rand::thread_rng().gen_range(0..=cfg.max_session / 10);
            cfg.max_session - jitter
        }
    };
    prof.clamp_timeout(secs)
}

/// Class (RFC 2865 §5.25): opaque to the NAS, which must echo it in accounting. It carries the
/// VLAN the session was given, so a later plan change can tell that the session must move.
fn class_token(vlan: Option<u16>) -> packet::Value {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b: [u8; 8] = rand::thread_rng().gen();
    // "fd1:" + 16 hex digits + ":v" + at most 5 digits: 27 octets, built on the stack.
    let mut token = [0u8; 27];
    token[..4].copy_from_slice(b"fd1:");
    for (i, x) in b.into_iter().enumerate() {
        token[4 + 2 * i] = HEX[usize::from(x >> 4)];
        token[5 + 2 * i] = HEX[usize::from(x & 15)];
    }
    let mut rest = &mut token[20..];
    if let Some(v) = vlan {
        write!(rest, ":v{v}").expect("fits: 7 octets left");
    }
    let end = 27 - rest.len();
    packet::Value::from(&token[..end])
}

/// The VLAN our Class token says the session was given.
fn class_vlan(class: &str) -> Option<u16> {
    class
        .strip_prefix("fd1:")?
        .rsplit_once(":v")?
        .1
        .parse()
        .ok()
}

fn reject_text(r: Reason) -> &'static str {
    match r {
        Reason::OutsideHours => "Outside your plan's hours",
        Reason::SiteClosed => "The space is closed today",
        Reason::Suspended => "Membership suspended",
        Reason::Cancelled => "Membership cancelled",
        Reason::PlanExpired => "Plan expired",
        Reason::PlanNotStarted => "Plan not started yet",
        Reason::DeviceLimit => "Too many devices online",
        Reason::SsidNotAllowed => "Not allowed on this network",
        _ => "Login failed",
    }
}

fn accounting(
    req: &PacketRef<'_>,
    nas: &Nas,
    src: SocketAddr,
    dir: &Directory,
    now: DateTime<Utc>,
) -> Outcome {
    let status = match req.get_u32(attr::ACCT_STATUS_TYPE) {
        Some(attr::acct_status::START) => AcctStatus::Start,
        Some(attr::acct_status::STOP) => AcctStatus::Stop,
        Some(attr::acct_status::INTERIM_UPDATE) => AcctStatus::Interim,
        Some(attr::acct_status::ACCOUNTING_ON) | Some(attr::acct_status::ACCOUNTING_OFF) => {
            AcctStatus::NasRestart
        }
        // Unknown status types are acknowledged (RFC 2866 §5.1) but not stored.
        _ => {
            let resp = reply_to(req, Code::AccountingResponse);
            return reply(nas, req, resp, None, None);
        }
    };
    let user_name = req.get_string(attr::USER_NAME).unwrap_or_default();
    let mac = req
        .get_string(attr::CALLING_STATION_ID)
        .and_then(|s| MacAddr::parse(&s));
    let member_id = dir
        .member_by_username(&user_name)
        .map(|m| m.id.to_owned())
        .or_else(|| {
            let device = dir.device(&MacAddr::parse(&user_name)?)?;
            device.member_id.clone()
        });
    let octets = |lo: u8, hi: u8| -> i64 {
        (i64::from(req.get_u32(hi).unwrap_or(0)) << 32) | i64::from(req.get_u32(lo).unwrap_or(0))
    };
    let class = req.get_string(attr::CLASS);
    let vlan = req
        .get(attr::TUNNEL_PRIVATE_GROUP_ID)
        .and_then(|v| {
            std::str::from_utf8(v.strip_prefix(&[0u8][..]).unwrap_or(v))
                .ok()?
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .or_else(|| class.as_deref().and_then(class_vlan));
    let record = AccountingRecord {
        at: now,
        nas_id: nas.id,
        nas_addr: src.to_string(),
        status,
        session_id: req.get_string(attr::ACCT_SESSION_ID).unwrap_or_default(),
        user_name,
        member_id,
        mac,
        framed_ip: req
            .get(attr::FRAMED_IP_ADDRESS)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        vlan,
        class,
        input_octets: octets(attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS),
        output_octets: octets(attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS),
        session_time: i64::from(req.get_u32(attr::ACCT_SESSION_TIME).unwrap_or(0)),
        terminate_cause: req
            .get_u32(attr::ACCT_TERMINATE_CAUSE)
            .map(|c| c.to_string()),
    };
    let resp = reply_to(req, Code::AccountingResponse);
    reply(nas, req, resp, None, Some(Box::new(record)))
}

#[cfg(test)]
mod tests;
