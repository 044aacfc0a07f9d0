//! The one scheduler behind after-hours enforcement (SPEC §1, issue "after-hours").
//!
//! A sweep re-decides every online subject with the same `decide()` RADIUS and the portal use:
//! RADIUS sessions (from accounting), portal devices, and tier networks with business hours.
//! What is no longer allowed is ended (Disconnect-Request, element removal, network switched
//! off); what is still allowed contributes its [`Decision::next_change`], and the scheduler
//! sleeps until the earliest of them. No polling: between changes it sleeps, however long.
//!
//! It wakes early when
//! - an [`Alarm`] is set earlier (a RADIUS Accept or portal login with an earlier end than the
//!   planned wake, e.g. a guest let in ten minutes before closing);
//! - the catalog changes (hours, closures, plans: everything may move);
//! - the wall clock is stepped (NTP, an operator's `date -s`): tokio's timers are monotonic, so
//!   a sleep computed before the step would fire at the wrong wall time.
//!
//! Nothing is kept between sweeps that the database does not hold, so a restart re-plans from
//! the sessions and portal clients on record: what ended while Frontdesk was down is ended at
//! the first sweep.

use crate::decide::{decide, Catalog, Decision, Holder, Reason, Resource, Subject};
use crate::enforce::{self, Outcome, PortalEnd, SessionEnd, ONLINE_HORIZON};
use crate::ports::{ActError, ClientAuthorizer, Disconnector};
use crate::schedule::{containing, WindowSpec};
use crate::store::portal::{PortalClient, PortalKind};
use crate::store::radius::SessionRow;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

/// When a Disconnect failed (NAS down), the session is tried again this much later while it
/// still shows as online.
const RETRY_FAILED: chrono::Duration = chrono::Duration::seconds(60);

/// Without a realtime-clock watch (no timerfd), sleeps are capped so a clock step is noticed
/// within this long.
const BLIND_CAP: chrono::Duration = chrono::Duration::minutes(5);

/// "Wake no later than": lock-free, so the RADIUS hot path can set it on every Accept.
#[derive(Debug)]
pub struct Alarm {
    earliest_ms: AtomicI64,
    notify: Notify,
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm {
            earliest_ms: AtomicI64::new(i64::MAX),
            notify: Notify::new(),
        }
    }
}

impl Alarm {
    /// Asks for a sweep at `t` (or earlier, if one is planned anyway).
    pub fn at(&self, t: DateTime<Utc>) {
        let ms = t.timestamp_millis();
        if ms < self.earliest_ms.fetch_min(ms, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    /// Asks for a sweep now (a change of data).
    pub fn now(&self) {
        self.at(DateTime::<Utc>::MIN_UTC);
    }

    /// The earliest requested wake, if any.
    pub fn peek(&self) -> Option<DateTime<Utc>> {
        match self.earliest_ms.load(Ordering::Acquire) {
            i64::MAX => None,
            ms => Some(DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)),
        }
    }

    /// Clears a wake that is due at `now` (a sweep starting now satisfies it); later ones stay.
    fn clear_due(&self, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let mut cur = self.earliest_ms.load(Ordering::Acquire);
        while cur <= now_ms {
            match self.earliest_ms.compare_exchange(
                cur,
                i64::MAX,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Decides for the subject of an online session. The binary backs it with the RADIUS index
/// (no database reads per session); tests with [`StoreLookup`].
pub trait Lookup: Send + Sync {
    fn catalog(&self) -> Arc<Catalog>;
    /// `None`: the session's subject is not known (deleted; unknown user name): left alone.
    fn decide_session(
        &self,
        catalog: &Catalog,
        s: &SessionRow,
        now: DateTime<Utc>,
    ) -> Option<Decision>;
}

/// Switches whole tier networks off and on (gateway mode: the nftables `closed` set).
#[async_trait]
pub trait NetworkSwitch: Send + Sync {
    /// Makes exactly `closed` (interface names) the set of switched-off networks.
    async fn set_closed(&self, closed: &[String]) -> Result<(), ActError>;
}

/// A network that is only on during a window (typically `opening-hours`).
#[derive(Clone, Debug)]
pub struct ScheduledNetwork {
    pub iface: String,
    pub hours: WindowSpec,
}

/// What one sweep did and found.
#[derive(Debug, Default)]
pub struct Sweep {
    pub ended: Vec<Outcome>,
    /// Portal devices whose time ran out since the last sweep.
    pub expired: usize,
    pub sessions_online: usize,
    pub portal_online: usize,
    pub closed_networks: Vec<String>,
    /// When the next sweep is due (`None`: nothing changes by time alone).
    pub next: Option<DateTime<Utc>>,
}

pub struct Scheduler {
    pub store: Store,
    pub lookup: Arc<dyn Lookup>,
    pub disconnector: Arc<dyn Disconnector>,
    pub authorizer: Option<Arc<dyn ClientAuthorizer>>,
    pub networks: Vec<ScheduledNetwork>,
    pub switch: Option<Arc<dyn NetworkSwitch>>,
    pub alarm: Arc<Alarm>,
    /// The closed networks last applied (`None`: not applied yet).
    applied: tokio::sync::Mutex<Option<Vec<String>>>,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Scheduler {
    pub fn new(
        store: Store,
        lookup: Arc<dyn Lookup>,
        disconnector: Arc<dyn Disconnector>,
        alarm: Arc<Alarm>,
    ) -> Scheduler {
        Scheduler {
            store,
            lookup,
            disconnector,
            authorizer: None,
            networks: Vec::new(),
            switch: None,
            alarm,
            applied: tokio::sync::Mutex::new(None),
        }
    }

    /// Re-decides everything online at `now`, ends what is no longer allowed, and says when
    /// the next sweep is due.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Sweep, StoreError> {
        let catalog = self.lookup.catalog();
        let mut sweep = Sweep::default();

        // RADIUS sessions.
        let sessions = self
            .store
            .sessions(Some(now - ONLINE_HORIZON), i64::from(i32::MAX))
            .await?;
        sweep.sessions_online = sessions.len();
        let mut ends = Vec::new();
        for s in sessions {
            let Some(d) = self.lookup.decide_session(&catalog, &s, now) else {
                continue;
            };
            let moved = crate::enforce::vlan_moved(&s, &d);
            if d.allowed {
                sweep.next = earliest(sweep.next, d.valid_until);
                if moved.is_none() {
                    continue;
                }
            }
            match s.disconnect.as_deref() {
                // The NAS confirmed; its Stop is on the way. Nothing more to send, unless the
                // session kept reporting well after the ACK (the NAS did not end it).
                Some("acked")
                    if s.disconnect_at
                        .is_some_and(|t| s.updated_at <= t + RETRY_FAILED) =>
                {
                    continue
                }
                // Being ended right now (another sweep, a member change), or failed lately:
                // tried again a minute after the last attempt.
                Some(state)
                    if (state == "pending" || state.starts_with("failed"))
                        && s.disconnect_at.is_some_and(|t| now - t < RETRY_FAILED) =>
                {
                    sweep.next = earliest(sweep.next, s.disconnect_at.map(|t| t + RETRY_FAILED));
                    continue;
                }
                _ => {}
            }
            ends.push(SessionEnd {
                session: s,
                reason: d.reason,
                note: moved,
            });
        }
        let ended = enforce::end_sessions(
            &self.store,
            self.disconnector.as_ref(),
            ends,
            "scheduler",
            now,
        )
        .await?;
        if ended.iter().any(|o| o.result.is_err()) {
            sweep.next = earliest(sweep.next, Some(now + RETRY_FAILED));
        }
        sweep.ended.extend(ended);

        // Portal devices: those whose time is up were removed by their element's timeout;
        // this forgets them and writes the audit line. The rest are re-decided (a closure
        // added for today ends them now).
        let expired = self.store.take_expired_portal_clients(now).await?;
        sweep.expired = expired.len();
        if !expired.is_empty() {
            let events: Vec<(&'static str, String, Option<String>)> = expired
                .iter()
                .map(|c| {
                    (
                        "portal.expire",
                        c.subject.clone(),
                        Some(format!(
                            "portal device {} ({}) until {}",
                            c.mac,
                            c.kind.as_str(),
                            c.valid_until.to_rfc3339()
                        )),
                    )
                })
                .collect();
            self.store
                .record_events(&crate::store::Actor::system("scheduler"), &events)
                .await?;
            if let Some(auth) = &self.authorizer {
                for c in &expired {
                    // Idempotent: makes sure a controller forgets them too.
                    let _ = auth.revoke(&c.client_ref()).await;
                }
            }
        }
        let clients = self.store.portal_clients(now).await?;
        sweep.portal_online = clients.len();
        let mut portal_ends = Vec::new();
        for c in clients {
            match self.decide_portal(&catalog, &c, now).await? {
                Some(d) if !d.allowed => portal_ends.push(PortalEnd {
                    client: c,
                    reason: d.reason,
                }),
                Some(d) => {
                    sweep.next = earliest(sweep.next, earliest(d.valid_until, Some(c.valid_until)))
                }
                None => sweep.next = earliest(sweep.next, Some(c.valid_until)),
            }
        }
        if let Some(auth) = &self.authorizer {
            sweep.ended.extend(
                enforce::end_portal_clients(&self.store, auth.as_ref(), portal_ends, "scheduler")
                    .await?,
            );
        }

        // Tier networks with hours.
        if let Some(switch) = &self.switch {
            let t = now.timestamp();
            let cal = &catalog.site.calendar;
            let mut closed = Vec::new();
            for n in &self.networks {
                let spans = cal.spans(&n.hours, t);
                match containing(&spans, t) {
                    Some(span) => sweep.next = earliest(sweep.next, span.end_instant()),
                    None => {
                        closed.push(n.iface.clone());
                        let opens = spans.iter().find(|s| s.start > t).map(|s| s.start);
                        sweep.next = earliest(
                            sweep.next,
                            opens.and_then(|s| DateTime::from_timestamp(s, 0)),
                        );
                    }
                }
            }
            let mut applied = self.applied.lock().await;
            if applied.as_ref() != Some(&closed) {
                match switch.set_closed(&closed).await {
                    Ok(()) => {
                        let opened: Vec<&String> = applied
                            .iter()
                            .flatten()
                            .filter(|n| !closed.contains(n))
                            .collect();
                        let shut: Vec<&String> = closed
                            .iter()
                            .filter(|n| !applied.iter().flatten().any(|a| a == *n))
                            .collect();
                        let mut events = Vec::new();
                        for n in &shut {
                            info!(network = %n, "network switched off (outside its hours)");
                            events.push(("network.close", (*n).clone(), None));
                        }
                        for n in &opened {
                            info!(network = %n, "network switched on");
                            events.push(("network.open", (*n).clone(), None));
                        }
                        self.store
                            .record_events(&crate::store::Actor::system("scheduler"), &events)
                            .await?;
                        *applied = Some(closed.clone());
                    }
                    Err(e) => {
                        warn!(error = %e, "switching networks failed; retrying in a minute");
                        sweep.next = earliest(sweep.next, Some(now + RETRY_FAILED));
                    }
                }
            }
            sweep.closed_networks = closed;
        }
        Ok(sweep)
    }

    /// The decision for a portal device's subject now; `None` when only its recorded end
    /// bounds it (sponsored guests: the sponsor's changes are member changes).
    async fn decide_portal(
        &self,
        catalog: &Catalog,
        c: &PortalClient,
        now: DateTime<Utc>,
    ) -> Result<Option<Decision>, StoreError> {
        Ok(match c.kind {
            PortalKind::Voucher => match self.store.voucher(&c.subject).await? {
                Some(v) => Some(decide(catalog, Subject::Voucher(&v), Resource::WIFI, now)),
                // Deleted by the operator: revoked.
                None => Some(Decision::deny(Reason::VoucherExpired)),
            },
            PortalKind::Member => match self.store.member(&c.subject).await {
                Ok(m) => Some(decide(
                    catalog,
                    Subject::Member(Holder::from(&m)),
                    Resource::WIFI,
                    now,
                )),
                Err(StoreError::NotFound(_)) => Some(Decision::deny(Reason::UnknownUser)),
                Err(e) => return Err(e),
            },
            PortalKind::Sponsor => None,
        })
    }

    /// Sweeps now, then whenever the next change is due, the alarm rings, `changed` says the
    /// catalog moved, or the wall clock is stepped. Runs until `changed`'s sender is gone.
    pub async fn run<T: Send + Sync>(self, mut changed: watch::Receiver<T>) {
        let mut watch = match crate::clock::RealtimeWatch::new() {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the wall clock for steps (timerfd); re-planning every 5 minutes instead");
                None
            }
        };
        loop {
            let now = crate::clock::now();
            self.alarm.clear_due(now);
            let started = std::time::Instant::now();
            let mut planned = match self.sweep(now).await {
                Ok(s) => {
                    log_sweep(&s, now, started.elapsed());
                    s.next
                }
                Err(e) => {
                    warn!(error = %e, "scheduler sweep failed; retrying in 10 s");
                    Some(now + chrono::Duration::seconds(10))
                }
            };
            if watch.is_none() {
                planned = earliest(planned, Some(now + BLIND_CAP));
            }
            // Wait for the next change; an alarm only moves the wake earlier.
            loop {
                let next = earliest(planned, self.alarm.peek());
                debug!(next = ?next, "scheduler sleeping");
                let sleep = async {
                    match next {
                        Some(t) => {
                            let wait = (t - crate::clock::now()).to_std().unwrap_or_default();
                            tokio::time::sleep(wait).await
                        }
                        None => std::future::pending().await,
                    }
                };
                let stepped = async {
                    match watch.as_mut() {
                        Some(w) => {
                            if let Err(e) = w.changed().await {
                                warn!(error = %e, "wall clock watch failed");
                                std::future::pending::<()>().await
                            }
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sleep => break,
                    _ = self.alarm.notify.notified() => continue,
                    r = changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                        break;
                    }
                    _ = stepped => {
                        info!("wall clock was set; re-planning");
                        break;
                    }
                }
            }
        }
    }
}

fn log_sweep(s: &Sweep, now: DateTime<Utc>, took: std::time::Duration) {
    for o in &s.ended {
        match &o.result {
            Ok(()) => {
                info!(subject = %o.subject, what = %o.what, reason = %o.reason, "access ended")
            }
            Err(e) => {
                warn!(subject = %o.subject, what = %o.what, reason = %o.reason, error = %e, "could not end access")
            }
        }
    }
    info!(
        at = %now.to_rfc3339(),
        sessions = s.sessions_online,
        portal = s.portal_online,
        ended = s.ended.len(),
        expired = s.expired,
        closed_networks = %s.closed_networks.join(","),
        next = %s.next.map(|t| t.to_rfc3339()).unwrap_or_else(|| "none".into()),
        took_ms = took.as_millis() as u64,
        "scheduler sweep"
    );
}

/// A [`Lookup`] that reads members and devices from the database: for tests and small tools.
/// `serve` uses the RADIUS index instead.
pub struct StoreLookup {
    pub catalog: Arc<Catalog>,
    /// Members by id.
    pub members: std::collections::HashMap<String, crate::model::Member>,
    /// Member ids by lowercased Wi-Fi username.
    pub by_username: std::collections::HashMap<String, String>,
    pub devices: std::collections::HashMap<crate::MacAddr, crate::model::Device>,
}

impl StoreLookup {
    pub async fn load(store: &Store) -> Result<StoreLookup, StoreError> {
        let members = store
            .members(&crate::store::MemberFilter::default())
            .await?;
        Ok(StoreLookup {
            catalog: Arc::new(store.catalog().await?),
            by_username: members
                .iter()
                .map(|m| (m.wifi_username.to_lowercase(), m.id.clone()))
                .collect(),
            members: members.into_iter().map(|m| (m.id.clone(), m)).collect(),
            devices: store
                .devices()
                .await?
                .into_iter()
                .map(|d| (d.mac, d))
                .collect(),
        })
    }
}

impl Lookup for StoreLookup {
    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    fn decide_session(
        &self,
        catalog: &Catalog,
        s: &SessionRow,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        if let Some(device) = s
            .user_name
            .parse::<crate::MacAddr>()
            .ok()
            .and_then(|m| self.devices.get(&m))
        {
            let owner = device
                .member_id
                .as_deref()
                .and_then(|id| self.members.get(id));
            return Some(decide(
                catalog,
                Subject::Device {
                    device,
                    owner: owner.map(Holder::from),
                },
                Resource::WIFI,
                now,
            ));
        }
        let id = self.by_username.get(&s.user_name.to_lowercase())?;
        let m = self.members.get(id)?;
        Some(decide(
            catalog,
            Subject::Member(Holder::from(m)),
            Resource::WIFI,
            now,
        ))
    }
}
