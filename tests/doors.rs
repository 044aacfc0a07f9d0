//! Door sync against a fake Kisi (the documented endpoints Frontdesk uses, in process, on
//! loopback) with fault injection (429 with Retry-After, 500, partial pages), and against a
//! webhook receiver that checks the signature. The CLI's `sync run` and a running `serve`
//! (member cancel → revocation seen by the fake within a second).

mod common;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use common::{Db, Env};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Kisi {
    users: Vec<Value>,
    groups: Vec<Value>,
    assignments: Vec<Value>,
    next: i64,
    /// Statuses to answer the next requests with (429 carries Retry-After: 1).
    faults: Vec<u16>,
    /// At most this many items per page, whatever `limit` asks (partial pages).
    page_cap: usize,
    /// (when, method, path) of every request.
    log: Vec<(Instant, String, String)>,
}

type Shared = Arc<Mutex<Kisi>>;

impl Kisi {
    fn id(&mut self) -> i64 {
        self.next += 1;
        self.next
    }
    fn writes(&self) -> usize {
        self.log.iter().filter(|(_, m, _)| m != "GET").count()
    }
}

fn page(k: &Kisi, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(10);
    let limit = if k.page_cap > 0 {
        limit.min(k.page_cap)
    } else {
        limit
    };
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let last = (offset + slice.len()).saturating_sub(1);
    (
        [("x-collection-range", format!("{offset}-{last}/{total}"))],
        Json(Value::Array(slice)),
    )
        .into_response()
}

/// Auth, request log and injected faults, before every handler.
fn gate(k: &mut Kisi, headers: &HeaderMap, method: &str, path: &str) -> Option<Response> {
    k.log.push((Instant::now(), method.into(), path.into()));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("KISI-LOGIN test-key") {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    if !k.faults.is_empty() {
        let status = k.faults.remove(0);
        let mut r = (StatusCode::from_u16(status).unwrap(), "injected").into_response();
        if status == 429 {
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
        }
        return Some(r);
    }
    None
}

async fn users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "GET", "/users") {
        return r;
    }
    let items: Vec<Value> = k
        .users
        .iter()
        .filter(|u| {
            q.get("query")
                .is_none_or(|t| u["email"].as_str().unwrap_or("").contains(t.as_str()))
        })
        .cloned()
        .collect();
    page(&k, items, &q)
}

async fn user_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "POST", "/users") {
        return r;
    }
    let id = k.id();
    let u = json!({"id": id, "email": b["user"]["email"], "name": b["user"]["name"]});
    k.users.push(u.clone());
    Json(u).into_response()
}

async fn groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "GET", "/groups") {
        return r;
    }
    let items = k.groups.clone();
    page(&k, items, &q)
}

async fn group_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "POST", "/groups") {
        return r;
    }
    let id = k.id();
    let g = json!({"id": id, "name": b["group"]["name"], "description": b["group"]["description"]});
    k.groups.push(g.clone());
    Json(g).into_response()
}

async fn assignments(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "GET", "/role_assignments") {
        return r;
    }
    let by = |field: &str, a: &Value| {
        q.get(field)
            .is_none_or(|v| a[field].to_string().trim_matches('"') == v)
    };
    let items: Vec<Value> = k
        .assignments
        .iter()
        .filter(|a| by("group_id", a) && by("user_id", a))
        .cloned()
        .collect();
    page(&k, items, &q)
}

async fn assignment_create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&mut k, &headers, "POST", "/role_assignments") {
        return r;
    }
    let id = k.id();
    let ra = &b["role_assignment"];
    assert_eq!(ra["role_id"], "group_basic");
    let a = json!({"id": id, "user_id": ra["user_id"], "group_id": ra["group_id"], "role_id": "group_basic", "valid_until": ra["valid_until"]});
    k.assignments.push(a.clone());
    Json(a).into_response()
}

async fn assignment_delete(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(
        &mut k,
        &headers,
        "DELETE",
        &format!("/role_assignments/{id}"),
    ) {
        return r;
    }
    let before = k.assignments.len();
    k.assignments.retain(|a| a["id"] != id);
    if k.assignments.len() == before {
        return StatusCode::NOT_FOUND.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn fake_kisi(state: Shared) -> String {
    let app = Router::new()
        .route("/users", get(users).post(user_create))
        .route("/groups", get(groups).post(group_create))
        .route(
            "/role_assignments",
            get(assignments).post(assignment_create),
        )
        .route("/role_assignments/{id}", delete(assignment_delete))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// Group name → member emails in it.
fn membership(k: &Kisi) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for a in &k.assignments {
        let g = k.groups.iter().find(|g| g["id"] == a["group_id"]).unwrap();
        let u = k.users.iter().find(|u| u["id"] == a["user_id"]).unwrap();
        out.entry(g["name"].as_str().unwrap().into())
            .or_default()
            .push(u["email"].as_str().unwrap().into());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn setup(env: &Env, url: &str) {
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
    let key = env.dir.path().join("kisi.key");
    std::fs::write(&key, "test-key\n").unwrap();
    env.run(&[
        "door",
        "add",
        "--name",
        "kisi",
        "--kind",
        "kisi",
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
            "kisi",
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
    state.lock().unwrap().faults = vec![429, 500, 429, 500];
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
        state.lock().unwrap().faults = vec![400; 50];
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
    while !membership(&state.lock().unwrap()).contains_key(AFTER) {
        assert!(t.elapsed() < Duration::from_secs(10), "start-up reconcile");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled = Instant::now();
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    loop {
        let (gone, deletes) = {
            let k = state.lock().unwrap();
            (
                !membership(&k).contains_key(AFTER),
                k.log
                    .iter()
                    .filter(|(t, m, _)| m == "DELETE" && *t >= cancelled)
                    .count(),
            )
        };
        if gone {
            assert_eq!(deletes, 2, "both of Ada's grants");
            break;
        }
        assert!(
            cancelled.elapsed() < Duration::from_secs(1),
            "revocation not seen by Kisi within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("cancel → revoked at Kisi in {:?}", cancelled.elapsed());
    drop(server);
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
