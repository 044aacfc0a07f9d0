//! A fake Omada controller (v5.0.15+ external-portal API) for the radius-only portal tests:
//! `/api/info` (controller id), hotspot operator login (`TPOMADA_SESSIONID` cookie + token),
//! `extPortal/auth` checked for the `Csrf-Token` header, the cookie and the documented fields,
//! `…/clients/{mac}/unauth`; an expired session answers `errorCode` -1200 (the code Frontdesk
//! treats as "log in again"; the real code is not in TP-Link's public guide). Fault injection
//! through the shared layer.

use crate::faults::{inject, Fault, Faulty};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const ID: &str = "c0ffee0123456789";
pub const OPERATOR: (&str, &str) = ("hotspot-op", "operator-password");

#[derive(Default)]
pub struct Omada {
    /// Valid (session cookie, csrf token) pairs.
    pub sessions: Vec<(String, String)>,
    pub logins: usize,
    /// Accepted authorizations, as sent.
    pub auths: Vec<Value>,
    /// Unauthorized (site, mac).
    pub unauths: Vec<(String, String)>,
    pub faults: Vec<Fault>,
    pub aimed: Vec<(String, Fault)>,
    pub next: u64,
}

pub type Shared = Arc<Mutex<Omada>>;

impl Faulty for Omada {
    fn faults(&mut self) -> &mut Vec<Fault> {
        &mut self.faults
    }
    fn aimed(&mut self) -> &mut Vec<(String, Fault)> {
        &mut self.aimed
    }
}

fn answer(code: i64, msg: &str, result: Value) -> Response {
    Json(json!({"errorCode": code, "msg": msg, "result": result})).into_response()
}

async fn info() -> Response {
    answer(
        0,
        "Success.",
        json!({"omadacId": ID, "controllerVer": "5.15.0", "apiVer": "3"}),
    )
}

async fn login(State(s): State<Shared>, Path(id): Path<String>, Json(b): Json<Value>) -> Response {
    if id != ID {
        return answer(-1001, "Invalid request parameters.", Value::Null);
    }
    if b["name"] != OPERATOR.0 || b["password"] != OPERATOR.1 {
        return answer(-30109, "Invalid username or password.", Value::Null);
    }
    let mut k = s.lock().unwrap();
    k.next += 1;
    k.logins += 1;
    let (cookie, token) = (format!("sess{}", k.next), format!("tok{}", k.next));
    k.sessions.push((cookie.clone(), token.clone()));
    let mut r = answer(0, "Hotspot log in successfully.", json!({"token": token}));
    r.headers_mut().append(
        "set-cookie",
        format!("TPOMADA_SESSIONID={cookie}; Path=/; HttpOnly")
            .parse()
            .unwrap(),
    );
    r
}

fn signed_in(k: &Omada, h: &HeaderMap) -> bool {
    let cookie = h.get("cookie").and_then(|v| v.to_str().ok()).and_then(|c| {
        c.split(';')
            .find_map(|p| p.trim().strip_prefix("TPOMADA_SESSIONID="))
    });
    let token = h.get("csrf-token").and_then(|v| v.to_str().ok());
    k.sessions
        .iter()
        .any(|(c, t)| Some(c.as_str()) == cookie && Some(t.as_str()) == token)
}

async fn auth(State(s): State<Shared>, headers: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut k = s.lock().unwrap();
    if !signed_in(&k, &headers) {
        return answer(-1200, "Session timed out.", Value::Null);
    }
    let mac_ok = |v: &Value| {
        v.as_str()
            .is_some_and(|m| m.len() == 17 && m.contains('-') && m == m.to_ascii_uppercase())
    };
    let ap = mac_ok(&b["apMac"]) && b["ssidName"].is_string() && b["radioId"].is_u64();
    let gw = mac_ok(&b["gatewayMac"]) && b["vid"].is_u64();
    if !mac_ok(&b["clientMac"])
        || !(ap || gw)
        || !b["site"].is_string()
        || b["authType"] != 4
        || b["time"].as_i64().is_none_or(|t| t < 60_000_000)
    {
        return answer(-41501, "Failed to authenticate.", Value::Null);
    }
    k.auths.push(b);
    answer(0, "Success.", Value::Null)
}

async fn unauth(
    State(s): State<Shared>,
    Path((_, site, mac)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut k = s.lock().unwrap();
    if !signed_in(&k, &headers) {
        return answer(-1200, "Session timed out.", Value::Null);
    }
    k.unauths.push((site, mac));
    answer(0, "Success.", Value::Null)
}

pub async fn start(state: Shared) -> String {
    let app = Router::new()
        .route("/api/info", get(info))
        .route("/{id}/api/v2/hotspot/login", post(login))
        .route("/{id}/api/v2/hotspot/extPortal/auth", post(auth))
        .route(
            "/{id}/api/v2/hotspot/sites/{site}/clients/{mac}/unauth",
            post(unauth),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject::<Omada>,
        ))
        .with_state(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}
