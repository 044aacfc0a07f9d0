//! JSON API bearer tokens and the membership-webhook replay record. Tokens are random and shown
//! once; only their SHA-256 is stored (the caller hashes), so a database leak hands out nothing.

use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use chrono::{DateTime, Utc};

/// What a token may do. A route names the one scope it needs.
pub const SCOPES: [&str; 9] = [
    "members:read",
    "members:write",
    "secrets:read",
    "plans:read",
    "vouchers:read",
    "vouchers:write",
    "sessions:read",
    "sessions:write",
    "explain:read",
];

#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn allows(&self, scope: &str) -> bool {
        self.revoked_at.is_none() && self.scopes.iter().any(|s| s == scope)
    }
}

type TokenRow = (i64, String, String, String, i64, Option<i64>, Option<i64>);

fn token(r: TokenRow) -> ApiToken {
    ApiToken {
        id: r.0,
        name: r.1,
        scopes: r.2.split_whitespace().map(str::to_string).collect(),
        created_by: r.3,
        created_at: ts(r.4),
        last_used_at: r.5.map(ts),
        revoked_at: r.6.map(ts),
    }
}

const TOKEN_COLS: &str =
    "id, name, scopes, created_by, created_at, last_used_at, revoked_at FROM api_tokens";

/// Checks a scope list (`members:read,plans:read` or space-separated; `all` = every scope).
pub fn parse_scopes(s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            return Ok(SCOPES.iter().map(|s| s.to_string()).collect());
        }
        if !SCOPES.contains(&part) {
            return Err(StoreError::Invalid(format!(
                "unknown API scope {part:?}: use {} or all",
                SCOPES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    if out.is_empty() {
        return Err(StoreError::Invalid(
            "an API token needs at least one scope".into(),
        ));
    }
    Ok(out)
}

impl Store {
    /// Records a token by the SHA-256 of its value.
    pub async fn create_api_token(
        &self,
        name: &str,
        scopes: &[String],
        token_hash: &str,
        actor: &Actor,
    ) -> Result<ApiToken> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(StoreError::Invalid(
                "token name: 1–100 characters (say what uses it, e.g. \"billing sync\")".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (name, token_hash, scopes, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join(" "))
        .bind(&actor.name)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup("that token"))?;
        let row: TokenRow = sqlx::query_as(&format!("SELECT {TOKEN_COLS} WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let t = token(row);
        self.finish(
            tx,
            actor,
            Audit::new("api_token.create", "api_token", id.to_string()).after(format!(
                "name={:?} scopes={}",
                t.name,
                t.scopes.join(",")
            )),
        )
        .await?;
        Ok(t)
    }

    /// The live token with this hash, its use recorded (at most once a minute, to spare
    /// writes on a busy integration).
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLS} WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(t) = row.map(token) else {
            return Ok(None);
        };
        let now = now_secs();
        if t.last_used_at.is_none_or(|u| now - u.timestamp() >= 60) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(t.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(t))
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLS} ORDER BY revoked_at IS NOT NULL, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(token).collect())
    }

    /// Revokes by id; revoking a revoked token is an error that says so.
    pub async fn revoke_api_token(&self, id: i64, actor: &Actor) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {TOKEN_COLS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let t = row
            .map(token)
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))?;
        if t.revoked_at.is_some() {
            return Err(StoreError::Invalid(format!(
                "API token {id} ({}) is already revoked",
                t.name
            )));
        }
        let now = now_secs();
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.finish(
            tx,
            actor,
            Audit::new("api_token.revoke", "api_token", id.to_string())
                .before(format!("name={:?}", t.name)),
        )
        .await?;
        Ok(ApiToken {
            revoked_at: Some(ts(now)),
            ..t
        })
    }

    /// Whether a webhook event id was applied already (a retried delivery).
    pub async fn webhook_seen(&self, event_id: &str) -> Result<bool> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT event_id FROM webhook_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Records an applied webhook event id; `false` when it was recorded before.
    pub async fn record_webhook(
        &self,
        event_id: &str,
        kind: &str,
        member_id: Option<&str>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO webhook_events (event_id, received_at, kind, member_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(now_secs())
        .bind(kind)
        .bind(member_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
