//! Dynamic Authorization (RFC 5176), sans-IO: the Disconnect-Request a NAS's vendor profile
//! expects (identifiers, MAC format), signed with the NAS secret and carrying
//! Message-Authenticator, and reading the NAS's ACK / NAK with its Error-Cause.
//! The sending loop (ports, retries, backoff) lives with the scheduler that uses it.

use crate::attr;
use crate::nas::{Profile, SessionIdentifier};
use crate::packet::{self, Code, EncodeError, Packet};
use frontdesk_core::ports::SessionRef;
use std::net::IpAddr;

/// A request ready to send, with what is needed to check its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub bytes: Vec<u8>,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

/// Builds a Disconnect-Request for `session`, naming it the way the vendor's NAS matches
/// sessions. Message-Authenticator comes first (BlastRADIUS practice, also for CoA).
pub fn disconnect_request(
    profile: &Profile,
    session: &SessionRef,
    identifier: u8,
    secret: &[u8],
) -> Result<Request, EncodeError> {
    let mut p = Packet::new(Code::DisconnectRequest, identifier, [0; 16]);
    p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    for id in profile.disconnect_ids {
        match id {
            SessionIdentifier::UserName => {
                p.add(attr::USER_NAME, session.user_name.as_bytes().to_vec())
            }
            SessionIdentifier::AcctSessionId => {
                if let Some(s) = &session.acct_session_id {
                    p.add(attr::ACCT_SESSION_ID, s.as_bytes().to_vec());
                }
            }
            SessionIdentifier::CallingStationId => {
                if let Some(mac) = session.calling_station_id {
                    p.add(
                        attr::CALLING_STATION_ID,
                        mac.format(profile.mac_format).into_bytes(),
                    );
                }
            }
            SessionIdentifier::NasIdentifier => {
                if let Some(s) = &session.nas_identifier {
                    p.add(attr::NAS_IDENTIFIER, s.as_bytes().to_vec());
                }
            }
            SessionIdentifier::NasIpAddress => match session.nas_addr.ip() {
                IpAddr::V4(v4) => p.add(attr::NAS_IP_ADDRESS, v4.octets().to_vec()),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => p.add(attr::NAS_IP_ADDRESS, v4.octets().to_vec()),
                    None => p.add(attr::NAS_IPV6_ADDRESS, v6.octets().to_vec()),
                },
            },
        }
    }
    let bytes = packet::encode_request(&p, secret)?;
    let authenticator = bytes[4..20].try_into().expect("header");
    Ok(Request {
        bytes,
        identifier,
        authenticator,
    })
}

/// What the NAS said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ack,
    Nak { error_cause: Option<u32> },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("malformed answer")]
    Malformed,
    #[error("answer for another request (identifier {0})")]
    OtherRequest(u8),
    #[error("answer not signed with the NAS secret (wrong secret on the NAS?)")]
    BadSignature,
    #[error("unexpected answer code {0}")]
    UnexpectedCode(u8),
}

/// Checks and reads an answer to `req`.
pub fn read_answer(raw: &[u8], req: &Request, secret: &[u8]) -> Result<Answer, AnswerError> {
    let p = Packet::decode(raw).map_err(|_| AnswerError::Malformed)?;
    if p.identifier != req.identifier {
        return Err(AnswerError::OtherRequest(p.identifier));
    }
    let len = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
    if !packet::verify_response(&raw[..len.min(raw.len())], &req.authenticator, secret) {
        return Err(AnswerError::BadSignature);
    }
    match p.code {
        Code::DisconnectAck | Code::CoaAck => Ok(Answer::Ack),
        Code::DisconnectNak | Code::CoaNak => Ok(Answer::Nak {
            error_cause: p.get_u32(attr::ERROR_CAUSE),
        }),
        other => Err(AnswerError::UnexpectedCode(other.to_u8())),
    }
}

/// RFC 5176 §3.6 Error-Cause values in words, for the log and `sessions`.
pub fn error_cause_text(code: u32) -> &'static str {
    match code {
        201 => "Residual Session Context Removed",
        202 => "Invalid EAP Packet",
        401 => "Unsupported Attribute",
        402 => "Missing Attribute",
        403 => "NAS Identification Mismatch",
        404 => "Invalid Request",
        405 => "Unsupported Service",
        406 => "Unsupported Extension",
        407 => "Invalid Attribute Value",
        501 => "Administratively Prohibited",
        502 => "Request Not Routable (Proxy)",
        503 => "Session Context Not Found",
        504 => "Session Context Not Removable",
        505 => "Other Proxy Processing Error",
        506 => "Resources Unavailable",
        507 => "Request Initiated",
        508 => "Multiple Session Selection Unsupported",
        _ => "unknown cause",
    }
}
