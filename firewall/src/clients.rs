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
    Authorize(MacAddr, u64, Option<IpAddr>),
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

fn seconds_until(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    match until {
        None => MAX_AUTHORIZATION.as_secs(),
        Some(t) => {
            let ms = (t - now).num_milliseconds().max(0) as u64;
            ms.div_ceil(1000).min(MAX_AUTHORIZATION.as_secs() * 365)
        }
    }
}

#[async_trait]
impl ClientAuthorizer for NftAuthorizer {
    async fn authorize(
        &self,
        client: &ClientRef,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), ActError> {
        let secs = seconds_until(until, frontdesk_core::clock::now());
        if secs == 0 {
            return self.revoke(client).await;
        }
        self.submit(Op::Authorize(client.mac, secs, client.ip))
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
            for j in &jobs {
                match j.op {
                    Op::Authorize(mac, secs, _) => authorize_batch(&mut batch, mac, secs),
                    Op::Revoke(mac, _) => revoke_batch(&mut batch, mac),
                }
            }
            let result = nft.run(&batch).await.map_err(|e| e.to_string());
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
                        Op::Authorize(mac, secs, ip) => {
                            let t = now + Duration::from_secs(secs);
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
    fn seconds_round_up_and_are_bounded() {
        let now = Utc::now();
        assert_eq!(
            seconds_until(Some(now + chrono::Duration::milliseconds(1500)), now),
            2
        );
        assert_eq!(
            seconds_until(Some(now - chrono::Duration::seconds(5)), now),
            0
        );
        assert_eq!(seconds_until(None, now), MAX_AUTHORIZATION.as_secs());
    }
}
