//! RADIUS operational data: accounting sessions, the auth log, NAS counters, and the
//! credential material the RADIUS index needs.

use super::{ts, Result, Store};
use crate::mac::MacAddr;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcctStatus {
    Start,
    Interim,
    Stop,
    /// Accounting-On / Accounting-Off: the NAS (re)started; its sessions are over.
    NasRestart,
}

/// One Accounting-Request, as it must be stored before the Accounting-Response is sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountingRecord {
    pub at: DateTime<Utc>,
    pub nas_id: i64,
    pub nas_addr: String,
    pub status: AcctStatus,
    pub session_id: String,
    pub user_name: String,
    pub member_id: Option<String>,
    pub mac: Option<MacAddr>,
    pub framed_ip: Option<String>,
    pub vlan: Option<u16>,
    pub class: Option<String>,
    pub input_octets: i64,
    pub output_octets: i64,
    pub session_time: i64,
    pub terminate_cause: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuthLogEntry {
    pub at: DateTime<Utc>,
    pub nas_id: Option<i64>,
    pub user_name: String,
    pub mac: Option<String>,
    pub method: String,
    pub accepted: bool,
    pub reason: String,
    pub vlan: Option<u16>,
    pub latency_us: i64,
}

/// What the auth-log page filters on; `None`: any.
#[derive(Clone, Debug, Default)]
pub struct AuthLogFilter {
    pub user: Option<String>,
    pub mac: Option<String>,
    pub nas_id: Option<i64>,
    pub accepted: Option<bool>,
    pub reason: Option<String>,
}

type AuthRow = (
    i64,
    Option<i64>,
    String,
    Option<String>,
    String,
    i64,
    String,
    Option<i64>,
    i64,
);

const AUTH_COLS: &str = "at, nas_id, user_name, mac, method, accepted, reason, vlan, latency_us";

fn auth_entry(r: AuthRow) -> AuthLogEntry {
    let (at, nas_id, user_name, mac, method, accepted, reason, vlan, latency_us) = r;
    AuthLogEntry {
        at: ts(at),
        nas_id,
        user_name,
        mac,
        method,
        accepted: accepted != 0,
        reason,
        vlan: vlan.map(|v| v as u16),
        latency_us,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionRow {
    pub id: i64,
    pub nas_id: i64,
    pub nas_addr: String,
    pub acct_session_id: String,
    pub user_name: String,
    pub member_id: Option<String>,
    pub mac: Option<String>,
    pub framed_ip: Option<String>,
    pub vlan: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub input_octets: i64,
    pub output_octets: i64,
    /// Enforcement: `pending`, `acked` or `failed: …` once Frontdesk set out to end it.
    pub disconnect: Option<String>,
    pub disconnect_at: Option<DateTime<Utc>>,
}

/// A member's Wi-Fi secret material, decrypted for the in-memory index.
pub struct WifiSecret {
    pub member_id: String,
    pub nt_hash: [u8; 16],
    pub password: String,
}

type SessionTuple = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);

const SESSION_COLS: &str = "id, nas_id, nas_addr, acct_session_id, user_name, member_id, mac, framed_ip, vlan, started_at, updated_at, stopped_at, input_octets, output_octets, disconnect, disconnect_at";

fn session_from_row(r: SessionTuple) -> SessionRow {
    let (
        id,
        nas_id,
        nas_addr,
        acct_session_id,
        user_name,
        member_id,
        mac,
        framed_ip,
        vlan,
        started,
        updated,
        stopped,
        inp,
        out,
        disconnect,
        disconnect_at,
    ) = r;
    SessionRow {
        id,
        nas_id,
        nas_addr,
        acct_session_id,
        user_name,
        member_id,
        mac,
        framed_ip,
        vlan,
        started_at: ts(started),
        updated_at: ts(updated),
        stopped_at: stopped.map(ts),
        input_octets: inp,
        output_octets: out,
        disconnect,
        disconnect_at: disconnect_at.map(ts),
    }
}

impl Store {
    /// Every member's NT hash and password (CHAP needs the cleartext).
    pub async fn wifi_secrets(&self) -> Result<Vec<WifiSecret>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, nt_hash, password_enc FROM members")
                .fetch_all(&self.pool)
                .await?;
        let key = self.key()?;
        rows.into_iter()
            .map(|(member_id, nt, enc)| {
                let nt_hash = hex::decode(&nt)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        super::StoreError::Invalid(format!(
                            "member {member_id}: stored NT hash is malformed"
                        ))
                    })?;
                Ok(WifiSecret {
                    password: key.decrypt_string(&enc)?,
                    member_id,
                    nt_hash,
                })
            })
            .collect()
    }

    /// Stores a batch of accounting records in one transaction (durable before replies).
    pub async fn record_accounting(&self, batch: &[AccountingRecord]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for r in batch {
            let at = r.at.timestamp();
            if r.status == AcctStatus::NasRestart {
                sqlx::query("UPDATE radius_sessions SET stopped_at = $1, terminate_cause = 'nas-restart' WHERE nas_id = $2 AND stopped_at IS NULL")
                    .bind(at)
                    .bind(r.nas_id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            let stopped = (r.status == AcctStatus::Stop).then_some(at);
            sqlx::query(
                "INSERT INTO radius_sessions (nas_id, nas_addr, acct_session_id, user_name, member_id, mac, framed_ip, vlan, class, \
                 started_at, updated_at, stopped_at, input_octets, output_octets, session_time, terminate_cause) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (nas_id, acct_session_id) DO UPDATE SET \
                 nas_addr = excluded.nas_addr, updated_at = excluded.updated_at, \
                 stopped_at = COALESCE(excluded.stopped_at, radius_sessions.stopped_at), \
                 framed_ip = COALESCE(excluded.framed_ip, radius_sessions.framed_ip), \
                 input_octets = excluded.input_octets, output_octets = excluded.output_octets, \
                 session_time = excluded.session_time, \
                 terminate_cause = COALESCE(excluded.terminate_cause, radius_sessions.terminate_cause)",
            )
            .bind(r.nas_id)
            .bind(&r.nas_addr)
            .bind(&r.session_id)
            .bind(&r.user_name)
            .bind(&r.member_id)
            .bind(r.mac.map(|m| m.to_string()))
            .bind(&r.framed_ip)
            .bind(r.vlan.map(i64::from))
            .bind(&r.class)
            .bind(at)
            .bind(stopped)
            .bind(r.input_octets)
            .bind(r.output_octets)
            .bind(r.session_time)
            .bind(&r.terminate_cause)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends auth-log rows with multi-row INSERTs (the log is written at RADIUS rates).
    pub async fn record_auth_log(&self, batch: &[AuthLogEntry]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        static ROWS: super::RowInsert = super::RowInsert::new(
            "INSERT INTO auth_log (at, nas_id, user_name, mac, method, accepted, reason, vlan, latency_us) VALUES ",
            9,
        );
        for (sql, chunk) in ROWS.chunks(self, batch) {
            let mut q = sqlx::query(sql);
            for e in chunk {
                q = q
                    .bind(e.at.timestamp())
                    .bind(e.nas_id)
                    .bind(&e.user_name)
                    .bind(&e.mac)
                    .bind(&e.method)
                    .bind(e.accepted as i64)
                    .bind(&e.reason)
                    .bind(e.vlan.map(i64::from))
                    .bind(e.latency_us);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest auth-log rows for one RADIUS User-Name (any case), newest first.
    pub async fn recent_auth(&self, user_name: &str, limit: i64) -> Result<Vec<AuthLogEntry>> {
        let rows: Vec<AuthRow> = sqlx::query_as(&format!(
            "SELECT {AUTH_COLS} FROM auth_log WHERE user_name = $1 OR user_name = $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(user_name)
        .bind(user_name.to_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(auth_entry).collect())
    }

    /// The auth log, newest first, filtered (the console's "why was I rejected" page). Text
    /// filters match a part, case-insensitively; every value is a bound parameter.
    pub async fn auth_log_search(
        &self,
        f: &AuthLogFilter,
        limit: i64,
    ) -> Result<Vec<AuthLogEntry>> {
        let mut sql = format!("SELECT {AUTH_COLS} FROM auth_log WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut like = |col: &str, v: &Option<String>, sql: &mut String| {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                binds.push(format!("%{}%", super::like_literal(v)));
                sql.push_str(&format!(
                    " AND LOWER({col}) LIKE ${} ESCAPE '\\'",
                    binds.len()
                ));
            }
        };
        like("user_name", &f.user, &mut sql);
        // MACs in any notation: separators dropped on both sides.
        let mac = f.mac.as_ref().map(|m| m.replace([':', '-', '.'], ""));
        like(
            "REPLACE(REPLACE(REPLACE(mac, ':', ''), '-', ''), '.', '')",
            &mac,
            &mut sql,
        );
        like("reason", &f.reason, &mut sql);
        if let Some(nas) = f.nas_id {
            binds.push(nas.to_string());
            sql.push_str(&format!(" AND CAST(nas_id AS TEXT) = ${}", binds.len()));
        }
        match f.accepted {
            Some(true) => sql.push_str(" AND accepted <> 0"),
            Some(false) => sql.push_str(" AND accepted = 0"),
            None => {}
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        ));
        let mut q = sqlx::query_as::<_, AuthRow>(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(auth_entry)
            .collect())
    }

    /// Sessions; `online_since`: only those without a Stop updated after that instant.
    /// Online sessions (not stopped, accounting since `since`) counted by VLAN (metrics).
    pub async fn online_sessions_by_vlan(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Option<i64>, i64)>> {
        Ok(sqlx::query_as(
            "SELECT vlan, COUNT(*) FROM radius_sessions WHERE stopped_at IS NULL AND updated_at >= $1 GROUP BY vlan ORDER BY vlan",
        )
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn sessions(
        &self,
        online_since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<SessionRow>> {
        let base = format!("SELECT {SESSION_COLS} FROM radius_sessions");
        let rows: Vec<SessionTuple> = match online_since {
            Some(t) => sqlx::query_as(&format!("{base} WHERE stopped_at IS NULL AND updated_at >= $1 ORDER BY started_at DESC, id DESC LIMIT $2"))
                .bind(t.timestamp())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
            None => sqlx::query_as(&format!("{base} ORDER BY started_at DESC, id DESC LIMIT $1"))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        };
        Ok(rows.into_iter().map(session_from_row).collect())
    }

    /// One session by its NAS and Acct-Session-Id (the newest, if the NAS reused the id).
    pub async fn session_by_key(
        &self,
        nas_id: i64,
        acct_session_id: &str,
    ) -> Result<Option<SessionRow>> {
        let row: Option<SessionTuple> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLS} FROM radius_sessions WHERE nas_id = $1 AND acct_session_id = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(nas_id)
        .bind(acct_session_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(session_from_row))
    }

    /// One session by row id, if it is online (no Stop, updated since `online_since`).
    pub async fn online_session(
        &self,
        id: i64,
        online_since: DateTime<Utc>,
    ) -> Result<Option<SessionRow>> {
        let row: Option<SessionTuple> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLS} FROM radius_sessions WHERE id = $1 AND stopped_at IS NULL AND updated_at >= $2"
        ))
        .bind(id)
        .bind(online_since.timestamp())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(session_from_row))
    }

    /// The online sessions (no Stop, updated since `online_since`) of some members.
    pub async fn online_sessions_of(
        &self,
        member_ids: &[&str],
        online_since: DateTime<Utc>,
    ) -> Result<Vec<SessionRow>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(500) {
            // Numbered throughout: SQLite's anonymous `?` cannot follow a numbered `$1`.
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {SESSION_COLS} FROM radius_sessions WHERE stopped_at IS NULL AND updated_at >= $1 AND member_id IN ({}) ORDER BY started_at",
                marks.join(",")
            );
            let mut q = sqlx::query_as::<_, SessionTuple>(&sql).bind(online_since.timestamp());
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(
                q.fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(session_from_row),
            );
        }
        Ok(out)
    }

    /// Records how ending sessions went (`pending`, `acked`, `failed: …`), in one transaction:
    /// one UPDATE per state and 500 sessions (closing time marks thousands at once).
    pub async fn mark_disconnect(&self, marks: &[(i64, String)], at: DateTime<Utc>) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut by_state: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for (id, state) in marks {
            by_state.entry(state.as_str()).or_default().push(*id);
        }
        let mut tx = self.begin().await?;
        for (state, ids) in by_state {
            for chunk in ids.chunks(500) {
                let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                let sql = format!(
                    "UPDATE radius_sessions SET disconnect = $1, disconnect_at = $2 WHERE id IN ({})",
                    marks.join(",")
                );
                let mut q = sqlx::query(&sql).bind(state).bind(at.timestamp());
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the counters of NAS clients (written periodically by `serve`).
    pub async fn save_nas_stats(
        &self,
        stats: &[(i64, String, i64)],
        at: DateTime<Utc>,
    ) -> Result<()> {
        if stats.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (nas_id, counter, value) in stats {
            sqlx::query(
                "INSERT INTO nas_stats (nas_id, counter, value, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (nas_id, counter) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(nas_id)
            .bind(counter)
            .bind(value)
            .bind(at.timestamp())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn nas_stats(&self) -> Result<Vec<(i64, String, i64, DateTime<Utc>)>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT nas_id, counter, value, updated_at FROM nas_stats ORDER BY nas_id, counter",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(n, c, v, t)| (n, c, v, ts(t)))
            .collect())
    }
}
