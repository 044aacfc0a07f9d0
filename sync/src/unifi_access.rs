//! UniFi Access backend (the local controller's developer API, usually port 12445), after the
//! shapes noted in DOORS.md: `Authorization: Bearer <token>` made in the Access app; answers
//! wrapped as `{"code": "SUCCESS", "data": …, "pagination": {…}}`; lists paged by
//! `page_num`/`page_size`; users; access policies (doors + a schedule); schedules with a
//! `week_schedule`. A user's policies are **replaced** by one PUT of the whole set, so
//! Frontdesk reads the user's current set and keeps every policy it does not own.
//!
//! Ownership: policies and schedules named `Frontdesk · <group> · <window>`. People carry the
//! Frontdesk member id in `employee_number` (the stable id), matched by email only at first
//! link. UniFi Access has no per-policy end date in these shapes: the last day is enforced by
//! Frontdesk's own revocation (the full run after midnight), which the note says.

use crate::backend::{
    Applied, DoorSystem, GroupCache, Observed, ObservedGrant, ObservedUser, SyncError,
};
use crate::desired::{same_day_intervals, Entitlement, GroupKey};
use crate::http::{id_of, Client};
use async_trait::async_trait;
use frontdesk_core::schedule::OpeningHours;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const PAGE: usize = 100;
const API: &str = "/api/v1/developer";
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Owned policies as last listed, for member runs.
static POLICIES: GroupCache = GroupCache::new();

pub struct UnifiAccess {
    client: Client,
    base: String,
    hours: OpeningHours,
}

impl UnifiAccess {
    pub fn new(base: &str, token: &str, hours: OpeningHours) -> Result<UnifiAccess, SyncError> {
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            SyncError::Protocol("the token has characters a header cannot hold".into())
        })?;
        Ok(UnifiAccess {
            // A local controller: no documented limit; stay gentle.
            client: Client::new(base, auth, 10.0, Duration::from_secs(10))?,
            base: base.trim_end_matches('/').to_string(),
            hours,
        })
    }

    /// `data` of a successful answer (`code` must be SUCCESS).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SyncError> {
        let (_, v) = self
            .client
            .send(method, &format!("{API}{path}"), body)
            .await?;
        if v["code"].as_str() != Some("SUCCESS") {
            return Err(SyncError::Protocol(format!(
                "{path}: {}",
                v["msg"].as_str().unwrap_or("no SUCCESS code")
            )));
        }
        Ok(v["data"].clone())
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, SyncError> {
        let mut out = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let (_, v) = self
                .client
                .send(
                    Method::GET,
                    &format!("{API}{path}{sep}page_num={page}&page_size={PAGE}"),
                    None,
                )
                .await?;
            if v["code"].as_str() != Some("SUCCESS") {
                return Err(SyncError::Protocol(format!("{path}: no SUCCESS code")));
            }
            let items = v["data"]
                .as_array()
                .ok_or_else(|| SyncError::Protocol(format!("{path}: data is not a list")))?;
            let got = items.len();
            out.extend(items.iter().cloned());
            let total = v["pagination"]["total"].as_u64().map(|t| t as usize);
            let more = match total {
                Some(t) => out.len() < t && got > 0,
                None => got == PAGE,
            };
            if !more {
                break;
            }
        }
        Ok(out)
    }

    async fn owned_policies(&self) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        Ok(self
            .list("/access_policies")
            .await?
            .iter()
            .filter_map(|p| {
                Some((
                    GroupKey::from_owned_name(p["name"].as_str()?)?,
                    id_of(&p["id"])?,
                ))
            })
            .collect())
    }

    fn observed_user(u: &Value, owned: &BTreeMap<String, GroupKey>) -> Option<ObservedUser> {
        let grants = u["access_policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let id = id_of(&p["id"])?;
                let key = owned.get(&id)?;
                Some((
                    key.clone(),
                    ObservedGrant {
                        id,
                        valid_until: None,
                    },
                ))
            })
            .collect();
        Some(ObservedUser {
            id: id_of(&u["id"])?,
            grants,
        })
    }
}

#[async_trait]
impl DoorSystem for UnifiAccess {
    async fn observe(
        &self,
        only: Option<&[&Entitlement]>,
        links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError> {
        let groups = match only.and_then(|_| POLICIES.get(&self.base)) {
            Some(g) => g,
            None => {
                let g = self.owned_policies().await?;
                POLICIES.put(&self.base, &g);
                g
            }
        };
        let owned: BTreeMap<String, GroupKey> = groups
            .iter()
            .map(|(k, id)| (id.clone(), k.clone()))
            .collect();
        // A member run for people linked before: one read each, not the whole user list.
        if let Some(list) = only.filter(|l| l.iter().all(|e| links.contains_key(&e.member_id))) {
            let mut users = BTreeMap::new();
            for e in list {
                let id = &links[&e.member_id];
                match self.call(Method::GET, &format!("/users/{id}"), None).await {
                    Ok(u) => {
                        if let Some(ou) = Self::observed_user(&u, &owned) {
                            users.insert(e.member_id.clone(), ou);
                        }
                    }
                    // Deleted by hand: made again if they should have doors.
                    Err(SyncError::Http { status: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(Observed {
                groups,
                users,
                people: BTreeMap::new(),
                people_complete: false,
            });
        }
        let wanted: Option<BTreeSet<&str>> =
            only.map(|l| l.iter().map(|e| e.member_id.as_str()).collect());
        let mut users = BTreeMap::new();
        let mut people = BTreeMap::new();
        for u in self.list("/users").await? {
            let Some(ou) = Self::observed_user(&u, &owned) else {
                continue;
            };
            if let Some(email) = u["user_email"].as_str() {
                people.insert(email.to_lowercase(), ou.id.clone());
            }
            // The stable id; else the email, for the first link.
            let member = match u["employee_number"].as_str().filter(|s| !s.is_empty()) {
                Some(m) => m.to_string(),
                None => match u["user_email"].as_str() {
                    Some(e) if !ou.grants.is_empty() => format!("email:{}", e.to_lowercase()),
                    _ => continue,
                },
            };
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(member.as_str()))
            {
                continue;
            }
            if !ou.grants.is_empty() || u["employee_number"].as_str().is_some_and(|s| !s.is_empty())
            {
                users.insert(member, ou);
            }
        }
        Ok(Observed {
            groups,
            users,
            people,
            people_complete: true,
        })
    }

    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        let existing = self.owned_policies().await?;
        let schedules: BTreeMap<String, String> = self
            .list("/access_policies/schedules")
            .await?
            .iter()
            .filter_map(|s| Some((s["name"].as_str()?.to_string(), id_of(&s["id"])?)))
            .collect();
        let mut out = BTreeMap::new();
        for k in keys {
            if let Some(id) = existing.get(k) {
                out.insert(k.clone(), id.clone());
                continue;
            }
            let name = k.owned_name();
            let schedule = match schedules.get(&name) {
                Some(id) => id.clone(),
                None => {
                    let mut week = serde_json::Map::new();
                    for d in WEEKDAYS {
                        week.insert(d.into(), json!([]));
                    }
                    for i in same_day_intervals(&k.schedule, &self.hours) {
                        let to = if i.to == "24:00" {
                            "23:59:59".to_string()
                        } else {
                            format!("{}:00", i.to)
                        };
                        week[WEEKDAYS[i.day]]
                            .as_array_mut()
                            .expect("made above")
                            .push(json!({"start_time": format!("{}:00", i.from), "end_time": to}));
                    }
                    let s = self
                        .call(
                            Method::POST,
                            "/access_policies/schedules",
                            Some(&json!({"name": name, "week_schedule": week})),
                        )
                        .await?;
                    id_of(&s["id"])
                        .ok_or_else(|| SyncError::Protocol("schedule without id".into()))?
                }
            };
            let p = self
                .call(
                    Method::POST,
                    "/access_policies",
                    Some(&json!({"name": name, "resources": [], "schedule_id": schedule})),
                )
                .await?;
            let id =
                id_of(&p["id"]).ok_or_else(|| SyncError::Protocol("policy without id".into()))?;
            out.insert(k.clone(), id);
        }
        POLICIES.put_merged(&self.base, &existing, &out);
        Ok(out)
    }

    async fn apply(
        &self,
        want: &Entitlement,
        have: Option<&ObservedUser>,
        groups: &BTreeMap<GroupKey, String>,
    ) -> Result<Applied, SyncError> {
        let mut writes = 0;
        let user = match have.map(|h| h.id.clone()).filter(|id| !id.is_empty()) {
            Some(id) => id,
            None if want.grants.is_empty() => {
                return Ok(Applied {
                    writes,
                    user_id: None,
                });
            }
            None => {
                let (first, last) = want
                    .name
                    .split_once(' ')
                    .unwrap_or((want.name.as_str(), ""));
                let u = self
                    .call(
                        Method::POST,
                        "/users",
                        Some(&json!({"first_name": first, "last_name": last, "user_email": want.email, "employee_number": want.member_id})),
                    )
                    .await?;
                writes += 1;
                id_of(&u["id"]).ok_or_else(|| SyncError::Protocol("user without id".into()))?
            }
        };
        // The whole set is replaced: keep what Frontdesk does not own.
        let current = self
            .call(Method::GET, &format!("/users/{user}"), None)
            .await?;
        let owned_ids: BTreeSet<&String> = groups.values().collect();
        let mut set: BTreeSet<String> = current["access_policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| id_of(&p["id"]))
            .filter(|id| !owned_ids.contains(id))
            .collect();
        for key in want.grants.keys() {
            let id = groups.get(key).ok_or_else(|| {
                SyncError::Protocol(format!("policy {} was not created", key.owned_name()))
            })?;
            set.insert(id.clone());
        }
        let before: BTreeSet<String> = current["access_policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| id_of(&p["id"]))
            .collect();
        if before != set {
            self.call(
                Method::PUT,
                &format!("/users/{user}/access_policies"),
                Some(&json!({"access_policy_ids": set})),
            )
            .await?;
            writes += 1;
        }
        if current["employee_number"].as_str() != Some(want.member_id.as_str()) {
            // Linked by email: store the stable id for next time.
            self.call(
                Method::PUT,
                &format!("/users/{user}"),
                Some(&json!({"employee_number": want.member_id})),
            )
            .await?;
            writes += 1;
        }
        Ok(Applied {
            writes,
            user_id: Some(user),
        })
    }

    fn client(&self) -> Option<&Client> {
        Some(&self.client)
    }

    fn has_expiry(&self) -> bool {
        false
    }
}
