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
    /// Verifies the door system's own webhooks (door events in); never serialised.
    #[serde(skip)]
    pub events_secret: Option<String>,
}

/// What a door system reported: an unlock, a refusal, a door held open or forced.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DoorEvent {
    pub backend: String,
    pub event_id: String,
    pub at: DateTime<Utc>,
    /// `unlock`, `denied`, `held_open`, `forced` or `other`.
    pub kind: String,
    pub door: String,
    pub member_id: Option<String>,
    pub actor: Option<String>,
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
            events_secret: None,
        })
    }

    pub async fn door_backends(&self) -> Result<Vec<DoorBackend>> {
        type Row = (i64, String, String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, kind, url, secret_enc, events_secret_enc FROM door_backends ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let open = |enc: Option<String>| -> Result<Option<String>> {
            match enc {
                Some(e) => Ok(Some(self.key()?.decrypt_string(&e)?)),
                None => Ok(None),
            }
        };
        rows.into_iter()
            .map(|(id, name, kind, url, enc, events)| {
                Ok(DoorBackend {
                    id,
                    name,
                    kind,
                    url,
                    secret: open(enc)?,
                    events_secret: open(events)?,
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

impl Store {
    /// Sets the secret that verifies a door system's webhooks (door events in).
    pub async fn set_door_events_secret(
        &self,
        name: &str,
        secret: &str,
        actor: &Actor,
    ) -> Result<()> {
        if secret.len() < 16 {
            return Err(StoreError::Invalid(
                "an events secret needs at least 16 characters".into(),
            ));
        }
        let b = self.door_backend(name).await?;
        let enc = self.key()?.encrypt(secret.as_bytes());
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE door_backends SET events_secret_enc = $1 WHERE id = $2")
            .bind(enc)
            .bind(b.id)
            .execute(&mut *tx)
            .await?;
        // The secret itself never goes to the audit log.
        let audit = Audit::new("door.events_secret", "door", &b.name);
        self.finish(tx, actor, audit).await
    }

    /// The member Frontdesk linked to this door-system user id (from what the sync wrote).
    pub async fn member_for_door_user(
        &self,
        backend_id: i64,
        user_id: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .sync_items(backend_id)
            .await?
            .into_iter()
            .find(|i| {
                i.synced
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                    .is_some_and(|v| v["user_id"].as_str() == Some(user_id))
            })
            .map(|i| i.member_id))
    }

    /// Records a door event once per (backend, event id), with an audit entry; false when it
    /// was recorded before (a retried delivery).
    pub async fn record_door_event(&self, backend_id: i64, e: &DoorEvent) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO door_events (backend_id, event_id, at, kind, door, member_id, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (backend_id, event_id) DO NOTHING",
        )
        .bind(backend_id)
        .bind(&e.event_id)
        .bind(e.at.timestamp())
        .bind(&e.kind)
        .bind(&e.door)
        .bind(&e.member_id)
        .bind(&e.actor)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let who = e
            .member_id
            .clone()
            .or_else(|| e.actor.clone())
            .unwrap_or_else(|| "-".into());
        let action = match e.kind.as_str() {
            "unlock" => "door.unlock",
            "denied" => "door.denied",
            "held_open" => "door.held_open",
            "forced" => "door.forced",
            _ => "door.event",
        };
        let audit = Audit::new(action, "door", &e.door)
            .after(format!("by={who} via={} event={}", e.backend, e.event_id));
        let actor = Actor {
            name: e.backend.clone(),
            source: "door".into(),
        };
        self.finish(tx, &actor, audit).await?;
        Ok(true)
    }

    /// Door events since `since`, oldest first.
    pub async fn door_events_since(&self, since: DateTime<Utc>) -> Result<Vec<DoorEvent>> {
        type Row = (
            String,
            String,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT b.name, e.event_id, e.at, e.kind, e.door, e.member_id, e.actor \
             FROM door_events e JOIN door_backends b ON b.id = e.backend_id \
             WHERE e.at >= $1 ORDER BY e.at, e.id",
        )
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(backend, event_id, at, kind, door, member_id, actor)| DoorEvent {
                    backend,
                    event_id,
                    at: ts(at),
                    kind,
                    door,
                    member_id,
                    actor,
                },
            )
            .collect())
    }
}

impl Store {
    /// Removes a plan → door group map; the next sync revokes the grants it gave.
    pub async fn unmap_door(
        &self,
        backend: &str,
        plan: &str,
        group: &str,
        actor: &Actor,
    ) -> Result<()> {
        let b = self.door_backend(backend).await?;
        let p = self.plan(plan).await?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "DELETE FROM door_maps WHERE backend_id = $1 AND plan_id = $2 AND door_group = $3",
        )
        .bind(b.id)
        .bind(p.id)
        .bind(group.trim())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no map of plan {} to {:?} in {} (see `frontdesk door list`)",
                p.name,
                group.trim(),
                b.name
            )));
        }
        let audit = Audit::new("door.unmap", "door", &b.name).before(format!(
            "plan={} group={}",
            p.name,
            group.trim()
        ));
        self.finish(tx, actor, audit).await
    }

    /// Removes a backend. Refused while plans are mapped to it (unmap them and sync first,
    /// so the grants Frontdesk made are revoked) unless `force`, which leaves them there.
    pub async fn remove_door_backend(&self, name: &str, force: bool, actor: &Actor) -> Result<()> {
        let b = self.door_backend(name).await?;
        let maps = self
            .door_maps()
            .await?
            .into_iter()
            .filter(|m| m.backend_id == b.id)
            .count();
        if maps > 0 && !force {
            return Err(StoreError::Invalid(format!(
                "{name} still has {maps} plan map(s): unmap them (`frontdesk door unmap`), run `frontdesk sync run --backend {name}` so the grants Frontdesk made are revoked, then remove it (or --force to leave them in the door system)"
            )));
        }
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM door_backends WHERE id = $1")
            .bind(b.id)
            .execute(&mut *tx)
            .await?;
        let audit = Audit::new("door.remove", "door", &b.name)
            .before(format!("kind={} url={} maps={maps}", b.kind, b.url));
        self.finish(tx, actor, audit).await
    }
}
