//! PEAPv0 phase 2 (draft-kamath-pppext-peapv0, [MS-PEAP]): inner EAP-MS-CHAPv2 (RFC 2759
//! inside draft-kamath-pppext-eap-mschapv2), then the Result TLV. Inner EAP packets travel
//! without their 4-octet header except the TLV exchange, as Windows and wpa_supplicant expect.

use super::{encode, protocol as proto, Fail, InnerMethod, InnerStep};
use super::{EapSettings, Failure, CODE_REQUEST, CODE_RESPONSE};
use super::{TYPE_IDENTITY, TYPE_MSCHAPV2, TYPE_TLV};
use crate::auth::mschap;
use crate::directory::Directory;
use rand::RngCore;

const OP_CHALLENGE: u8 = 1;
const OP_RESPONSE: u8 = 2;
const OP_SUCCESS: u8 = 3;
/// Result TLV, mandatory bit set (RFC-less [MS-PEAP] §2.2.8.1); value 1 = success.
const RESULT_TLV: [u8; 2] = [0x80, 0x03];

#[derive(Default)]
pub enum Inner {
    #[default]
    Start,
    WaitIdentity,
    WaitResponse {
        user: String,
        challenge: [u8; 16],
        ms_id: u8,
    },
    WaitSuccessAck {
        user: String,
    },
    WaitResult {
        user: String,
    },
}

/// The Type-Data of an MS-CHAPv2 packet: OpCode, MS-CHAPv2-ID, MS-Length, then `body`.
fn mschap_packet(op: u8, ms_id: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![TYPE_MSCHAPV2, op, ms_id];
    v.extend(((4 + body.len()) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

impl Inner {
    pub fn user(&self) -> Option<String> {
        match self {
            Inner::WaitResponse { user, .. }
            | Inner::WaitSuccessAck { user }
            | Inner::WaitResult { user } => Some(user.clone()),
            _ => None,
        }
    }

    pub fn step(
        &mut self,
        plain: &[u8],
        dir: &Directory,
        settings: &EapSettings,
    ) -> Result<InnerStep, Fail> {
        match std::mem::take(self) {
            Inner::Start => {
                // The peer's acknowledgement of our Finished: ask for the inner identity.
                *self = Inner::WaitIdentity;
                Ok(InnerStep::Send(vec![TYPE_IDENTITY]))
            }
            Inner::WaitIdentity => {
                let (&typ, identity) = plain
                    .split_first()
                    .ok_or_else(|| proto("empty inner response"))?;
                if typ != TYPE_IDENTITY {
                    return Err(proto("expected the inner Identity"));
                }
                let user = String::from_utf8_lossy(identity)
                    .trim_end_matches('\0')
                    .to_string();
                let mut challenge = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut challenge);
                let ms_id = challenge[0];
                let mut body = vec![16];
                body.extend(challenge);
                body.extend(settings.server_name.as_bytes());
                *self = Inner::WaitResponse {
                    user,
                    challenge,
                    ms_id,
                };
                Ok(InnerStep::Send(mschap_packet(OP_CHALLENGE, ms_id, &body)))
            }
            Inner::WaitResponse {
                user,
                challenge,
                ms_id,
            } => {
                // Type 26, OpCode 2, MS-CHAPv2-ID, MS-Length(2), Value-Size 49,
                // Peer-Challenge(16), Reserved(8), NT-Response(24), Flags, Name.
                if plain.len() < 5 + 1 + 49 || plain[0] != TYPE_MSCHAPV2 || plain[1] != OP_RESPONSE
                {
                    return Err(proto("expected an MS-CHAPv2 Response"));
                }
                if plain[2] != ms_id || plain[5] != 49 {
                    return Err(proto("MS-CHAPv2 Response does not match our Challenge"));
                }
                let v = &plain[6..55];
                let peer_challenge: [u8; 16] = v[..16].try_into().expect("16");
                let nt_response: [u8; 24] = v[24..48].try_into().expect("24");
                let name = &plain[55..];
                let Some(member) = dir.member_by_username(&user) else {
                    return Err((
                        Failure::UnknownUser,
                        format!("no member with Wi-Fi username {user:?}"),
                    ));
                };
                // RFC 2759 §8.2: the user name without any domain part.
                let hash_name = match name.iter().rposition(|&b| b == b'\\') {
                    Some(i) => &name[i + 1..],
                    None => name,
                };
                let Some(auth) = mschap::check(
                    &challenge,
                    &peer_challenge,
                    hash_name,
                    member.nt_hash,
                    &nt_response,
                ) else {
                    return Err((
                        Failure::BadPassword,
                        "MS-CHAPv2 response does not match".into(),
                    ));
                };
                let message = format!("{auth} M=Welcome");
                *self = Inner::WaitSuccessAck { user };
                Ok(InnerStep::Send(mschap_packet(
                    OP_SUCCESS,
                    ms_id,
                    message.as_bytes(),
                )))
            }
            Inner::WaitSuccessAck { user } => {
                if plain != [TYPE_MSCHAPV2, OP_SUCCESS] {
                    return Err(proto("expected the MS-CHAPv2 Success acknowledgement"));
                }
                let mut tlv = RESULT_TLV.to_vec();
                tlv.extend([0, 2, 0, 1]);
                *self = Inner::WaitResult { user };
                // The TLV request travels with its EAP header; its identifier is ours to pick.
                Ok(InnerStep::Send(encode(
                    CODE_REQUEST,
                    0,
                    Some(TYPE_TLV),
                    &tlv,
                )))
            }
            Inner::WaitResult { user } => {
                let ok = plain.len() >= 11
                    && plain[0] == CODE_RESPONSE
                    && plain[4] == TYPE_TLV
                    && plain[5] & 0x3f == RESULT_TLV[0] & 0x3f
                    && plain[6] == RESULT_TLV[1]
                    && plain[9..11] == [0, 1];
                if !ok {
                    return Err(proto("peer did not confirm the Result TLV"));
                }
                Ok(InnerStep::Success {
                    user,
                    method: InnerMethod::PeapMsChapV2,
                })
            }
        }
    }
}
