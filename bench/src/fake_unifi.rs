//! A fake UniFi Access developer API for tests: users (with `employee_number` and their
//! access policies), access policies, schedules, `PUT /users/{id}/access_policies` replacing
//! the whole set; answers wrapped in `{"code": "SUCCESS", "data": …}`, lists paged by
//! `page_num`/`page_size` with `pagination.total`; `Authorization: Bearer test-token`;
//! statuses to answer next for fault injection.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::faults::{inject, Fault, Faulty};

#[derive(Default)]
pub struct Unifi {
    pub users: Vec<Value>,
    pub policies: Vec<Value>,
    pub schedules: Vec<Value>,
    pub faults: Vec<Fault>,
    /// Faults for the next request of a kind: (`"POST /users"`, fault).
    pub aimed: Vec<(String, Fault)>,
    pub page_cap: usize,
    pub next: u64,
}

pub type Shared = Arc<Mutex<Unifi>>;

impl Unifi {
    fn id(&mut self) -> String {
        self.next += 1;
        format!("u-{:04}", self.next)
    }

    /// Policy names of the user with this email.
    pub fn policies_of(&self, email: &str) -> Vec<String> {
        let Some(u) = self.users.iter().find(|u| u["user_email"] == email) else {
            return vec![];
        };
        let mut v: Vec<String> = u["access_policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                self.policies
                    .iter()
                    .find(|q| q["id"] == p["id"])
                    .and_then(|q| q["name"].as_str().map(String::from))
            })
            .collect();
        v.sort();
        v
    }
}

fn ok(data: Value) -> Response {
    Json(json!({"code": "SUCCESS", "msg": "success", "data": data})).into_response()
}

fn gate(headers: &HeaderMap) -> Option<Response> {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer test-token") {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    None
}

impl Faulty for Unifi {
    fn faults(&mut self) -> &mut Vec<Fault> {
        &mut self.faults
    }
    fn aimed(&mut self) -> &mut Vec<(String, Fault)> {
        &mut self.aimed
    }
}

fn page(k: &Unifi, items: &[Value], q: &HashMap<String, String>) -> Response {
    let num: usize = q
        .get("page_num")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut size: usize = q
        .get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    if k.page_cap > 0 {
        size = size.min(k.page_cap);
    }
    // A capped page still reports the total: the client must ask for the next one by count.
    let data: Vec<Value> = items
        .iter()
        .skip((num - 1) * size)
        .take(size)
        .cloned()
        .collect();
    Json(json!({"code": "SUCCESS", "data": data, "pagination": {"page_num": num, "page_size": size, "total": items.len()}}))
        .into_response()
}

type Q = Query<HashMap<String, String>>;

async fn users(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    let k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let items = k.users.clone();
    page(&k, &items, &q)
}

async fn user_create(State(s): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let id = k.id();
    let u = json!({"id": id, "first_name": b["first_name"], "last_name": b["last_name"], "user_email": b["user_email"], "employee_number": b["employee_number"], "access_policies": []});
    k.users.push(u.clone());
    ok(u)
}

async fn user_get(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    let k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    match k.users.iter().find(|u| u["id"] == id.as_str()) {
        Some(u) => ok(u.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn user_update(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    match k.users.iter_mut().find(|u| u["id"] == id.as_str()) {
        Some(u) => {
            if let Some(n) = b.get("employee_number") {
                u["employee_number"] = n.clone();
            }
            ok(u.clone())
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn user_policies(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let ids: Vec<Value> = b["access_policy_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for i in &ids {
        if !k.policies.iter().any(|p| &p["id"] == i) {
            return (StatusCode::BAD_REQUEST, "unknown policy").into_response();
        }
    }
    match k.users.iter_mut().find(|u| u["id"] == id.as_str()) {
        Some(u) => {
            // Replaces the whole set (the documented behaviour that makes merging necessary).
            u["access_policies"] =
                Value::Array(ids.into_iter().map(|i| json!({"id": i})).collect());
            ok(Value::Null)
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn policies(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    let k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let items = k.policies.clone();
    page(&k, &items, &q)
}

async fn policy_create(State(s): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let id = k.id();
    let p = json!({"id": id, "name": b["name"], "resources": b["resources"], "schedule_id": b["schedule_id"]});
    k.policies.push(p.clone());
    ok(p)
}

async fn schedules(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    let k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let items = k.schedules.clone();
    page(&k, &items, &q)
}

async fn schedule_create(State(s): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = gate(&h) {
        return r;
    }
    let id = k.id();
    let sc = json!({"id": id, "name": b["name"], "week_schedule": b["week_schedule"]});
    k.schedules.push(sc.clone());
    ok(sc)
}

/// Serves the fake on an ephemeral loopback port; its base URL.
pub async fn start(state: Shared) -> String {
    let api = "/api/v1/developer";
    let app = Router::new()
        .route(&format!("{api}/users"), get(users).post(user_create))
        .route(
            &format!("{api}/users/{{id}}"),
            get(user_get).put(user_update),
        )
        .route(
            &format!("{api}/users/{{id}}/access_policies"),
            put(user_policies),
        )
        .route(
            &format!("{api}/access_policies"),
            get(policies).post(policy_create),
        )
        .route(
            &format!("{api}/access_policies/schedules"),
            get(schedules).post(schedule_create),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject::<Unifi>,
        ))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}
