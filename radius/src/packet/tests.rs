use super::*;
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// RFC 2865 §7.1: user nemo, password arctangent, secret xyzzy5461.
const RFC2865_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
    04 06 c0 a8 01 10 05 06 00 00 00 03";
const RFC2865_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
    06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";

#[test]
fn rfc2865_pap_example() {
    let raw = unhex(RFC2865_REQUEST);
    let p = Packet::decode(&raw).unwrap();
    assert_eq!(p.code, Code::AccessRequest);
    assert_eq!(p.get(attr::USER_NAME), Some(&b"nemo"[..]));
    assert_eq!(p.get_u32(attr::NAS_PORT), Some(3));
    let pw = decrypt_user_password(
        p.get(attr::USER_PASSWORD).unwrap(),
        b"xyzzy5461",
        &p.authenticator,
    )
    .unwrap();
    assert_eq!(pw, b"arctangent");
    assert_eq!(
        encrypt_user_password(b"arctangent", b"xyzzy5461", &p.authenticator),
        p.get(attr::USER_PASSWORD).unwrap()
    );
    assert_eq!(p.encode().unwrap(), raw);

    let mut accept = Packet::new(Code::AccessAccept, 0, [0; 16]);
    accept.add_u32(attr::SERVICE_TYPE, 1);
    accept.add_u32(15, 0); // Login-Service = Telnet
    accept.add(14, vec![192, 168, 1, 3]); // Login-IP-Host
    let encoded = encode_response(&accept, &p.authenticator, b"xyzzy5461").unwrap();
    assert_eq!(encoded, unhex(RFC2865_ACCEPT));
    assert!(verify_response(&encoded, &p.authenticator, b"xyzzy5461"));
    assert!(!verify_response(&encoded, &p.authenticator, b"wrong"));
}

#[test]
fn message_authenticator_round_trip() {
    let mut req = Packet::new(Code::AccessRequest, 7, [3; 16]);
    req.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    req.add(attr::USER_NAME, b"ada".to_vec());
    let raw = encode_request(&req, b"s3cret").unwrap();
    assert_eq!(
        verify_request_message_authenticator(&raw, b"s3cret"),
        Some(true)
    );
    assert_eq!(
        verify_request_message_authenticator(&raw, b"other"),
        Some(false)
    );
    let mut tampered = raw.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        verify_request_message_authenticator(&tampered, b"s3cret"),
        Some(false)
    );
    let plain = Packet::new(Code::AccessRequest, 7, [3; 16])
        .encode()
        .unwrap();
    assert_eq!(
        verify_request_message_authenticator(&plain, b"s3cret"),
        None
    );

    // Accounting: digest authenticator, MA computed over a zeroed authenticator.
    let mut acct = Packet::new(Code::AccountingRequest, 9, [0; 16]);
    acct.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    acct.add_u32(attr::ACCT_STATUS_TYPE, 1);
    let raw = encode_request(&acct, b"s3cret").unwrap();
    assert!(verify_digest_request_authenticator(&raw, b"s3cret"));
    assert!(!verify_digest_request_authenticator(&raw, b"nope"));
    assert_eq!(
        verify_request_message_authenticator(&raw, b"s3cret"),
        Some(true)
    );
}

#[test]
fn message_authenticator_ignores_padding_and_refuses_overruns() {
    let mut req = Packet::new(Code::AccessRequest, 7, [3; 16]);
    req.add(attr::USER_NAME, b"ada".to_vec());
    req.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    let raw = encode_request(&req, b"s3cret").unwrap();
    // Octets after the Length field are padding (RFC 2865 §3), not signed.
    let mut padded = raw.clone();
    padded.extend([0xAA; 7]);
    assert_eq!(
        verify_request_message_authenticator(&padded, b"s3cret"),
        Some(true)
    );
    // A Length that cuts through the Message-Authenticator: never valid, never a panic.
    let mut cut = raw.clone();
    let short = (raw.len() - 4) as u16;
    cut[2..4].copy_from_slice(&short.to_be_bytes());
    assert_ne!(
        verify_request_message_authenticator(&cut, b"s3cret"),
        Some(true)
    );
}

/// The per-thread cache of keyed HMAC states: more secrets than it keeps, in turns, each
/// verifying only with its own secret.
#[test]
fn keyed_hmac_cache_keeps_secrets_apart() {
    let secrets: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("secret-{i}").into_bytes())
        .collect();
    let signed: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| {
            let mut req = Packet::new(Code::AccessRequest, 1, [9; 16]);
            req.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
            encode_request(&req, s).unwrap()
        })
        .collect();
    for round in 0..3 {
        for (i, raw) in signed.iter().enumerate() {
            for (j, s) in secrets.iter().enumerate().skip(round).step_by(7) {
                assert_eq!(
                    verify_request_message_authenticator(raw, s),
                    Some(i == j),
                    "packet {i}, secret {j}"
                );
            }
        }
    }
    // A secret longer than an MD5 block is hashed first (RFC 2104 §2).
    let long = vec![0x5a; 100];
    let mut req = Packet::new(Code::AccessRequest, 1, [9; 16]);
    req.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    let raw = encode_request(&req, &long).unwrap();
    assert_eq!(
        verify_request_message_authenticator(&raw, &long),
        Some(true)
    );
    assert_eq!(
        verify_request_message_authenticator(&raw, &long[..99]),
        Some(false)
    );
}

#[test]
fn values_inline_and_on_the_heap() {
    for n in [0, 1, 29, 30, 31, 253] {
        let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let a = Value::from(bytes.clone());
        let b = Value::from(bytes.as_slice());
        assert_eq!(&*a, bytes.as_slice());
        assert_eq!(a, b);
        assert_eq!(matches!(a, Value::Inline { .. }), n <= 30, "{n} octets");
        let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
        p.add(attr::CLASS, a);
        let raw = p.encode().unwrap();
        assert_eq!(
            Packet::decode(&raw).unwrap().get(attr::CLASS),
            Some(&bytes[..])
        );
    }
    assert_ne!(Value::from([1u8, 2]), Value::from([1u8, 2, 0]));
    // A VSA longer than an attribute can carry is kept whole and refused at encode.
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.add_vsa(attr::vendor::MICROSOFT, 1, &[7; 300]);
    assert!(p.encode().is_err());
}

#[test]
fn vendor_attributes() {
    let mut p = Packet::new(Code::AccessAccept, 1, [0; 16]);
    p.add_vsa(
        attr::vendor::MIKROTIK,
        attr::vendor::mikrotik::WIRELESS_VLANID,
        &20u32.to_be_bytes(),
    );
    // Two sub-attributes in one Vendor-Specific.
    p.add(
        attr::VENDOR_SPECIFIC,
        vec![0, 0, 0, 9, 1, 5, b'a', b'=', b'b', 1, 4, b'c', b'd'],
    );
    let back = Packet::decode(&p.encode().unwrap()).unwrap();
    assert_eq!(
        back.vsa(attr::vendor::MIKROTIK, 26),
        Some(&20u32.to_be_bytes()[..])
    );
    let cisco: Vec<&[u8]> = back.vsas().filter(|v| v.0 == 9).map(|v| v.2).collect();
    assert_eq!(cisco, vec![&b"a=b"[..], &b"cd"[..]]);
}

#[test]
fn salt_encryption_round_trips() {
    let key = [7u8; 16];
    let enc = salt_encrypt(&key, b"secret", &[1; 16], [0x12, 0x34]);
    assert_eq!(enc.len(), 2 + 32);
    assert_eq!(enc[0] & 0x80, 0x80);
    assert_eq!(salt_decrypt(&enc, b"secret", &[1; 16]).unwrap(), key);
    assert_ne!(salt_decrypt(&enc, b"other", &[1; 16]), Some(key.to_vec()));
}

#[test]
fn malformed_headers_and_attributes_are_errors() {
    let ok = Packet::new(Code::AccessRequest, 1, [0; 16])
        .encode()
        .unwrap();
    assert_eq!(Packet::decode(&ok[..19]), Err(DecodeError::TooShort(19)));
    let mut long = ok.clone();
    long[2..4].copy_from_slice(&40u16.to_be_bytes());
    assert!(matches!(
        Packet::decode(&long),
        Err(DecodeError::Truncated { .. })
    ));
    let mut small = ok.clone();
    small[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(Packet::decode(&small), Err(DecodeError::BadLength(19)));
    for bad_len in [0u8, 1] {
        let mut p = ok.clone();
        p.extend([1, bad_len, 0]);
        let l = p.len() as u16;
        p[2..4].copy_from_slice(&l.to_be_bytes());
        assert!(Packet::decode(&p).is_err());
    }
    let mut over = ok.clone();
    over.extend([1, 10, b'a']);
    let l = over.len() as u16;
    over[2..4].copy_from_slice(&l.to_be_bytes());
    assert_eq!(
        Packet::decode(&over),
        Err(DecodeError::AttributeOverrun(20))
    );
    // Padding past Length is ignored.
    let mut padded = ok.clone();
    padded.extend([0xff; 10]);
    assert_eq!(
        Packet::decode(&padded).unwrap(),
        Packet::decode(&ok).unwrap()
    );
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<[u8; 16]>(),
        prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..60)),
            0..20,
        ),
    )
        .prop_map(|(code, id, auth, attrs)| Packet {
            code: Code::from_u8(code),
            identifier: id,
            authenticator: auth,
            attributes: attrs
                .into_iter()
                .map(|(typ, value)| Attribute {
                    typ,
                    value: value.into(),
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn encode_decode_round_trip(p in arb_packet()) {
        let raw = p.encode().unwrap();
        prop_assert_eq!(Packet::decode(&raw).unwrap(), p);
    }

    /// The in-place parse and the owning decode agree, and verification on the raw bytes
    /// matches an HMAC over a zeroed copy computed the plain way.
    #[test]
    fn parse_agrees_with_decode_and_signatures_verify(p in arb_packet(), secret in prop::collection::vec(any::<u8>(), 1..80)) {
        let mut p = p;
        p.attributes.retain(|a| a.typ != attr::MESSAGE_AUTHENTICATOR);
        p.attributes.insert(0, Attribute { typ: attr::MESSAGE_AUTHENTICATOR, value: vec![0; 16].into() });
        let Ok(raw) = encode_request(&p, &secret) else { return Ok(()) };
        let parsed = PacketRef::parse(&raw).unwrap();
        let decoded = Packet::decode(&raw).unwrap();
        prop_assert_eq!(parsed.attributes.len(), decoded.attributes.len());
        for (a, b) in parsed.attributes.iter().zip(&decoded.attributes) {
            prop_assert_eq!(a.typ, b.typ);
            prop_assert_eq!(a.value, &*b.value);
        }
        let mut zeroed = raw.clone();
        zeroed[22..38].fill(0);
        if p.code.authenticator_is_digest() {
            zeroed[4..20].fill(0);
        }
        let mut mac = <hmac::Hmac<md5::Md5> as hmac::Mac>::new_from_slice(&secret).unwrap();
        hmac::Mac::update(&mut mac, &zeroed);
        let expected: [u8; 16] = hmac::Mac::finalize(mac).into_bytes().into();
        prop_assert_eq!(&raw[22..38], &expected[..]);
        prop_assert_eq!(verify_request_message_authenticator(&raw, &secret), Some(true));
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Packet::decode(&bytes);
        let _ = verify_request_message_authenticator(&bytes, b"x");
    }

    #[test]
    fn user_password_round_trip(pw in prop::collection::vec(1u8..=255, 1..128), auth in any::<[u8; 16]>()) {
        let enc = encrypt_user_password(&pw, b"secret", &auth);
        prop_assert_eq!(decrypt_user_password(&enc, b"secret", &auth).unwrap(), pw);
    }
}
