//! Door backends, plan → door group maps, and the sync's per-member bookkeeping (state,
//! failures with backoff, quarantine, what was last written) and per-backend last run.

use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use crate::schedule::WindowSpec;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The door-access systems Frontdesk can mirror into.
pub const KINDS: [&str; 4] = ["kisi", "unifi-access", "salto-ks", "webhook"];

#[derive(Clone, Debug, Serialize)]
pub struct DoorBackend {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    /// API key / token / webhook signing secret (decrypted; never serialised).
    #[serde(skip)]
    pub secret: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DoorMap {
    pub id: i64,
    pub backend_id: i64,
    pub plan_id: i64,
    pub group: String,
    /// `None`: the plan's door window.
    pub schedule: Option<WindowSpec>,
}

/// Where one member stands with one backend.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SyncItem {
    pub member_id: String,
    /// `ok`, `failed` (retrying with backoff) or `quarantined` (an operator must look).
    pub state: String,
    pub failures: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// What was last written, as the backend's own JSON (the webhook backend's "observed").
    pub synced: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncRun {
    pub backend_id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub operations: i64,
    pub failed: i64,
    pub error: Option<String>,
}

/// member_id, state, failures, next_attempt_at, last_error, synced.
type ItemRow = (
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);
/// backend_id, started_at, finished_at, operations, failed, error.
type RunRow = (i64, i64, Option<i64>, i64, i64, Option<String>);

impl Store {
    pub async fn add_door_backend(
        &self,
        name: &str,
        kind: &str,
        url: &str,
        secret: Option<&str>,
        actor: &Actor,
    ) -> Result<DoorBackend> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("door backend name is empty".into()));
        }
        if !KINDS.contains(&kind) {
            return Err(StoreError::Invalid(format!(
                "door backend kind {kind:?}: one of {}",
                KINDS.join(", ")
            )));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(StoreError::Invalid(format!(
                "door backend URL {url:?}: give the API base URL, https://…"
            )));
        }
        let enc = secret
            .map(|s| self.key().map(|k| k.encrypt(s.as_bytes())))
            .transpose()?;
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO door_backends (name, kind, url, secret_enc, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .bind(url.trim_end_matches('/'))
        .bind(enc)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("door backend {name:?}")))?;
        let audit = Audit::new("door.add", "door", name).after(format!("kind={kind} url={url}"));
        self.finish(tx, actor, audit).await?;
        Ok(DoorBackend {
            id,
            name: name.into(),
            kind: kind.into(),
            url: url.trim_end_matches('/').into(),
            secret: secret.map(Into::into),
        })
    }

    pub async fn door_backends(&self) -> Result<Vec<DoorBackend>> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, name, kind, url, secret_enc FROM door_backends ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, kind, url, enc)| {
                let secret = match enc {
                    Some(e) => Some(self.key()?.decrypt_string(&e)?),
                    None => None,
                };
                Ok(DoorBackend {
                    id,
                    name,
                    kind,
                    url,
                    secret,
                })
            })
            .collect()
    }

    pub async fn door_backend(&self, name: &str) -> Result<DoorBackend> {
        self.door_backends()
            .await?
            .into_iter()
            .find(|b| b.name == name)
            .ok_or_else(|| {
                StoreError::NotFound(format!("door backend {name:?} (see `frontdesk door list`)"))
            })
    }

    /// Maps a plan to a door group in a backend (replacing that pair's schedule).
    pub async fn map_door(
        &self,
        backend: &str,
        plan: &str,
        group: &str,
        schedule: Option<WindowSpec>,
        actor: &Actor,
    ) -> Result<DoorMap> {
        let b = self.door_backend(backend).await?;
        let p = self.plan(plan).await?;
        let group = group.trim();
        if group.is_empty() || group.chars().count() > 100 {
            return Err(StoreError::Invalid(
                "door group: 1 to 100 characters".into(),
            ));
        }
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM door_maps WHERE backend_id = $1 AND plan_id = $2 AND door_group = $3",
        )
        .bind(b.id)
        .bind(p.id)
        .bind(group)
        .execute(&mut *tx)
        .await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO door_maps (backend_id, plan_id, door_group, schedule) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(b.id)
        .bind(p.id)
        .bind(group)
        .bind(schedule.as_ref().map(|s| s.to_string()))
        .fetch_one(&mut *tx)
        .await?;
        let audit = Audit::new("door.map", "door", &b.name).after(format!(
            "plan={} group={group} schedule={}",
            p.name,
            schedule
                .as_ref()
                .map_or("plan".to_string(), |s| s.to_string())
        ));
        self.finish(tx, actor, audit).await?;
        Ok(DoorMap {
            id,
            backend_id: b.id,
            plan_id: p.id,
            group: group.into(),
            schedule,
        })
    }

    pub async fn door_maps(&self) -> Result<Vec<DoorMap>> {
        let rows: Vec<(i64, i64, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, backend_id, plan_id, door_group, schedule FROM door_maps ORDER BY backend_id, plan_id, door_group",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, backend_id, plan_id, group, schedule)| {
                Ok(DoorMap {
                    id,
                    backend_id,
                    plan_id,
                    group,
                    schedule: schedule
                        .map(|s| {
                            s.parse().map_err(|_| {
                                StoreError::Invalid(format!(
                                    "stored door schedule {s:?} is invalid"
                                ))
                            })
                        })
                        .transpose()?,
                })
            })
            .collect()
    }

    pub async fn sync_items(&self, backend_id: i64) -> Result<Vec<SyncItem>> {
        let rows: Vec<ItemRow> =
            sqlx::query_as(
                "SELECT member_id, state, failures, next_attempt_at, last_error, synced FROM door_sync_items WHERE backend_id = $1 ORDER BY member_id",
            )
            .bind(backend_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(member_id, state, failures, next, last_error, synced)| SyncItem {
                    member_id,
                    state,
                    failures,
                    next_attempt_at: next.map(ts),
                    last_error,
                    synced,
                },
            )
            .collect())
    }

    /// A member is in sync with a backend (`synced`: what was written).
    pub async fn sync_ok(
        &self,
        backend_id: i64,
        member_id: &str,
        synced: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO door_sync_items (backend_id, member_id, state, failures, next_attempt_at, last_error, synced, updated_at) \
             VALUES ($1, $2, 'ok', 0, NULL, NULL, $3, $4) \
             ON CONFLICT (backend_id, member_id) DO UPDATE SET state = 'ok', failures = 0, next_attempt_at = NULL, \
             last_error = NULL, synced = excluded.synced, updated_at = excluded.updated_at",
        )
        .bind(backend_id)
        .bind(member_id)
        .bind(synced)
        .bind(now_secs())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A member's sync failed: failures + 1, retried at `next_attempt_at`, or quarantined
    /// (audited, so it shows on the member's timeline) when `quarantine` is true.
    pub async fn sync_failed(
        &self,
        backend_id: i64,
        member_id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        quarantine: bool,
    ) -> Result<i64> {
        let state = if quarantine { "quarantined" } else { "failed" };
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO door_sync_items (backend_id, member_id, state, failures, next_attempt_at, last_error, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5, $6) \
             ON CONFLICT (backend_id, member_id) DO UPDATE SET state = excluded.state, failures = door_sync_items.failures + 1, \
             next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error, updated_at = excluded.updated_at \
             RETURNING failures",
        )
        .bind(backend_id)
        .bind(member_id)
        .bind(state)
        .bind(next_attempt_at.timestamp())
        .bind(error)
        .bind(now_secs())
        .fetch_one(&self.pool)
        .await?;
        if quarantine {
            let _ = self
                .record_event(
                    &Actor::system("door-sync"),
                    "door.quarantine",
                    member_id,
                    Some(error.to_string()),
                )
                .await;
        }
        Ok(failures)
    }

    /// Clears a quarantine (after an operator fixed the cause): retried on the next run.
    pub async fn sync_release(&self, backend_id: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE door_sync_items SET state = 'failed', failures = 0, next_attempt_at = NULL WHERE backend_id = $1 AND state = 'quarantined'",
        )
        .bind(backend_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn sync_run_started(&self, backend_id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO door_sync_runs (backend_id, started_at, finished_at, operations, failed, error) VALUES ($1, $2, NULL, 0, 0, NULL) \
             ON CONFLICT (backend_id) DO UPDATE SET started_at = excluded.started_at, finished_at = NULL",
        )
        .bind(backend_id)
        .bind(at.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sync_run_finished(
        &self,
        backend_id: i64,
        at: DateTime<Utc>,
        operations: i64,
        failed: i64,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE door_sync_runs SET finished_at = $1, operations = $2, failed = $3, error = $4 WHERE backend_id = $5",
        )
        .bind(at.timestamp())
        .bind(operations)
        .bind(failed)
        .bind(error)
        .bind(backend_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sync_runs(&self) -> Result<Vec<SyncRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT backend_id, started_at, finished_at, operations, failed, error FROM door_sync_runs ORDER BY backend_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(backend_id, s, f, operations, failed, error)| SyncRun {
                backend_id,
                started_at: ts(s),
                finished_at: f.map(ts),
                operations,
                failed,
                error,
            })
            .collect())
    }
}
