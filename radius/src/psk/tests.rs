use super::station::{message2, prf384};
use super::*;

const AA: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const SPA: [u8; 6] = [0x3c, 0x22, 0xfb, 0x01, 0x02, 0x03];

fn handshake(frame: Vec<u8>, anonce: [u8; 32]) -> Handshake {
    Handshake {
        shape: Shape::Ruckus,
        ssid: Some("Frontdesk".into()),
        ap: MacAddr(AA),
        station: MacAddr(SPA),
        anonce,
        frame,
    }
}

/// IEEE 802.11i-2004 Annex H.3 PRF test vector 1 (key 0x0b × 20, "prefix", "Hi There").
#[test]
fn prf_matches_the_standards_vector() {
    let out = prf384(&[0x0b; 20], b"prefix", b"Hi There");
    assert_eq!(
        hex::encode(&out[..32]),
        "bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee"
    );
}

#[test]
fn the_right_pmk_matches_and_others_do_not() {
    let pmk = frontdesk_core::secrets::wpa_pmk("correct horse battery", "Frontdesk");
    let (anonce, snonce) = ([0x11; 32], [0x22; 32]);
    let frame = message2(&pmk, AA, SPA, &anonce, &snonce);
    check_message2(&frame).unwrap();
    let check = Check::new(&handshake(frame, anonce));
    assert!(check.matches(&keyed(&pmk)));
    let other = frontdesk_core::secrets::wpa_pmk("correct horse battery!", "Frontdesk");
    assert!(!check.matches(&keyed(&other)));
    // The same passphrase on another SSID is another PMK.
    let elsewhere = frontdesk_core::secrets::wpa_pmk("correct horse battery", "Other");
    assert!(!check.matches(&keyed(&elsewhere)));
}

#[test]
fn nonces_sort_either_way() {
    let pmk = [7u8; 32];
    for (a, s) in [([0x01; 32], [0xfe; 32]), ([0xfe; 32], [0x01; 32])] {
        let frame = message2(&pmk, AA, SPA, &a, &s);
        assert!(Check::new(&handshake(frame, a)).matches(&keyed(&pmk)));
    }
}

#[test]
fn tampered_frames_do_not_match() {
    let pmk = [9u8; 32];
    let (anonce, snonce) = ([0x31; 32], [0x42; 32]);
    let frame = message2(&pmk, AA, SPA, &anonce, &snonce);
    for i in [5usize, 20, 85, 100, frame.len() - 1] {
        let mut f = frame.clone();
        f[i] ^= 0x01;
        let ok =
            check_message2(&f).is_ok() && Check::new(&handshake(f, anonce)).matches(&keyed(&pmk));
        assert!(!ok, "flipping byte {i} still matched");
    }
    // Another ANonce (a replay against a new message 1) does not match.
    assert!(!Check::new(&handshake(frame, [0x32; 32])).matches(&keyed(&pmk)));
}

#[test]
fn malformed_frames_are_refused() {
    let good = message2(&[1u8; 32], AA, SPA, &[1; 32], &[2; 32]);
    assert_eq!(check_message2(&good[..50]), Err(Bad::FrameLength));
    assert_eq!(check_message2(&[]), Err(Bad::FrameLength));
    assert_eq!(check_message2(&vec![0u8; 4096]), Err(Bad::FrameLength));
    let mut f = good.clone();
    f[1] = 0; // EAP packet, not EAPOL-Key
    assert_eq!(check_message2(&f), Err(Bad::NotEapolKey));
    let mut f = good.clone();
    f[3] = f[3].wrapping_add(1); // body length off by one
    assert_eq!(check_message2(&f), Err(Bad::FrameLength));
    let mut f = good.clone();
    f[98] = 200; // key data length beyond the frame
    assert_eq!(check_message2(&f), Err(Bad::FrameLength));
    let mut f = good.clone();
    f[6] = (f[6] & !0x07) | 1; // TKIP descriptor
    assert_eq!(check_message2(&f), Err(Bad::DescriptorVersion(1)));
    let mut f = good.clone();
    f[6] |= 0x80; // ACK set: message 1 or 3
    assert_eq!(check_message2(&f), Err(Bad::NotMessage2));
    let mut f = good;
    f[4] = 1; // unknown descriptor type
    assert_eq!(check_message2(&f), Err(Bad::NotEapolKey));
}

#[test]
fn tlvs_parse_strictly() {
    assert_eq!(tlvs(&[3, 4, 1, 2]).unwrap(), vec![(3u8, &[1u8, 2][..])]);
    assert!(tlvs(&[3, 1]).is_none());
    assert!(tlvs(&[3, 9, 1]).is_none());
    assert!(tlvs(&[3]).is_none());
    assert!(tlvs(&[]).unwrap().is_empty());
}
