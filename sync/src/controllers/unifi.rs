//! UniFi Network: guests authorized with `cmd/stamgr` (`authorize-guest` with `minutes`,
//! `unauthorize-guest`, `kick-sta`), connected clients from `stat/sta`.
//!
//! Three ways in, as UniFi offers them:
//! - UniFi OS consoles (UDM, UCG, Cloud Key Gen2+, UniFi OS Server): `POST /api/auth/login`
//!   sets a `TOKEN` cookie and answers an `X-CSRF-Token` header that every write repeats
//!   (renewed through `X-Updated-CSRF-Token`); the Network application lives under
//!   `/proxy/network`.
//! - The classic self-hosted controller: `POST /api/login` sets `unifises` and `csrf_token`
//!   cookies; writes carry `X-Csrf-Token` with the latter. Tried when `/api/auth/login` is
//!   not there (404/405).
//! - An API key (UniFi OS, no username): the `X-API-KEY` header, no login.
//!
//! Answers are `{"meta":{"rc":"ok"|"error","msg":…},"data":[…]}`; an expired session is a 401
//! or `api.err.LoginRequired`, after which Frontdesk logs in once more and repeats the call.
//! The site is always the one the redirect named: the default site answers 200 for another
//! site's client without doing anything (VENDORS.md).

use super::{cookies, http_client, minutes_until, Controller, ControllerError};
use crate::http::encode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk_core::store::controllers::ControllerRecord;
use frontdesk_core::MacAddr;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[derive(Clone)]
enum Auth {
    Password { username: String, password: String },
    ApiKey(String),
}

#[derive(Clone)]
struct Session {
    /// `Cookie` header value.
    cookie: String,
    csrf: Option<String>,
    /// `/proxy/network` on UniFi OS, empty on the classic controller.
    prefix: &'static str,
}

pub struct UniFi {
    name: String,
    base: String,
    auth: Auth,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl UniFi {
    pub fn new(c: &ControllerRecord) -> Result<UniFi, ControllerError> {
        let secret = c.secret.clone().ok_or_else(|| {
            ControllerError::Config(format!(
                "controller {:?} has no password or API key (--secret-file)",
                c.name
            ))
        })?;
        let auth = match c.username.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => Auth::Password {
                username: u.to_string(),
                password: secret,
            },
            None => Auth::ApiKey(secret),
        };
        let base = super::check_url(&c.name, &c.url)?;
        Ok(UniFi {
            name: c.name.clone(),
            base,
            auth,
            http: http_client(),
            session: tokio::sync::Mutex::new(None),
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ControllerError {
        ControllerError::Unreachable(format!("UniFi controller {:?}", self.name), e.to_string())
    }

    fn refused(&self, m: impl Into<String>) -> ControllerError {
        ControllerError::Refused(format!("UniFi controller {:?}", self.name), m.into())
    }

    async fn login(&self) -> Result<Session, ControllerError> {
        let (username, password) = match &self.auth {
            Auth::ApiKey(_) => {
                return Ok(Session {
                    cookie: String::new(),
                    csrf: None,
                    prefix: "/proxy/network",
                })
            }
            Auth::Password { username, password } => (username, password),
        };
        let body = json!({ "username": username, "password": password, "rememberMe": false });
        let os = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let (resp, prefix) = if matches!(
            os.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            let classic = self
                .http
                .post(format!("{}/api/login", self.base))
                .json(&body)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            (classic, "")
        } else {
            (os, "/proxy/network")
        };
        let status = resp.status();
        if status.is_server_error() {
            return Err(self.unreachable(format!("login answered HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ControllerError::Login(
                format!("UniFi controller {:?}", self.name),
                format!(
                    "HTTP {status}: check the username and password (a local account, not a UI.com login with 2FA)"
                ),
            ));
        }
        let cookies = cookies(resp.headers());
        let csrf = header(resp.headers(), "x-csrf-token").or_else(|| {
            cookies
                .iter()
                .find(|(n, _)| n == "csrf_token")
                .map(|(_, v)| v.clone())
        });
        if cookies.is_empty() {
            return Err(self.refused("login set no session cookie"));
        }
        tracing::debug!(controller = %self.name, unifi_os = !prefix.is_empty(), "UniFi: logged in");
        Ok(Session {
            cookie: cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
            csrf,
            prefix,
        })
    }

    /// One API call with the current session, logging in first or again (once) as needed.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ControllerError> {
        let mut guard = self.session.lock().await;
        for attempt in 0..2 {
            let session = match guard.as_ref() {
                Some(s) if attempt == 0 => s.clone(),
                _ => {
                    let s = self.login().await?;
                    *guard = Some(s.clone());
                    s
                }
            };
            let mut req = self.http.request(
                method.clone(),
                format!("{}{}{path}", self.base, session.prefix),
            );
            if !session.cookie.is_empty() {
                req = req.header(reqwest::header::COOKIE, &session.cookie);
            }
            if let Some(t) = &session.csrf {
                req = req.header("X-CSRF-Token", t);
            }
            if let Auth::ApiKey(k) = &self.auth {
                req = req.header("X-API-KEY", k);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| self.unreachable(e))?;
            let status = resp.status();
            if let (Some(t), Some(s)) = (
                header(resp.headers(), "x-updated-csrf-token"),
                guard.as_mut(),
            ) {
                s.csrf = Some(t);
            }
            let text = resp.text().await.map_err(|e| self.unreachable(e))?;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let msg = v["meta"]["msg"].as_str().unwrap_or_default().to_string();
            if status == StatusCode::UNAUTHORIZED || msg == "api.err.LoginRequired" {
                if matches!(self.auth, Auth::ApiKey(_)) {
                    return Err(ControllerError::Login(
                        format!("UniFi controller {:?}", self.name),
                        "the API key was refused".into(),
                    ));
                }
                tracing::info!(controller = %self.name, "UniFi: session expired; logging in again");
                *guard = None;
                continue;
            }
            if status.is_server_error() {
                return Err(self.unreachable(format!("HTTP {status}")));
            }
            if !status.is_success() || v["meta"]["rc"] != "ok" {
                return Err(self.refused(if msg.is_empty() {
                    format!("HTTP {status}")
                } else {
                    msg
                }));
            }
            return Ok(v["data"].clone());
        }
        Err(ControllerError::Login(
            format!("UniFi controller {:?}", self.name),
            "the session expired and logging in again did not help".into(),
        ))
    }

    async fn stamgr(&self, site: &str, body: Value) -> Result<Value, ControllerError> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/s/{}/cmd/stamgr", encode(site)),
            Some(&body),
        )
        .await
    }
}

/// UniFi writes MACs lowercase with colons.
fn mac(m: MacAddr) -> String {
    m.to_string().to_ascii_lowercase().replace('-', ":")
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|v| !v.is_empty())
}

#[async_trait]
impl Controller for UniFi {
    async fn authorize(
        &self,
        site: &str,
        m: MacAddr,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ControllerError> {
        self.stamgr(
            site,
            json!({ "cmd": "authorize-guest", "mac": mac(m), "minutes": minutes_until(until, now) }),
        )
        .await
        .map(drop)
    }

    async fn revoke(&self, site: &str, m: MacAddr) -> Result<(), ControllerError> {
        self.stamgr(site, json!({ "cmd": "unauthorize-guest", "mac": mac(m) }))
            .await?;
        // Off the air, so the device meets the portal again.
        self.kick(site, m).await
    }

    async fn kick(&self, site: &str, m: MacAddr) -> Result<(), ControllerError> {
        match self
            .stamgr(site, json!({ "cmd": "kick-sta", "mac": mac(m) }))
            .await
        {
            // Already gone.
            Err(ControllerError::Refused(_, msg)) if msg.contains("UnknownStation") => Ok(()),
            other => other.map(drop),
        }
    }

    async fn clients(&self, site: &str) -> Result<Vec<MacAddr>, ControllerError> {
        let data = self
            .call(
                reqwest::Method::GET,
                &format!("/api/s/{}/stat/sta", encode(site)),
                None,
            )
            .await?;
        Ok(data
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["mac"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn health(&self, site: &str) -> Result<String, ControllerError> {
        let n = self.clients(site).await?.len();
        let flavour = match self.session.lock().await.as_ref().map(|s| s.prefix) {
            Some("") => "classic controller",
            _ => "UniFi OS",
        };
        Ok(format!("{flavour}, site {site:?}: {n} clients connected"))
    }
}
