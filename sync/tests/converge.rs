//! Property: for random sequences of member changes, each followed by a member reconcile
//! against a door system that fails at random (before or half-way through a member's
//! changes), one full reconcile after the faults stop makes the door system equal the
//! desired state: no lost revocation, no duplicate, nothing extra.

use async_trait::async_trait;
use frontdesk_core::model::MemberStatus;
use frontdesk_core::store::{Actor, NewMember, OpenMode, Store};
use frontdesk_sync::backend::{Applied, ObservedGrant};
use frontdesk_sync::reconcile::{reconcile, Scope};
use frontdesk_sync::{
    desired, DoorSystem, Entitlement, GroupKey, Observed, ObservedUser, SyncError,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    groups: BTreeMap<GroupKey, String>,
    users: BTreeMap<String, ObservedUser>,
    /// Fail the next N calls; a failing `apply` first does its revocations.
    failures: u32,
    next: u64,
}

#[derive(Default)]
struct Memory {
    s: Mutex<State>,
    requests: AtomicU64,
}

fn fail(s: &mut State) -> Result<(), SyncError> {
    if s.failures > 0 {
        s.failures -= 1;
        return Err(SyncError::Transport("injected".into()));
    }
    Ok(())
}

#[async_trait]
impl DoorSystem for Memory {
    async fn observe(
        &self,
        only: Option<&[&Entitlement]>,
        _links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut s = self.s.lock().unwrap();
        fail(&mut s)?;
        let users = s
            .users
            .iter()
            .filter(|(m, _)| only.is_none_or(|o| o.iter().any(|e| &e.member_id == *m)))
            .map(|(m, u)| (m.clone(), u.clone()))
            .collect();
        Ok(Observed {
            groups: s.groups.clone(),
            users,
            people: BTreeMap::new(),
            people_complete: false,
        })
    }

    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        let mut s = self.s.lock().unwrap();
        fail(&mut s)?;
        for k in keys {
            if !s.groups.contains_key(k) {
                s.next += 1;
                let id = s.next.to_string();
                s.groups.insert(k.clone(), id);
            }
        }
        Ok(s.groups.clone())
    }

    async fn apply(
        &self,
        want: &Entitlement,
        _have: Option<&ObservedUser>,
        groups: &BTreeMap<GroupKey, String>,
    ) -> Result<Applied, SyncError> {
        let mut s = self.s.lock().unwrap();
        // Revocations happen, then maybe the failure (a crash half-way).
        let user = s.users.entry(want.member_id.clone()).or_default();
        user.grants
            .retain(|k, g| want.grants.get(k) == Some(&g.valid_until));
        fail(&mut s)?;
        let user = s.users.get_mut(&want.member_id).expect("made above");
        for (k, until) in &want.grants {
            assert!(groups.contains_key(k), "group created before granting");
            user.grants.entry(k.clone()).or_insert(ObservedGrant {
                id: format!("{}:{}", want.member_id, k.group),
                valid_until: *until,
            });
        }
        Ok(Applied {
            writes: 1,
            user_id: None,
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug)]
enum Change {
    Suspend(usize),
    Resume(usize),
    Plan(usize, &'static str),
}

fn change() -> impl Strategy<Value = (Change, u32)> {
    let c = prop_oneof![
        (0..4usize).prop_map(Change::Suspend),
        (0..4usize).prop_map(Change::Resume),
        (
            0..4usize,
            prop::sample::select(vec!["flex", "full-time", "guest"])
        )
            .prop_map(|(m, p)| Change::Plan(m, p)),
    ];
    (c, 0..4u32)
}

async fn scenario(changes: Vec<(Change, u32)>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("p.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await.unwrap();
    let actor = Actor::system("test");
    store.init_site("P", "Europe/Berlin", &actor).await.unwrap();
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "k")
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let mut ids = Vec::new();
    for i in 0..4 {
        let (m, _) = store
            .add_member(
                &NewMember {
                    name: format!("M{i}"),
                    email: format!("m{i}@example.com"),
                    plan: ["flex", "full-time"][i % 2].into(),
                    ..Default::default()
                },
                today,
                &actor,
            )
            .await
            .unwrap();
        ids.push(m.id);
    }
    let b = store
        .add_door_backend("mem", "kisi", "https://doors.invalid", Some("k"), &actor)
        .await
        .unwrap();
    for (plan, group, w) in [
        ("flex", "Studio", "opening-hours"),
        ("full-time", "Studio", "opening-hours"),
        ("full-time", "After-hours", "always"),
    ] {
        store
            .map_door("mem", plan, group, Some(w.parse().unwrap()), &actor)
            .await
            .unwrap();
    }
    let sys = Memory::default();
    let none = |_: usize, _: usize| {};
    let _ = reconcile(&store, &b, &sys, Scope::All, &none).await;
    for (c, faults) in changes {
        let id = match &c {
            Change::Suspend(m) | Change::Resume(m) | Change::Plan(m, _) => ids[*m].clone(),
        };
        // A refused change (resuming an active member) is fine: the state is what it is.
        let _ = match c {
            Change::Suspend(_) => store
                .set_member_status(&id, MemberStatus::Suspended, &actor)
                .await
                .map(|_| ()),
            Change::Resume(_) => store
                .set_member_status(&id, MemberStatus::Active, &actor)
                .await
                .map(|_| ()),
            Change::Plan(_, p) => store
                .set_member_plan(&id, p, today, None, &actor)
                .await
                .map(|_| ()),
        };
        sys.s.lock().unwrap().failures = faults;
        let _ = reconcile(&store, &b, &sys, Scope::Members(&[id]), &none).await;
    }
    // Faults stop; quarantined members are released; a full reconcile, then the members
    // still backing off (a full run leaves them to their retry time) by name.
    sys.s.lock().unwrap().failures = 0;
    store.sync_release(b.id).await.unwrap();
    let report = reconcile(&store, &b, &sys, Scope::All, &none)
        .await
        .unwrap();
    assert_eq!(report.failed, 0);
    let waiting: Vec<String> = store
        .sync_items(b.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.state != "ok")
        .map(|i| i.member_id)
        .collect();
    if !waiting.is_empty() {
        reconcile(&store, &b, &sys, Scope::Members(&waiting), &none)
            .await
            .unwrap();
    }
    let catalog = store.catalog().await.unwrap();
    let members = store.members(&Default::default()).await.unwrap();
    let maps = store.door_maps().await.unwrap();
    let want = desired(
        &catalog,
        &members,
        &maps,
        catalog.site.date_at(chrono::Utc::now()),
    );
    let users = sys.s.lock().unwrap().users.clone();
    for (m, e) in &want {
        let have: BTreeMap<GroupKey, Option<chrono::NaiveDate>> = users
            .get(m)
            .map(|u| {
                u.grants
                    .iter()
                    .map(|(k, g)| (k.clone(), g.valid_until))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(have, e.grants, "member {m}");
    }
    store.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn observed_equals_desired_after_faults_stop(changes in prop::collection::vec(change(), 1..12)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(changes));
    }
}
