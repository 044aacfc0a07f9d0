//! The accounting spool: records the database could not take because it was unreachable,
//! appended in arrival order as JSON lines and fsync'd before the NAS is answered, then
//! written to the database (in the same order) once it answers again. Writing a record twice
//! is harmless (sessions are upserted by NAS and Acct-Session-Id), so a crash during a flush
//! only repeats work; nothing acknowledged is lost.

use frontdesk_core::store::radius::AccountingRecord;
use frontdesk_core::store::{Store, StoreError};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{info, warn};

pub struct Spool {
    path: PathBuf,
    /// Records are waiting: new ones go behind them, not to the database.
    pending: AtomicBool,
    /// One appender or flusher at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Spool {
    /// Opens the spool at `path`; records left by an earlier run are pending.
    pub fn open(path: PathBuf) -> Spool {
        let pending = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        if pending {
            info!(path = %path.display(), "accounting spool holds records from an earlier run; writing them when the database answers");
        }
        Spool {
            path,
            pending: AtomicBool::new(pending),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// Appends records durably (fsync) before they are acknowledged.
    pub async fn append(&self, records: &[AccountingRecord]) -> std::io::Result<()> {
        let _g = self.lock.lock().await;
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()
        })
        .await
        .map_err(std::io::Error::other)??;
        self.pending.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Writes the spooled records to the database in order; how many. The spool is emptied
    /// only after they are committed. A record the database refuses (not an outage) is logged
    /// and skipped so that it cannot hold up the rest.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let _g = self.lock.lock().await;
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.pending.store(false, Ordering::SeqCst);
                return Ok(0);
            }
            Err(e) => return Err(StoreError::Invalid(format!("accounting spool: {e}"))),
        };
        let records: Vec<AccountingRecord> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(error = %e, "accounting spool: unreadable line skipped");
                    None
                }
            })
            .collect();
        for chunk in records.chunks(500) {
            match store.record_accounting(chunk).await {
                Ok(()) => {}
                Err(e) if Store::is_unreachable(&e) => return Err(e),
                Err(_) => {
                    for r in chunk {
                        if let Err(e) = store.record_accounting(std::slice::from_ref(r)).await {
                            if Store::is_unreachable(&e) {
                                return Err(e);
                            }
                            warn!(error = %e, session = %r.session_id, "accounting spool: record refused by the database, skipped");
                        }
                    }
                }
            }
        }
        std::fs::remove_file(&self.path)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| StoreError::Invalid(format!("accounting spool: {e}")))?;
        self.pending.store(false, Ordering::SeqCst);
        Ok(records.len())
    }
}
