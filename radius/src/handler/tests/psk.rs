//! Identity PSK: golden MAC-auth answers per vendor (the passphrase decrypted here with the
//! RFC 2868 §3.5 algorithm, written out again), and unbound mode against 10,000 passphrases
//! with real 4-way-handshake messages.

use super::*;
use crate::directory::{PskEntry, PskOwner};
use crate::psk::station;
use std::cell::RefCell;
use std::collections::HashSet;

const SSID: &str = "Members-PSK";
const ADA_PASS: &str = "ada-secret-pass";
const JOIN_PASS: &str = "join-us-please";
const BOUND: &str = "02:00:00:00:00:07";
const AP: [u8; 6] = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

fn entry(id: i64, owner: PskOwner, secret: &str, ssid: &str) -> PskEntry {
    PskEntry {
        id,
        ssid: ssid.into(),
        owner,
        secret: secret.into(),
        pmk: frontdesk_core::secrets::wpa_pmk(secret, ssid),
        valid_until: None,
        max_devices: None,
        revoked: false,
    }
}

fn psk_directory(extra: Vec<PskEntry>) -> Directory {
    let mut entries = vec![
        PskEntry {
            max_devices: Some(2),
            ..entry(1, PskOwner::Member("m1".into()), ADA_PASS, SSID)
        },
        entry(2, PskOwner::Plan(1), JOIN_PASS, SSID),
        PskEntry {
            revoked: true,
            ..entry(
                3,
                PskOwner::Member("m1".into()),
                "old-old-old-old",
                "Old-PSK",
            )
        },
    ];
    entries.extend(extra);
    directory().with_passphrases(
        entries,
        vec![
            (1, BOUND.parse().unwrap()),
            (3, "02:00:00:00:00:09".parse().unwrap()),
        ],
    )
}

/// RFC 2868 §3.5, decrypting: b(1) = MD5(S + R + A), p(i) = c(i) xor b(i), b(i) =
/// MD5(S + c(i-1)); the first plaintext octet is the password's length.
fn rfc2868_decrypt(salted: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let (salt, cipher) = salted.split_at(2);
    assert!(salt[0] & 0x80 != 0, "salt's high bit must be set");
    assert_eq!(cipher.len() % 16, 0);
    let mut plain = Vec::new();
    let mut prev: Vec<u8> = [&authenticator[..], salt].concat();
    for chunk in cipher.chunks(16) {
        let mut h = Md5::new();
        h.update(SECRET.as_bytes());
        h.update(&prev);
        let b = h.finalize();
        plain.extend(chunk.iter().zip(b.iter()).map(|(c, b)| c ^ b));
        prev = chunk.to_vec();
    }
    let len = plain[0] as usize;
    plain[1..=len].to_vec()
}

fn mab(vendor_index: usize, mac: &str, ssid: &str) -> (Packet, Vec<u8>) {
    let user = mac.replace(':', "");
    request(
        &[
            (attr::USER_NAME, user.as_bytes().to_vec()),
            (attr::USER_PASSWORD, user.as_bytes().to_vec()),
            (attr::CALLING_STATION_ID, mac.replace(':', "-").into_bytes()),
            (
                attr::CALLED_STATION_ID,
                format!("AA-BB-CC-DD-EE-FF:{ssid}").into_bytes(),
            ),
        ],
        vendor_index != usize::MAX,
    )
}

fn run_with(dir: &Directory, sessions: &dyn Sessions, ip: &str, raw: &[u8]) -> Outcome {
    handle(
        raw,
        from(ip),
        Port::Auth,
        dir,
        sessions,
        &HandlerConfig::default(),
        now(),
    )
}

fn event(out: &Outcome) -> &AuthEvent {
    match out {
        Outcome::Reply { auth: Some(ev), .. } => ev,
        other => panic!("no auth event: {other:?}"),
    }
}

fn passphrase_in(resp: &Packet, req: &Packet, vendor: Vendor) -> Vec<u8> {
    use crate::nas::PskAttribute;
    match crate::nas::profile(vendor).psk {
        PskAttribute::TunnelPassword => {
            let v = resp.get(attr::TUNNEL_PASSWORD).expect("Tunnel-Password");
            assert_eq!(v[0], 0, "{vendor}: tag 0");
            rfc2868_decrypt(&v[1..], &req.authenticator)
        }
        PskAttribute::ArubaMpsk => rfc2868_decrypt(
            resp.vsa(attr::vendor::ARUBA, attr::vendor::aruba::MPSK_PASSPHRASE)
                .expect("Aruba-MPSK-Passphrase"),
            &req.authenticator,
        ),
        PskAttribute::MikrotikPsk => resp
            .vsa(attr::vendor::MIKROTIK, attr::vendor::mikrotik::WIRELESS_PSK)
            .expect("Mikrotik-Wireless-PSK")
            .to_vec(),
        PskAttribute::CiscoAvPair => {
            let pairs: Vec<String> = resp
                .vsas()
                .filter(|(v, t, _)| *v == attr::vendor::CISCO && *t == attr::vendor::cisco::AVPAIR)
                .map(|(_, _, v)| String::from_utf8(v.to_vec()).unwrap())
                .collect();
            assert!(pairs.contains(&"psk-mode=ascii".to_string()), "{pairs:?}");
            pairs
                .iter()
                .find_map(|p| p.strip_prefix("psk="))
                .expect("psk=")
                .as_bytes()
                .to_vec()
        }
    }
}

#[test]
fn mac_bound_answers_carry_the_passphrase_each_vendor_reads() {
    let dir = psk_directory(vec![]);
    for (i, vendor) in Vendor::ALL.iter().enumerate() {
        let ip = format!("10.0.0.{}", i + 1);
        let (req, raw) = mab(i, BOUND, SSID);
        let out = run_with(&dir, &NoSessions, &ip, &raw);
        assert_eq!(event(&out).method, Method::PskMac);
        assert_eq!(event(&out).passphrase, Some(1));
        assert_eq!(event(&out).member_id.as_deref(), Some("m1"));
        let resp = answer(out);
        assert_eq!(resp.code, Code::AccessAccept, "{vendor}");
        // The owner's plan (full-time) decides the VLAN.
        assert_eq!(
            resp.get(attr::TUNNEL_PRIVATE_GROUP_ID),
            Some(&b"10"[..]),
            "{vendor}"
        );
        assert_eq!(
            passphrase_in(&resp, &req, *vendor),
            ADA_PASS.as_bytes(),
            "{vendor}"
        );
        // The passphrase never travels in the clear, except where the vendor's attribute
        // is a plain string (MikroTik, Cisco AV-pairs).
        let raw_resp = resp.encode().unwrap();
        let clear = raw_resp
            .windows(ADA_PASS.len())
            .any(|w| w == ADA_PASS.as_bytes());
        assert_eq!(
            clear,
            matches!(vendor, Vendor::Mikrotik | Vendor::Cisco),
            "{vendor}"
        );
    }
}

#[test]
fn who_gets_which_passphrase() {
    let dir = psk_directory(vec![]);
    // A registered device of the member: the member's passphrase, learned.
    let (_, raw) = mab(0, "02:00:00:00:00:01", SSID);
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert_eq!(event(&out).passphrase, Some(1));
    assert!(event(&out).accepted);
    // Nobody's device: the join passphrase, the guest plan's VLAN, nothing learned.
    let (req, raw) = mab(0, "02:00:00:00:00:55", SSID);
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert!(event(&out).accepted);
    assert_eq!(event(&out).passphrase, None);
    let resp = answer(out);
    assert_eq!(resp.get(attr::TUNNEL_PRIVATE_GROUP_ID), Some(&b"30"[..]));
    assert_eq!(
        passphrase_in(&resp, &req, Vendor::Generic),
        JOIN_PASS.as_bytes()
    );
    // Without a join passphrase, an unknown device is refused.
    let strict = directory().with_passphrases(
        vec![entry(1, PskOwner::Member("m1".into()), ADA_PASS, SSID)],
        vec![],
    );
    let out = run_with(&strict, &NoSessions, "10.0.0.1", &raw);
    assert!(!event(&out).accepted);
    assert_eq!(event(&out).reason, "unknown-user");
    // A device that only ever used a revoked passphrase gets nothing on its SSID.
    let (_, raw) = mab(0, "02:00:00:00:00:09", "Old-PSK");
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert!(!event(&out).accepted);
    // A wrong MAB password is refused before any passphrase is handed out.
    let (_, raw) = request(
        &[
            (attr::USER_NAME, b"020000000007".to_vec()),
            (attr::USER_PASSWORD, b"not-the-mac".to_vec()),
            (
                attr::CALLED_STATION_ID,
                format!("AA-BB-CC-DD-EE-FF:{SSID}").into_bytes(),
            ),
        ],
        true,
    );
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert!(!event(&out).accepted);
    assert!(answer(out).get(attr::TUNNEL_PASSWORD).is_none());
}

#[test]
fn last_day_and_device_count() {
    // Past its last day: refused.
    let dir = directory().with_passphrases(
        vec![PskEntry {
            valid_until: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()),
            ..entry(1, PskOwner::Member("m1".into()), ADA_PASS, SSID)
        }],
        vec![(1, BOUND.parse().unwrap())],
    );
    let (_, raw) = mab(0, BOUND, SSID);
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert_eq!(event(&out).reason, "passphrase-revoked");
    // Its last day today: access ends at midnight at the latest.
    let dir = directory().with_passphrases(
        vec![PskEntry {
            valid_until: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()),
            ..entry(1, PskOwner::Member("m1".into()), ADA_PASS, SSID)
        }],
        vec![(1, BOUND.parse().unwrap())],
    );
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert!(event(&out).accepted);
    assert_eq!(
        event(&out).valid_until,
        Some(Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap())
    );
    // One device allowed and one bound: the member's other registered device is refused.
    let dir = directory().with_passphrases(
        vec![PskEntry {
            max_devices: Some(1),
            ..entry(1, PskOwner::Member("m1".into()), ADA_PASS, SSID)
        }],
        vec![(1, BOUND.parse().unwrap())],
    );
    let (_, raw) = mab(0, "02:00:00:00:00:01", SSID);
    let out = run_with(&dir, &NoSessions, "10.0.0.1", &raw);
    assert_eq!(event(&out).reason, "device-limit");
    // The bound one still joins.
    let (_, raw) = mab(0, BOUND, SSID);
    assert!(event(&run_with(&dir, &NoSessions, "10.0.0.1", &raw)).accepted);
}

/// Remembers nonces and learned devices like the server does.
#[derive(Default)]
struct Memory {
    nonces: RefCell<HashSet<[u8; 64]>>,
    scans: RefCell<u32>,
    scan_budget: u32,
}

impl Sessions for Memory {
    fn devices_online(&self, _: &str) -> Vec<MacAddr> {
        Vec::new()
    }
    fn psk_scan_allowed(&self, _: MacAddr) -> bool {
        *self.scans.borrow_mut() += 1;
        *self.scans.borrow() <= self.scan_budget
    }
    fn psk_replayed(&self, n: &[u8; 64]) -> bool {
        !self.nonces.borrow_mut().insert(*n)
    }
}

/// 9,997 other passphrases on the SSID (their PMKs random: deriving 10,000 real ones would
/// take ~50 s of PBKDF2; a random PMK is what an unknown passphrase looks like).
fn crowd() -> Vec<PskEntry> {
    (0..9_997)
        .map(|n| PskEntry {
            pmk: rand::random(),
            ..PskEntry {
                id: 1000 + n,
                ssid: SSID.into(),
                owner: PskOwner::Team(1),
                secret: format!("other-{n:05}-passphrase"),
                pmk: [0; 32],
                valid_until: None,
                max_devices: None,
                revoked: false,
            }
        })
        .collect()
}

fn ruckus_request(
    station_mac: [u8; 6],
    pass: &str,
    anonce: [u8; 32],
    snonce: [u8; 32],
) -> (Packet, Vec<u8>) {
    let pmk = frontdesk_core::secrets::wpa_pmk(pass, SSID);
    let frame = station::message2(&pmk, AP, station_mac, &anonce, &snonce);
    let mut p = Packet::new(Code::AccessRequest, 7, [3; 16]);
    p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    p.add(attr::USER_NAME, hex::encode(station_mac).into_bytes());
    p.add(
        attr::USER_PASSWORD,
        encrypt_user_password(
            hex::encode(station_mac).as_bytes(),
            SECRET.as_bytes(),
            &p.authenticator,
        ),
    );
    p.add(
        attr::CALLING_STATION_ID,
        MacAddr(station_mac)
            .format(frontdesk_core::mac::MacFormat::UpperHyphen)
            .into_bytes(),
    );
    p.add_vsa(
        attr::vendor::RUCKUS,
        attr::vendor::ruckus::SSID,
        SSID.as_bytes(),
    );
    p.add_vsa(attr::vendor::RUCKUS, 14, &AP);
    p.add_vsa(
        attr::vendor::RUCKUS,
        153,
        &station::tlv(&[(2, &[4]), (3, &anonce), (4, &frame)]),
    );
    let raw = encode_request(&p, SECRET.as_bytes()).unwrap();
    (p, raw)
}

#[test]
fn unbound_finds_the_passphrase_among_ten_thousand() {
    let dir = psk_directory(crowd());
    assert_eq!(dir.psk_on(SSID).len(), 9_999);
    let sessions = Memory {
        scan_budget: 100,
        ..Memory::default()
    };
    let station_mac = [0x3c, 0x22, 0xfb, 0x10, 0x20, 0x30];
    let (req, raw) = ruckus_request(station_mac, ADA_PASS, [0x51; 32], [0x62; 32]);
    let out = run_with(&dir, &sessions, "10.0.0.6", &raw);
    let ev = event(&out);
    assert!(ev.accepted, "{}", ev.reason);
    assert_eq!(ev.method, Method::PskHandshake);
    assert_eq!(ev.member_id.as_deref(), Some("m1"));
    assert_eq!(ev.passphrase, Some(1));
    assert_eq!(ev.mac, Some(MacAddr(station_mac)));
    let resp = answer(out);
    assert_eq!(resp.get(attr::TUNNEL_PRIVATE_GROUP_ID), Some(&b"10"[..]));
    // Ruckus takes the PMK back, salt-encrypted in MS-MPPE-Recv-Key.
    let sealed = resp
        .vsa(attr::vendor::MICROSOFT, attr::vendor::ms::MPPE_RECV_KEY)
        .unwrap();
    assert_eq!(
        rfc2868_decrypt(sealed, &req.authenticator),
        frontdesk_core::secrets::wpa_pmk(ADA_PASS, SSID)
    );

    // The same handshake again (a replay with a fresh RADIUS id): refused.
    let mut replay = Packet::decode(&raw).unwrap();
    replay.identifier = 8;
    replay.authenticator = [4; 16];
    let replay = encode_request(&replay, SECRET.as_bytes()).unwrap();
    let out = run_with(&dir, &sessions, "10.0.0.6", &replay);
    assert_eq!(event(&out).reason, "psk-replayed-handshake");

    // A passphrase nobody holds: not found.
    let (_, raw) = ruckus_request(station_mac, "nobody-has-this-one", [0x52; 32], [0x63; 32]);
    let out = run_with(&dir, &sessions, "10.0.0.6", &raw);
    assert!(!event(&out).accepted);
    assert_eq!(event(&out).reason, "bad-password");
    // The join passphrase is found too, and binds nothing.
    let (_, raw) = ruckus_request([2, 0, 0, 0, 0, 0x77], JOIN_PASS, [0x53; 32], [0x64; 32]);
    let out = run_with(&dir, &sessions, "10.0.0.6", &raw);
    assert!(event(&out).accepted);
    assert_eq!(event(&out).passphrase, None);
    assert_eq!(event(&out).vlan, Some(30));
}

#[test]
fn unbound_scans_are_rate_limited_but_known_devices_are_not() {
    let dir = psk_directory(crowd());
    let sessions = Memory {
        scan_budget: 0,
        ..Memory::default()
    };
    // A bound device's own passphrase is tried first: no scan needed.
    let bound: MacAddr = BOUND.parse().unwrap();
    let (_, raw) = ruckus_request(bound.0, ADA_PASS, [0x71; 32], [0x72; 32]);
    assert!(event(&run_with(&dir, &sessions, "10.0.0.6", &raw)).accepted);
    // A stranger would need a full scan: refused while over the limit.
    let (_, raw) = ruckus_request([2, 0, 0, 0, 0, 0x78], ADA_PASS, [0x73; 32], [0x74; 32]);
    let out = run_with(&dir, &sessions, "10.0.0.6", &raw);
    assert_eq!(event(&out).reason, "psk-scan-rate-limited");
}

#[test]
fn eleven_shaped_handshakes_answer_per_vendor() {
    let dir = psk_directory(vec![]);
    let station_mac = [0x3c, 0x22, 0xfb, 0x10, 0x20, 0x31];
    let (anonce, snonce) = ([0x81; 32], [0x92; 32]);
    let frame = station::message2(
        &frontdesk_core::secrets::wpa_pmk(ADA_PASS, SSID),
        AP,
        station_mac,
        &anonce,
        &snonce,
    );
    for (ip, vendor) in [("10.0.0.4", Vendor::Meraki), ("10.0.0.8", Vendor::Cisco)] {
        let mut p = Packet::new(Code::AccessRequest, 9, [ip.len() as u8; 16]);
        p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
        p.add(attr::USER_NAME, hex::encode(station_mac).into_bytes());
        p.add_vsa(
            crate::psk::ELEVEN,
            3,
            &station::tlv(&[
                (1, &frame),
                (2, &anonce),
                (3, SSID.as_bytes()),
                (4, &AP),
                (5, &station_mac),
            ]),
        );
        let raw = encode_request(&p, SECRET.as_bytes()).unwrap();
        let sessions = Memory {
            scan_budget: 10,
            ..Memory::default()
        };
        let out = run_with(&dir, &sessions, ip, &raw);
        assert!(event(&out).accepted, "{vendor}: {}", event(&out).reason);
        let resp = answer(out);
        assert_eq!(
            passphrase_in(&resp, &p, vendor),
            ADA_PASS.as_bytes(),
            "{vendor}"
        );
    }
}

#[test]
fn malformed_handshakes_are_rejected_without_panic() {
    let dir = psk_directory(vec![]);
    let good = station::message2(&[1; 32], AP, [2, 0, 0, 0, 0, 1], &[1; 32], &[2; 32]);
    let mut cases: Vec<Vec<u8>> = vec![
        station::tlv(&[(3, &[1; 31]), (4, &good)]), // short ANonce
        station::tlv(&[(3, &[1; 32])]),             // no frame
        station::tlv(&[(3, &[1; 32]), (4, &good[..60])]), // truncated frame
        vec![3, 40, 1, 2],                          // TLV length beyond the value
        vec![3, 1],                                 // TLV length under 2
        vec![],                                     // empty container
    ];
    let mut wrong_len = good.clone();
    wrong_len[3] ^= 0x10;
    cases.push(station::tlv(&[(3, &[1; 32]), (4, &wrong_len)]));
    let mut msg1 = good.clone();
    msg1[6] |= 0x80;
    cases.push(station::tlv(&[(3, &[1; 32]), (4, &msg1)]));
    for (n, value) in cases.iter().enumerate() {
        let mut p = Packet::new(Code::AccessRequest, n as u8, [5; 16]);
        p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
        p.add(attr::USER_NAME, b"020000000001".to_vec());
        p.add_vsa(
            attr::vendor::RUCKUS,
            attr::vendor::ruckus::SSID,
            SSID.as_bytes(),
        );
        p.add_vsa(attr::vendor::RUCKUS, 14, &AP);
        p.add_vsa(attr::vendor::RUCKUS, 153, value);
        let raw = encode_request(&p, SECRET.as_bytes()).unwrap();
        let out = run_with(&dir, &NoSessions, "10.0.0.6", &raw);
        let ev = event(&out);
        assert!(!ev.accepted, "case {n}");
        let resp = answer(out);
        assert_eq!(resp.code, Code::AccessReject, "case {n}");
    }
}

#[test]
fn a_team_passphrase_lands_on_the_team_vlan_while_a_member_holds_a_plan() {
    use frontdesk_core::model::Team;
    let build = |status: MemberStatus| {
        let mut plans = default_plans();
        for (i, p) in plans.iter_mut().enumerate() {
            p.id = i as i64 + 1;
        }
        let mut catalog = crate::testing::lab_catalog(plans);
        catalog.teams = vec![Team {
            id: 7,
            name: "Acme".into(),
            vlan: 77,
        }];
        let member = Member {
            id: "t1".into(),
            name: "Tess".into(),
            email: "tess@acme.example".into(),
            status,
            team_id: Some(7),
            wifi_username: "tess@acme.example".into(),
            assignments: vec![Assignment {
                plan_id: 5,
                valid_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                valid_until: None,
            }],
            created_at: Utc::now(),
        };
        let nas = directory().nas_clients().to_vec();
        Directory::new(
            catalog,
            vec![MemberEntry {
                member,
                nt_hash: [0; 16],
                password: String::new(),
            }],
            vec![],
            nas,
        )
        .with_passphrases(
            vec![entry(9, PskOwner::Team(7), "acme-team-passphrase", SSID)],
            vec![(9, BOUND.parse().unwrap())],
        )
    };
    let (req, raw) = mab(0, BOUND, SSID);
    let out = run_with(&build(MemberStatus::Active), &NoSessions, "10.0.0.1", &raw);
    assert!(event(&out).accepted, "{}", event(&out).reason);
    let resp = answer(out);
    assert_eq!(resp.get(attr::TUNNEL_PRIVATE_GROUP_ID), Some(&b"77"[..]));
    assert_eq!(
        passphrase_in(&resp, &req, Vendor::Generic),
        b"acme-team-passphrase"
    );
    // Nobody on the team holds a plan any more (the only member is suspended): refused.
    let out = run_with(
        &build(MemberStatus::Suspended),
        &NoSessions,
        "10.0.0.1",
        &raw,
    );
    assert!(!event(&out).accepted);
}
