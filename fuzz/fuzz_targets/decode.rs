#![no_main]
//! The packet decoder and the authenticator checks on arbitrary bytes: no panic, and whatever
//! decodes re-encodes to the same bytes (up to the Length field).
use frontdesk_radius::packet::{self, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        assert_eq!(p.encode().expect("decoded packets re-encode"), &data[..len]);
        let _ = p.vsas().count();
        // The in-place parse the server uses sees the same attributes.
        let r = packet::PacketRef::parse(data).expect("parses where decode does");
        assert!(r.attributes.iter().map(|a| (a.typ, a.value)).eq(p.attributes.iter().map(|a| (a.typ, &*a.value))));
    } else {
        assert!(packet::PacketRef::parse(data).is_err());
    }
    let _ = packet::verify_request_message_authenticator(data, b"secret");
    let _ = packet::verify_digest_request_authenticator(data, b"secret");
    let _ = packet::decrypt_user_password(data, b"secret", &[0; 16]);
    let _ = packet::salt_decrypt(data, b"secret", &[0; 16]);
});
