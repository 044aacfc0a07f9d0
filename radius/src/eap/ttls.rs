//! EAP-TTLSv0 phase 2 (RFC 5281): Diameter AVPs inside the tunnel. Inner PAP (User-Name +
//! User-Password, §11.2.5) and MS-CHAPv2 (§11.2.4: the challenge comes from the TLS exporter
//! with the label "ttls challenge", the answer goes back as MS-CHAP2-Success).

use super::{protocol, Fail, Failure, InnerMethod, InnerStep};
use crate::auth::mschap;
use crate::directory::Directory;
use crate::eap::tls::TlsSession;
use subtle::ConstantTimeEq;

const AVP_USER_NAME: u32 = 1;
const AVP_USER_PASSWORD: u32 = 2;
const VENDOR_MICROSOFT: u32 = 311;
const MS_CHAP_CHALLENGE: u32 = 11;
const MS_CHAP2_RESPONSE: u32 = 25;
const MS_CHAP2_SUCCESS: u32 = 26;
const FLAG_VENDOR: u8 = 0x80;
const FLAG_MANDATORY: u8 = 0x40;

#[derive(Default)]
pub enum Inner {
    #[default]
    WaitAvps,
    /// MS-CHAP2-Success sent; the peer's empty response completes the conversation.
    WaitAck { user: String },
}

/// One Diameter AVP (RFC 6733 §4.1): code, flags, optional vendor, data.
#[derive(Debug, PartialEq, Eq)]
pub struct Avp<'a> {
    pub code: u32,
    pub flags: u8,
    pub vendor: u32,
    pub data: &'a [u8],
}

pub fn parse_avps(mut b: &[u8]) -> Option<Vec<Avp<'_>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 8 {
            return None;
        }
        let code = u32::from_be_bytes(b[0..4].try_into().ok()?);
        let flags = b[4];
        let len = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        let header = if flags & FLAG_VENDOR != 0 { 12 } else { 8 };
        if len < header || len > b.len() {
            return None;
        }
        let vendor = if header == 12 {
            u32::from_be_bytes(b[8..12].try_into().ok()?)
        } else {
            0
        };
        out.push(Avp {
            code,
            flags,
            vendor,
            data: &b[header..len],
        });
        let padded = len.div_ceil(4) * 4;
        b = b.get(padded..).unwrap_or(&[]);
    }
    Some(out)
}

pub fn encode_avp(code: u32, vendor: u32, data: &[u8]) -> Vec<u8> {
    let header = if vendor != 0 { 12 } else { 8 };
    let len = header + data.len();
    let mut out = Vec::with_capacity(len.div_ceil(4) * 4);
    out.extend(code.to_be_bytes());
    out.push(FLAG_MANDATORY | if vendor != 0 { FLAG_VENDOR } else { 0 });
    out.extend(&(len as u32).to_be_bytes()[1..]);
    if vendor != 0 {
        out.extend(vendor.to_be_bytes());
    }
    out.extend_from_slice(data);
    out.resize(len.div_ceil(4) * 4, 0);
    out
}

impl Inner {
    pub fn user(&self) -> Option<String> {
        match self {
            Inner::WaitAck { user } => Some(user.clone()),
            Inner::WaitAvps => None,
        }
    }

    pub fn step(
        &mut self,
        tls: &mut TlsSession,
        plain: &[u8],
        dir: &Directory,
    ) -> Result<InnerStep, Fail> {
        match std::mem::take(self) {
            Inner::WaitAck { user } => {
                if !plain.is_empty() {
                    return Err(protocol("expected an empty acknowledgement"));
                }
                Ok(InnerStep::Success {
                    user,
                    method: InnerMethod::TtlsMsChapV2,
                })
            }
            Inner::WaitAvps => {
                if plain.is_empty() {
                    // Some peers acknowledge our Finished before sending their AVPs.
                    return Ok(InnerStep::Send(Vec::new()));
                }
                let avps = parse_avps(plain).ok_or_else(|| protocol("garbled AVPs"))?;
                let get = |vendor: u32, code: u32| {
                    avps.iter()
                        .find(|a| a.vendor == vendor && a.code == code)
                        .map(|a| a.data)
                };
                let user = get(0, AVP_USER_NAME)
                    .map(|u| {
                        String::from_utf8_lossy(u)
                            .trim_end_matches('\0')
                            .to_string()
                    })
                    .ok_or_else(|| protocol("no User-Name AVP"))?;
                let Some(member) = dir.member_by_username(&user) else {
                    return Err((
                        Failure::UnknownUser,
                        format!("no member with Wi-Fi username {user:?}"),
                    ));
                };
                if let Some(pw) = get(0, AVP_USER_PASSWORD) {
                    // RFC 5281 §11.2.5: padded with NULs to a multiple of 16.
                    let end = pw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    let given = String::from_utf8_lossy(&pw[..end]);
                    let hash = frontdesk_core::secrets::nt_hash(&given);
                    if !bool::from(hash.ct_eq(member.nt_hash)) {
                        return Err((
                            Failure::BadPassword,
                            "inner PAP password does not match".into(),
                        ));
                    }
                    return Ok(InnerStep::Success {
                        user,
                        method: InnerMethod::TtlsPap,
                    });
                }
                let (Some(challenge), Some(response)) = (
                    get(VENDOR_MICROSOFT, MS_CHAP_CHALLENGE),
                    get(VENDOR_MICROSOFT, MS_CHAP2_RESPONSE),
                ) else {
                    return Err(protocol("neither PAP nor MS-CHAPv2 AVPs"));
                };
                // §11.2.4: challenge and ident come from the tunnel, not from the peer.
                let mut expected = [0u8; 17];
                tls.export(b"ttls challenge", None, &mut expected)?;
                if challenge != &expected[..16]
                    || response.len() != 50
                    || response[0] != expected[16]
                {
                    return Err(protocol("MS-CHAP challenge not derived from the tunnel"));
                }
                let challenge: [u8; 16] = expected[..16].try_into().expect("16");
                let peer_challenge: [u8; 16] = response[2..18].try_into().expect("16");
                let nt_response: [u8; 24] = response[26..50].try_into().expect("24");
                let name = match user.rfind('\\') {
                    Some(i) => &user[i + 1..],
                    None => user.as_str(),
                };
                let Some(auth) = mschap::check(
                    &challenge,
                    &peer_challenge,
                    name.as_bytes(),
                    member.nt_hash,
                    &nt_response,
                ) else {
                    return Err((
                        Failure::BadPassword,
                        "MS-CHAPv2 response does not match".into(),
                    ));
                };
                let mut success = vec![response[0]];
                success.extend(auth.as_bytes());
                *self = Inner::WaitAck { user };
                Ok(InnerStep::Send(encode_avp(
                    MS_CHAP2_SUCCESS,
                    VENDOR_MICROSOFT,
                    &success,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avps_round_trip_with_padding_and_vendor() {
        let mut b = encode_avp(AVP_USER_NAME, 0, b"ada");
        b.extend(encode_avp(MS_CHAP2_SUCCESS, VENDOR_MICROSOFT, b"12345"));
        assert_eq!(b.len(), 12 + 20);
        let avps = parse_avps(&b).unwrap();
        assert_eq!(avps[0].data, b"ada");
        assert_eq!(
            (avps[1].vendor, avps[1].code, avps[1].data),
            (311, 26, &b"12345"[..])
        );
        // Length shorter than the header, or beyond the data: not AVPs.
        assert!(parse_avps(&[0, 0, 0, 1, 0x40, 0, 0, 4]).is_none());
        assert!(parse_avps(&[0, 0, 0, 1, 0x40, 0, 0, 40, 1]).is_none());
        assert!(parse_avps(&[0, 0, 0]).is_none());
    }
}
