//! The reconciler: desired (from plans) vs observed (from the door system, or for the
//! webhook what was last delivered), per member, applied with revocations first. Failures
//! back off exponentially with jitter per member and are quarantined after
//! `QUARANTINE_AFTER` attempts (audited; shown by `sync status` and on the dashboard). Every
//! operation is idempotent, so a crash or retry never duplicates a user or a grant.

use crate::backend::{DoorSystem, ObservedUser, SyncError};
use crate::desired::{desired, Entitlement, Grants, GroupKey};
use chrono::{DateTime, NaiveDate, Utc};
use frontdesk_core::store::doors::{DoorBackend, SyncItem};
use frontdesk_core::store::Store;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// Runs against one backend in this process: a member run holds `lock` for its whole run
/// (observe and apply); a full run takes it per member, and re-reads a member that a member
/// run touched since the full run observed, so a full run that read the door system before
/// a cancellation can never re-grant what the member run just revoked.
struct Coord {
    lock: tokio::sync::Mutex<()>,
    touched: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

fn coord(backend_id: i64) -> std::sync::Arc<Coord> {
    static ALL: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<i64, std::sync::Arc<Coord>>>,
    > = std::sync::OnceLock::new();
    ALL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(backend_id)
        .or_insert_with(|| {
            std::sync::Arc::new(Coord {
                lock: tokio::sync::Mutex::new(()),
                touched: Default::default(),
            })
        })
        .clone()
}

/// Failed attempts before an item is quarantined.
pub const QUARANTINE_AFTER: i64 = 5;

pub enum Scope<'a> {
    /// Everyone: the periodic full reconcile (heals drift, removes orphans).
    All,
    /// These members now (a member change): retried even if backing off or quarantined.
    Members(&'a [String]),
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub backend: String,
    /// Members looked at.
    pub members: usize,
    /// Members whose door state differed.
    pub changed: usize,
    pub writes: u64,
    pub requests: u64,
    pub failed: usize,
    pub quarantined: usize,
    /// Skipped because backing off or quarantined.
    pub waiting: usize,
}

/// What was written for a member: the system's id for them and the grants.
#[derive(Serialize, Deserialize, Default)]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default)]
    grants: Vec<(GroupKey, Option<NaiveDate>)>,
}

fn record_of(item: &SyncItem) -> Record {
    item.synced
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

fn same(want: &Grants, have: Option<&ObservedUser>, expiry: bool) -> bool {
    let empty = BTreeMap::new();
    let held = have.map_or(&empty, |h| &h.grants);
    held.len() == want.len()
        && want
            .iter()
            .all(|(k, u)| held.get(k).is_some_and(|g| !expiry || &g.valid_until == u))
}

/// The wait before retry `failures` (1, 2, …): 10 s doubling, at most an hour, ±20 %.
pub fn backoff(failures: i64) -> chrono::Duration {
    let base = 10.0 * 2f64.powi((failures - 1).clamp(0, 20) as i32);
    let secs = base.min(3600.0) * rand::thread_rng().gen_range(0.8..1.2);
    chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

pub async fn reconcile(
    store: &Store,
    backend: &DoorBackend,
    system: &dyn DoorSystem,
    scope: Scope<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, SyncError> {
    let now = frontdesk_core::clock::now();
    let full = matches!(scope, Scope::All);
    system.set_urgent(!full);
    if full {
        store.sync_run_started(backend.id, now).await?;
    }
    let result = run(store, backend, system, &scope, progress, now).await;
    if full {
        let (ops, failed, err) = match &result {
            Ok(r) => (r.writes as i64, r.failed as i64, None),
            Err(e) => (0, 0, Some(e.to_string())),
        };
        store
            .sync_run_finished(
                backend.id,
                frontdesk_core::clock::now(),
                ops,
                failed,
                err.as_deref(),
            )
            .await?;
    }
    result
}

async fn run(
    store: &Store,
    backend: &DoorBackend,
    system: &dyn DoorSystem,
    scope: &Scope<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
    now: DateTime<Utc>,
) -> Result<Report, SyncError> {
    let coord = coord(backend.id);
    let started = std::time::Instant::now();
    let _member_run = match scope {
        Scope::Members(_) => Some(coord.lock.lock().await),
        Scope::All => None,
    };
    let catalog = store.catalog().await?;
    let today = catalog.site.date_at(now);
    let maps: Vec<_> = store
        .door_maps()
        .await?
        .into_iter()
        .filter(|m| m.backend_id == backend.id)
        .collect();
    let members = match scope {
        Scope::All => store.members(&Default::default()).await?,
        Scope::Members(ids) => {
            let mut v = Vec::new();
            for id in ids.iter() {
                match store.member(id).await {
                    Ok(m) => v.push(m),
                    Err(frontdesk_core::store::StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            v
        }
    };
    let want = desired(&catalog, &members, &maps, today);
    let items: BTreeMap<String, SyncItem> = store
        .sync_items(backend.id)
        .await?
        .into_iter()
        .map(|i| (i.member_id.clone(), i))
        .collect();
    let links: BTreeMap<String, String> = items
        .iter()
        .filter_map(|(m, i)| Some((m.clone(), record_of(i).user_id?)))
        .collect();
    let only: Vec<&Entitlement> = want.values().collect();
    let mut observed = match system
        .observe(
            match scope {
                Scope::All => None,
                Scope::Members(_) => Some(&only),
            },
            &links,
        )
        .await
    {
        Ok(o) => o,
        Err(err) => {
            // A member run that cannot even read: each of its members failed (backoff,
            // quarantine). A full run's failure is the run's (status and dashboard).
            if let Scope::Members(_) = scope {
                for e in want.values() {
                    let failures = items.get(&e.member_id).map_or(0, |i| i.failures) + 1;
                    store
                        .sync_failed(
                            backend.id,
                            &e.member_id,
                            &err.to_string(),
                            now + backoff(failures),
                            failures >= QUARANTINE_AFTER,
                        )
                        .await?;
                }
            }
            return Err(err);
        }
    };
    if backend.kind == "webhook" {
        // What was delivered is what the receiver holds.
        for (m, i) in &items {
            let r = record_of(i);
            if !r.grants.is_empty() && (full_scope(scope) || want.contains_key(m)) {
                observed.users.insert(
                    m.clone(),
                    crate::webhook::observed_from_record(&r.grants.into_iter().collect()),
                );
            }
        }
    }
    // People found by email only: to their member, or orphans (no member has that email;
    // they hold Frontdesk-owned grants, so those go).
    let by_email: BTreeMap<String, String> = want
        .values()
        .map(|e| (e.email.to_lowercase(), e.member_id.clone()))
        .collect();
    let mut orphans: BTreeMap<String, Entitlement> = BTreeMap::new();
    for key in observed.users.keys().cloned().collect::<Vec<_>>() {
        if let Some(email) = key.strip_prefix("email:") {
            let user = observed.users.remove(&key).expect("listed");
            match by_email.get(email) {
                Some(m) => {
                    observed.users.insert(m.clone(), user);
                }
                None => {
                    orphans.insert(
                        key.clone(),
                        Entitlement {
                            member_id: key.clone(),
                            email: email.into(),
                            name: String::new(),
                            status: frontdesk_core::model::MemberStatus::Cancelled,
                            grants: Grants::new(),
                        },
                    );
                    observed.users.insert(key, user);
                }
            }
        }
    }
    let mut report = Report {
        backend: backend.name.clone(),
        members: want.len(),
        ..Default::default()
    };
    // Members who hold owned grants but are not in scope's list (a full run) are in `want`
    // with their entitlement already; anyone else observed is an orphan.
    // Known to the system but holding no owned grant (linked by the full listing).
    let known: BTreeMap<String, ObservedUser> = want
        .values()
        .filter(|e| !observed.users.contains_key(&e.member_id))
        .filter_map(|e| {
            let id = match links
                .get(&e.member_id)
                .or_else(|| observed.people.get(&e.email.to_lowercase()))
            {
                Some(id) => id.clone(),
                // Not in a complete listing: to be created, no lookup needed.
                None if observed.people_complete && !e.grants.is_empty() => String::new(),
                None => return None,
            };
            Some((
                e.member_id.clone(),
                ObservedUser {
                    id,
                    grants: BTreeMap::new(),
                },
            ))
        })
        .collect();
    let mut changes: Vec<(&Entitlement, Option<&ObservedUser>)> = Vec::new();
    for e in want.values().chain(orphans.values()) {
        let have = observed
            .users
            .get(&e.member_id)
            .or_else(|| known.get(&e.member_id));
        if same(&e.grants, have, system.has_expiry()) {
            if items.get(&e.member_id).is_some_and(|i| i.state != "ok") {
                store
                    .sync_ok(
                        backend.id,
                        &e.member_id,
                        items[&e.member_id].synced.as_deref(),
                    )
                    .await?;
            }
            continue;
        }
        if full_scope(scope) {
            if let Some(i) = items.get(&e.member_id) {
                let waiting = i.state == "quarantined"
                    || (i.state == "failed" && i.next_attempt_at.is_some_and(|t| t > now));
                if waiting {
                    report.waiting += 1;
                    continue;
                }
            }
        }
        changes.push((e, have));
    }
    // Revocations first: anyone losing a grant, before anyone gains one.
    changes.sort_by_key(|(e, have)| {
        let loses = have.is_some_and(|h| h.grants.keys().any(|k| !e.grants.contains_key(k)));
        !loses
    });
    report.changed = changes.len();
    let needed: Vec<GroupKey> = changes
        .iter()
        .flat_map(|(e, _)| e.grants.keys())
        .filter(|k| !observed.groups.contains_key(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let total = changes.len();
    let mut groups_made = needed.is_empty();
    for (done, (e, have)) in changes.into_iter().enumerate() {
        let gains = e.grants.keys().any(|k| !observed.groups.contains_key(k));
        if gains && !groups_made {
            let made = system.create_groups(&needed).await?;
            observed.groups.extend(made);
            groups_made = true;
        }
        let is_orphan = orphans.contains_key(&e.member_id);
        // A full run: one member at a time against member runs; re-read a member a member
        // run changed since this run observed.
        let _turn = match scope {
            Scope::All => Some(coord.lock.lock().await),
            Scope::Members(_) => None,
        };
        let touched = coord
            .touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.member_id)
            .is_some_and(|t| *t > started);
        let fresh;
        let (e, have) = if full_scope(scope) && touched && !is_orphan {
            let m = store.member(&e.member_id).await?;
            let d = desired(&catalog, [&m], &maps, today);
            let Some(w) = d.get(&e.member_id).cloned() else {
                continue;
            };
            let o = system.observe(Some(&[&w]), &links).await?;
            fresh = (w, o.users.get(&e.member_id).cloned());
            if same(&fresh.0.grants, fresh.1.as_ref(), system.has_expiry()) {
                continue;
            }
            (&fresh.0, fresh.1.as_ref())
        } else {
            (e, have)
        };
        let applied = system.apply(e, have, &observed.groups).await;
        if !full_scope(scope) {
            coord
                .touched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(e.member_id.clone(), std::time::Instant::now());
        }
        match applied {
            Ok(applied) => {
                report.writes += applied.writes;
                if !is_orphan {
                    let record = Record {
                        user_id: applied.user_id,
                        grants: e.grants.iter().map(|(k, u)| (k.clone(), *u)).collect(),
                    };
                    store
                        .sync_ok(
                            backend.id,
                            &e.member_id,
                            Some(&serde_json::to_string(&record).expect("JSON")),
                        )
                        .await?;
                }
            }
            Err(err) => {
                report.failed += 1;
                let failures = items.get(&e.member_id).map_or(0, |i| i.failures) + 1;
                let quarantine = failures >= QUARANTINE_AFTER;
                if quarantine {
                    report.quarantined += 1;
                }
                warn!(backend = %backend.name, member = %e.member_id, failures, quarantine, error = %err, "door sync: member not synced");
                if !is_orphan {
                    store
                        .sync_failed(
                            backend.id,
                            &e.member_id,
                            &err.to_string(),
                            now + backoff(failures),
                            quarantine,
                        )
                        .await?;
                }
            }
        }
        progress(done + 1, total);
    }
    report.requests = system.requests();
    frontdesk_core::metrics::DOOR_SYNC_RUNS.inc();
    frontdesk_core::metrics::DOOR_SYNC_WRITES.add(report.writes);
    frontdesk_core::metrics::DOOR_SYNC_FAILURES.add(report.failed as u64);
    info!(backend = %backend.name, members = report.members, changed = report.changed, writes = report.writes, failed = report.failed, "door sync: reconciled");
    Ok(report)
}

fn full_scope(scope: &Scope<'_>) -> bool {
    matches!(scope, Scope::All)
}

/// Requests per second to Kisi.
pub const KISI_RATE: f64 = 4.5;

/// The door system for a configured backend.
pub fn system_for(
    b: &DoorBackend,
    hours: &frontdesk_core::schedule::OpeningHours,
) -> Result<Box<dyn DoorSystem>, SyncError> {
    let secret = b.secret.clone().unwrap_or_default();
    match b.kind.as_str() {
        // A little under Kisi's documented 5 requests/s, so its own counter never trips.
        "kisi" => Ok(Box::new(crate::kisi::Kisi::new(
            &b.url,
            &secret,
            KISI_RATE,
            hours.clone(),
        )?)),
        "webhook" => Ok(Box::new(crate::webhook::Webhook::new(
            &b.url,
            &secret,
            hours.clone(),
        )?)),
        "unifi-access" => Ok(Box::new(crate::unifi_access::UnifiAccess::new(
            &b.url,
            &secret,
            hours.clone(),
        )?)),
        "salto-ks" => Ok(Box::new(crate::salto_ks::SaltoKs::new(
            &b.url,
            &secret,
            hours.clone(),
        )?)),
        other => Err(SyncError::Protocol(format!(
            "door backend kind {other:?} is not known (kisi, unifi-access, salto-ks, webhook)"
        ))),
    }
}
