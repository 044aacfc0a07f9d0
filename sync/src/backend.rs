//! What a door-access system must offer the reconciler.

use crate::desired::{Entitlement, GroupKey};
use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The system answered with an error status (after retries for 429 and 5xx).
    #[error("{method} {path}: HTTP {status}: {body}")]
    Http {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// No answer: connection refused or reset, timeout.
    #[error("{0}")]
    Transport(String),
    /// The answer was not what the documented API returns.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] frontdesk_core::store::StoreError),
}

/// A member's grant in the door system: its id there and its last day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedGrant {
    pub id: String,
    pub valid_until: Option<NaiveDate>,
}

/// A member as the door system knows them (only Frontdesk-owned grants).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedUser {
    /// The system's id for the person.
    pub id: String,
    pub grants: BTreeMap<GroupKey, ObservedGrant>,
}

#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Frontdesk-owned groups and their ids in the system.
    pub groups: BTreeMap<GroupKey, String>,
    /// By Frontdesk member id.
    pub users: BTreeMap<String, ObservedUser>,
    /// Everyone the system knows, by lower-case email → id, when a full observation listed
    /// them anyway (links new members without a lookup each).
    pub people: BTreeMap<String, String>,
    /// `people` is everyone: someone not in it does not exist in the system yet.
    pub people_complete: bool,
}

/// What `apply` did: write requests made, and the system's id for the person (kept as the
/// link for next time, so a changed email does not make a second user).
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub writes: u64,
    pub user_id: Option<String>,
}

#[async_trait]
pub trait DoorSystem: Send + Sync {
    /// Reads Frontdesk-owned groups and the grants in them (every page): for everyone, or
    /// for the given members only (a member change). `links` are the system ids remembered
    /// from earlier runs, by member id.
    async fn observe(
        &self,
        only: Option<&[&Entitlement]>,
        links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError>;

    /// Creates owned groups that do not exist yet; their ids.
    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError>;

    /// Makes the member's owned grants equal `want`'s: removals first, then the person
    /// (found by link or email before any create), then new grants. Idempotent.
    async fn apply(
        &self,
        want: &Entitlement,
        have: Option<&ObservedUser>,
        groups: &BTreeMap<GroupKey, String>,
    ) -> Result<Applied, SyncError>;

    /// Requests made so far (reads and writes), for progress and benchmarks.
    fn requests(&self) -> u64 {
        self.client().map_or(0, crate::http::Client::requests)
    }

    /// A member's run: its requests go before those of a full run sharing the rate limit.
    fn set_urgent(&self, urgent: bool) {
        if let Some(c) = self.client() {
            c.set_urgent(urgent);
        }
    }

    /// The HTTP client of a backend that uses one (request counts, urgency).
    fn client(&self) -> Option<&crate::http::Client> {
        None
    }

    /// Whether grants carry a last day in this system (compared when deciding what differs).
    fn has_expiry(&self) -> bool {
        true
    }
}

/// Owned groups as last listed, per API base URL: a member's run (a revocation) reuses a
/// listing younger than two minutes instead of spending requests of the rate limit on it. A
/// group deleted by hand meanwhile makes that member's grant fail and back off until the
/// next full run lists again.
pub struct GroupCache(std::sync::Mutex<Option<BTreeMap<String, CachedGroups>>>);

type CachedGroups = (std::time::Instant, BTreeMap<GroupKey, String>);

impl GroupCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(120);

    pub const fn new() -> GroupCache {
        GroupCache(std::sync::Mutex::new(None))
    }

    pub fn get(&self, base: &str) -> Option<BTreeMap<GroupKey, String>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.as_ref()?
            .get(base)
            .filter(|(at, _)| at.elapsed() < Self::FRESH)
            .map(|(_, g)| g.clone())
    }

    pub fn put(&self, base: &str, groups: &BTreeMap<GroupKey, String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(BTreeMap::new)
            .insert(
                base.to_string(),
                (std::time::Instant::now(), groups.clone()),
            );
    }
}

impl GroupCache {
    /// After making groups: what member runs see next is the listing plus what was made.
    pub fn put_merged(
        &self,
        base: &str,
        listed: &BTreeMap<GroupKey, String>,
        made: &BTreeMap<GroupKey, String>,
    ) {
        let mut all = listed.clone();
        all.extend(made.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.put(base, &all);
    }
}

impl Default for GroupCache {
    fn default() -> Self {
        Self::new()
    }
}
