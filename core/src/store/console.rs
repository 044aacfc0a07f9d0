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
    /// Two-factor (TOTP) enrolled.
    pub totp: bool,
}

#[derive(Clone, Debug)]
pub struct ConsoleSession {
    pub operator: Operator,
    /// Password checked, second factor not yet.
    pub mfa_pending: bool,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

type OperatorRow = (i64, String, String, String, i64, i64);

const OPERATOR_COLS: &str = "a.id, a.email, a.role, a.password_hash, a.must_change_password, CASE WHEN a.totp_secret_enc IS NULL THEN 0 ELSE 1 END";

fn operator(r: OperatorRow) -> Option<Operator> {
    Some(Operator {
        id: r.0,
        email: r.1,
        role: r.2.parse().ok()?,
        password_hash: r.3,
        must_change_password: r.4 != 0,
        totp: r.5 != 0,
    })
}

impl Store {
    pub async fn operator_by_email(&self, email: &str) -> Result<Option<Operator>> {
        let row: Option<OperatorRow> = sqlx::query_as(&format!(
            "SELECT {OPERATOR_COLS} FROM admins a WHERE a.email = $1"
        ))
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
        mfa_pending: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, admin_id, csrf, created_at, last_seen, ip, mfa_pending) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(operator_id)
        .bind(csrf)
        .bind(now.timestamp())
        .bind(ip)
        .bind(i64::from(mfa_pending))
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
        type Row = (i64, String, String, String, i64, i64, String, i64, i64, i64);
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {OPERATOR_COLS}, s.csrf, s.created_at, s.last_seen, s.mfa_pending \
             FROM console_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, email, role, hash, must, totp, csrf, created, seen, pending)) = row else {
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
        let Some(operator) = operator((id, email, role, hash, must, totp)) else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            operator,
            mfa_pending: pending != 0,
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

    /// The second factor passed: the session gets a new token (the half-open one is void).
    pub async fn complete_mfa(&self, old_hash: &str, new_hash: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE console_sessions SET token_hash = $1, mfa_pending = 0 WHERE token_hash = $2 AND mfa_pending = 1",
        )
        .bind(new_hash)
        .bind(old_hash)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The operator's TOTP secret (decrypted) and the last step used.
    pub async fn totp_secret(&self, operator_id: i64) -> Result<Option<(Vec<u8>, i64)>> {
        let row: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT totp_secret_enc, totp_last_step FROM admins WHERE id = $1")
                .bind(operator_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((Some(enc), step)) => Ok(Some((self.key()?.decrypt(&enc)?, step))),
            _ => Ok(None),
        }
    }

    /// Uses a TOTP step: false when it (or a later one) was used already (replay).
    pub async fn use_totp_step(&self, operator_id: i64, step: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE admins SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(operator_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Uses a recovery code (given as its SHA-256): true once.
    pub async fn use_recovery_code(&self, operator_id: i64, code_hash: &str) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1 AND code_hash = $2")
                .bind(operator_id)
                .bind(code_hash)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A secret shown for enrolment, kept until confirmed with a code.
    pub async fn set_totp_pending(&self, operator_id: i64, secret: &[u8]) -> Result<()> {
        let enc = self.key()?.encrypt(secret);
        sqlx::query("UPDATE admins SET totp_pending_enc = $1 WHERE id = $2")
            .bind(enc)
            .bind(operator_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn totp_pending(&self, operator_id: i64) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT totp_pending_enc FROM admins WHERE id = $1")
                .bind(operator_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((Some(enc),)) => Ok(Some(self.key()?.decrypt(&enc)?)),
            _ => Ok(None),
        }
    }

    /// Confirms enrolment: the pending secret becomes the secret, `step` counts as used, and
    /// the recovery codes (SHA-256) replace any earlier ones.
    pub async fn enable_totp(
        &self,
        operator_id: i64,
        step: i64,
        recovery_hashes: &[String],
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (email,): (String,) = sqlx::query_as(
            "UPDATE admins SET totp_secret_enc = totp_pending_enc, totp_pending_enc = NULL, totp_last_step = $1 \
             WHERE id = $2 AND totp_pending_enc IS NOT NULL RETURNING email",
        )
        .bind(step)
        .bind(operator_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
            .bind(operator_id)
            .execute(&mut *tx)
            .await?;
        for h in recovery_hashes {
            sqlx::query("INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES ($1, $2)")
                .bind(operator_id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        self.finish(tx, actor, Audit::new("admin.totp-enable", "admin", &email))
            .await
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
