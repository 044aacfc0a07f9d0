//! Console page render time with many members (no root; in process, no network):
//!
//! A SQLite database with N members (default 10,000; a third online with a RADIUS session and
//! four weeks of weekday sessions before, plus a day of auth log for the dashboard charts),
//! a manager logged in, then the dashboard, the member list, a member search, a member's page
//! "who is in", plans & hours and a member's own /me page rendered R times each through the real router (tower `oneshot`, the same
//! handlers, templates, session checks and queries `serve` runs). Reports p50/p95/max server
//! time and the page size (issue 8: < 100 ms, < 100 KB).
//!
//! Usage: console-bench [--members 10000] [--rounds 30]

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{header, Request};
use frontdesk_bench::arg;
use frontdesk_core::model::Role;
use frontdesk_core::store::radius::{AccountingRecord, AcctStatus};
use frontdesk_core::store::{Actor, ImportRow, OpenMode, Store};
use frontdesk_portal::console::{Console, ConsoleSettings};
use http_body_util::BodyExt;
use std::time::Instant;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<()> {
    let members = arg("--members", 10_000);
    let rounds = arg("--rounds", 30);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await?;
    let actor = Actor::system("bench");
    store.init_site("Bench", "Europe/Berlin", &actor).await?;
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "bench-key")
        .await?;
    let plans = ["flex", "full-time", "day-pass", "guest"];
    let rows: Vec<ImportRow> = (0..members)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            name: format!("Member {i:05}"),
            email: format!("m{i:05}@example.com"),
            plan: plans[i % plans.len()].into(),
            team: None,
            valid_until: None,
            wifi_username: None,
            wifi_password: Some(format!("password-{i:05}")),
        })
        .collect();
    let t = Instant::now();
    let today = chrono::Utc::now().date_naive();
    store.import_members(&rows, today, &actor, &|_| {}).await?;
    eprintln!(
        "{members} members imported in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let all = store.members(&Default::default()).await?;
    let now = chrono::Utc::now();
    let online: Vec<AccountingRecord> = all
        .iter()
        .step_by(3)
        .enumerate()
        .map(|(i, m)| AccountingRecord {
            at: now,
            nas_id: 1,
            nas_addr: "192.0.2.50:1813".into(),
            status: AcctStatus::Start,
            session_id: format!("s-{i}"),
            user_name: m.wifi_username.clone(),
            member_id: Some(m.id.clone()),
            mac: Some(
                format!(
                    "02:00:00:{:02x}:{:02x}:{:02x}",
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                )
                .parse()
                .unwrap(),
            ),
            framed_ip: None,
            vlan: None,
            class: None,
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            terminate_cause: None,
        })
        .collect();
    for chunk in online.chunks(500) {
        store.record_accounting(chunk).await?;
    }
    eprintln!("{} sessions online", online.len());
    // Four weeks of history for the charts: each of those members on weekdays 09:00-17:00
    // UTC (a session each, VLAN by plan), and a day of auth log (every login accepted, one
    // in eight with a rejection first).
    let t = Instant::now();
    let mut history = Vec::new();
    for day in 1..=28i64 {
        let date = today - chrono::Duration::days(day);
        if chrono::Datelike::weekday(&date).num_days_from_monday() >= 5 {
            continue;
        }
        let start = date.and_hms_opt(9, 0, 0).unwrap().and_utc();
        for (i, r) in online.iter().enumerate() {
            let sid = format!("h-{day}-{i}");
            let vlan = Some([20u16, 10, 20, 30][i % 4]);
            history.push(AccountingRecord {
                at: start,
                session_id: sid.clone(),
                vlan,
                ..r.clone()
            });
            history.push(AccountingRecord {
                at: start + chrono::Duration::hours(8),
                status: AcctStatus::Stop,
                session_id: sid,
                vlan,
                ..r.clone()
            });
        }
    }
    for chunk in history.chunks(2_000) {
        store.record_accounting(chunk).await?;
    }
    let log: Vec<frontdesk_core::store::radius::AuthLogEntry> = online
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let at = now - chrono::Duration::minutes((i % (24 * 60)) as i64);
            let e = |accepted: bool, reason: &str| frontdesk_core::store::radius::AuthLogEntry {
                at,
                nas_id: Some(1),
                user_name: r.user_name.clone(),
                mac: r.mac.map(|m| m.to_string()),
                method: "peap-mschapv2".into(),
                accepted,
                reason: reason.into(),
                vlan: None,
                latency_us: 500,
            };
            let mut v = vec![e(true, "ok")];
            if i % 8 == 0 {
                v.push(e(
                    false,
                    ["bad-password", "outside-hours", "device-limit"][i % 3],
                ));
            }
            v
        })
        .collect();
    store.record_auth_log(&log).await?;
    eprintln!(
        "{} history sessions and {} auth log lines in {:.1} s",
        history.len() / 2,
        log.len(),
        t.elapsed().as_secs_f64()
    );
    // A manager (no second factor required) with a live console session.
    let (op, _) = store
        .add_admin("bench@example.com", Role::Manager, &actor)
        .await?;
    let operator = store
        .operator_by_email(&op.email)
        .await?
        .context("operator")?;
    store
        .set_operator_password(
            operator.id,
            &frontdesk_core::secrets::hash_login_password("bench password 123"),
            None,
            &actor,
        )
        .await?;
    let token = "bench-session-token";
    // Console session tokens are hashed like API tokens.
    let hash = frontdesk_portal::api::token_hash(token);
    store
        .create_console_session(&hash, operator.id, "csrf", "127.0.0.1", false, now)
        .await?;
    let app = Console::new(store.clone(), ConsoleSettings::default()).router();
    let sample = &all[members / 2];
    // The same member signed in to self-service.
    let me_token = "bench-member-token";
    store
        .create_member_session(
            &frontdesk_portal::api::token_hash(me_token),
            &sample.id,
            "csrf",
            "127.0.0.1",
            now,
        )
        .await?;
    let pages = [
        ("dashboard", "/".to_string()),
        ("members", "/members".to_string()),
        ("search", "/members?q=m0420".to_string()),
        ("member", format!("/members/{}", sample.id)),
        ("who is in", "/presence".to_string()),
        ("plans & hours", "/plans".to_string()),
        ("member's own page (/me)", "/me".to_string()),
    ];
    println!("| page | p50 ms | p95 ms | max ms | size KB |");
    println!("|---|---|---|---|---|");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let req = Request::builder()
                .uri(&path)
                .header(header::HOST, "console.test")
                .header(
                    header::COOKIE,
                    format!("fd_console={token}; fd_me={me_token}"),
                )
                .body(Body::empty())?;
            let t = Instant::now();
            let res = app.clone().oneshot(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status.is_success(), "{path}: {status}");
            size = body.len();
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.0} |",
            pct(0.5),
            pct(0.95),
            times[times.len() - 1],
            size as f64 / 1024.0
        );
    }
    Ok(())
}
