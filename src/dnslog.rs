//! The protective DNS query log: what every client asked and what became of it, written to
//! the database in batches off the resolver's path, kept `[dns] log_days` days.
//!
//! Privacy: `[dns] log = "blocked"` logs only blocked queries for everyone, and
//! `log_blocked_only = [plans]` does so for those plans' clients (e.g. a team that asked).
//! The resolver never waits for the log: lines go through a bounded queue, and when the
//! database falls behind, lines are dropped and counted (`/metrics`), never queued forever.

use crate::config::{DnsConfig, DnsLogMode};
use frontdesk_core::store::dns::QueryLogEntry;
use frontdesk_core::store::Store;
use frontdesk_dns::resolver::Outcome;
use frontdesk_dns::server::Seen;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines waiting for the database at most.
const QUEUE: usize = 100_000;
/// Lines written per transaction at most.
const BATCH: usize = 10_000;
/// How long the writer collects lines before a write.
const FLUSH: Duration = Duration::from_millis(500);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct QueryLog {
    tx: mpsc::Sender<QueryLogEntry>,
    mode: DnsLogMode,
    blocked_only: HashSet<String>,
    /// Plan of clients that map to none (for `log_blocked_only`).
    default_plan: String,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

static RUNNING: OnceLock<Arc<QueryLog>> = OnceLock::new();

/// The running query log (metrics read its counters).
pub fn running() -> Option<Arc<QueryLog>> {
    RUNNING.get().cloned()
}

pub fn result_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Cached => "cached",
        Outcome::Forwarded => "forwarded",
        Outcome::Blocked { .. } => "blocked",
        Outcome::Canary => "canary",
        Outcome::FormErr => "formerr",
        Outcome::NotImp => "notimp",
        Outcome::Refused => "refused",
        Outcome::ServFail => "servfail",
        Outcome::Bogus => "bogus",
    }
}

impl QueryLog {
    /// Starts the writer and the hourly retention sweep; `None` with `log = "off"`.
    pub fn start(cfg: &DnsConfig, store: Store) -> Option<Arc<QueryLog>> {
        if cfg.log == DnsLogMode::Off {
            tracing::info!("DNS query log off ([dns] log = \"off\")");
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let log = Arc::new(QueryLog {
            tx,
            mode: cfg.log,
            blocked_only: cfg.log_blocked_only.iter().cloned().collect(),
            default_plan: cfg.default_policy.clone().unwrap_or_else(|| "guest".into()),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let _ = RUNNING.set(log.clone());
        tokio::spawn(write(log.clone(), store.clone(), rx));
        let days = i64::from(cfg.log_days.max(1));
        tokio::spawn(async move {
            loop {
                let before = frontdesk_core::clock::now() - chrono::Duration::days(days);
                match store.prune_dns_log(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(lines = n, days, "DNS query log: old lines deleted"),
                    Err(e) => tracing::warn!(error = %e, "DNS query log: old lines not deleted"),
                }
                tokio::time::sleep(PRUNE_EVERY).await;
            }
        });
        Some(log)
    }

    /// Whether this query is logged at all (privacy settings).
    pub fn wants(&self, plan: Option<&str>, outcome: &Outcome) -> bool {
        let blocked = matches!(outcome, Outcome::Blocked { .. });
        match self.mode {
            DnsLogMode::Off => false,
            DnsLogMode::Blocked => blocked,
            DnsLogMode::All => {
                blocked
                    || !self
                        .blocked_only
                        .contains(plan.unwrap_or(&self.default_plan))
            }
        }
    }

    pub fn observe(&self, seen: &Seen<'_>) {
        if !self.wants(seen.plan, seen.outcome) {
            return;
        }
        let line = QueryLogEntry {
            at: frontdesk_core::clock::now(),
            client: seen.client.to_string(),
            plan: seen.plan.map(str::to_string),
            member: seen.member.map(str::to_string),
            name: seen.asked.name.clone(),
            qtype: seen.asked.qtype,
            result: result_name(seen.outcome).into(),
            list: match seen.outcome {
                Outcome::Blocked { list, .. } => Some(list.clone()),
                _ => None,
            },
        };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write(log: Arc<QueryLog>, store: Store, mut rx: mpsc::Receiver<QueryLogEntry>) {
    let mut buf = Vec::with_capacity(BATCH);
    let mut warned = false;
    loop {
        if rx.recv_many(&mut buf, BATCH).await == 0 {
            return;
        }
        // Collect a little longer: one transaction for many lines.
        tokio::time::sleep(FLUSH).await;
        while buf.len() < BATCH {
            match rx.try_recv() {
                Ok(l) => buf.push(l),
                Err(_) => break,
            }
        }
        match store.record_dns_log(&buf).await {
            Ok(()) => {
                log.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
                warned = false;
            }
            Err(e) => {
                log.dropped.fetch_add(buf.len() as u64, Ordering::Relaxed);
                if !warned {
                    tracing::warn!(error = %e, lines = buf.len(), "DNS query log: lines not written (dropped)");
                    warned = true;
                }
            }
        }
        buf.clear();
    }
}
