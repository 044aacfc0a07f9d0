//! Aggregates for the console's dashboard charts and alerts: logins and rejections per hour,
//! session spans (devices online by tier, occupancy), Disconnect-Requests NASes did not
//! answer. All read-only, bounded by a start time.

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// Auth log counts in one hour (`hour` = unix seconds / 3600).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCount {
    pub hour: i64,
    pub accepted: bool,
    pub reason: String,
    pub count: i64,
}

/// A RADIUS session's time online (an open session ends "now" if it reported recently).
#[derive(Clone, Debug)]
pub struct SessionSpan {
    pub member_id: Option<String>,
    pub vlan: Option<i64>,
    pub start: i64,
    pub end: i64,
}

/// member_id, vlan, started_at, updated_at, stopped_at.
type SpanRow = (Option<String>, Option<i64>, i64, i64, Option<i64>);

impl Store {
    pub async fn auth_counts_since(&self, since: DateTime<Utc>) -> Result<Vec<AuthCount>> {
        let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT at / 3600, accepted, reason, COUNT(*) FROM auth_log WHERE at >= $1 \
             GROUP BY at / 3600, accepted, reason ORDER BY 1",
        )
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, accepted, reason, count)| AuthCount {
                hour,
                accepted: accepted != 0,
                reason,
                count,
            })
            .collect())
    }

    /// Sessions online at some time in `[since, now]`. A session without a Stop counts as
    /// online until its last report, or until now if it reported within `horizon`.
    pub async fn session_spans(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        horizon: chrono::Duration,
    ) -> Result<Vec<SessionSpan>> {
        let rows: Vec<SpanRow> = sqlx::query_as(
            "SELECT member_id, vlan, started_at, updated_at, stopped_at FROM radius_sessions \
             WHERE started_at <= $2 AND COALESCE(stopped_at, updated_at) >= $1 \
             UNION ALL SELECT member_id, vlan, started_at, updated_at, stopped_at FROM radius_sessions \
             WHERE stopped_at IS NULL AND updated_at < $1 AND updated_at >= $3",
        )
        .bind(since.timestamp())
        .bind(now.timestamp())
        .bind((now - horizon).timestamp())
        .fetch_all(&self.pool)
        .await?;
        let recent = (now - horizon).timestamp();
        Ok(rows
            .into_iter()
            .map(|(member_id, vlan, start, updated, stopped)| SessionSpan {
                member_id,
                vlan,
                start,
                end: match stopped {
                    Some(s) => s,
                    None if updated >= recent => now.timestamp(),
                    None => updated,
                },
            })
            .collect())
    }

    /// Disconnect-Requests that failed since `since`, per NAS address, with the newest note.
    pub async fn disconnect_failures_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64, String)>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT nas_addr, COUNT(*), MAX(disconnect) FROM radius_sessions \
             WHERE disconnect LIKE 'failed%' AND disconnect_at >= $1 GROUP BY nas_addr ORDER BY nas_addr",
        )
        .bind(since.timestamp())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
