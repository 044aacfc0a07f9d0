//! A fake Salto KS Connect API for tests: an identity server's token endpoint (client
//! credentials as Basic auth → a bearer token that expires), and a site's users, access
//! groups (`customer_reference`), their users and time schedules; OData `$top`/`$skip` and
//! `$filter=<field> eq '<value>'`; lists as `{"items": […]}` without a count. Fault injection
//! through the shared layer, partial pages by `page_cap`.

use crate::faults::{inject, Fault, Faulty};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SITE: &str = "/v1.1/sites/site-1";
pub const CLIENT: (&str, &str) = ("test-client", "test-secret");

#[derive(Default)]
pub struct Salto {
    pub users: Vec<Value>,
    /// Access groups: `{"id", "customer_reference", "users": [ids], "time_schedules": […]}`.
    pub groups: Vec<Value>,
    pub faults: Vec<Fault>,
    pub aimed: Vec<(String, Fault)>,
    pub page_cap: usize,
    /// Lifetime of the tokens handed out (default one hour).
    pub token_ttl: Option<Duration>,
    pub tokens: Vec<(String, Instant)>,
    pub tokens_issued: usize,
    /// When each API request (not the token endpoint) arrived.
    pub log: Vec<Instant>,
    pub next: u64,
}

pub type Shared = Arc<Mutex<Salto>>;

impl Faulty for Salto {
    fn faults(&mut self) -> &mut Vec<Fault> {
        &mut self.faults
    }
    fn aimed(&mut self) -> &mut Vec<(String, Fault)> {
        &mut self.aimed
    }
}

impl Salto {
    fn id(&mut self) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next)
    }

    /// Group name → member emails in it, sorted.
    pub fn membership(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for g in &self.groups {
            let mut emails: Vec<String> = g["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| self.users.iter().find(|u| &u["id"] == id))
                .filter_map(|u| u["email"].as_str().map(String::from))
                .collect();
            emails.sort();
            if !emails.is_empty() {
                out.insert(g["customer_reference"].as_str().unwrap().into(), emails);
            }
        }
        out
    }
}

fn authorized(k: &Salto, h: &HeaderMap) -> bool {
    let Some(token) = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    k.tokens
        .iter()
        .any(|(t, until)| t == token && Instant::now() < *until)
}

macro_rules! guard {
    ($s:expr, $h:expr) => {{
        #[allow(unused_mut)]
        let mut k = $s.lock().unwrap();
        k.log.push(Instant::now());
        if !authorized(&k, &$h) {
            return (StatusCode::UNAUTHORIZED, "token missing or expired").into_response();
        }
        k
    }};
}

/// `<field> eq '<value>'` of `$filter`.
fn filter(q: &HashMap<String, String>) -> Option<(String, String)> {
    let f = q.get("$filter")?;
    let (field, rest) = f.split_once(" eq ")?;
    let v = rest.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((field.trim().to_string(), v.replace("''", "'")))
}

fn page(k: &Salto, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let items: Vec<Value> = match filter(q) {
        Some((field, v)) => items
            .into_iter()
            .filter(|i| {
                i[&field]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&v))
            })
            .collect(),
        None => items,
    };
    let skip: usize = q.get("$skip").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut top: usize = q.get("$top").and_then(|v| v.parse().ok()).unwrap_or(50);
    if k.page_cap > 0 {
        top = top.min(k.page_cap);
    }
    let slice: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    Json(json!({ "items": slice })).into_response()
}

type Q = Query<HashMap<String, String>>;

async fn token(State(s): State<Shared>, h: HeaderMap, body: String) -> Response {
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1));
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Basic {basic}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if !body
        .split('&')
        .any(|p| p == "grant_type=client_credentials")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let mut k = s.lock().unwrap();
    k.tokens_issued += 1;
    let t = format!("tok-{}", k.tokens_issued);
    let ttl = k.token_ttl.unwrap_or(Duration::from_secs(3600));
    k.tokens.push((t.clone(), Instant::now() + ttl));
    Json(json!({"access_token": t, "token_type": "Bearer", "expires_in": ttl.as_secs()}))
        .into_response()
}

async fn users(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    let k = guard!(s, h);
    let items = k.users.clone();
    page(&k, items, &q)
}

async fn user_create(State(s): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = guard!(s, h);
    let id = k.id();
    let u = json!({"id": id, "first_name": b["first_name"], "last_name": b["last_name"], "email": b["email"]});
    k.users.push(u.clone());
    (StatusCode::CREATED, Json(u)).into_response()
}

async fn groups(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    let k = guard!(s, h);
    let items: Vec<Value> = k
        .groups
        .iter()
        .map(|g| json!({"id": g["id"], "customer_reference": g["customer_reference"]}))
        .collect();
    page(&k, items, &q)
}

async fn group_create(State(s): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = guard!(s, h);
    let id = k.id();
    k.groups.push(json!({"id": id, "customer_reference": b["customer_reference"], "users": [], "time_schedules": []}));
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

fn group_mut<'a>(k: &'a mut Salto, id: &str) -> Option<&'a mut Value> {
    k.groups.iter_mut().find(|g| g["id"] == id)
}

async fn group_users(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let k = guard!(s, h);
    let Some(g) = k.groups.iter().find(|g| g["id"] == id.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let items: Vec<Value> = g["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|uid| k.users.iter().find(|u| &u["id"] == uid).cloned())
        .collect();
    page(&k, items, &q)
}

async fn group_user_add(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    let mut k = guard!(s, h);
    let uid = b["user_id"].clone();
    if !k.users.iter().any(|u| u["id"] == uid) {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    }
    let Some(g) = group_mut(&mut k, &id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let list = g["users"].as_array_mut().unwrap();
    if list.contains(&uid) {
        return (StatusCode::CONFLICT, "already in the group").into_response();
    }
    list.push(uid);
    StatusCode::CREATED.into_response()
}

async fn group_user_remove(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((id, uid)): Path<(String, String)>,
) -> Response {
    let mut k = guard!(s, h);
    let Some(g) = group_mut(&mut k, &id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let list = g["users"].as_array_mut().unwrap();
    let before = list.len();
    list.retain(|u| u != uid.as_str());
    if list.len() == before {
        return StatusCode::NOT_FOUND.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn schedules(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let k = guard!(s, h);
    let Some(g) = k.groups.iter().find(|g| g["id"] == id.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let items = g["time_schedules"].as_array().cloned().unwrap_or_default();
    page(&k, items, &q)
}

async fn schedule_add(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    let mut k = guard!(s, h);
    let sid = k.id();
    let Some(g) = group_mut(&mut k, &id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut sc = b.clone();
    sc["id"] = json!(sid);
    g["time_schedules"].as_array_mut().unwrap().push(sc.clone());
    (StatusCode::CREATED, Json(sc)).into_response()
}

/// Serves the fake (identity server and API on one loopback port); its base URL. The site's
/// API is at `{base}{SITE}`, the token endpoint at `{base}/connect/token`.
pub async fn start(state: Shared) -> String {
    let app = Router::new()
        .route("/connect/token", post(token))
        .route(&format!("{SITE}/users"), get(users).post(user_create))
        .route(
            &format!("{SITE}/accessgroups"),
            get(groups).post(group_create),
        )
        .route(
            &format!("{SITE}/accessgroups/{{id}}/users"),
            get(group_users).post(group_user_add),
        )
        .route(
            &format!("{SITE}/accessgroups/{{id}}/users/{{uid}}"),
            delete(group_user_remove),
        )
        .route(
            &format!("{SITE}/accessgroups/{{id}}/time_schedules"),
            get(schedules).post(schedule_add),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject::<Salto>,
        ))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}
