//! Handler tests: vendor-shaped request fixtures, BlastRADIUS rules, the malformed corpus.

use super::*;
use crate::directory::{Directory, MemberEntry};
use crate::packet::{decrypt_user_password, encode_request, encrypt_user_password};
use chrono::TimeZone;
use frontdesk_core::model::{default_plans, Assignment, Device, Member, MemberStatus, Vendor};

const SECRET: &str = "testing123";

fn directory() -> Directory {
    let mut plans = default_plans();
    for (i, p) in plans.iter_mut().enumerate() {
        p.id = i as i64 + 1;
    }
    // IoT devices only on the IoT SSID.
    plans[5].ssids = vec!["IoT".into()];
    let catalog = crate::testing::lab_catalog(plans);
    let member = Member {
        id: "m1".into(),
        name: "Ada".into(),
        email: "ada@example.com".into(),
        status: MemberStatus::Active,
        team_id: None,
        wifi_username: "ada@example.com".into(),
        assignments: vec![Assignment {
            plan_id: 4,
            valid_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            valid_until: None,
        }],
        created_at: Utc::now(),
    };
    let entry = MemberEntry {
        member,
        nt_hash: frontdesk_core::secrets::nt_hash("correct-horse"),
        password: "correct-horse".into(),
    };
    let device = Device {
        id: 1,
        mac: "02:00:00:00:00:01".parse().unwrap(),
        member_id: Some("m1".into()),
        plan_id: 6,
        name: "printer".into(),
    };
    let nas = Vendor::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| Nas {
            id: i as i64 + 1,
            name: v.to_string(),
            address: format!("10.0.0.{}/32", i + 1).parse().unwrap(),
            secret: SECRET.into(),
            vendor: *v,
            disconnect_port: 3799,
            coa_port: v.coa_port(),
            require_message_authenticator: true,
        })
        .chain([
            Nas {
                id: 100,
                name: "legacy".into(),
                address: "10.0.1.0/24".parse().unwrap(),
                secret: SECRET.into(),
                vendor: Vendor::Generic,
                disconnect_port: 3799,
                coa_port: 3799,
                require_message_authenticator: false,
            },
            Nas {
                id: 101,
                name: "localhost".into(),
                address: "127.0.0.1/32".parse().unwrap(),
                secret: SECRET.into(),
                vendor: Vendor::Generic,
                disconnect_port: 3799,
                coa_port: 3799,
                require_message_authenticator: true,
            },
        ])
        .collect();
    Directory::new(catalog, vec![entry], vec![device], nas)
}

fn from(nas_ip: &str) -> SocketAddr {
    format!("{nas_ip}:40000").parse().unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
}

fn request(attrs: &[(u8, Vec<u8>)], with_ma: bool) -> (Packet, Vec<u8>) {
    let mut p = Packet::new(Code::AccessRequest, 42, [9; 16]);
    if with_ma {
        p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    }
    for (t, v) in attrs {
        let v = if *t == attr::USER_PASSWORD {
            encrypt_user_password(v, SECRET.as_bytes(), &p.authenticator)
        } else {
            v.clone()
        };
        p.add(*t, v);
    }
    let raw = encode_request(&p, SECRET.as_bytes()).unwrap();
    (p, raw)
}

fn run(ip: &str, raw: &[u8]) -> Outcome {
    handle(
        raw,
        from(ip),
        Port::Auth,
        &directory(),
        &NoSessions,
        &HandlerConfig::default(),
        now(),
    )
}

fn answer(out: Outcome) -> Packet {
    match out {
        Outcome::Reply { bytes, .. } => {
            let p = Packet::decode(&bytes).unwrap();
            // Message-Authenticator is always the first attribute.
            assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
            p
        }
        Outcome::Drop { cause, .. } => panic!("dropped: {cause:?}"),
    }
}

/// MAB requests shaped as each vendor sends them (VENDORS.md): MAC format of User-Name, the
/// password convention, Called-Station-Id `apmac:SSID`.
#[test]
fn vendor_mab_fixtures() {
    let cases: [(Vendor, &str, Option<&str>, Option<u32>); 8] = [
        (
            Vendor::Generic,
            "02-00-00-00-00-01",
            Some("02-00-00-00-00-01"),
            None,
        ),
        (Vendor::Unifi, "020000000001", Some("020000000001"), None),
        (
            Vendor::Omada,
            "02-00-00-00-00-01",
            Some("02-00-00-00-00-01"),
            None,
        ),
        (Vendor::Meraki, "020000000001", Some("020000000001"), None),
        (Vendor::Aruba, "020000000001", Some("020000000001"), None),
        (
            Vendor::Ruckus,
            "02:00:00:00:00:01",
            Some("02:00:00:00:00:01"),
            None,
        ),
        (Vendor::Mikrotik, "02:00:00:00:00:01", Some(""), None),
        (
            Vendor::Cisco,
            "020000000001",
            None,
            Some(attr::SERVICE_TYPE_CALL_CHECK),
        ),
    ];
    for (i, (vendor, user, password, service)) in cases.iter().enumerate() {
        let ip = format!("10.0.0.{}", i + 1);
        let mut attrs = vec![
            (attr::USER_NAME, user.as_bytes().to_vec()),
            (attr::CALLING_STATION_ID, b"02-00-00-00-00-01".to_vec()),
            (attr::CALLED_STATION_ID, b"AA-BB-CC-DD-EE-FF:IoT".to_vec()),
        ];
        if let Some(p) = password {
            attrs.push((attr::USER_PASSWORD, p.as_bytes().to_vec()));
        }
        if let Some(s) = service {
            attrs.push((attr::SERVICE_TYPE, s.to_be_bytes().to_vec()));
        }
        let (_, raw) = request(&attrs, true);
        let resp = answer(run(&ip, &raw));
        assert_eq!(resp.code, Code::AccessAccept, "{vendor}");
        assert_eq!(
            resp.get(attr::TUNNEL_TYPE),
            Some(&[0, 0, 0, 13][..]),
            "{vendor}: tag 0, VLAN"
        );
        assert_eq!(resp.get(attr::TUNNEL_MEDIUM_TYPE), Some(&[0, 0, 0, 6][..]));
        assert_eq!(
            resp.get(attr::TUNNEL_PRIVATE_GROUP_ID),
            Some(&b"40"[..]),
            "{vendor}"
        );
        let mikrotik = resp.vsa(
            attr::vendor::MIKROTIK,
            attr::vendor::mikrotik::WIRELESS_VLANID,
        );
        if *vendor == Vendor::Mikrotik {
            assert_eq!(mikrotik, Some(&40u32.to_be_bytes()[..]));
            assert_eq!(
                resp.vsa(
                    attr::vendor::MIKROTIK,
                    attr::vendor::mikrotik::WIRELESS_VLANID_TYPE
                ),
                Some(&0u32.to_be_bytes()[..])
            );
        } else {
            assert_eq!(mikrotik, None, "{vendor}");
        }
        let timeout = resp.get_u32(attr::SESSION_TIMEOUT).unwrap();
        assert!(
            timeout >= crate::nas::profile(*vendor).session_timeout_min,
            "{vendor}: {timeout}"
        );
        assert_eq!(
            resp.get_u32(attr::ACCT_INTERIM_INTERVAL),
            Some(crate::nas::profile(*vendor).acct_interim_interval)
        );
    }
}

#[test]
fn iot_plan_only_on_its_ssid() {
    let (_, raw) = request(
        &[
            (attr::USER_NAME, b"020000000001".to_vec()),
            (attr::USER_PASSWORD, b"020000000001".to_vec()),
            (
                attr::CALLED_STATION_ID,
                b"AA-BB-CC-DD-EE-FF:Members".to_vec(),
            ),
        ],
        true,
    );
    match run("10.0.0.1", &raw) {
        Outcome::Reply { auth, bytes, .. } => {
            assert_eq!(Packet::decode(&bytes).unwrap().code, Code::AccessReject);
            assert_eq!(auth.unwrap().reason, "ssid-not-allowed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pap_accept_copies_proxy_state_and_hides_reasons() {
    let (req, raw) = request(
        &[
            (attr::USER_NAME, b"ADA@example.com".to_vec()),
            (attr::USER_PASSWORD, b"correct-horse".to_vec()),
            (attr::PROXY_STATE, b"one".to_vec()),
            (attr::PROXY_STATE, b"two".to_vec()),
        ],
        true,
    );
    let resp = answer(run("10.0.0.1", &raw));
    assert_eq!(resp.code, Code::AccessAccept);
    let ps: Vec<&[u8]> = resp.all(attr::PROXY_STATE).collect();
    assert_eq!(ps, vec![&b"one"[..], &b"two"[..]]);
    assert_eq!(resp.get(attr::TUNNEL_PRIVATE_GROUP_ID), Some(&b"10"[..]));
    assert_eq!(
        decrypt_user_password(
            req.get(attr::USER_PASSWORD).unwrap(),
            SECRET.as_bytes(),
            &req.authenticator
        )
        .unwrap(),
        b"correct-horse"
    );

    let (_, raw) = request(
        &[
            (attr::USER_NAME, b"ada@example.com".to_vec()),
            (attr::USER_PASSWORD, b"wrong".to_vec()),
        ],
        true,
    );
    let resp = answer(run("10.0.0.1", &raw));
    assert_eq!(resp.code, Code::AccessReject);
    assert!(!resp.has(attr::REPLY_MESSAGE));
    let cfg = HandlerConfig {
        reject_reply_message: true,
        ..Default::default()
    };
    let out = handle(
        &raw,
        from("10.0.0.1"),
        Port::Auth,
        &directory(),
        &NoSessions,
        &cfg,
        now(),
    );
    assert!(answer(out).has(attr::REPLY_MESSAGE));
}

#[test]
fn blastradius_rules() {
    let creds = [
        (attr::USER_NAME, b"ada@example.com".to_vec()),
        (attr::USER_PASSWORD, b"correct-horse".to_vec()),
    ];
    // Required and missing: dropped.
    let (_, raw) = request(&creds, false);
    assert!(matches!(
        run("10.0.0.1", &raw),
        Outcome::Drop {
            cause: DropCause::MissingMessageAuthenticator,
            nas_id: Some(1)
        }
    ));
    // Not required: answered...
    assert!(matches!(run("10.0.1.7", &raw), Outcome::Reply { .. }));
    // ...unless Proxy-State rides along without Message-Authenticator.
    let mut with_ps = creds.to_vec();
    with_ps.push((attr::PROXY_STATE, b"x".to_vec()));
    let (_, raw) = request(&with_ps, false);
    assert!(matches!(
        run("10.0.1.7", &raw),
        Outcome::Drop {
            cause: DropCause::ProxyStateWithoutMessageAuthenticator,
            ..
        }
    ));
    // A wrong Message-Authenticator is dropped, whatever the NAS flag.
    let (_, mut raw) = request(&creds, true);
    raw[22] ^= 1;
    assert!(matches!(
        run("10.0.1.7", &raw),
        Outcome::Drop {
            cause: DropCause::BadAuthenticator,
            ..
        }
    ));
    // Unknown source: dropped without looking at the packet.
    assert!(matches!(
        run("192.0.2.1", &raw),
        Outcome::Drop {
            cause: DropCause::UnknownNas,
            nas_id: None
        }
    ));
}

#[test]
fn ipv4_mapped_sources_match_ipv4_nas() {
    let (_, raw) = request(
        &[
            (attr::USER_NAME, b"ada@example.com".to_vec()),
            (attr::USER_PASSWORD, b"correct-horse".to_vec()),
        ],
        true,
    );
    assert!(matches!(
        run("[::ffff:10.0.0.1]", &raw),
        Outcome::Reply { .. }
    ));
}

/// Every datagram of tests/data/malformed (see make-malformed.py) is dropped, never answered.
#[test]
fn malformed_corpus_is_dropped() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 50, "corpus has {} files", files.len());
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        for port in [Port::Auth, Port::Acct] {
            let out = handle(
                &raw,
                from("127.0.0.1"),
                port,
                &directory(),
                &NoSessions,
                &HandlerConfig::default(),
                now(),
            );
            assert!(
                matches!(out, Outcome::Drop { .. }),
                "{} on {port:?}: {out:?}",
                f.display()
            );
        }
    }
}

/// Five devices online (the full-time limit), the oldest session on NAS 7.
struct Full;

impl Sessions for Full {
    fn devices_online(&self, _: &str) -> Vec<MacAddr> {
        (1..=5u8).map(|i| MacAddr([2, 0, 0, 0, 1, i])).collect()
    }

    fn oldest(&self, _: &str, except: Option<MacAddr>) -> Option<(i64, String)> {
        assert_eq!(except, Some(MacAddr([0xaa, 0, 0, 0, 0, 9])));
        Some((7, "old-1".into()))
    }
}

#[test]
fn device_limit_rejects_or_ends_the_oldest_session() {
    let (_, raw) = request(
        &[
            (attr::USER_NAME, b"ada@example.com".to_vec()),
            (attr::USER_PASSWORD, b"correct-horse".to_vec()),
            (attr::CALLING_STATION_ID, b"AA-00-00-00-00-09".to_vec()),
        ],
        true,
    );
    let dir = directory();
    let go = |disconnect_oldest: bool| {
        let cfg = HandlerConfig {
            disconnect_oldest,
            ..HandlerConfig::default()
        };
        match handle(&raw, from("10.0.0.1"), Port::Auth, &dir, &Full, &cfg, now()) {
            Outcome::Reply { auth, bytes, .. } => {
                (Packet::decode(&bytes).unwrap().code, auth.unwrap())
            }
            other => panic!("{other:?}"),
        }
    };
    let (code, ev) = go(false);
    assert_eq!(
        (code, ev.reason.as_str(), ev.evict),
        (Code::AccessReject, "device-limit", None)
    );
    let (code, ev) = go(true);
    assert_eq!(code, Code::AccessAccept);
    assert_eq!(ev.evict, Some((7, "old-1".to_string())));
}

mod psk;
