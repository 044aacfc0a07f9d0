//! Wi-Fi controllers (radius-only mode): where the external captive portal authorizes guests,
//! and their last health (shown in the console and `controller list`).

use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The controllers Frontdesk speaks to.
pub const KINDS: [&str; 3] = ["unifi", "omada", "meraki"];

#[derive(Clone, Debug, Serialize)]
pub struct ControllerRecord {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    /// The controller site to use when a redirect names none (UniFi: the site id in
    /// `/guest/s/<site>/` always wins).
    pub site: Option<String>,
    pub username: Option<String>,
    /// Password or API key (decrypted; never serialised).
    #[serde(skip)]
    pub secret: Option<String>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

pub struct NewController<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub site: Option<&'a str>,
    pub username: Option<&'a str>,
    pub secret: Option<&'a str>,
}

type Row = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

impl Store {
    pub async fn add_controller(
        &self,
        c: &NewController<'_>,
        actor: &Actor,
    ) -> Result<ControllerRecord> {
        let name = c.name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(StoreError::Invalid(
                "controller name: 1 to 64 characters".into(),
            ));
        }
        if !KINDS.contains(&c.kind) {
            return Err(StoreError::Invalid(format!(
                "controller kind {:?}: one of {}",
                c.kind,
                KINDS.join(", ")
            )));
        }
        let url = c.url.trim().trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(StoreError::Invalid(format!(
                "controller URL {url:?}: give its address, e.g. https://unifi.example:8443"
            )));
        }
        let enc = c
            .secret
            .map(|s| self.key().map(|k| k.encrypt(s.as_bytes())))
            .transpose()?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO controllers (name, kind, url, site, username, secret_enc, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(name)
        .bind(c.kind)
        .bind(url)
        .bind(c.site)
        .bind(c.username)
        .bind(enc)
        .bind(now_secs())
        .execute(&mut *tx)
        .await
        .map_err(dup(format!("controller {name:?}")))?;
        let audit = Audit::new("controller.add", "controller", name)
            .after(format!("kind={} url={url}", c.kind));
        self.finish(tx, actor, audit).await?;
        self.controller(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("controller {name:?}")))
    }

    pub async fn remove_controller(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM controllers WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("controller {name:?}")));
        }
        self.finish(
            tx,
            actor,
            Audit::new("controller.remove", "controller", name),
        )
        .await
    }

    pub async fn controllers(&self) -> Result<Vec<ControllerRecord>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, kind, url, site, username, secret_enc, last_ok_at, last_error, last_error_at FROM controllers ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| self.controller_row(r)).collect()
    }

    pub async fn controller(&self, name: &str) -> Result<Option<ControllerRecord>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, name, kind, url, site, username, secret_enc, last_ok_at, last_error, last_error_at FROM controllers WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.controller_row(r)).transpose()
    }

    fn controller_row(&self, r: Row) -> Result<ControllerRecord> {
        let (id, name, kind, url, site, username, enc, ok, error, error_at) = r;
        Ok(ControllerRecord {
            id,
            name,
            kind,
            url,
            site,
            username,
            secret: enc
                .map(|e| self.key().and_then(|k| Ok(k.decrypt_string(&e)?)))
                .transpose()?,
            last_ok_at: ok.map(ts),
            last_error: error,
            last_error_at: error_at.map(ts),
        })
    }

    /// Records the outcome of a controller call (not audited, no change: it is health). The
    /// error stays until the next success.
    pub async fn set_controller_health(&self, name: &str, error: Option<&str>) -> Result<()> {
        let now = now_secs();
        match error {
            None => {
                // A success settles the last error: what is shown is what is wrong now.
                sqlx::query("UPDATE controllers SET last_ok_at = $1, last_error = NULL, last_error_at = NULL WHERE name = $2")
                    .bind(now)
                    .bind(name)
                    .execute(&self.pool)
                    .await?
            }
            Some(e) => {
                sqlx::query(
                    "UPDATE controllers SET last_error = $1, last_error_at = $2 WHERE name = $3",
                )
                .bind(e.chars().take(500).collect::<String>())
                .bind(now)
                .bind(name)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }
}
