//! Disconnect-Request per vendor profile: golden packets (UPDATE_GOLDEN=1 rewrites them after
//! review), checked by our verifier and by the `radius` crate; and reading ACK / NAK answers.

use frontdesk_core::model::Vendor;
use frontdesk_core::ports::SessionRef;
use frontdesk_core::MacAddr;
use frontdesk_radius::coa::{self, Answer, AnswerError};
use frontdesk_radius::packet::{self, Code, Packet};
use frontdesk_radius::{attr, nas};
use radius::core::code::Code as TheirCode;
use radius::core::packet::Packet as TheirPacket;
use radius::core::rfc2865;
use std::path::PathBuf;

const SECRET: &[u8] = b"coa-secret";

fn session() -> SessionRef {
    SessionRef {
        nas_id: 1,
        nas_addr: "192.0.2.10:1813".parse().unwrap(),
        user_name: "ada.lovelace".into(),
        acct_session_id: Some("5F3A-0001".into()),
        calling_station_id: Some("02:AB:cd:00:11:22".parse::<MacAddr>().unwrap()),
        nas_identifier: Some("ap-lobby".into()),
    }
}

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(want, text, "{} differs", path.display());
}

#[test]
fn disconnect_requests_per_vendor() {
    for vendor in Vendor::ALL {
        let profile = nas::profile(vendor);
        let req = coa::disconnect_request(profile, &session(), 77, SECRET).unwrap();
        let raw = &req.bytes;
        // Signed: Request Authenticator (RFC 5176 §2.3) and Message-Authenticator, first.
        assert!(
            packet::verify_digest_request_authenticator(raw, SECRET),
            "{vendor:?}"
        );
        assert_eq!(
            packet::verify_request_message_authenticator(raw, SECRET),
            Some(true)
        );
        let p = Packet::decode(raw).unwrap();
        assert_eq!(p.code, Code::DisconnectRequest);
        assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        // The MAC in the vendor's format.
        let mac = session()
            .calling_station_id
            .unwrap()
            .format(profile.mac_format);
        assert_eq!(
            p.get_string(attr::CALLING_STATION_ID),
            Some(mac),
            "{vendor:?}"
        );
        // An independent implementation agrees.
        assert!(TheirPacket::is_authentic_request(raw, SECRET), "{vendor:?}");
        let theirs = TheirPacket::decode(raw, SECRET).unwrap();
        assert_eq!(theirs.get_code(), TheirCode::DisconnectRequest);
        assert_eq!(theirs.get_identifier(), 77);
        assert_eq!(
            rfc2865::lookup_user_name(&theirs).unwrap().unwrap(),
            "ada.lovelace"
        );
        let names: Vec<&str> = p.attributes.iter().map(|a| attr::name(a.typ)).collect();
        golden(
            &format!("disconnect-{}.txt", vendor.as_str()),
            &format!(
                "# Disconnect-Request for the {} profile (port {}): {}\n{}\n",
                vendor.as_str(),
                vendor.disconnect_port(),
                names.join(", "),
                hex::encode(raw)
            ),
        );
    }
}

#[test]
fn ipv6_nas_is_named_by_its_ipv6_address() {
    let mut s = session();
    s.nas_addr = "[2001:db8::10]:1813".parse().unwrap();
    let req = coa::disconnect_request(nas::profile(Vendor::Generic), &s, 1, SECRET).unwrap();
    let p = Packet::decode(&req.bytes).unwrap();
    assert!(p.has(attr::NAS_IPV6_ADDRESS));
    assert!(!p.has(attr::NAS_IP_ADDRESS));
}

fn answer(req: &coa::Request, code: Code, id: u8, cause: Option<u32>, secret: &[u8]) -> Vec<u8> {
    let mut a = Packet::new(code, id, [0; 16]);
    a.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    if let Some(c) = cause {
        a.add_u32(attr::ERROR_CAUSE, c);
    }
    packet::encode_response(&a, &req.authenticator, secret).unwrap()
}

#[test]
fn answers_are_checked_and_read() {
    let req = coa::disconnect_request(nas::profile(Vendor::Cisco), &session(), 9, SECRET).unwrap();
    let ack = answer(&req, Code::DisconnectAck, 9, None, SECRET);
    assert_eq!(coa::read_answer(&ack, &req, SECRET), Ok(Answer::Ack));
    let nak = answer(&req, Code::DisconnectNak, 9, Some(503), SECRET);
    assert_eq!(
        coa::read_answer(&nak, &req, SECRET),
        Ok(Answer::Nak {
            error_cause: Some(503)
        })
    );
    assert_eq!(coa::error_cause_text(503), "Session Context Not Found");
    let forged = answer(&req, Code::DisconnectAck, 9, None, b"other-secret");
    assert_eq!(
        coa::read_answer(&forged, &req, SECRET),
        Err(AnswerError::BadSignature)
    );
    let other = answer(&req, Code::DisconnectAck, 10, None, SECRET);
    assert_eq!(
        coa::read_answer(&other, &req, SECRET),
        Err(AnswerError::OtherRequest(10))
    );
    let odd = answer(&req, Code::AccessAccept, 9, None, SECRET);
    assert_eq!(
        coa::read_answer(&odd, &req, SECRET),
        Err(AnswerError::UnexpectedCode(2))
    );
    for n in 0..ack.len() {
        let _ = coa::read_answer(&ack[..n], &req, SECRET);
    }
    assert_eq!(
        coa::read_answer(&[41, 9, 0, 3], &req, SECRET),
        Err(AnswerError::Malformed)
    );
}
