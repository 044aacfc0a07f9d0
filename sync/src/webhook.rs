//! Generic webhook backend: for any other door system (a Nexudus-style custom access
//! control, a Salto Space bridge, a script). Each change of a member's door entitlement is
//! POSTed as one JSON document to the configured URL, signed like the webhooks Frontdesk
//! accepts: `Frontdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with the
//! backend's secret. The receiver cannot be read back, so "observed" is what was last
//! delivered (kept per member by the reconciler); a full reconcile re-sends only what differs.
//!
//! The document:
//! ```json
//! {"member_id": "…", "email": "…", "name": "…", "status": "active",
//!  "groups": [{"group": "Studio", "schedule": "opening-hours",
//!              "weekly": [{"day": "mon", "from": "08:00", "to": "19:00"}],
//!              "valid_until": "2026-12-31"}]}
//! ```
//! `weekly` is the schedule as same-day intervals (a window over midnight is split in two);
//! `always` is every day 00:00–24:00; `opening-hours` follows the site's hours. An empty
//! `groups` list means no access: revoke everything.

use crate::backend::{Applied, DoorSystem, Observed, ObservedGrant, ObservedUser, SyncError};
use crate::desired::{Entitlement, GroupKey};
use crate::http::Client;
use async_trait::async_trait;
use frontdesk_core::schedule::OpeningHours;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Webhook {
    url: String,
    secret: String,
    hours: OpeningHours,
    client: reqwest::Client,
    inner: Client,
}

impl Webhook {
    pub fn new(url: &str, secret: &str, hours: OpeningHours) -> Result<Webhook, SyncError> {
        if secret.len() < 16 {
            return Err(SyncError::Protocol(
                "webhook secret: at least 16 characters".into(),
            ));
        }
        Ok(Webhook {
            url: url.into(),
            secret: secret.into(),
            hours,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| SyncError::Transport(e.to_string()))?,
            // Used for its retry policy and request count; the URL is absolute.
            inner: Client::new(
                url,
                HeaderValue::from_static("none"),
                10.0,
                Duration::from_secs(10),
            )?,
        })
    }

    /// The schedule as same-day intervals per weekday.
    fn weekly(&self, schedule: &str) -> Vec<Value> {
        crate::desired::same_day_intervals(schedule, &self.hours)
            .into_iter()
            .map(|i| json!({"day": crate::desired::DAYS[i.day], "from": i.from, "to": i.to}))
            .collect()
    }

    pub fn document(&self, e: &Entitlement) -> Value {
        json!({
            "member_id": e.member_id,
            "email": e.email,
            "name": e.name,
            "status": e.status.as_str(),
            "groups": e.grants.iter().map(|(k, until)| json!({
                "group": k.group,
                "schedule": k.schedule,
                "weekly": self.weekly(&k.schedule),
                "valid_until": until.map(|d| d.to_string()),
            })).collect::<Vec<_>>(),
        })
    }

    pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[async_trait]
impl DoorSystem for Webhook {
    /// Nothing to read back: the reconciler takes what was last delivered from its record
    /// (`observed_from_record`).
    async fn observe(
        &self,
        _only: Option<&[&Entitlement]>,
        _links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError> {
        Ok(Observed::default())
    }

    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        Ok(keys.iter().map(|k| (k.clone(), k.owned_name())).collect())
    }

    async fn apply(
        &self,
        want: &Entitlement,
        _have: Option<&ObservedUser>,
        _groups: &BTreeMap<GroupKey, String>,
    ) -> Result<Applied, SyncError> {
        let body = serde_json::to_vec(&self.document(want)).expect("JSON");
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..4 {
            let t = chrono::Utc::now().timestamp();
            let sig = format!("t={t},v1={}", Self::sign(&self.secret, t, &body));
            self.inner.count();
            match self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("frontdesk-signature", sig)
                .body(body.clone())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return Ok(Applied {
                        writes: 1,
                        user_id: None,
                    })
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    return Err(SyncError::Http {
                        method: "POST".into(),
                        path: self.url.clone(),
                        status: r.status().as_u16(),
                        body: r
                            .text()
                            .await
                            .unwrap_or_default()
                            .chars()
                            .take(300)
                            .collect(),
                    })
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = format!("no answer ({})", e.without_url()),
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Err(SyncError::Transport(format!("POST {}: {last}", self.url)))
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

/// The grants a delivered document recorded (the reconciler's "observed" for webhooks).
pub fn observed_from_record(
    grants: &BTreeMap<GroupKey, Option<chrono::NaiveDate>>,
) -> ObservedUser {
    ObservedUser {
        id: String::new(),
        grants: grants
            .iter()
            .map(|(k, u)| {
                (
                    k.clone(),
                    ObservedGrant {
                        id: k.owned_name(),
                        valid_until: *u,
                    },
                )
            })
            .collect(),
    }
}
