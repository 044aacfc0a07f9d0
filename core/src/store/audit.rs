//! The append-only audit log and the `changes` rows written with every mutation.

use super::{now_secs, ts, Actor, Backend, Result, Store};
use crate::model::AuditEvent;
use sqlx::{Any, Transaction};

/// What a mutation did, for the audit log; `kind` names the `changes` feed entry.
pub struct Audit {
    pub action: &'static str,
    pub kind: &'static str,
    pub object: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Audit {
    pub fn new(action: &'static str, kind: &'static str, object: impl Into<String>) -> Audit {
        Audit {
            action,
            kind,
            object: object.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, s: impl Into<String>) -> Audit {
        self.before = Some(s.into());
        self
    }

    pub fn after(mut self, s: impl Into<String>) -> Audit {
        self.after = Some(s.into());
        self
    }
}

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const AUDIT_COLS: &str = "id, at, actor, source, action, object, before_summary, after_summary";

fn audit_event(r: AuditRow) -> AuditEvent {
    let (id, at, actor, source, action, object, before, after) = r;
    AuditEvent {
        id,
        at: ts(at),
        actor,
        source,
        action,
        object,
        before,
        after,
    }
}

impl Store {
    /// Appends the audit event and the change row, then commits: the mutation, its audit
    /// event and its change become visible together or not at all.
    pub(crate) async fn finish(
        &self,
        mut tx: Transaction<'static, Any>,
        actor: &Actor,
        audit: Audit,
    ) -> Result<()> {
        let now = now_secs();
        sqlx::query(
            "INSERT INTO audit (at, actor, source, action, object, before_summary, after_summary) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now)
        .bind(&actor.name)
        .bind(&actor.source)
        .bind(audit.action)
        .bind(&audit.object)
        .bind(&audit.before)
        .bind(&audit.after)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO changes (at, kind, object) VALUES ($1, $2, $3)")
            .bind(now)
            .bind(audit.kind)
            .bind(&audit.object)
            .execute(&mut *tx)
            .await?;
        if self.backend == Backend::Postgres {
            // Delivered on commit to every `serve` listening (SPEC §3 change feed).
            sqlx::query("NOTIFY frontdesk_changes")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest audit events, newest first.
    /// The timeline of one object (a member's id), newest first.
    pub async fn audit_of(&self, object: &str, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE object = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(object)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(audit_event).collect())
    }

    /// Audit events, newest first, whose action starts with `action` and whose actor, object or
    /// details contain `text` (case-insensitive), both optional.
    pub async fn audit_search(
        &self,
        action: Option<&str>,
        text: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let like = super::like_literal;
        let action = action
            .filter(|a| !a.is_empty())
            .map(|a| format!("{}%", like(a)));
        let text = text
            .filter(|t| !t.is_empty())
            .map(|t| format!("%{}%", like(t)));
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLS} FROM audit \
             WHERE (CAST($1 AS TEXT) IS NULL OR LOWER(action) LIKE $1 ESCAPE '\\') \
             AND (CAST($2 AS TEXT) IS NULL OR LOWER(actor) LIKE $2 ESCAPE '\\' OR LOWER(object) LIKE $2 ESCAPE '\\' \
                  OR LOWER(COALESCE(after_summary, '')) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(before_summary, '')) LIKE $2 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(action)
        .bind(text)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(audit_event).collect())
    }

    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLS} FROM audit ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(audit_event).collect())
    }
}

impl Store {
    /// An audit event for something observed or enforced (a session ended, a guest let in),
    /// not a change of the catalog: no `changes` row, nothing for other processes to reload.
    pub async fn record_event(
        &self,
        actor: &Actor,
        action: &'static str,
        object: &str,
        after: Option<String>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, source, action, object, before_summary, after_summary) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(now_secs())
        .bind(&actor.name)
        .bind(&actor.source)
        .bind(action)
        .bind(object)
        .bind(after)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Many events in one transaction (enforcement at closing time ends thousands at once).
    pub async fn record_events(
        &self,
        actor: &Actor,
        events: &[(&'static str, String, Option<String>)],
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let at = now_secs();
        let mut tx = self.begin().await?;
        // Multi-row INSERTs: enforcement at closing time audits thousands of endings at once.
        for chunk in events.chunks(200) {
            let mut sql = String::from(
                "INSERT INTO audit (at, actor, source, action, object, before_summary, after_summary) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let p: Vec<String> = (1..=6).map(|k| self.placeholder(i * 6 + k)).collect();
                sql.push_str(&format!(
                    "({},{},{},{},{},NULL,{})",
                    p[0], p[1], p[2], p[3], p[4], p[5]
                ));
            }
            let mut q = sqlx::query(&sql);
            for (action, object, after) in chunk {
                q = q
                    .bind(at)
                    .bind(&actor.name)
                    .bind(&actor.source)
                    .bind(*action)
                    .bind(object)
                    .bind(after);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
