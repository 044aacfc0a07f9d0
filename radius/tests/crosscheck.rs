//! Our codec against the `radius` crate (an independent implementation): what one encodes the
//! other decodes the same, including the password hiding and both authenticators.

use frontdesk_radius::attr;
use frontdesk_radius::packet::{self, Code, Packet};
use proptest::prelude::*;
use radius::core::code::Code as TheirCode;
use radius::core::packet::Packet as TheirPacket;
use radius::core::{rfc2865, rfc2866};

const SECRET: &[u8] = b"s3cr3t-shared";

fn ours_to_theirs(user: &str, password: &str, port: u32) {
    let mut p = Packet::new(Code::AccessRequest, 9, [0x42; 16]);
    p.add(attr::USER_NAME, user.as_bytes().to_vec());
    p.add(
        attr::USER_PASSWORD,
        packet::encrypt_user_password(password.as_bytes(), SECRET, &p.authenticator),
    );
    p.add_u32(attr::NAS_PORT, port);
    let raw = packet::encode_request(&p, SECRET).unwrap();
    let theirs = TheirPacket::decode(&raw, SECRET).unwrap();
    assert_eq!(theirs.get_identifier(), 9);
    assert_eq!(rfc2865::lookup_user_name(&theirs).unwrap().unwrap(), user);
    assert_eq!(
        rfc2865::lookup_user_password(&theirs).unwrap().unwrap(),
        password.as_bytes()
    );
    assert_eq!(rfc2865::lookup_nas_port(&theirs).unwrap().unwrap(), port);

    // Our response verifies with their response-authenticator check.
    let mut resp = Packet::new(Code::AccessAccept, 9, [0; 16]);
    resp.add_u32(attr::SESSION_TIMEOUT, 3600);
    resp.add(attr::TUNNEL_PRIVATE_GROUP_ID, b"20".to_vec());
    let resp_raw = packet::encode_response(&resp, &p.authenticator, SECRET).unwrap();
    assert!(TheirPacket::is_authentic_response(&resp_raw, &raw, SECRET));
    let theirs = TheirPacket::decode(&resp_raw, SECRET).unwrap();
    assert_eq!(
        rfc2865::lookup_session_timeout(&theirs).unwrap().unwrap(),
        3600
    );
}

fn theirs_to_ours(user: &str, password: &str) {
    let mut t = TheirPacket::new(TheirCode::AccessRequest, SECRET);
    rfc2865::add_user_name(&mut t, user);
    rfc2865::add_user_password(&mut t, password.as_bytes()).unwrap();
    let raw = t.encode().unwrap();
    let p = Packet::decode(&raw).unwrap();
    assert_eq!(p.code, Code::AccessRequest);
    assert_eq!(p.get(attr::USER_NAME), Some(user.as_bytes()));
    let got = packet::decrypt_user_password(
        p.get(attr::USER_PASSWORD).unwrap(),
        SECRET,
        &p.authenticator,
    )
    .unwrap();
    assert_eq!(got, password.as_bytes());
    assert_eq!(p.encode().unwrap(), raw, "re-encoding is byte-identical");

    let mut a = TheirPacket::new(TheirCode::AccountingRequest, SECRET);
    rfc2865::add_user_name(&mut a, user);
    rfc2866::add_acct_session_id(&mut a, "s-1");
    let raw = a.encode().unwrap();
    assert!(packet::verify_digest_request_authenticator(&raw, SECRET));
    assert!(!packet::verify_digest_request_authenticator(&raw, b"other"));
    assert_eq!(
        Packet::decode(&raw).unwrap().get(attr::ACCT_SESSION_ID),
        Some(&b"s-1"[..])
    );
}

#[test]
fn fixed_examples() {
    ours_to_theirs("ada@example.com", "correct horse battery", 7);
    theirs_to_ours("ada@example.com", "correct horse battery");
    // Exactly 16 and 32 octets: no padding block.
    ours_to_theirs("x", "0123456789abcdef", 0);
    theirs_to_ours("x", "0123456789abcdef0123456789abcdef");
}

proptest! {
    #[test]
    fn both_directions(user in "[a-z0-9@._-]{1,60}", password in "[ -~]{1,120}", port in any::<u32>()) {
        // Trailing NULs are padding by definition (RFC 2865 §5.2), and printable ASCII has none.
        ours_to_theirs(&user, &password, port);
        theirs_to_ours(&user, &password);
    }
}
