//! Operator console accounts and sessions. Session tokens are stored as their SHA-256 only
//! (the caller hashes); sessions end after an idle time and an absolute lifetime.

use super::{ts, Actor, Audit, Result, Store};
use crate::model::Role;
use chrono::{DateTime, Utc};

/// An operator as the console needs them (the password hash only for verification).
#[derive(Clone, Debug)]
pub struct Operator {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    /// Set for accounts made by `admin add` (one-time password): change it before anything else.
    pub must_change_password: bool,
}

#[derive(Clone, Debug)]
pub struct ConsoleSession {
    pub operator: Operator,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

type OperatorRow = (i64, String, String, String, i64);

fn operator(r: OperatorRow) -> Option<Operator> {
    Some(Operator {
        id: r.0,
        email: r.1,
        role: r.2.parse().ok()?,
        password_hash: r.3,
        must_change_password: r.4 != 0,
    })
}

impl Store {
    pub async fn operator_by_email(&self, email: &str) -> Result<Option<Operator>> {
        let row: Option<OperatorRow> = sqlx::query_as(
            "SELECT id, email, role, password_hash, must_change_password FROM admins WHERE email = $1",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(operator))
    }

    /// Sets an operator's password (already hashed) and ends their other sessions.
    pub async fn set_operator_password(
        &self,
        id: i64,
        password_hash: &str,
        keep_session: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (email,): (String,) = sqlx::query_as(
            "UPDATE admins SET password_hash = $1, must_change_password = 0 WHERE id = $2 RETURNING email",
        )
        .bind(password_hash)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM console_sessions WHERE admin_id = $1 AND token_hash <> $2")
            .bind(id)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        self.finish(tx, actor, Audit::new("admin.password", "admin", &email))
            .await
    }

    pub async fn create_console_session(
        &self,
        token_hash: &str,
        operator_id: i64,
        csrf: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, admin_id, csrf, created_at, last_seen, ip) VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(operator_id)
        .bind(csrf)
        .bind(now.timestamp())
        .bind(ip)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session for a token: `None` (and the row deleted) when unknown, idle longer
    /// than `idle`, or older than `absolute`. Touches `last_seen` at most once a minute.
    pub async fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
        absolute: chrono::Duration,
    ) -> Result<Option<ConsoleSession>> {
        type Row = (i64, String, String, String, i64, String, i64, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT a.id, a.email, a.role, a.password_hash, a.must_change_password, s.csrf, s.created_at, s.last_seen \
             FROM console_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, email, role, hash, must, csrf, created, seen)) = row else {
            return Ok(None);
        };
        let t = now.timestamp();
        if t - seen > idle.num_seconds() || t - created > absolute.num_seconds() {
            self.end_console_session(token_hash).await?;
            return Ok(None);
        }
        if t - seen >= 60 {
            sqlx::query("UPDATE console_sessions SET last_seen = $1 WHERE token_hash = $2")
                .bind(t)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        let Some(operator) = operator((id, email, role, hash, must)) else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            operator,
            csrf,
            created_at: ts(created),
            last_seen: ts(seen),
        }))
    }

    pub async fn end_console_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// "Log out everywhere": every session of the operator; how many there were.
    pub async fn end_console_sessions_of(&self, operator_id: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE admin_id = $1")
            .bind(operator_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Failed RADIUS logins since `since` (dashboard).
    pub async fn failed_logins_since(&self, since: DateTime<Utc>) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM auth_log WHERE accepted = 0 AND at >= $1")
                .bind(since.timestamp())
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }
}
