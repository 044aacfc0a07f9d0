//! Omada (software controller, OC hardware controllers, v5.0.15 and later), after TP-Link's
//! "API and Code Sample for External Portal Server" (FAQ 3231 / document 13080):
//!
//! - `GET /api/info` → `{"errorCode":0,"result":{"omadacId":…}}`, the controller id that
//!   prefixes the hotspot API;
//! - `POST /{omadacId}/api/v2/hotspot/login` `{"name","password"}` (a *hotspot operator*
//!   account, not the admin) → `{"result":{"token"}}` and a `TPOMADA_SESSIONID` cookie;
//! - `POST /{omadacId}/api/v2/hotspot/extPortal/auth` with `Csrf-Token: <token>`:
//!   `{"clientMac","apMac","ssidName","radioId","site","time","authType":4}` for an EAP, or
//!   `{"clientMac","gatewayMac","vid","site","time","authType":4}` for a gateway; `time` is
//!   the length of the authorization in microseconds. `errorCode` 0 is success.
//!
//! Not in the public guide, so unverified against a real controller: taking an authorization
//! back before it ends. Frontdesk posts `…/hotspot/sites/{site}/clients/{mac}/unauth`; the
//! authorization it granted ends at its `time` regardless (closing time), which is what
//! bounds access if that call is refused.

use super::{cookies, http_client, Controller, ControllerError};
use crate::http::encode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk_core::store::controllers::ControllerRecord;
use frontdesk_core::MacAddr;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[derive(Clone)]
struct Session {
    id: String,
    cookie: String,
    token: String,
}

pub struct Omada {
    name: String,
    base: String,
    username: String,
    password: String,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<Session>>,
}

/// Omada writes MACs uppercase with dashes.
fn mac(m: MacAddr) -> String {
    m.to_string().to_ascii_uppercase().replace(':', "-")
}

/// Where a client sits, as the portal recorded it: `<site>/ap/<mac>/<radio>/<ssid>` or
/// `<site>/gw/<mac>/<vid>`.
enum Spot<'a> {
    Ap {
        site: &'a str,
        ap: &'a str,
        radio: u8,
        ssid: &'a str,
    },
    Gateway {
        site: &'a str,
        gateway: &'a str,
        vid: u16,
    },
}

fn spot(location: &str) -> Option<Spot<'_>> {
    let mut it = location.splitn(5, '/');
    let (site, kind, mac) = (it.next()?, it.next()?, it.next()?);
    match kind {
        "ap" => Some(Spot::Ap {
            site,
            ap: mac,
            radio: it.next()?.parse().ok()?,
            ssid: it.next()?,
        }),
        "gw" => Some(Spot::Gateway {
            site,
            gateway: mac,
            vid: it.next()?.parse().ok()?,
        }),
        _ => None,
    }
}

impl Omada {
    pub fn new(c: &ControllerRecord) -> Result<Omada, ControllerError> {
        let (Some(username), Some(password)) = (c.username.clone(), c.secret.clone()) else {
            return Err(ControllerError::Config(format!(
                "controller {:?}: Omada needs --username and --secret-file (a hotspot operator account)",
                c.name
            )));
        };
        Ok(Omada {
            name: c.name.clone(),
            base: super::check_url(&c.name, &c.url)?,
            username,
            password,
            http: http_client(),
            session: tokio::sync::Mutex::new(None),
        })
    }

    fn who(&self) -> String {
        format!("Omada controller {:?}", self.name)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ControllerError {
        ControllerError::Unreachable(self.who(), e.to_string())
    }

    async fn json(&self, resp: reqwest::Response) -> Result<(StatusCode, Value), ControllerError> {
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        if status.is_server_error() {
            return Err(self.unreachable(format!("HTTP {status}")));
        }
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn login(&self) -> Result<Session, ControllerError> {
        let info = self
            .http
            .get(format!("{}/api/info", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let (_, info) = self.json(info).await?;
        let Some(id) = info["result"]["omadacId"]
            .as_str()
            .filter(|i| !i.is_empty())
        else {
            return Err(ControllerError::Refused(
                self.who(),
                "no controller id at /api/info (Omada 5.0.15 or later is needed)".into(),
            ));
        };
        let resp = self
            .http
            .post(format!("{}/{}/api/v2/hotspot/login", self.base, encode(id)))
            .json(&json!({ "name": self.username, "password": self.password }))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let cookie = cookies(resp.headers())
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let (status, v) = self.json(resp).await?;
        let token = v["result"]["token"].as_str().unwrap_or_default();
        if !status.is_success() || v["errorCode"] != 0 || token.is_empty() {
            return Err(ControllerError::Login(
                self.who(),
                format!(
                    "{} (use a hotspot operator account: Hotspot Manager → Operators)",
                    v["msg"].as_str().unwrap_or("login refused")
                ),
            ));
        }
        Ok(Session {
            id: id.to_string(),
            cookie,
            token: token.to_string(),
        })
    }

    /// A hotspot API call, logging in first or again (once) when the session is gone.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, ControllerError> {
        let mut guard = self.session.lock().await;
        for attempt in 0..2 {
            let s = match guard.as_ref() {
                Some(s) if attempt == 0 => s.clone(),
                _ => {
                    let s = self.login().await?;
                    *guard = Some(s.clone());
                    s
                }
            };
            let resp = self
                .http
                .post(format!(
                    "{}/{}/api/v2/hotspot{path}",
                    self.base,
                    encode(&s.id)
                ))
                .header("Csrf-Token", &s.token)
                .header(reqwest::header::COOKIE, &s.cookie)
                .json(body)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            let (status, v) = self.json(resp).await?;
            // An expired session: 401, a redirect to the login page, or a login error code.
            let code = v["errorCode"].as_i64().unwrap_or(i64::MIN);
            if status == StatusCode::UNAUTHORIZED
                || status.is_redirection()
                || matches!(code, -1200 | -44109 | -44112 | -44113)
            {
                tracing::info!(controller = %self.name, "Omada: session expired; logging in again");
                *guard = None;
                continue;
            }
            if code != 0 {
                return Err(ControllerError::Refused(
                    self.who(),
                    format!(
                        "{} (errorCode {code})",
                        v["msg"].as_str().unwrap_or("refused")
                    ),
                ));
            }
            return Ok(v["result"].clone());
        }
        Err(ControllerError::Login(
            self.who(),
            "the session expired and logging in again did not help".into(),
        ))
    }
}

#[async_trait]
impl Controller for Omada {
    async fn authorize(
        &self,
        location: &str,
        m: MacAddr,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ControllerError> {
        let micros = (until - now).num_seconds().max(60) * 1_000_000;
        let body = match spot(location) {
            Some(Spot::Ap {
                site,
                ap,
                radio,
                ssid,
            }) => json!({
                "clientMac": mac(m), "apMac": ap.to_ascii_uppercase().replace(':', "-"),
                "ssidName": ssid, "radioId": radio, "site": site,
                "time": micros, "authType": 4,
            }),
            Some(Spot::Gateway { site, gateway, vid }) => json!({
                "clientMac": mac(m), "gatewayMac": gateway.to_ascii_uppercase().replace(':', "-"),
                "vid": vid, "site": site, "time": micros, "authType": 4,
            }),
            None => {
                return Err(ControllerError::Config(format!(
                    "{m}: not an Omada portal client ({location})"
                )))
            }
        };
        self.post("/extPortal/auth", &body).await.map(drop)
    }

    async fn revoke(&self, location: &str, m: MacAddr) -> Result<(), ControllerError> {
        let site = location.split('/').next().unwrap_or_default();
        self.post(
            &format!("/sites/{}/clients/{}/unauth", encode(site), encode(&mac(m))),
            &json!({}),
        )
        .await
        .map(drop)
    }

    async fn clients(&self, _site: &str) -> Result<Vec<MacAddr>, ControllerError> {
        // The hotspot operator API lists no clients; health is the login itself.
        Ok(Vec::new())
    }

    async fn health(&self, _site: &str) -> Result<String, ControllerError> {
        let s = self.login().await?;
        *self.session.lock().await = Some(s.clone());
        Ok(format!(
            "hotspot operator logged in (controller id {})",
            s.id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip_what_the_portal_recorded() {
        match spot("Default/ap/AA-BB-CC-DD-EE-FF/1/Guest / Lobby") {
            Some(Spot::Ap {
                site,
                ap,
                radio,
                ssid,
            }) => assert_eq!(
                (site, ap, radio, ssid),
                ("Default", "AA-BB-CC-DD-EE-FF", 1, "Guest / Lobby")
            ),
            _ => panic!("an AP spot"),
        }
        assert!(matches!(
            spot("s1/gw/AA-BB-CC-DD-EE-FF/30"),
            Some(Spot::Gateway { vid: 30, .. })
        ));
        assert!(
            spot("s1").is_none() && spot("s1/xx/a/b").is_none() && spot("s1/ap/a/x/y").is_none()
        );
    }
}
