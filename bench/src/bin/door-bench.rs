//! Door sync against the fake Kisi (in process, loopback; no root):
//!
//! 1. N members (default 5,000: flex and full-time, three plan → group maps), full reconciles
//!    with an unthrottled client: the first sync, a no-change sync (only reads), and after 1 %
//!    of members changed (suspended). Reports requests and writes per run and projects the wall
//!    time at Kisi's documented 5 requests/s.
//! 2. With the fake enforcing 5 requests/s (429 + Retry-After: 1 beyond) and a full reconcile
//!    running against it, members are cancelled one at a time and reconciled as `serve` does;
//!    reports the time from the change to the last revocation seen by the fake (p50/p99).
//!
//! Usage: door-bench [--members 5000] [--cancels 20]

use anyhow::Result;
use frontdesk_bench::arg;
use frontdesk_bench::fake_kisi::{self, Kisi};
use frontdesk_core::model::MemberStatus;
use frontdesk_core::store::{Actor, ImportRow, OpenMode, Store};
use frontdesk_sync::kisi::Kisi as KisiBackend;
use frontdesk_sync::reconcile::{reconcile, Scope};
use frontdesk_sync::DoorSystem;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<()> {
    let members = arg("--members", 5_000);
    let cancels = arg("--cancels", 20);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("doors.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await?;
    let actor = Actor::system("bench");
    store.init_site("Bench", "Europe/Berlin", &actor).await?;
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "bench-key")
        .await?;
    let rows: Vec<ImportRow> = (0..members)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            name: format!("Member {i:05}"),
            email: format!("m{i:05}@example.com"),
            plan: ["flex", "full-time"][i % 2].into(),
            team: None,
            valid_until: None,
            wifi_username: None,
            wifi_password: Some(format!("password-{i:05}")),
        })
        .collect();
    let today = chrono::Utc::now().date_naive();
    store.import_members(&rows, today, &actor, &|_| {}).await?;
    let state: fake_kisi::Shared = Arc::new(Mutex::new(Kisi::default()));
    let base = fake_kisi::start(state.clone()).await;
    let b = store
        .add_door_backend("kisi", "kisi", &base, Some("test-key"), &actor)
        .await?;
    for (plan, group, w) in [
        ("flex", "Studio", "opening-hours"),
        ("full-time", "Studio", "opening-hours"),
        ("full-time", "After-hours door", "always"),
    ] {
        store
            .map_door("kisi", plan, group, Some(w.parse()?), &actor)
            .await?;
    }
    let hours = store.site().await?.calendar.hours;
    let none = |_: usize, _: usize| {};
    println!(
        "| run | members changed | requests | writes | wall (fake) s | projected at 5 req/s |"
    );
    println!("|---|---|---|---|---|---|");
    let all = store.members(&Default::default()).await?;
    for (name, change) in [
        ("first sync", 0usize),
        ("no change", 0),
        ("1 % changed", members / 100),
    ] {
        for m in all.iter().take(change) {
            store
                .set_member_status(&m.id, MemberStatus::Suspended, &actor)
                .await?;
        }
        let sys = KisiBackend::new(&base, "test-key", 1e6, hours.clone())?;
        let t = Instant::now();
        let r = reconcile(&store, &b, &sys, Scope::All, &none).await?;
        let secs = t.elapsed().as_secs_f64();
        let requests = sys.requests();
        println!(
            "| {name} | {} | {requests} | {} | {secs:.1} | {} |",
            r.changed,
            r.writes,
            humantime::format_duration(Duration::from_secs(requests / 5))
        );
    }

    // Revocation latency under the real rate limit, with a full reconcile running.
    {
        let mut k = state.lock().unwrap();
        k.rate = 5.0;
    }
    for m in all.iter().take(members / 100) {
        store
            .set_member_status(&m.id, MemberStatus::Active, &actor)
            .await?;
    }
    let full = {
        let (store, b, base, hours) = (store.clone(), b.clone(), base.clone(), hours.clone());
        tokio::spawn(async move {
            let sys = KisiBackend::new(
                &base,
                "test-key",
                frontdesk_sync::reconcile::KISI_RATE,
                hours.clone(),
            )
            .expect("client");
            let _ = reconcile(&store, &b, &sys, Scope::All, &|_: usize, _: usize| {}).await;
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times = Vec::new();
    for m in all
        .iter()
        .skip(1)
        .step_by(2)
        .skip(members / 100)
        .take(cancels)
    {
        // full-time members: two grants each.
        let t = Instant::now();
        store
            .set_member_status(&m.id, MemberStatus::Cancelled, &actor)
            .await?;
        let sys = KisiBackend::new(
            &base,
            "test-key",
            frontdesk_sync::reconcile::KISI_RATE,
            hours.clone(),
        )?;
        let r = reconcile(
            &store,
            &b,
            &sys,
            Scope::Members(std::slice::from_ref(&m.id)),
            &none,
        )
        .await?;
        anyhow::ensure!(r.failed == 0, "revocation failed");
        times.push(t.elapsed().as_secs_f64());
    }
    full.abort();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!();
    println!(
        "cancel → revoked at the fake, {} cancels during a full reconcile, fake limited to 5 req/s: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        times.len(),
        pct(0.5),
        pct(0.99),
        times[times.len() - 1]
    );
    Ok(())
}
