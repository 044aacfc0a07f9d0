//! Salto KS (cloud) backend, after Salto's public Connect API guides
//! (developer.saltosystems.com/ks: "Getting authenticated", "Granting user access via the
//! Connect API"; shapes as noted in DOORS.md).
//!
//! Documented there and followed here: OAuth2 / OpenID Connect with the client credentials
//! sent as Basic auth to `{identity server}/connect/token`, the access token as a bearer;
//! a site's users (`POST …/sites/{site}/users`, a user with an email gets an invitation for
//! the app); access groups named by `customer_reference`
//! (`POST …/sites/{site}/accessgroups`) holding users (`…/accessgroups/{id}/users`), locks
//! (`…/locks`) and time schedules (`…/time_schedules`); OData-style `$top`/`$skip`/`$filter`.
//! Not shown in the public guides (the full reference needs a Salto account), so kept
//! tolerant: a list answer may be a bare array or `{"items": […]}` with an optional count,
//! so paging goes on until an empty page unless a count says it is complete; a time schedule
//! is one interval with its weekdays (`start_time`, `end_time`, `monday` … `sunday`).
//!
//! Ownership: only access groups whose `customer_reference` is `Frontdesk · <group> ·
//! <window>` are read for grants or written. Frontdesk never adds or removes locks: the
//! operator adds the doors to the group in Salto KS. People are matched by the Salto user id
//! remembered from the last run, else by email (the first link), never by name. Salto KS
//! users are not deleted on cancel: every owned group membership is removed, which ends
//! access. No per-membership end date is written (not in the documented shapes): the last
//! day is enforced by Frontdesk's revocation (the full run after midnight).
//!
//! `--secret-file` holds `client_id = …`, `client_secret = …`, `token_url = …` (the identity
//! server's token endpoint) and optionally `scope = …`, one per line; `--url` is the site's
//! API base, e.g. `https://…/v1.1/sites/<site id>`.

use crate::backend::{
    Applied, DoorSystem, GroupCache, Observed, ObservedGrant, ObservedUser, SyncError,
};
use crate::desired::{same_day_intervals, Entitlement, GroupKey};
use crate::http::{encode, id_of, Client};
use async_trait::async_trait;
use frontdesk_core::schedule::OpeningHours;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const PAGE: usize = 100;
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// No published rate limit found for the Connect API: stay gentle.
const RATE: f64 = 5.0;

/// The OAuth2 client credentials from the secret file.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    pub scope: Option<String>,
}

impl Credentials {
    /// `key = value` lines; `#` comments.
    pub fn parse(text: &str) -> Result<Credentials, SyncError> {
        let mut m = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                SyncError::Protocol(
                    "the Salto KS secret file holds `key = value` lines (client_id, client_secret, token_url, scope)".into(),
                )
            })?;
            m.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
        let need = |k: &str| {
            m.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                SyncError::Protocol(format!("the Salto KS secret file has no {k} = …"))
            })
        };
        let token_url = need("token_url")?;
        if !secure_or_local(&token_url) {
            return Err(SyncError::Protocol(format!(
                "token_url {token_url:?}: the client secret goes only to an https:// address (or a loopback one for tests)"
            )));
        }
        Ok(Credentials {
            client_id: need("client_id")?,
            client_secret: need("client_secret")?,
            token_url,
            scope: m.get("scope").filter(|s| !s.is_empty()).cloned(),
        })
    }
}

fn secure_or_local(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    u.scheme() == "https"
        || (u.scheme() == "http"
            && matches!(
                u.host_str(),
                Some("127.0.0.1") | Some("localhost") | Some("[::1]")
            ))
}

pub struct SaltoKs {
    client: Client,
    base: String,
    creds: Credentials,
    hours: OpeningHours,
    /// The access token in `client`; the lock also makes one fetch at a time.
    token: Mutex<Option<String>>,
    /// The identity server's token endpoint, with the client credentials as Basic auth.
    auth: Client,
}

/// Access tokens by token endpoint and client id, with when to renew them.
static TOKENS: std::sync::Mutex<BTreeMap<String, (String, Instant)>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Owned access groups as last listed, for member runs.
static GROUPS: GroupCache = GroupCache::new();

fn bearer(token: &str) -> Result<HeaderValue, SyncError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| SyncError::Protocol("token endpoint: unusable access_token".into()))
}

/// Items of a list answer: a bare array or `{"items": […]}`.
fn items(v: &Value) -> Option<&Vec<Value>> {
    v.as_array().or_else(|| v["items"].as_array())
}

fn count(v: &Value) -> Option<usize> {
    ["total_count", "@odata.count", "count"]
        .iter()
        .find_map(|k| v[*k].as_u64())
        .map(|n| n as usize)
}

/// An OData string literal (quotes doubled), percent-encoded for a query.
fn filter_eq(field: &str, value: &str) -> String {
    encode(&format!("{field} eq '{}'", value.replace('\'', "''")))
}

impl SaltoKs {
    pub fn new(base: &str, secret: &str, hours: OpeningHours) -> Result<SaltoKs, SyncError> {
        let creds = Credentials::parse(secret)?;
        let basic = {
            use base64::Engine;
            let pair = format!("{}:{}", creds.client_id, creds.client_secret);
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
            .map_err(|_| SyncError::Protocol("unusable client credentials".into()))?
        };
        // The bucket is per site and client; the token itself changes.
        let placeholder = HeaderValue::from_str(&format!("Bearer client:{}", creds.client_id))
            .map_err(|_| {
                SyncError::Protocol("client_id has characters a header cannot hold".into())
            })?;
        Ok(SaltoKs {
            client: Client::new(base, placeholder, RATE, Duration::from_secs(10))?,
            base: base.trim_end_matches('/').to_string(),
            hours,
            token: Mutex::new(None),
            auth: Client::new(&creds.token_url, basic, 2.0, Duration::from_secs(10))?,
            creds,
        })
    }

    /// A valid access token in the client: one handed out earlier in this process (member
    /// changes do not each cost a token request), else a new one (also when `renew`).
    async fn authorize(&self, renew: bool) -> Result<(), SyncError> {
        let mut current = self.token.lock().await;
        let key = format!("{} {}", self.creds.token_url, self.creds.client_id);
        if !renew {
            let shared = TOKENS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .filter(|(_, until)| Instant::now() < *until)
                .map(|(t, _)| t.clone());
            if let Some(t) = shared {
                if current.as_deref() != Some(t.as_str()) {
                    self.client.set_auth(bearer(&t)?);
                    *current = Some(t);
                }
                return Ok(());
            }
        }
        let mut form = String::from("grant_type=client_credentials");
        if let Some(s) = &self.creds.scope {
            form.push_str(&format!("&scope={}", encode(s)));
        }
        let body = self.auth.post_form("", &form).await.map_err(|e| match e {
            SyncError::Http { status, body, .. } => SyncError::Http {
                method: "POST".into(),
                path: "(token endpoint)".into(),
                status,
                body,
            },
            e => e,
        })?;
        let token = body["access_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SyncError::Protocol("token endpoint: no access_token".into()))?;
        let ttl = body["expires_in"].as_u64().unwrap_or(300);
        self.client.set_auth(bearer(token)?);
        // Renew a minute early (or halfway, for short-lived tokens).
        let early = Duration::from_secs(ttl.min(120) / 2);
        TOKENS.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key,
            (
                token.to_string(),
                Instant::now() + Duration::from_secs(ttl) - early,
            ),
        );
        *current = Some(token.to_string());
        Ok(())
    }

    /// One request with a valid token; a 401 renews the token once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SyncError> {
        self.authorize(false).await?;
        match self.client.send(method.clone(), path, body).await {
            Err(SyncError::Http { status: 401, .. }) => {
                self.authorize(true).await?;
                Ok(self.client.send(method, path, body).await?.1)
            }
            r => Ok(r?.1),
        }
    }

    /// Every item of a list (`query` without paging parameters).
    async fn list(&self, path: &str, query: &str) -> Result<Vec<Value>, SyncError> {
        let mut out = Vec::new();
        loop {
            let mut q = format!("$top={PAGE}&$skip={}", out.len());
            if !query.is_empty() {
                q = format!("{query}&{q}");
            }
            let v = self.send(Method::GET, &format!("{path}?{q}"), None).await?;
            let page =
                items(&v).ok_or_else(|| SyncError::Protocol(format!("{path}: not a list")))?;
            let got = page.len();
            out.extend(page.iter().cloned());
            match count(&v) {
                Some(total) if out.len() < total && got > 0 => continue,
                Some(_) => return Ok(out),
                // No count: a page may come short without being the last (a server cap);
                // only an empty page ends the list.
                None if got > 0 => continue,
                None => return Ok(out),
            }
        }
    }

    async fn owned_groups(&self) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        Ok(self
            .list("/accessgroups", "")
            .await?
            .iter()
            .filter_map(|g| {
                Some((
                    GroupKey::from_owned_name(g["customer_reference"].as_str()?)?,
                    id_of(&g["id"])?,
                ))
            })
            .collect())
    }

    /// The item of `path` whose `field` equals `value` (case-insensitively), by `$filter`:
    /// one request when the filter is honoured (an empty page or a match), the whole list
    /// when the answer shows it was not.
    async fn find(&self, path: &str, field: &str, value: &str) -> Result<Option<Value>, SyncError> {
        let is = |u: &Value| {
            u[field]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(value))
        };
        let v = self
            .send(
                Method::GET,
                &format!(
                    "{path}?$filter={}&$top={PAGE}&$skip=0",
                    filter_eq(field, value)
                ),
                None,
            )
            .await?;
        let page = items(&v).ok_or_else(|| SyncError::Protocol(format!("{path}: not a list")))?;
        if page.is_empty() || page.iter().any(is) {
            return Ok(page.iter().find(|u| is(u)).cloned());
        }
        Ok(self.list(path, "").await?.into_iter().find(is))
    }

    async fn find_user(&self, email: &str) -> Result<Option<String>, SyncError> {
        Ok(self
            .find("/users", "email", email)
            .await?
            .and_then(|u| id_of(&u["id"])))
    }

    /// The group's time schedules: one per distinct interval, with its weekdays.
    fn schedules_for(&self, key: &GroupKey) -> Vec<Value> {
        let mut by_time: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
        for i in same_day_intervals(&key.schedule, &self.hours) {
            let to = if i.to == "24:00" {
                "23:59:59".to_string()
            } else {
                format!("{}:00", i.to)
            };
            by_time
                .entry((format!("{}:00", i.from), to))
                .or_default()
                .insert(i.day);
        }
        by_time
            .into_iter()
            .map(|((from, to), days)| {
                let mut s = serde_json::Map::new();
                s.insert("start_time".into(), json!(from));
                s.insert("end_time".into(), json!(to));
                for (d, name) in WEEKDAYS.iter().enumerate() {
                    s.insert((*name).into(), json!(days.contains(&d)));
                }
                Value::Object(s)
            })
            .collect()
    }

    /// Writes the group's time schedules unless it has some (a group made by a run that
    /// stopped before its schedules were written is finished here).
    async fn ensure_schedules(&self, key: &GroupKey, id: &str) -> Result<(), SyncError> {
        let path = format!("/accessgroups/{id}/time_schedules");
        if !self.list(&path, "").await?.is_empty() {
            return Ok(());
        }
        for s in self.schedules_for(key) {
            self.send(Method::POST, &path, Some(&s)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl DoorSystem for SaltoKs {
    async fn observe(
        &self,
        only: Option<&[&Entitlement]>,
        links: &BTreeMap<String, String>,
    ) -> Result<Observed, SyncError> {
        let mut groups = match only.and_then(|_| GROUPS.get(&self.base)) {
            Some(g) => g,
            None => self.owned_groups().await?,
        };
        let mut users: BTreeMap<String, ObservedUser> = BTreeMap::new();
        let mut people = BTreeMap::new();
        match only {
            None => {
                // A group without schedules (an interrupted first write) counts as missing,
                // so it is finished before anyone is granted it.
                let mut members: BTreeMap<String, BTreeMap<GroupKey, ObservedGrant>> =
                    BTreeMap::new();
                let mut unfinished = Vec::new();
                for (key, gid) in &groups {
                    if self
                        .list(&format!("/accessgroups/{gid}/time_schedules"), "")
                        .await?
                        .is_empty()
                    {
                        unfinished.push(key.clone());
                    }
                    for u in self.list(&format!("/accessgroups/{gid}/users"), "").await? {
                        if let Some(uid) = id_of(&u["id"]).or_else(|| id_of(&u["user_id"])) {
                            members.entry(uid.clone()).or_default().insert(
                                key.clone(),
                                ObservedGrant {
                                    id: uid,
                                    valid_until: None,
                                },
                            );
                        }
                    }
                }
                let mut email_of = BTreeMap::new();
                for u in self.list("/users", "").await? {
                    if let (Some(id), Some(email)) = (id_of(&u["id"]), u["email"].as_str()) {
                        email_of.insert(id.clone(), email.to_lowercase());
                        people.insert(email.to_lowercase(), id);
                    }
                }
                let linked: BTreeMap<&String, &String> =
                    links.iter().map(|(m, u)| (u, m)).collect();
                for (uid, grants) in members {
                    let member = match linked.get(&uid) {
                        Some(m) => (*m).clone(),
                        None => match email_of.get(&uid) {
                            Some(e) => format!("email:{e}"),
                            None => continue,
                        },
                    };
                    users.insert(member, ObservedUser { id: uid, grants });
                }
                for k in unfinished {
                    groups.remove(&k);
                }
                GROUPS.put(&self.base, &groups);
            }
            Some(list) => {
                for e in list {
                    let uid = match links.get(&e.member_id) {
                        Some(u) => Some(u.clone()),
                        None => self.find_user(&e.email).await?,
                    };
                    let Some(uid) = uid else { continue };
                    let mut grants = BTreeMap::new();
                    if e.grants.is_empty() {
                        // A revocation: every owned group is removed without asking first
                        // (a removal from a group they are not in answers 404, which is
                        // fine), so the first request is already a revocation.
                        for key in groups.keys() {
                            grants.insert(
                                key.clone(),
                                ObservedGrant {
                                    id: uid.clone(),
                                    valid_until: None,
                                },
                            );
                        }
                        users.insert(e.member_id.clone(), ObservedUser { id: uid, grants });
                        continue;
                    }
                    for (key, gid) in &groups {
                        let inside = self
                            .find(&format!("/accessgroups/{gid}/users"), "id", &uid)
                            .await?;
                        if inside.is_some() {
                            grants.insert(
                                key.clone(),
                                ObservedGrant {
                                    id: uid.clone(),
                                    valid_until: None,
                                },
                            );
                        }
                    }
                    users.insert(e.member_id.clone(), ObservedUser { id: uid, grants });
                }
            }
        }
        Ok(Observed {
            groups,
            users,
            people,
            people_complete: only.is_none(),
        })
    }

    async fn create_groups(
        &self,
        keys: &[GroupKey],
    ) -> Result<BTreeMap<GroupKey, String>, SyncError> {
        // Read before create: a group made by an earlier, interrupted run is reused (and
        // its schedules finished).
        let existing = self.owned_groups().await?;
        let mut out = BTreeMap::new();
        for k in keys {
            let id = match existing.get(k) {
                Some(id) => id.clone(),
                None => {
                    let g = self
                        .send(
                            Method::POST,
                            "/accessgroups",
                            Some(&json!({"customer_reference": k.owned_name()})),
                        )
                        .await?;
                    id_of(&g["id"])
                        .ok_or_else(|| SyncError::Protocol("access group without id".into()))?
                }
            };
            self.ensure_schedules(k, &id).await?;
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
        // Revocations first.
        for (key, g) in held {
            if want.grants.contains_key(key) {
                continue;
            }
            let Some(gid) = groups.get(key) else { continue };
            match self
                .send(
                    Method::DELETE,
                    &format!("/accessgroups/{gid}/users/{}", g.id),
                    None,
                )
                .await
            {
                Ok(_) | Err(SyncError::Http { status: 404, .. }) => writes += 1,
                Err(e) => return Err(e),
            }
        }
        let missing: Vec<&GroupKey> = want
            .grants
            .keys()
            .filter(|k| !held.contains_key(*k))
            .collect();
        if missing.is_empty() {
            return Ok(Applied {
                writes,
                user_id: have.map(|h| h.id.clone()).filter(|id| !id.is_empty()),
            });
        }
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
                    let (first, last) = want
                        .name
                        .split_once(' ')
                        .unwrap_or((want.name.as_str(), ""));
                    let u = self
                        .send(
                            Method::POST,
                            "/users",
                            Some(&json!({"first_name": first, "last_name": last, "email": want.email})),
                        )
                        .await?;
                    writes += 1;
                    id_of(&u["id"]).ok_or_else(|| SyncError::Protocol("user without id".into()))?
                }
            },
        };
        for key in missing {
            let gid = groups.get(key).ok_or_else(|| {
                SyncError::Protocol(format!("access group {} was not created", key.owned_name()))
            })?;
            match self
                .send(
                    Method::POST,
                    &format!("/accessgroups/{gid}/users"),
                    Some(&json!({"user_id": user})),
                )
                .await
            {
                // In it already (an earlier answer was lost): what we wanted.
                Ok(_) | Err(SyncError::Http { status: 409, .. }) => writes += 1,
                Err(e) => return Err(e),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_all_three_and_a_safe_token_url() {
        let c = Credentials::parse(
            "# from Salto\nclient_id = abc\nclient_secret = \"s3cr=t\"\ntoken_url = https://identity.example/connect/token\n",
        )
        .unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.client_secret.as_str()),
            ("abc", "s3cr=t")
        );
        assert!(Credentials::parse("client_id = a\nclient_secret = b\n").is_err());
        let e = Credentials::parse(
            "client_id = a\nclient_secret = b\ntoken_url = http://identity.example/t\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("https"), "{e}");
        assert!(Credentials::parse(
            "client_id = a\nclient_secret = b\ntoken_url = http://127.0.0.1:9/t\n"
        )
        .is_ok());
    }

    #[test]
    fn odata_literals_are_quoted_and_encoded() {
        assert_eq!(
            filter_eq("email", "o'neil@example.com"),
            "email%20eq%20%27o%27%27neil%40example.com%27"
        );
    }
}
