//! Kisi (cloud) backend, after Kisi's public API documentation (api.kisi.io/docs; shapes as
//! noted in DOORS.md): `Authorization: KISI-LOGIN <key>`; users; groups (the doors and any
//! time restriction are set on the group in Kisi); role assignments (a user in a group, role
//! `group_basic`, with `valid_until` so access ends even if Frontdesk is down); pages by
//! `offset`/`limit` with `X-Collection-Range: first-last/total`; about 5 requests a second.
//!
//! Ownership: only groups named `Frontdesk · <group> · <schedule>` are read for grants or
//! written; people are matched by the id remembered from the last run, else by email (the
//! first link), never by name. Users are not deleted on cancel: every owned grant is, which
//! is what ends access (a person may hold other groups an operator set by hand).

use crate::backend::{
    Applied, DoorSystem, GroupCache, Observed, ObservedGrant, ObservedUser, SyncError,
};
use crate::desired::{describe_window, Entitlement, GroupKey};
use crate::http::{encode, id_of, Client};
use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Page size for lists.
const PAGE: usize = 100;

pub struct Kisi {
    client: Client,
    base: String,
    hours: frontdesk_core::schedule::OpeningHours,
}

static GROUPS: GroupCache = GroupCache::new();

impl Kisi {
    pub fn new(
        base: &str,
        api_key: &str,
        per_second: f64,
        hours: frontdesk_core::schedule::OpeningHours,
    ) -> Result<Kisi, SyncError> {
        let auth = HeaderValue::from_str(&format!("KISI-LOGIN {api_key}")).map_err(|_| {
            SyncError::Protocol("the API key has characters a header cannot hold".into())
        })?;
        Ok(Kisi {
            client: Client::new(base, auth, per_second, Duration::from_secs(10))?,
            base: base.trim_end_matches('/').to_string(),
            hours,
        })
    }

    /// Every item of a list, page by page (`X-Collection-Range` says when it is complete).
    async fn list(&self, path: &str) -> Result<Vec<Value>, SyncError> {
        let mut out = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let (headers, body) = self
                .client
                .send(
                    Method::GET,
                    &format!("{path}{sep}offset={}&limit={PAGE}", out.len()),
                    None,
                )
                .await?;
            let items = body
                .as_array()
                .ok_or_else(|| SyncError::Protocol(format!("{path}: not a list")))?;
            let got = items.len();
            out.extend(items.iter().cloned());
            let total = headers
                .get("x-collection-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, t)| t.trim().parse::<usize>().ok());
            match total {
                Some(t) if out.len() < t && got > 0 => continue,
                Some(_) => return Ok(out),
                // No range header: a short page is the last one.
                None if got == PAGE => continue,
                None => return Ok(out),
            }
        }
    }

    /// Owned groups: listed now (`fresh`), or a recent listing.
    async fn owned_groups_cached(
        &self,
        fresh: bool,
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        if !fresh {
            if let Some(g) = GROUPS.get(&self.base) {
                return Ok(g);
            }
        }
        let groups = self.owned_groups().await?;
        GROUPS.put(&self.base, &groups);
        Ok(groups)
    }

    async fn owned_groups(&self) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        Ok(self
            .list("/groups")
            .await?
            .iter()
            .filter_map(|g| {
                let key = GroupKey::from_owned_name(g["name"].as_str()?)?;
                Some((key, id_of(&g["id"])?))
            })
            .collect())
    }

    /// The person with this email, if Kisi has one (read before create).
    async fn find_user(&self, email: &str) -> Result<Option<String>, SyncError> {
        let q = encode(email);
        let users = self.list(&format!("/users?query={q}")).await?;
        Ok(users
            .iter()
            .find(|u| {
                u["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .and_then(|u| id_of(&u["id"])))
    }

    fn grants_of(
        assignments: &[Value],
        groups: &BTreeMap<String, GroupKey>,
    ) -> BTreeMap<String, BTreeMap<GroupKey, ObservedGrant>> {
        let mut by_user: BTreeMap<String, BTreeMap<GroupKey, ObservedGrant>> = BTreeMap::new();
        for a in assignments {
            let (Some(user), Some(group), Some(id)) =
                (id_of(&a["user_id"]), id_of(&a["group_id"]), id_of(&a["id"]))
            else {
                continue;
            };
            let Some(key) = groups.get(&group) else {
                continue;
            };
            let until = a["valid_until"].as_str().and_then(parse_day);
            by_user.entry(user).or_default().insert(
                key.clone(),
                ObservedGrant {
                    id,
                    valid_until: until,
                },
            );
        }
        by_user
    }
}

/// `2026-12-31` or an RFC 3339 time: the day.
fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

#[async_trait]
impl DoorSystem for Kisi {
    async fn observe(
        &self,
        only: Option<&[&Entitlement]>,
        links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError> {
        let groups = self.owned_groups_cached(only.is_none()).await?;
        let by_id: BTreeMap<String, GroupKey> = groups
            .iter()
            .map(|(k, id)| (id.clone(), k.clone()))
            .collect();
        let mut users = BTreeMap::new();
        let mut people = BTreeMap::new();
        match only {
            None => {
                // Every grant in every owned group, then the people behind them.
                let mut assignments = Vec::new();
                for id in groups.values() {
                    assignments.extend(
                        self.list(&format!("/role_assignments?group_id={id}"))
                            .await?,
                    );
                }
                let grants = Self::grants_of(&assignments, &by_id);
                let linked: BTreeMap<&String, &String> =
                    links.iter().map(|(m, u)| (u, m)).collect();
                // Everyone, once: links people with grants that have no remembered id, and
                // new members without a lookup each.
                let mut by_email = BTreeMap::new();
                for u in self.list("/users").await? {
                    if let (Some(id), Some(email)) = (id_of(&u["id"]), u["email"].as_str()) {
                        by_email.insert(id, email.to_lowercase());
                    }
                }
                people = by_email
                    .iter()
                    .map(|(id, e)| (e.clone(), id.clone()))
                    .collect();
                for (user, g) in grants {
                    let member = match linked.get(&user) {
                        Some(m) => Some((*m).clone()),
                        None => by_email.get(&user).map(|e| format!("email:{e}")),
                    };
                    if let Some(m) = member {
                        users.insert(
                            m,
                            ObservedUser {
                                id: user,
                                grants: g,
                            },
                        );
                    }
                }
            }
            Some(list) => {
                for e in list {
                    let uid = match links.get(&e.member_id) {
                        Some(u) => Some(u.clone()),
                        None => self.find_user(&e.email).await?,
                    };
                    let Some(uid) = uid else { continue };
                    let assignments = self
                        .list(&format!("/role_assignments?user_id={uid}"))
                        .await?;
                    let mut g = Self::grants_of(&assignments, &by_id);
                    users.insert(
                        e.member_id.clone(),
                        ObservedUser {
                            grants: g.remove(&uid).unwrap_or_default(),
                            id: uid,
                        },
                    );
                }
            }
        }
        let people_complete = only.is_none();
        Ok(Observed {
            groups,
            users,
            people,
            people_complete,
        })
    }

    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        // Read before create: a group made by an earlier, interrupted run is reused.
        let existing = self.owned_groups().await?;
        let mut out = BTreeMap::new();
        for k in keys {
            if let Some(id) = existing.get(k) {
                out.insert(k.clone(), id.clone());
                continue;
            }
            let body = json!({"group": {
                "name": k.owned_name(),
                "description": match describe_window(&k.schedule, &self.hours).as_str() {
                    "always" => format!("Managed by Frontdesk: members whose plan maps to \"{}\", at any time. Add the doors here; Frontdesk manages the members.", k.group),
                    w => format!("Managed by Frontdesk: members whose plan maps to \"{}\" ({}). Add the doors here and set the group's time restriction to: {w}. Frontdesk manages the members.", k.group, k.schedule),
                },
            }});
            let (_, g) = self
                .client
                .send(Method::POST, "/groups", Some(&body))
                .await?;
            let id =
                id_of(&g["id"]).ok_or_else(|| SyncError::Protocol("group without id".into()))?;
            out.insert(k.clone(), id);
        }
        GROUPS.put_merged(&self.base, &existing, &out);
        Ok(out)
    }

    async fn apply(
        &self,
        want: &Entitlement,
        have: Option<&ObservedUser>,
        groups: &BTreeMap<GroupKey, String>,
    ) -> Result<Applied, SyncError> {
        let mut writes = 0;
        let empty = BTreeMap::new();
        let held = have.map_or(&empty, |h| &h.grants);
        // Revocations first: grants not wanted, or with another last day.
        for (key, g) in held {
            if want.grants.get(key) != Some(&g.valid_until) {
                match self
                    .client
                    .send(Method::DELETE, &format!("/role_assignments/{}", g.id), None)
                    .await
                {
                    // Gone already (a retry after a lost answer): that is what we wanted.
                    Ok(_) | Err(SyncError::Http { status: 404, .. }) => writes += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        let missing: Vec<(&GroupKey, &Option<NaiveDate>)> = want
            .grants
            .iter()
            .filter(|(k, until)| held.get(*k).map(|g| &g.valid_until) != Some(*until))
            .collect();
        if missing.is_empty() {
            return Ok(Applied {
                writes,
                user_id: have.map(|h| h.id.clone()),
            });
        }
        // An empty id: a complete listing showed the person does not exist yet.
        let known_absent = have.is_some_and(|h| h.id.is_empty());
        let user = match have.map(|h| h.id.clone()).filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => match if known_absent {
                None
            } else {
                self.find_user(&want.email).await?
            } {
                Some(id) => id,
                None => {
                    let body = json!({"user": {
                        "name": want.name,
                        "email": want.email,
                        "send_emails": true,
                        "confirm": true,
                    }});
                    let (_, u) = self
                        .client
                        .send(Method::POST, "/users", Some(&body))
                        .await?;
                    writes += 1;
                    id_of(&u["id"]).ok_or_else(|| SyncError::Protocol("user without id".into()))?
                }
            },
        };
        for (key, until) in missing {
            let group = groups.get(key).ok_or_else(|| {
                SyncError::Protocol(format!("group {} was not created", key.owned_name()))
            })?;
            let body = json!({"role_assignment": {
                "user_id": user.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(user.clone())),
                "group_id": group.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(group.clone())),
                "role_id": "group_basic",
                "valid_until": until.map(|d| format!("{d}T23:59:59Z")),
                "notify": false,
            }});
            self.client
                .send(Method::POST, "/role_assignments", Some(&body))
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
}
