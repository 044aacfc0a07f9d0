//! The authorized-clients set, changed per client through element batches (never a reload).
//!
//! Concurrent changes are coalesced: one worker takes everything queued and applies it as one
//! `nft` transaction, so 10,000 logins cost a handful of transactions, not 10,000 processes.
//! The worker also keeps each client's deadline: when `valid_until` passes, the kernel has
//! already dropped the element (its timeout), and the worker flushes the client's conntrack
//! entries so that established connections end too.

use crate::apply::Nft;
use crate::conntrack::Conntrack;
use crate::neigh;
use crate::ruleset::{authorize_batch, revoke_batch};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use frontdesk_core::mac::MacAddr;
use frontdesk_core::ports::{ActError, ClientAuthorizer, ClientRef};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Longest authorization when the caller gives no end.
pub const MAX_AUTHORIZATION: Duration = Duration::from_secs(24 * 3600);

enum Op {
    /// Until a deadline: the timeout is computed when the batch is written, so time spent
    /// queued behind other changes does not make the element outlive its end.
    Authorize(MacAddr, Instant, Option<IpAddr>),
    Revoke(MacAddr, Option<IpAddr>),
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<(), String>>,
}

/// `ClientAuthorizer` for gateway mode.
#[derive(Clone)]
pub struct NftAuthorizer {
    tx: mpsc::Sender<Job>,
}

impl NftAuthorizer {
    /// Starts the worker (on the current tokio runtime).
    pub fn start(nft: Nft, conntrack: Conntrack) -> NftAuthorizer {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(worker(nft, conntrack, rx));
        NftAuthorizer { tx }
    }

    async fn submit(&self, op: Op) -> Result<(), ActError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { op, done })
            .await
            .map_err(|_| ActError::Other("firewall worker stopped".into()))?;
        wait.await
            .map_err(|_| ActError::Other("firewall worker stopped".into()))?
            .map_err(|e| ActError::Refused("nftables".into(), e))
    }
}

/// The element timeout, in milliseconds: the element goes at `until` to the millisecond
/// (closing time is an instant, not the next whole second).
fn millis_until(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    let max = MAX_AUTHORIZATION.as_millis() as u64;
    match until {
        None => max,
        Some(t) => ((t - now).num_milliseconds().max(0) as u64).min(max * 365),
    }
}

#[async_trait]
impl ClientAuthorizer for NftAuthorizer {
    async fn authorize(
        &self,
        client: &ClientRef,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), ActError> {
        let ms = millis_until(until, frontdesk_core::clock::now());
        if ms == 0 {
            return self.revoke(client).await;
        }
        let deadline = Instant::now() + Duration::from_millis(ms);
        self.submit(Op::Authorize(client.mac, deadline, client.ip))
            .await
    }

    async fn revoke(&self, client: &ClientRef) -> Result<(), ActError> {
        self.submit(Op::Revoke(client.mac, client.ip)).await
    }
}

/// Largest number of changes in one transaction.
const MAX_BATCH: usize = 20_000;

async fn worker(nft: Nft, conntrack: Conntrack, mut rx: mpsc::Receiver<Job>) {
    // Deadlines of authorized clients: (when, mac) ordered, and mac → (when, known ip).
    let mut by_time: BTreeSet<(Instant, MacAddr)> = BTreeSet::new();
    let mut by_mac: HashMap<MacAddr, (Instant, Option<IpAddr>)> = HashMap::new();
    let mut warned = false;
    // Seconds nft takes per change in a large batch (EWMA).
    let mut per_change: Option<f64> = None;
    loop {
        let next = by_time.first().map(|(t, _)| *t);
        let job = tokio::select! {
            j = rx.recv() => match j { Some(j) => Some(j), None => return },
            _ = sleep_until(next) => None,
        };
        let mut jobs = Vec::new();
        if let Some(j) = job {
            jobs.push(j);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        // Expired clients: the element is gone already; end their connections.
        let mut flush: Vec<(MacAddr, Option<IpAddr>)> = Vec::new();
        while let Some(&(t, mac)) = by_time.first() {
            if t > now {
                break;
            }
            by_time.pop_first();
            if let Some((_, ip)) = by_mac.remove(&mac) {
                flush.push((mac, ip));
            }
        }
        if !jobs.is_empty() {
            let mut batch = String::with_capacity(jobs.len() * 160);
            // The kernel starts an element's timeout when the transaction commits, after nft
            // has parsed the whole batch: subtract that expected time (per change, measured on
            // earlier batches) so 10,000 guests authorized at once still end on the instant.
            // Three quarters of it: the rest of a run is process start and exit (measured with
            // `gateway-bench`: a full lag made 10,000 elements end ~50 ms early, none ~165 ms late).
            let lag = Duration::from_secs_f64(0.75 * per_change.unwrap_or(0.0) * jobs.len() as f64);
            for j in &jobs {
                match j.op {
                    Op::Authorize(mac, deadline, _) => {
                        let left = deadline.saturating_duration_since(Instant::now() + lag);
                        authorize_batch(&mut batch, mac, left.as_millis() as u64)
                    }
                    Op::Revoke(mac, _) => revoke_batch(&mut batch, mac),
                }
            }
            let started = Instant::now();
            let result = nft.run(&batch).await.map_err(|e| e.to_string());
            if result.is_ok() && jobs.len() >= 100 {
                // Only big batches say something about per-change cost (a small one is mostly
                // process start-up, which is before the parse, not between parse and commit).
                let sample = started.elapsed().as_secs_f64() / jobs.len() as f64;
                per_change = Some(per_change.map_or(sample, |p| 0.7 * p + 0.3 * sample));
            }
            if let Err(e) = &result {
                tracing::warn!(error = %e, changes = jobs.len(), "firewall: client change failed");
            } else {
                for j in &jobs {
                    let mac = match j.op {
                        Op::Authorize(mac, _, _) | Op::Revoke(mac, _) => mac,
                    };
                    if let Some((t, _)) = by_mac.remove(&mac) {
                        by_time.remove(&(t, mac));
                    }
                    match j.op {
                        Op::Authorize(mac, t, ip) => {
                            by_time.insert((t, mac));
                            by_mac.insert(mac, (t, ip));
                        }
                        Op::Revoke(mac, ip) => flush.push((mac, ip)),
                    }
                }
            }
            // Revokes answer after their connections are flushed; authorizations right away.
            let mut revokes = Vec::new();
            for j in jobs {
                match (&j.op, &result) {
                    (Op::Revoke(..), Ok(())) => revokes.push(j.done),
                    _ => {
                        let _ = j.done.send(result.clone());
                    }
                }
            }
            end_connections(&conntrack, &flush, &mut warned).await;
            flush.clear();
            for d in revokes {
                let _ = d.send(Ok(()));
            }
        }
        end_connections(&conntrack, &flush, &mut warned).await;
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn end_connections(ct: &Conntrack, clients: &[(MacAddr, Option<IpAddr>)], warned: &mut bool) {
    if clients.is_empty() {
        return;
    }
    let table = tokio::task::spawn_blocking(neigh::dump)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let mut ips: Vec<IpAddr> = Vec::new();
    for (mac, ip) in clients {
        ips.extend(ip.map(neigh::canonical));
        ips.extend(table.iter().filter(|n| n.mac == *mac).map(|n| n.ip));
    }
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        return;
    }
    if let Err(e) = ct.flush(&ips).await {
        if !*warned || ct.available() {
            tracing::warn!(error = %e, "firewall: could not end de-authorized clients' connections");
            *warned = true;
        }
    }
}

/// Switches whole tier networks off and on for the scheduler (`[gateway.hours]`): the
/// `closed` interface set, replaced in one transaction. Packets from a closed network are
/// dropped before connection tracking would let established flows through.
pub struct NftSwitch(pub Nft);

#[async_trait]
impl frontdesk_core::scheduler::NetworkSwitch for NftSwitch {
    async fn set_closed(&self, closed: &[String]) -> Result<(), ActError> {
        let mut batch = String::new();
        crate::ruleset::closed_batch(&mut batch, closed);
        self.0
            .run(&batch)
            .await
            .map_err(|e| ActError::Other(format!("nft: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_exact_and_bounded() {
        let now = Utc::now();
        assert_eq!(
            millis_until(Some(now + chrono::Duration::milliseconds(1500)), now),
            1500
        );
        assert_eq!(
            millis_until(Some(now - chrono::Duration::seconds(5)), now),
            0
        );
        assert_eq!(
            millis_until(None, now),
            MAX_AUTHORIZATION.as_millis() as u64
        );
    }
}
