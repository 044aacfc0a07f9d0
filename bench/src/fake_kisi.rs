//! A fake Kisi for tests and the door-sync benchmark: the documented endpoints Frontdesk
//! uses (users, groups, role assignments; `offset`/`limit` paging with `X-Collection-Range`;
//! `Authorization: KISI-LOGIN test-key`), on loopback, with fault injection (statuses to
//! answer next, partial pages) and an optional rate limit answered with 429 + Retry-After.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::faults::{inject, Fault, Faulty};

#[derive(Default)]
pub struct Kisi {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    pub assignments: Vec<Value>,
    pub next: i64,
    /// Faults for the next requests (statuses, slow answers, broken connections).
    pub faults: Vec<Fault>,
    /// Faults for the next request of a kind: (`"POST /users"`, fault).
    pub aimed: Vec<(String, Fault)>,
    /// At most this many items per page, whatever `limit` asks (partial pages).
    pub page_cap: usize,
    /// (when, method, path) of every request.
    pub log: Vec<(Instant, String, String)>,
    /// Requests per second allowed (0: unlimited); beyond, 429 with Retry-After: 1.
    pub rate: f64,
    bucket: (f64, Option<Instant>),
}

pub type Shared = Arc<Mutex<Kisi>>;

impl Kisi {
    fn id(&mut self) -> i64 {
        self.next += 1;
        self.next
    }
    pub fn writes(&self) -> usize {
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
    let now = Instant::now();
    k.log.push((now, method.into(), path.into()));
    if k.rate > 0.0 {
        let (tokens, last) = k.bucket;
        let refill = last.map_or(k.rate, |l| now.duration_since(l).as_secs_f64() * k.rate);
        let tokens = (tokens + refill).min(k.rate);
        if tokens < 1.0 {
            k.bucket = (tokens, Some(now));
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
            return Some(r);
        }
        k.bucket = (tokens - 1.0, Some(now));
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("KISI-LOGIN test-key") {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    None
}

impl Faulty for Kisi {
    fn faults(&mut self) -> &mut Vec<Fault> {
        &mut self.faults
    }
    fn aimed(&mut self) -> &mut Vec<(String, Fault)> {
        &mut self.aimed
    }
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

/// Serves the fake on an ephemeral loopback port; its base URL.
pub async fn start(state: Shared) -> String {
    let app = Router::new()
        .route("/users", get(users).post(user_create))
        .route("/groups", get(groups).post(group_create))
        .route(
            "/role_assignments",
            get(assignments).post(assignment_create),
        )
        .route("/role_assignments/{id}", delete(assignment_delete))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject::<Kisi>,
        ))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// Group name → member emails in it.
pub fn membership(k: &Kisi) -> HashMap<String, Vec<String>> {
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
