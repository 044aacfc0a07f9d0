//! Door sync against a fake Kisi (the documented endpoints Frontdesk uses, in process, on
//! loopback) with fault injection (429 with Retry-After, 500, partial pages), and against a
//! webhook receiver that checks the signature. The CLI's `sync run` and a running `serve`
//! (member cancel → revocation seen by the fake within a second).

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{Db, Env};
use frontdesk_bench::fake_kisi::{membership, start as fake_kisi, Kisi, Shared};
use frontdesk_bench::faults::{statuses, Fault};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn setup(env: &Env, url: &str) {
    setup_backend(env, "kisi", url, "test-key");
}

/// Three members (full-time, flex, guest), a backend named after its kind, and the usual
/// maps: full-time and flex → Studio in opening hours, full-time → After-hours door always.
fn setup_backend(env: &Env, kind: &str, url: &str, secret: &str) {
    env.run(&["init", "--site", "Doors", "--timezone", "Europe/Berlin"])
        .ok();
    for (name, email, plan) in [
        ("Ada", "ada@example.com", "full-time"),
        ("Bob", "bob@example.com", "flex"),
        ("Cid", "cid@example.com", "guest"),
    ] {
        env.run(&[
            "member", "add", "--name", name, "--email", email, "--plan", plan,
        ])
        .ok();
    }
    let key = env.dir.path().join("door.key");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    env.run(&[
        "door",
        "add",
        "--name",
        kind,
        "--kind",
        kind,
        "--url",
        url,
        "--secret-file",
        key.to_str().unwrap(),
    ])
    .ok();
    for (plan, group, window) in [
        ("full-time", "Studio", "opening-hours"),
        ("full-time", "After-hours door", "always"),
        ("flex", "Studio", "opening-hours"),
    ] {
        env.run(&[
            "door",
            "map",
            "--backend",
            kind,
            "--plan",
            plan,
            "--group",
            group,
            "--window",
            window,
        ])
        .ok();
    }
}

const STUDIO: &str = "Frontdesk · Studio · opening-hours";
const AFTER: &str = "Frontdesk · After-hours door · always";

#[tokio::test(flavor = "multi_thread")]
async fn kisi_mirrors_plans_heals_faults_and_leaves_foreign_groups_alone() {
    let state: Shared = Arc::new(Mutex::new(Kisi::default()));
    {
        // Set up by hand in Kisi: a cleaning crew group with someone in it, and Ada already
        // a Kisi user (first link by email, no duplicate).
        let mut k = state.lock().unwrap();
        k.users
            .push(json!({"id": 900, "email": "cleaner@example.com", "name": "Cleaner"}));
        k.users
            .push(json!({"id": 901, "email": "ada@example.com", "name": "Ada L."}));
        k.groups.push(json!({"id": 800, "name": "Cleaning crew"}));
        k.assignments.push(json!({"id": 700, "user_id": 900, "group_id": 800, "role_id": "group_basic", "valid_until": null}));
        k.next = 1000;
        k.page_cap = 2;
    }
    let url = fake_kisi(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup(&env, &url);

    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["changed"], 2, "{r}");
    {
        let k = state.lock().unwrap();
        let m = membership(&k);
        assert_eq!(m[STUDIO], ["ada@example.com", "bob@example.com"]);
        assert_eq!(m[AFTER], ["ada@example.com"]);
        assert_eq!(
            m["Cleaning crew"],
            ["cleaner@example.com"],
            "foreign group untouched"
        );
        assert_eq!(
            k.users
                .iter()
                .filter(|u| u["email"] == "ada@example.com")
                .count(),
            1,
            "Ada linked by email, not created twice"
        );
        assert!(
            !k.users.iter().any(|u| u["email"] == "cid@example.com"),
            "guests get no doors"
        );
        // Kisi's time restrictions are set by hand: the group says which.
        let desc = |name: &str| {
            k.groups.iter().find(|g| g["name"] == name).unwrap()["description"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(
            desc(STUDIO).contains("time restriction to: mon, tue, wed, thu, fri 08:00-19:00"),
            "{}",
            desc(STUDIO)
        );
        assert!(desc(AFTER).contains("at any time"), "{}", desc(AFTER));
    }
    // Nothing changed: only reads.
    let writes = state.lock().unwrap().writes();
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["changed"], 0, "{r}");
    assert_eq!(
        state.lock().unwrap().writes(),
        writes,
        "a no-change sync only reads"
    );

    // Cancel Ada while Kisi is rate limiting and failing: she loses every owned grant,
    // nothing is duplicated, Bob keeps his.
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    state.lock().unwrap().faults = statuses(&[429, 500, 429, 500]);
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    {
        let k = state.lock().unwrap();
        let m = membership(&k);
        assert_eq!(m[STUDIO], ["bob@example.com"]);
        assert!(!m.contains_key(AFTER));
        assert_eq!(m["Cleaning crew"], ["cleaner@example.com"]);
        assert_eq!(k.groups.len(), 3, "no group made twice");
        let mut pairs: Vec<(String, String)> = k
            .assignments
            .iter()
            .map(|a| (a["user_id"].to_string(), a["group_id"].to_string()))
            .collect();
        let n = pairs.len();
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), n, "no grant duplicated");
    }
    // Drift: someone puts Cid into the studio group by hand; the full reconcile removes it
    // (Frontdesk owns that group), and a plan change moves Bob.
    {
        let mut k = state.lock().unwrap();
        let studio = k.groups.iter().find(|g| g["name"] == STUDIO).unwrap()["id"].clone();
        k.users
            .push(json!({"id": 902, "email": "cid@example.com", "name": "Cid"}));
        k.assignments.push(json!({"id": 701, "user_id": 902, "group_id": studio, "role_id": "group_basic", "valid_until": null}));
    }
    env.run(&["member", "set-plan", "bob@example.com", "full-time"])
        .ok();
    env.run(&["--json", "sync", "run"]).ok();
    {
        let m = membership(&state.lock().unwrap());
        assert_eq!(m[STUDIO], ["bob@example.com"]);
        assert_eq!(m[AFTER], ["bob@example.com"]);
    }
    // A Kisi that keeps failing: the member backs off, then is quarantined and reported.
    env.run(&["member", "set-plan", "bob@example.com", "flex"])
        .ok();
    for _ in 0..5 {
        state.lock().unwrap().faults = statuses(&[400; 50]);
        env.run(&["sync", "run", "--member", "bob@example.com"]);
    }
    let s = env.run(&["--json", "sync", "status"]).ok().json();
    assert_eq!(s[0]["quarantined"], 1, "{s}");
    assert!(
        s[0]["problems"][0]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{s}"
    );
    state.lock().unwrap().faults.clear();
    env.run(&["sync", "release", "--backend", "kisi"]).ok();
    env.run(&["sync", "run"]).ok();
    let s = env.run(&["--json", "sync", "status"]).ok().json();
    assert_eq!(s[0]["quarantined"], 0, "{s}");
    assert_eq!(s[0]["failed"], 0, "{s}");
    assert!(!membership(&state.lock().unwrap()).contains_key(AFTER));
}

/// Answers that never come: a reset connection and a hung server are retried for reads;
/// a create whose answer is lost after Kisi did it is not sent again blindly (it would make
/// a second user or grant): the member fails, and the next attempt reads first.
#[tokio::test(flavor = "multi_thread")]
async fn kisi_lost_answers_never_duplicate_a_user_or_grant() {
    let state: Shared = Arc::new(Mutex::new(Kisi::default()));
    {
        let mut k = state.lock().unwrap();
        k.faults = vec![Fault::Reset, Fault::Slow];
        k.aimed = vec![("POST /users".into(), Fault::LostAnswer)];
    }
    let url = fake_kisi(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup(&env, &url);
    let t = Instant::now();
    let r = env.run(&["--json", "sync", "run"]).json();
    assert!(
        t.elapsed() >= Duration::from_secs(10),
        "the hung answer was waited for until the timeout"
    );
    assert_eq!(r[0]["failed"], 1, "the member whose create was lost: {r}");
    assert_eq!(state.lock().unwrap().users.len(), 2, "Kisi made both users");
    // Now the grant's answer is lost.
    state.lock().unwrap().aimed = vec![("POST /role_assignments".into(), Fault::LostAnswer)];
    for email in ["ada@example.com", "bob@example.com"] {
        env.run(&["sync", "run", "--member", email]);
        env.run(&["sync", "run", "--member", email]);
    }
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    let k = state.lock().unwrap();
    assert_eq!(k.users.len(), 2, "no user made twice");
    let m = membership(&k);
    assert_eq!(m[STUDIO], ["ada@example.com", "bob@example.com"]);
    assert_eq!(m[AFTER], ["ada@example.com"]);
    assert_eq!(k.assignments.len(), 3, "no grant made twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_revokes_a_cancelled_member_within_a_second() {
    let state: Shared = Arc::new(Mutex::new(Kisi::default()));
    state.lock().unwrap().next = 1000;
    let url = fake_kisi(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup(&env, &url);
    let server = env.serve("127.0.0.1:0");
    server
        .wait_for(&["following changes"], Duration::from_secs(30))
        .expect("serve is up");
    // The start-up reconcile grants Ada and Bob.
    let t = Instant::now();
    let granted = |k: &Kisi| {
        let m = membership(k);
        m.get(STUDIO).map(Vec::len) == Some(2) && m.get(AFTER).map(Vec::len) == Some(1)
    };
    while !granted(&state.lock().unwrap()) {
        assert!(t.elapsed() < Duration::from_secs(10), "start-up reconcile");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Latency from the moment the cancellation is committed (the CLI returned); requests
    // counted from before it ran (serve may act before the CLI has exited).
    let before = Instant::now();
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    let cancelled = Instant::now();
    let mut first = None;
    loop {
        let (gone, deletes) = {
            let k = state.lock().unwrap();
            (
                !membership(&k)
                    .values()
                    .any(|v| v.iter().any(|e| e == "ada@example.com")),
                k.log
                    .iter()
                    .filter(|(t, m, _)| m == "DELETE" && *t >= before)
                    .count(),
            )
        };
        if deletes >= 1 && first.is_none() {
            first = Some(cancelled.elapsed());
        }
        if gone {
            assert_eq!(deletes, 2, "both of Ada's grants");
            break;
        }
        assert!(
            first.is_some() || cancelled.elapsed() < Duration::from_secs(1),
            "no revocation seen by Kisi within a second"
        );
        assert!(
            cancelled.elapsed() < Duration::from_secs(3),
            "revocation incomplete after 3 s (Kisi's rate limit is 5 requests/s)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = first.unwrap_or_else(|| cancelled.elapsed());
    eprintln!(
        "cancel → first revocation at Kisi in {first:?}, all in {:?}",
        cancelled.elapsed()
    );
    assert!(
        first < Duration::from_secs(1),
        "first revocation in {first:?}"
    );
    drop(server);
}

/// With `serve` running, Ada's start-up grants appear, then her cancellation removes the
/// first of her Frontdesk-owned grants within a second and all of them within three (the
/// start-up reconcile is still running and shares the rate limit).
async fn serve_revokes_ada_within_a_second(env: &Env, ada_grants: impl Fn() -> usize, what: &str) {
    let server = env.serve("127.0.0.1:0");
    server
        .wait_for(&["following changes"], Duration::from_secs(30))
        .expect("serve is up");
    let t = Instant::now();
    while ada_grants() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: start-up reconcile"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    let cancelled = Instant::now();
    let mut first = None;
    loop {
        let left = ada_grants();
        if left < 2 && first.is_none() {
            first = Some(cancelled.elapsed());
        }
        if left == 0 {
            break;
        }
        assert!(
            first.is_some() || cancelled.elapsed() < Duration::from_secs(1),
            "{what}: no grant of Ada's removed within a second of her cancellation"
        );
        assert!(
            cancelled.elapsed() < Duration::from_secs(3),
            "{what}: Ada still has door grants 3 s after her cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "{what}: cancel → first grant removed in {:?}, all in {:?}",
        first.unwrap_or_default(),
        cancelled.elapsed()
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn unifi_access_and_salto_ks_revoke_within_a_second_under_serve() {
    use frontdesk_bench::fake_salto::{self, Salto, SITE};
    use frontdesk_bench::fake_unifi::{self, Unifi};
    let unifi: fake_unifi::Shared = Arc::new(Mutex::new(Unifi::default()));
    let url = fake_unifi::start(unifi.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup_backend(&env, "unifi-access", &url, "test-token");
    serve_revokes_ada_within_a_second(
        &env,
        || {
            unifi
                .lock()
                .unwrap()
                .policies_of("ada@example.com")
                .iter()
                .filter(|p| p.starts_with("Frontdesk · "))
                .count()
        },
        "UniFi Access",
    )
    .await;

    let salto: fake_salto::Shared = Arc::new(Mutex::new(Salto::default()));
    let base = fake_salto::start(salto.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    let secret = format!(
        "client_id = test-client\nclient_secret = test-secret\ntoken_url = {base}/connect/token"
    );
    setup_backend(&env, "salto-ks", &format!("{base}{SITE}"), &secret);
    serve_revokes_ada_within_a_second(
        &env,
        || {
            salto
                .lock()
                .unwrap()
                .membership()
                .values()
                .filter(|v| v.iter().any(|e| e == "ada@example.com"))
                .count()
        },
        "Salto KS",
    )
    .await;
    let _ = salto.lock().unwrap().log.len();
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_receives_signed_entitlements() {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    const SECRET: &str = "a-webhook-secret-of-some-length";
    let secret = SECRET;
    let app =
        Router::new()
            .route(
                "/doors",
                post(
                    |State(got): State<Arc<Mutex<Vec<Value>>>>,
                     headers: HeaderMap,
                     body: String| async move {
                        let sig = headers["frontdesk-signature"].to_str().unwrap();
                        let (t, v1) = sig.split_once(",v1=").unwrap();
                        let t: i64 = t.trim_start_matches("t=").parse().unwrap();
                        let want =
                            frontdesk_sync::webhook::Webhook::sign(SECRET, t, body.as_bytes());
                        if want != v1 {
                            return StatusCode::UNAUTHORIZED;
                        }
                        got.lock()
                            .unwrap()
                            .push(serde_json::from_str(&body).unwrap());
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(got.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Doors", "--timezone", "Europe/Berlin"])
        .ok();
    env.run(&[
        "member",
        "add",
        "--name",
        "Eve",
        "--email",
        "eve@example.com",
        "--plan",
        "flex",
    ])
    .ok();
    let f = env.dir.path().join("hook.secret");
    std::fs::write(&f, secret).unwrap();
    env.run(&[
        "door",
        "add",
        "--name",
        "hook",
        "--kind",
        "webhook",
        "--url",
        &format!("http://{addr}/doors"),
        "--secret-file",
        f.to_str().unwrap(),
    ])
    .ok();
    env.run(&[
        "door",
        "map",
        "--backend",
        "hook",
        "--plan",
        "flex",
        "--group",
        "Studio",
        "--window",
        "mon-fri 20:00-02:00",
    ])
    .ok();
    env.run(&["sync", "run"]).ok();
    env.run(&["sync", "run"]).ok();
    {
        let docs = got.lock().unwrap();
        assert_eq!(docs.len(), 1, "sent once: the second run found nothing new");
        let d = &docs[0];
        assert_eq!(d["email"], "eve@example.com");
        assert_eq!(d["groups"][0]["group"], "Studio");
        // A window over midnight arrives as two same-day intervals.
        let weekly = d["groups"][0]["weekly"].as_array().unwrap();
        assert!(weekly.contains(&json!({"day": "mon", "from": "20:00", "to": "24:00"})));
        assert!(weekly.contains(&json!({"day": "tue", "from": "00:00", "to": "02:00"})));
    }
    env.run(&["member", "suspend", "eve@example.com"]).ok();
    env.run(&["sync", "run"]).ok();
    let docs = got.lock().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["status"], "suspended");
    assert_eq!(docs[1]["groups"], json!([]), "no access: revoke everything");
}

#[tokio::test(flavor = "multi_thread")]
async fn unifi_access_merges_policy_sets_and_revokes_under_faults() {
    use frontdesk_bench::fake_unifi::{self, Unifi};
    let state: fake_unifi::Shared = Arc::new(Mutex::new(Unifi::default()));
    {
        // The landlord's policy, set by hand, on a user who is also Ada (no employee number
        // yet: linked by email once).
        let mut k = state.lock().unwrap();
        k.policies
            .push(json!({"id": "landlord", "name": "Landlord", "resources": []}));
        k.users.push(json!({"id": "ada-uid", "first_name": "Ada", "last_name": "L", "user_email": "ada@example.com", "employee_number": "", "access_policies": [{"id": "landlord"}]}));
        k.page_cap = 1;
    }
    let url = fake_unifi::start(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup_backend(&env, "unifi-access", &url, "test-token");
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    {
        let k = state.lock().unwrap();
        assert_eq!(
            k.policies_of("ada@example.com"),
            [AFTER, STUDIO, "Landlord"]
        );
        assert_eq!(k.policies_of("bob@example.com"), [STUDIO]);
        assert!(k.policies_of("cid@example.com").is_empty());
        assert_eq!(
            k.users
                .iter()
                .filter(|u| u["user_email"] == "ada@example.com")
                .count(),
            1
        );
        let ada = k
            .users
            .iter()
            .find(|u| u["user_email"] == "ada@example.com")
            .unwrap();
        assert!(
            ada["employee_number"].as_str().unwrap().len() > 8,
            "linked: stable id stored"
        );
        // The opening-hours schedule as the site's hours; always as whole days.
        let studio = k.schedules.iter().find(|s| s["name"] == STUDIO).unwrap();
        assert_eq!(
            studio["week_schedule"]["monday"],
            json!([{"start_time": "08:00:00", "end_time": "19:00:00"}])
        );
        assert_eq!(studio["week_schedule"]["sunday"], json!([]));
        let after = k.schedules.iter().find(|s| s["name"] == AFTER).unwrap();
        assert_eq!(
            after["week_schedule"]["sunday"],
            json!([{"start_time": "00:00:00", "end_time": "23:59:59"}])
        );
    }
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(
        (r[0]["changed"].as_u64(), r[0]["writes"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    state.lock().unwrap().faults = statuses(&[500, 429, 500]);
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    let k = state.lock().unwrap();
    assert_eq!(
        k.policies_of("ada@example.com"),
        ["Landlord"],
        "the landlord's policy stays"
    );
    assert_eq!(k.policies_of("bob@example.com"), [STUDIO]);
    assert_eq!(k.policies.len(), 3, "no policy made twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn salto_ks_mirrors_access_groups_with_oauth2_under_faults() {
    use frontdesk_bench::fake_salto::{self, Salto, SITE};
    let state: fake_salto::Shared = Arc::new(Mutex::new(Salto::default()));
    {
        // The landlord's access group, set up by hand, with Ada in it (already a Salto KS
        // user: linked by email once).
        let mut k = state.lock().unwrap();
        k.users.push(json!({"id": "ada-uid", "first_name": "Ada", "last_name": "L", "email": "ada@example.com"}));
        k.groups.push(json!({"id": "landlord", "customer_reference": "Landlord", "users": ["ada-uid"], "time_schedules": [{"id": "t0", "start_time": "00:00:00", "end_time": "23:59:59", "monday": true}]}));
        k.page_cap = 1;
        // Short-lived tokens: the client renews them during the run.
        k.token_ttl = Some(Duration::from_secs(1));
    }
    let base = fake_salto::start(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    let secret = format!(
        "client_id = test-client\nclient_secret = test-secret\ntoken_url = {base}/connect/token"
    );
    setup_backend(&env, "salto-ks", &format!("{base}{SITE}"), &secret);
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    {
        let k = state.lock().unwrap();
        let m = k.membership();
        assert_eq!(m[STUDIO], ["ada@example.com", "bob@example.com"]);
        assert_eq!(m[AFTER], ["ada@example.com"]);
        assert_eq!(
            m["Landlord"],
            ["ada@example.com"],
            "foreign group untouched"
        );
        assert_eq!(k.users.len(), 2, "Ada linked by email; Bob made; no guest");
        let schedules = |name: &str| {
            k.groups
                .iter()
                .find(|g| g["customer_reference"] == name)
                .unwrap()["time_schedules"]
                .as_array()
                .unwrap()
                .clone()
        };
        let studio = schedules(STUDIO);
        assert!(
            studio.iter().any(|t| t["start_time"] == "08:00:00"
                && t["end_time"] == "19:00:00"
                && t["monday"] == true
                && t["sunday"] == false),
            "{studio:?}"
        );
        let after = schedules(AFTER);
        assert_eq!(after.len(), 1, "{after:?}");
        assert_eq!(
            (
                &after[0]["start_time"],
                &after[0]["end_time"],
                &after[0]["sunday"]
            ),
            (&json!("00:00:00"), &json!("23:59:59"), &json!(true))
        );
        assert!(k.tokens_issued >= 2, "the token was renewed during the run");
    }
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(
        (r[0]["changed"].as_u64(), r[0]["writes"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    // Cancel under faults: a reset connection, a server error, a rate limit, and the
    // removal's answer lost.
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    {
        let mut k = state.lock().unwrap();
        k.faults = vec![Fault::Reset, Fault::Status(500), Fault::Status(429)];
    }
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    {
        let k = state.lock().unwrap();
        let m = k.membership();
        assert_eq!(m[STUDIO], ["bob@example.com"]);
        assert!(!m.contains_key(AFTER));
        assert_eq!(
            m["Landlord"],
            ["ada@example.com"],
            "the landlord's group stays"
        );
    }
    // A group whose schedules were lost (a run stopped between making it and scheduling
    // it): finished before Bob is granted it.
    {
        let mut k = state.lock().unwrap();
        let g = k
            .groups
            .iter_mut()
            .find(|g| g["customer_reference"] == AFTER)
            .unwrap();
        g["time_schedules"] = json!([]);
    }
    env.run(&["member", "set-plan", "bob@example.com", "full-time"])
        .ok();
    let r = env.run(&["--json", "sync", "run"]).ok().json();
    assert_eq!(r[0]["failed"], 0, "{r}");
    let k = state.lock().unwrap();
    assert_eq!(k.membership()[AFTER], ["bob@example.com"]);
    let after = k
        .groups
        .iter()
        .find(|g| g["customer_reference"] == AFTER)
        .unwrap();
    assert_eq!(after["time_schedules"].as_array().unwrap().len(), 1);
    assert_eq!(k.groups.len(), 3, "no access group made twice");
}

/// `serve` killed (SIGKILL) in the middle of its first full reconcile, then started again:
/// the second one converges with no duplicate user, group or grant.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_reconcile_converges_after_restart() {
    let state: Shared = Arc::new(Mutex::new(Kisi::default()));
    state.lock().unwrap().next = 1000;
    let url = fake_kisi(state.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup(&env, &url);
    for i in 0..16 {
        let plan = ["full-time", "flex"][i % 2];
        env.run(&[
            "member",
            "add",
            "--name",
            &format!("M {i}"),
            "--email",
            &format!("m{i}@example.com"),
            "--plan",
            plan,
        ])
        .ok();
    }
    // 9 full-time and 9 flex members with doors: 45 writes at 4.5 requests/s, ~10 s.
    let server = env.serve("127.0.0.1:0");
    let t = Instant::now();
    while state.lock().unwrap().writes() < 12 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the first reconcile started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    let at_crash = state.lock().unwrap().writes();
    assert!(at_crash < 45, "killed mid-way ({at_crash} writes)");
    let _server = env.serve("127.0.0.1:0");
    let done = |k: &Kisi| {
        let m = membership(k);
        m.get(STUDIO).map(Vec::len) == Some(18) && m.get(AFTER).map(Vec::len) == Some(9)
    };
    let t = Instant::now();
    while !done(&state.lock().unwrap()) {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "converged after restart: {:?}",
            membership(&state.lock().unwrap())
                .iter()
                .map(|(g, v)| (g.clone(), v.len()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let k = state.lock().unwrap();
    let mut emails: Vec<&str> = k
        .users
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    let n = emails.len();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), n, "no user created twice");
    assert_eq!(k.groups.len(), 2, "no group created twice");
    let mut pairs: Vec<String> = k
        .assignments
        .iter()
        .map(|a| format!("{}-{}", a["user_id"], a["group_id"]))
        .collect();
    let n = pairs.len();
    pairs.sort();
    pairs.dedup();
    assert_eq!((pairs.len(), n), (27, 27), "no grant twice");
}

/// UniFi Access and Salto KS: a user create whose answer is lost (the system made the user)
/// is not sent again; the member fails this round, and the next run finds the user by email
/// instead of making a second one.
#[tokio::test(flavor = "multi_thread")]
async fn unifi_and_salto_lost_user_creates_are_not_repeated() {
    use frontdesk_bench::fake_salto::{self, Salto, SITE};
    use frontdesk_bench::fake_unifi::{self, Unifi};
    let unifi: fake_unifi::Shared = Arc::new(Mutex::new(Unifi::default()));
    unifi.lock().unwrap().aimed = vec![("POST /api/v1/developer/users".into(), Fault::LostAnswer)];
    let url = fake_unifi::start(unifi.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup_backend(&env, "unifi-access", &url, "test-token");
    let r = env.run(&["--json", "sync", "run"]).json();
    assert_eq!(r[0]["failed"], 1, "{r}");
    for email in ["ada@example.com", "bob@example.com"] {
        env.run(&["sync", "run", "--member", email]).ok();
    }
    {
        let k = unifi.lock().unwrap();
        assert_eq!(k.users.len(), 2, "no user made twice");
        assert_eq!(k.policies_of("bob@example.com"), [STUDIO]);
        assert_eq!(k.policies_of("ada@example.com"), [AFTER, STUDIO]);
    }

    let salto: fake_salto::Shared = Arc::new(Mutex::new(Salto::default()));
    salto.lock().unwrap().aimed = vec![(format!("POST {SITE}/users"), Fault::LostAnswer)];
    let base = fake_salto::start(salto.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    let secret = format!(
        "client_id = test-client\nclient_secret = test-secret\ntoken_url = {base}/connect/token"
    );
    setup_backend(&env, "salto-ks", &format!("{base}{SITE}"), &secret);
    let r = env.run(&["--json", "sync", "run"]).json();
    assert_eq!(r[0]["failed"], 1, "{r}");
    for email in ["ada@example.com", "bob@example.com"] {
        env.run(&["sync", "run", "--member", email]).ok();
    }
    let k = salto.lock().unwrap();
    assert_eq!(k.users.len(), 2, "no user made twice");
    let m = k.membership();
    assert_eq!(m[STUDIO], ["ada@example.com", "bob@example.com"]);
    assert_eq!(m[AFTER], ["ada@example.com"]);
}

/// The door CLI around events and removal: an events secret shown once with the URL to give
/// the door system; `door events`; `door remove` refused while plans are mapped, `door unmap`.
#[tokio::test(flavor = "multi_thread")]
async fn door_cli_events_secret_unmap_and_remove() {
    let env = Env::new(Db::Sqlite).await.unwrap();
    setup(&env, "http://127.0.0.1:9");
    let s = env
        .run(&["--json", "door", "events-secret", "--backend", "kisi"])
        .ok()
        .json();
    assert_eq!(s["url"], "http://127.0.0.1:8080/api/v1/webhooks/doors/kisi");
    assert!(s["secret"].as_str().unwrap().len() >= 32, "{s}");
    let e = env
        .run(&["--json", "door", "events", "--since", "1h"])
        .ok()
        .json();
    assert_eq!(e, json!([]));
    let r = env.run(&["door", "remove", "kisi"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("unmap"), "{}", r.stderr);
    for (plan, group) in [
        ("full-time", "Studio"),
        ("full-time", "After-hours door"),
        ("flex", "Studio"),
    ] {
        env.run(&[
            "door",
            "unmap",
            "--backend",
            "kisi",
            "--plan",
            plan,
            "--group",
            group,
        ])
        .ok();
    }
    env.run(&["door", "remove", "kisi"]).ok();
    let l = env.run(&["--json", "door", "list"]).ok().json();
    assert_eq!(l, json!([]));
}
