//! A fake UniFi Network controller for the radius-only portal tests: UniFi OS login
//! (`/api/auth/login` → `TOKEN` cookie + `X-CSRF-Token` header, API under `/proxy/network`) or
//! the classic controller (`/api/login` → `unifises` + `csrf_token` cookies, no
//! `/proxy/network`), `cmd/stamgr` (authorize-guest, unauthorize-guest, kick-sta) and
//! `stat/sta` per site, the `{"meta":{"rc":…},"data":[…]}` envelope, 401
//! `api.err.LoginRequired` for a missing or expired session, 403 for a write without the CSRF
//! token, and the shared fault layer (5xx, slow, reset).

use crate::faults::{inject, Fault, Faulty};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const USER: (&str, &str) = ("portal", "portal-password");

#[derive(Default)]
pub struct UniFiNetwork {
    /// Answer like a classic controller (no UniFi OS login, no `/proxy/network`).
    pub classic: bool,
    /// Sessions that are valid: (cookie value, csrf token).
    pub sessions: Vec<(String, String)>,
    pub logins: usize,
    /// Every command received: (site, body).
    pub commands: Vec<(String, Value)>,
    /// Connected clients per site: (site, mac).
    pub stations: Vec<(String, String)>,
    pub faults: Vec<Fault>,
    pub aimed: Vec<(String, Fault)>,
    pub next: u64,
}

pub type Shared = Arc<Mutex<UniFiNetwork>>;

impl Faulty for UniFiNetwork {
    fn faults(&mut self) -> &mut Vec<Fault> {
        &mut self.faults
    }
    fn aimed(&mut self) -> &mut Vec<(String, Fault)> {
        &mut self.aimed
    }
}

impl UniFiNetwork {
    /// Ends every session, as a controller restart or session timeout does.
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    /// The commands of one kind (`authorize-guest`, …) as (site, mac, minutes).
    pub fn sent(&self, cmd: &str) -> Vec<(String, String, Option<i64>)> {
        self.commands
            .iter()
            .filter(|(_, b)| b["cmd"] == cmd)
            .map(|(s, b)| {
                (
                    s.clone(),
                    b["mac"].as_str().unwrap_or_default().to_string(),
                    b["minutes"].as_i64(),
                )
            })
            .collect()
    }
}

fn envelope_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(json!({"meta": {"rc": "error", "msg": msg}, "data": []})),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    Json(json!({"meta": {"rc": "ok"}, "data": data})).into_response()
}

fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
        .next()
}

async fn login(s: &Shared, body: &Value, classic: bool) -> Response {
    let mut k = s.lock().unwrap();
    if k.classic != classic {
        return StatusCode::NOT_FOUND.into_response();
    }
    if body["username"] != USER.0 || body["password"] != USER.1 {
        return envelope_error(
            if classic {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            },
            "api.err.Invalid",
        );
    }
    k.next += 1;
    k.logins += 1;
    let (session, csrf) = (format!("s{}", k.next), format!("c{}", k.next));
    k.sessions.push((session.clone(), csrf.clone()));
    let mut r = ok(json!([]));
    let h = r.headers_mut();
    if classic {
        h.append(
            "set-cookie",
            format!("unifises={session}; Path=/; HttpOnly")
                .parse()
                .unwrap(),
        );
        h.append(
            "set-cookie",
            format!("csrf_token={csrf}; Path=/").parse().unwrap(),
        );
    } else {
        h.append(
            "set-cookie",
            format!("TOKEN={session}; Path=/; HttpOnly; Secure")
                .parse()
                .unwrap(),
        );
        h.insert("x-csrf-token", csrf.parse().unwrap());
    }
    r
}

async fn os_login(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    login(&s, &body, false).await
}

async fn classic_login(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    login(&s, &body, true).await
}

/// The controller's refusal when the request has no valid session (or, for a write, no
/// matching CSRF token).
fn refusal(k: &UniFiNetwork, h: &HeaderMap, write: bool) -> Option<Response> {
    let name = if k.classic { "unifises" } else { "TOKEN" };
    let login = || {
        Some(envelope_error(
            StatusCode::UNAUTHORIZED,
            "api.err.LoginRequired",
        ))
    };
    let Some(s) = cookie(h, name) else {
        return login();
    };
    let Some((_, csrf)) = k.sessions.iter().find(|(v, _)| *v == s) else {
        return login();
    };
    let sent = h.get("x-csrf-token").and_then(|v| v.to_str().ok());
    (write && sent != Some(csrf.as_str()))
        .then(|| envelope_error(StatusCode::FORBIDDEN, "api.err.InvalidCSRF"))
}

async fn stamgr(
    State(s): State<Shared>,
    Path(site): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut k = s.lock().unwrap();
    if let Some(r) = refusal(&k, &headers, true) {
        return r;
    }
    let mac = body["mac"].as_str().unwrap_or_default().to_string();
    if mac.len() != 17 || mac != mac.to_ascii_lowercase() {
        return envelope_error(StatusCode::BAD_REQUEST, "api.err.InvalidMac");
    }
    match body["cmd"].as_str() {
        Some("authorize-guest") => {
            if body["minutes"].as_i64().is_none_or(|m| m < 1) {
                return envelope_error(StatusCode::BAD_REQUEST, "api.err.InvalidMinutes");
            }
        }
        Some("unauthorize-guest") => {}
        Some("kick-sta") => {
            if !k.stations.iter().any(|(st, m)| *st == site && *m == mac) {
                k.commands.push((site, body));
                return envelope_error(StatusCode::BAD_REQUEST, "api.err.UnknownStation");
            }
            k.stations.retain(|(st, m)| !(*st == site && *m == mac));
        }
        _ => return envelope_error(StatusCode::BAD_REQUEST, "api.err.UnknownCommand"),
    }
    k.commands.push((site, body));
    ok(json!([]))
}

async fn stations(
    State(s): State<Shared>,
    Path(site): Path<String>,
    headers: HeaderMap,
) -> Response {
    let k = s.lock().unwrap();
    if let Some(r) = refusal(&k, &headers, false) {
        return r;
    }
    ok(k.stations
        .iter()
        .filter(|(st, _)| *st == site)
        .map(|(_, m)| json!({"mac": m, "is_guest": true}))
        .collect())
}

/// Serves the fake on loopback; the base URL to give `controller add --url`.
pub async fn start(state: Shared) -> String {
    let api = Router::new()
        .route("/api/s/{site}/cmd/stamgr", post(stamgr))
        .route("/api/s/{site}/stat/sta", get(stations));
    let app = Router::new()
        .route("/api/auth/login", post(os_login))
        .route("/api/login", post(classic_login))
        .nest("/proxy/network", api.clone())
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject::<UniFiNetwork>,
        ))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}
