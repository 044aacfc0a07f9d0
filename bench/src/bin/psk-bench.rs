//! Identity PSK, unbound mode: how fast the request handler finds a passphrase from a
//! forwarded 4-way handshake among N passphrases on one SSID (in process, release build, no
//! network: the handler is the whole cost; the UDP loop around it is measured in the RADIUS
//! benchmark).
//!
//! Workloads, each for `--seconds` on `--threads` threads:
//! - `first-join`: a station nobody has bound; its passphrase sits at a random place among
//!   the N, so the handler scans until it matches (half the SSID on average).
//! - `rejoin`: a station bound to its passphrase (tried first: no scan).
//! - `wrong`: a passphrase nobody holds: the whole SSID is scanned and the request refused.
//!
//! The scan limiter of `serve` (one full scan per station per 2 s, 20 full scans a second
//! overall) is off here: this measures what the limiter protects.
//!
//! Usage: psk-bench [--passphrases 10000] [--threads 2] [--seconds 5]

use anyhow::{bail, Context, Result};
use chrono::Utc;
use frontdesk_core::decide::Catalog;
use frontdesk_core::model::{default_plans, Assignment, Member, MemberStatus, Nas, Site, Vendor};
use frontdesk_core::schedule::{Calendar, OpeningHours};
use frontdesk_core::MacAddr;
use frontdesk_radius::attr;
use frontdesk_radius::directory::{Directory, MemberEntry, PskEntry, PskOwner};
use frontdesk_radius::handler::{handle, HandlerConfig, NoSessions, Outcome, Port};
use frontdesk_radius::packet::{self, Code, Packet};
use frontdesk_radius::psk::station;
use rand::Rng;
use std::time::{Duration, Instant};

const SECRET: &str = "psk-bench-secret";
const SSID: &str = "Members-PSK";
const AP: [u8; 6] = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
/// Stations with a real passphrase (PBKDF2-derived PMK); the others' PMKs are random, which
/// is what an unknown passphrase's PMK looks like (deriving 10,000 would take ~50 s).
const REAL: usize = 64;

fn main() -> Result<()> {
    let mut n = 10_000usize;
    let mut threads = 2usize;
    let mut seconds = 5u64;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--passphrases" => n = v.parse()?,
            "--threads" => threads = v.parse()?,
            "--seconds" => seconds = v.parse()?,
            _ => bail!("unknown flag {k}"),
        }
    }
    if n < REAL {
        bail!("--passphrases: at least {REAL}");
    }

    // What issuing costs: one PBKDF2 (4096 rounds) per passphrase.
    let t = Instant::now();
    let real: Vec<(String, [u8; 32])> = (0..REAL)
        .map(|i| {
            let pass = format!("real-passphrase-{i:04}");
            let pmk = frontdesk_core::secrets::wpa_pmk(&pass, SSID);
            (pass, pmk)
        })
        .collect();
    let pbkdf2 = t.elapsed() / REAL as u32;
    println!("PMK derivation (PBKDF2-HMAC-SHA1, 4096 rounds): {pbkdf2:?} per passphrase");

    let mut rng = rand::thread_rng();
    // The real ones spread evenly through the SSID's list.
    let stride = n / REAL;
    let mut entries = Vec::with_capacity(n);
    let mut real_at = Vec::new();
    for i in 0..n {
        let (secret, pmk) = if i % stride == stride / 2 && real_at.len() < REAL {
            real_at.push(i);
            real[real_at.len() - 1].clone()
        } else {
            (format!("other-{i:06}"), rng.gen())
        };
        entries.push(PskEntry {
            id: i as i64 + 1,
            ssid: SSID.into(),
            owner: PskOwner::Member("m1".into()),
            secret,
            pmk,
            valid_until: None,
            max_devices: None,
            revoked: false,
        });
    }
    let bound: Vec<(i64, MacAddr)> = real_at
        .iter()
        .enumerate()
        .map(|(k, &i)| (i as i64 + 1, bound_station(k)))
        .collect();
    let t = Instant::now();
    let dir = directory().with_passphrases(entries, bound);
    println!(
        "index of {n} passphrases (keyed PMKs) built in {:?}",
        t.elapsed()
    );

    for workload in ["first-join", "rejoin", "wrong"] {
        // Requests prepared ahead: the clock measures the handler only.
        let requests: Vec<Vec<u8>> = (0..4096)
            .map(|j| {
                let k = j % REAL;
                let (pass, station) = match workload {
                    "first-join" => (real[k].0.as_str(), fresh_station(j)),
                    "rejoin" => (real[k].0.as_str(), bound_station(k)),
                    _ => ("nobody-holds-this", fresh_station(j)),
                };
                request(pass, station, j as u32)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (dir, requests) = (&dir, &requests);
                    s.spawn(move || {
                        let mut lat = Vec::new();
                        let mut accepted = 0usize;
                        let cfg = HandlerConfig::default();
                        let src = "127.0.0.1:40000".parse().unwrap();
                        let mut j = t;
                        while Instant::now() < deadline {
                            let raw = &requests[j % requests.len()];
                            let start = Instant::now();
                            let out =
                                handle(raw, src, Port::Auth, dir, &NoSessions, &cfg, Utc::now());
                            lat.push(start.elapsed());
                            if let Outcome::Reply { auth: Some(ev), .. } = &out {
                                accepted += usize::from(ev.accepted);
                            }
                            j += threads;
                        }
                        (lat, accepted)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let accepted: usize = results.iter().map(|r| r.1).sum();
        let mut lat: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
        lat.sort();
        let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "{workload:>10}: {:>8.0} requests/s on {threads} threads; p50 {:?}, p99 {:?}, max {:?}; accepted {accepted} of {}",
            lat.len() as f64 / seconds as f64,
            q(0.50),
            q(0.99),
            lat.last().unwrap(),
            lat.len()
        );
        let want_accept = workload != "wrong";
        if (accepted == lat.len()) != want_accept {
            bail!("{workload}: {accepted} of {} accepted", lat.len());
        }
    }
    println!(
        "for comparison, deriving each candidate's PMK per request (no precomputed PMKs) would cost {:?} per full scan of {n}",
        pbkdf2 * n as u32
    );
    Ok(())
}

fn bound_station(k: usize) -> MacAddr {
    MacAddr([0x02, 0xb0, 0, 0, (k >> 8) as u8, k as u8])
}

fn fresh_station(j: usize) -> MacAddr {
    MacAddr([0x02, 0xf0, 0, (j >> 16) as u8, (j >> 8) as u8, j as u8])
}

/// A Ruckus-shaped DPSK request with a real message 2 for `pass`.
fn request(pass: &str, sta: MacAddr, n: u32) -> Vec<u8> {
    let pmk = frontdesk_core::secrets::wpa_pmk(pass, SSID);
    let mut rng = rand::thread_rng();
    let (anonce, snonce): ([u8; 32], [u8; 32]) = (rng.gen(), rng.gen());
    let frame = station::message2(&pmk, AP, sta.0, &anonce, &snonce);
    let mut p = Packet::new(Code::AccessRequest, n as u8, rng.gen());
    p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    p.add(
        attr::USER_NAME,
        sta.format(frontdesk_core::mac::MacFormat::LowerBare)
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
        &station::tlv(&[(3, &anonce), (4, &frame)]),
    );
    packet::encode_request(&p, SECRET.as_bytes()).expect("fits")
}

fn directory() -> Directory {
    let mut plans = default_plans();
    for (i, p) in plans.iter_mut().enumerate() {
        p.id = i as i64 + 1;
    }
    let catalog = Catalog {
        site: Site {
            id: 1,
            name: "Bench".into(),
            calendar: Calendar {
                tz: chrono_tz::UTC,
                hours: OpeningHours::default_hours(),
                closures: vec![],
            },
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
        wifi_username: "ada@example.com".into(),
        assignments: vec![Assignment {
            plan_id: 4,
            valid_from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            valid_until: None,
        }],
        created_at: Utc::now(),
    };
    let nas = Nas {
        id: 1,
        name: "ruckus".into(),
        address: "127.0.0.1/32".parse().unwrap(),
        secret: SECRET.into(),
        vendor: Vendor::Ruckus,
        disconnect_port: 3799,
        coa_port: 3799,
        require_message_authenticator: true,
    };
    Directory::new(
        catalog,
        vec![MemberEntry {
            member,
            nt_hash: [0; 16],
            password: String::new(),
        }],
        vec![],
        vec![nas],
    )
}
