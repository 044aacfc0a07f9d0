//! Wi-Fi controllers in radius-only mode (SPEC §2, §5): the space's own controller shows
//! Frontdesk as its external captive portal; Frontdesk lets a guest out (and back in at
//! closing time) through the controller's API.
//!
//! A portal client's location is `<kind>/<controller site>` (`unifi/abc123`): the portal
//! learns it from the controller's redirect, the scheduler reads it back from the recorded
//! client to revoke it. One controller per kind is used (the first by name).

pub mod omada;
pub mod unifi;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk_core::ports::{ActError, ClientAuthorizer, ClientRef};
use frontdesk_core::store::controllers::ControllerRecord;
use frontdesk_core::store::Store;
use frontdesk_core::MacAddr;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("{0} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("{0} refused the login: {1}")]
    Login(String, String),
    #[error("{0} refused: {1}")]
    Refused(String, String),
    #[error("{0}")]
    Config(String),
}

impl From<ControllerError> for ActError {
    fn from(e: ControllerError) -> ActError {
        match e {
            ControllerError::Unreachable(w, m) => ActError::Timeout(format!("{w} ({m})")),
            ControllerError::Login(w, m) | ControllerError::Refused(w, m) => {
                ActError::Refused(w, m)
            }
            ControllerError::Config(m) => ActError::Other(m),
        }
    }
}

/// What Frontdesk needs from a controller.
#[async_trait]
pub trait Controller: Send + Sync {
    /// Lets `mac` out on `site` until `until` (the controller ends it itself then).
    async fn authorize(
        &self,
        site: &str,
        mac: MacAddr,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ControllerError>;
    /// Takes the authorization back and disconnects the client, so it sees the portal again.
    async fn revoke(&self, site: &str, mac: MacAddr) -> Result<(), ControllerError>;
    /// Disconnects a client (a RADIUS session the NAS cannot end by CoA): it reconnects and
    /// authenticates again, and RADIUS decides anew.
    async fn kick(&self, _site: &str, _mac: MacAddr) -> Result<(), ControllerError> {
        Err(ControllerError::Config(
            "this controller's API has no way to disconnect a client".into(),
        ))
    }
    /// Connected clients on `site` (MACs).
    async fn clients(&self, site: &str) -> Result<Vec<MacAddr>, ControllerError>;
    /// Logs in (if needed) and reads something cheap: a one-line description on success.
    async fn health(&self, site: &str) -> Result<String, ControllerError>;
}

/// Builds the client for a stored controller.
pub fn connect(c: &ControllerRecord) -> Result<Arc<dyn Controller>, ControllerError> {
    match c.kind.as_str() {
        "unifi" => Ok(Arc::new(unifi::UniFi::new(c)?)),
        "omada" => Ok(Arc::new(omada::Omada::new(c)?)),
        "meraki" => Ok(Arc::new(MerakiSplash)),
        other => Err(ControllerError::Config(format!(
            "controller {:?}: unknown kind {other:?}",
            c.name
        ))),
    }
}

/// Meraki click-through: the guest's browser is let out through Meraki's grant URL with a
/// `duration`; there is no API to call (the Dashboard API is another product and key).
struct MerakiSplash;

#[async_trait]
impl Controller for MerakiSplash {
    async fn authorize(
        &self,
        _: &str,
        _: MacAddr,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<(), ControllerError> {
        Ok(())
    }
    async fn revoke(&self, _: &str, _: MacAddr) -> Result<(), ControllerError> {
        Ok(())
    }
    async fn clients(&self, _: &str) -> Result<Vec<MacAddr>, ControllerError> {
        Ok(Vec::new())
    }
    async fn health(&self, _: &str) -> Result<String, ControllerError> {
        Ok("Meraki click-through needs no API access: guests are let out through Meraki's grant URL until closing time".into())
    }
}

/// Minutes a controller grant must last to reach `until` (at least one).
pub fn minutes_until(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    ((until - now).num_seconds().max(1) + 59) / 60
}

/// The portal's and scheduler's [`ClientAuthorizer`] in radius-only mode: routes a client to
/// the controller its location names and records each call's outcome as the controller's
/// health (console, `controller list`).
pub struct ControllerAuthorizer {
    store: Store,
    by_kind: RwLock<HashMap<String, Named>>,
}

/// A controller client with its configured name and default site.
type Named = (String, Option<String>, Arc<dyn Controller>);

impl ControllerAuthorizer {
    pub fn new(store: Store) -> ControllerAuthorizer {
        ControllerAuthorizer {
            store,
            by_kind: RwLock::default(),
        }
    }

    /// (Re)reads the configured controllers; a controller that cannot be built is logged.
    pub async fn reload(&self) {
        let records = match self.store.controllers().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "controllers not reloaded");
                return;
            }
        };
        let mut map = HashMap::new();
        for r in records {
            if map.contains_key(&r.kind) {
                tracing::warn!(controller = %r.name, kind = %r.kind, "a second controller of the same kind is ignored");
                continue;
            }
            match connect(&r) {
                Ok(c) => {
                    map.insert(r.kind.clone(), (r.name.clone(), r.site.clone(), c));
                }
                Err(e) => tracing::warn!(controller = %r.name, error = %e, "controller unusable"),
            }
        }
        *self.by_kind.write().expect("controllers lock") = map;
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.read().expect("controllers lock").is_empty()
    }

    fn route(&self, client: &ClientRef) -> Result<(String, Arc<dyn Controller>, String), ActError> {
        let location = client.location.as_deref().unwrap_or("");
        let (kind, site) = location.split_once('/').ok_or_else(|| {
            ActError::Other(format!(
                "{} came through no controller's portal redirect",
                client.mac
            ))
        })?;
        let map = self.by_kind.read().expect("controllers lock");
        let (name, _, c) = map.get(kind).ok_or_else(|| {
            ActError::Other(format!(
                "no {kind} controller is configured (frontdesk controller add --kind {kind})"
            ))
        })?;
        Ok((name.clone(), c.clone(), site.to_string()))
    }

    /// Ends a client's connection through the controller of `kind` on its configured site
    /// (RADIUS sessions say nothing of controller sites); `None` without such a controller.
    pub async fn kick(&self, kind: &str, mac: MacAddr) -> Option<Result<(), ActError>> {
        let (name, site, c) = self
            .by_kind
            .read()
            .expect("controllers lock")
            .get(kind)
            .cloned()?;
        let site = site.unwrap_or_else(|| "default".into());
        let r = c.kick(&site, mac).await;
        self.health(&name, &r).await;
        match &r {
            Ok(()) => {
                tracing::info!(controller = %name, %site, %mac, "controller: client disconnected")
            }
            Err(e) => {
                tracing::warn!(controller = %name, %site, %mac, error = %e, "controller: disconnect failed")
            }
        }
        Some(r.map_err(ActError::from))
    }

    async fn health(&self, name: &str, r: &Result<(), ControllerError>) {
        let error = r.as_ref().err().map(ToString::to_string);
        if let Err(e) = self
            .store
            .set_controller_health(name, error.as_deref())
            .await
        {
            tracing::debug!(error = %e, "controller health not recorded");
        }
    }
}

#[async_trait]
impl ClientAuthorizer for ControllerAuthorizer {
    async fn authorize(
        &self,
        client: &ClientRef,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), ActError> {
        if is_meraki(client) {
            // The guest's browser asks Meraki's splash server (grant URL with a duration).
            return Ok(());
        }
        let (name, c, site) = self.route(client)?;
        let now = frontdesk_core::clock::now();
        // No end given: a day, the longest a portal grant lasts without a plan end.
        let until = until.unwrap_or(now + chrono::Duration::days(1));
        let r = c.authorize(&site, client.mac, until, now).await;
        self.health(&name, &r).await;
        match &r {
            Ok(()) => {
                tracing::info!(controller = %name, %site, mac = %client.mac, minutes = minutes_until(until, now), "controller: guest authorized")
            }
            Err(e) => {
                tracing::warn!(controller = %name, %site, mac = %client.mac, error = %e, "controller: authorize failed")
            }
        }
        Ok(r?)
    }

    async fn revoke(&self, client: &ClientRef) -> Result<(), ActError> {
        if is_meraki(client) {
            tracing::info!(mac = %client.mac, "Meraki click-through: access ends with the granted duration (no API call)");
            return Ok(());
        }
        let (name, c, site) = self.route(client)?;
        let r = c.revoke(&site, client.mac).await;
        self.health(&name, &r).await;
        match &r {
            Ok(()) => {
                tracing::info!(controller = %name, %site, mac = %client.mac, "controller: guest unauthorized and disconnected")
            }
            Err(e) => {
                tracing::warn!(controller = %name, %site, mac = %client.mac, error = %e, "controller: revoke failed")
            }
        }
        Ok(r?)
    }
}

/// Meraki click-through clients are let out by their own browser, not through an API.
fn is_meraki(client: &ClientRef) -> bool {
    client
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with("meraki/"))
}

/// Refuses plain http except to this host: controller passwords and keys must not cross the
/// network in clear.
pub(crate) fn check_url(name: &str, url: &str) -> Result<String, ControllerError> {
    let base = url.trim_end_matches('/').to_string();
    let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|p| base.starts_with(p));
    if !base.starts_with("https://") && !loopback {
        return Err(ControllerError::Config(format!(
            "controller {name:?}: use https:// (the password or key would cross the network in clear)"
        )));
    }
    Ok(base)
}

/// `name=value` of every Set-Cookie (attributes dropped; cleared cookies skipped).
pub(crate) fn cookies(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    h.get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| {
            let pair = c.split(';').next()?.trim();
            let (n, v) = pair.split_once('=')?;
            (!v.is_empty()).then(|| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// One HTTP client setting for all controllers: a slow controller fails a portal login in
/// 10 s with a clear page instead of hanging the guest's browser.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up_and_never_reach_zero() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let m = |s: i64| minutes_until(now + chrono::Duration::seconds(s), now);
        assert_eq!(
            (m(-5), m(0), m(1), m(60), m(61), m(3600)),
            (1, 1, 1, 1, 2, 60)
        );
    }
}
