//! Following the `changes` table: PostgreSQL LISTEN/NOTIFY, SQLite a cheap poll of the
//! sequence (SPEC §3). Either way a change committed by any process is seen within a second.

use super::{ts, Backend, Result, Store, StoreError};
use crate::model::Change;
use crate::ports::ChangeFeed;
use async_trait::async_trait;
use std::time::Duration;

/// SQLite: how often the sequence is polled (one indexed read of a tiny row).
const SQLITE_POLL: Duration = Duration::from_millis(200);
/// PostgreSQL: a poll as a safety net if a notification is lost with a reconnect.
const POSTGRES_FALLBACK_POLL: Duration = Duration::from_secs(2);

impl Store {
    pub async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<Change>> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT seq, at, kind, object FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, kind, object)| Change {
                seq,
                at: ts(at),
                kind,
                object,
            })
            .collect())
    }

    pub async fn last_change_seq(&self) -> Result<i64> {
        let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// A feed of changes committed after this call.
    pub async fn follow_changes(&self) -> Result<SqlChangeFeed> {
        let last = self.last_change_seq().await?;
        let listener = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let mut l = sqlx::postgres::PgListener::connect(&self.url).await?;
                l.listen("frontdesk_changes").await?;
                Some(l)
            }
        };
        Ok(SqlChangeFeed {
            store: self.clone(),
            last,
            listener,
        })
    }
}

pub struct SqlChangeFeed {
    store: Store,
    last: i64,
    listener: Option<sqlx::postgres::PgListener>,
}

impl SqlChangeFeed {
    pub fn last_seq(&self) -> i64 {
        self.last
    }
}

#[async_trait]
impl ChangeFeed for SqlChangeFeed {
    async fn next_batch(&mut self) -> Result<Vec<Change>, StoreError> {
        loop {
            let batch = self.store.changes_after(self.last, 1000).await?;
            if let Some(last) = batch.last() {
                self.last = last.seq;
                return Ok(batch);
            }
            match &mut self.listener {
                None => tokio::time::sleep(SQLITE_POLL).await,
                Some(l) => {
                    // Either a notification or the fallback poll; errors reconnect inside recv.
                    let _ = tokio::time::timeout(POSTGRES_FALLBACK_POLL, l.recv()).await;
                }
            }
        }
    }
}
