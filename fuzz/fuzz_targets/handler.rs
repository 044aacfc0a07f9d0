#![no_main]
//! The whole request handler on arbitrary datagrams from a known NAS, on both ports. The first
//! byte chooses whether a valid Message-Authenticator is patched in, so fuzzing gets past the
//! signature check and into the authentication methods.
use chrono::{TimeZone, Utc};
use frontdesk_core::decide::Catalog;
use frontdesk_core::model::{default_plans, Assignment, Device, Member, MemberStatus, Nas, Site, Vendor};
use frontdesk_core::schedule::{Calendar, OpeningHours};
use frontdesk_radius::directory::{Directory, MemberEntry};
use frontdesk_radius::handler::{handle, HandlerConfig, NoSessions, Port};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn directory() -> &'static Directory {
    static DIR: OnceLock<Directory> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut plans = default_plans();
        for (i, p) in plans.iter_mut().enumerate() {
            p.id = i as i64 + 1;
        }
        let catalog = Catalog {
            site: Site {
                id: 1,
                name: "Fuzz".into(),
                calendar: Calendar { tz: chrono_tz::Europe::Berlin, hours: OpeningHours::default_hours(), closures: vec![] },
            },
            plans,
            teams: vec![],
        };
        let member = Member {
            id: "m1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            status: MemberStatus::Active,
            team_id: None,
            wifi_username: "ada".into(),
            assignments: vec![Assignment { plan_id: 3, valid_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), valid_until: None }],
            created_at: Utc::now(),
        };
        let entry = MemberEntry { member, nt_hash: frontdesk_core::secrets::nt_hash("pw"), password: "pw".into() };
        let device = Device { id: 1, mac: "02:00:00:00:00:01".parse().unwrap(), member_id: Some("m1".into()), plan_id: 6, name: "p".into() };
        let nas = vec![Nas {
            id: 1,
            name: "n".into(),
            address: "127.0.0.1/32".parse().unwrap(),
            secret: "secret".into(),
            vendor: Vendor::Mikrotik,
            disconnect_port: 3799,
            coa_port: 3799,
            require_message_authenticator: false,
        }];
        Directory::new(catalog, vec![entry], vec![device], nas)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut raw = rest.to_vec();
    if mode & 1 == 1 {
        if let Ok(mut p) = frontdesk_radius::Packet::decode(&raw) {
            p.attributes.retain(|a| a.typ != 80);
            p.attributes.insert(0, frontdesk_radius::packet::Attribute { typ: 80, value: vec![0; 16].into() });
            if let Ok(signed) = frontdesk_radius::packet::encode_request(&p, b"secret") {
                raw = signed;
            }
        }
    }
    let port = if mode & 2 == 0 { Port::Auth } else { Port::Acct };
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    let _ = handle(&raw, "127.0.0.1:1812".parse().unwrap(), port, directory(), &NoSessions, &HandlerConfig::default(), now);
});
