//! Ending access that is no longer allowed: RADIUS sessions (Disconnect-Request through a
//! [`Disconnector`]) and portal devices (through a [`ClientAuthorizer`]). Two callers: member
//! changes (suspend, cancel, set-plan: [`enforce_members`]) and the closing-time
//! [`crate::scheduler`]. Every ending is audited and its state kept on the session row
//! (`pending` → `acked` / `failed: …`) so `sessions --online` can say what is still pending.

use crate::decide::{decide, Catalog, Holder, Reason, Resource, Subject};
use crate::mac::MacAddr;
use crate::ports::{ClientAuthorizer, Disconnector, SessionRef};
use crate::store::portal::PortalClient;
use crate::store::radius::SessionRow;
use crate::store::{Actor, Store, StoreError};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::BTreeSet;

/// Sessions updated within this long without a Stop count as online (interim updates come
/// every few minutes; the RADIUS server uses the same horizon).
pub const ONLINE_HORIZON: chrono::Duration = chrono::Duration::minutes(25);

/// Disconnect-Requests in flight at once (each has its own socket and retry timer).
const PARALLEL: usize = 256;

/// What was done for one session or portal device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The member (or voucher code, device MAC) whose access ended.
    pub subject: String,
    pub what: String,
    pub reason: Reason,
    pub result: Result<(), String>,
}

/// A session to end, and why.
#[derive(Clone, Debug)]
pub struct SessionEnd {
    pub session: SessionRow,
    pub reason: Reason,
    /// Said in the audit instead of the reason (e.g. a VLAN move, where the decision is `ok`).
    pub note: Option<String>,
}

/// When a session still allowed must move to another VLAN (plan or team changed): the note
/// for its Disconnect-Request. Wi-Fi clients need to re-associate (and get an address in the
/// new VLAN); a CoA changing Tunnel-Private-Group-Id mid-session is not honoured by access
/// points. Sessions whose VLAN is not known (no Tunnel-Private-Group-Id or Class in their
/// accounting) are left to their Session-Timeout.
pub fn vlan_moved(s: &SessionRow, d: &crate::decide::Decision) -> Option<String> {
    let now = s.vlan?;
    let want = i64::from(d.vlan?);
    (d.allowed && now != want).then(|| format!("vlan-change {now}->{want}"))
}

/// A portal device to let go of, and why.
#[derive(Clone, Debug)]
pub struct PortalEnd {
    pub client: PortalClient,
    pub reason: Reason,
}

fn actor(source: &str) -> Actor {
    Actor {
        name: "frontdesk".into(),
        source: source.into(),
    }
}

/// The subject an audit line and log name for a session: its member, else its user name.
fn session_subject(s: &SessionRow) -> String {
    s.member_id.clone().unwrap_or_else(|| s.user_name.clone())
}

/// What ending one session by hand came to.
pub enum Ended {
    /// Not online (any more): nothing sent.
    NotOnline,
    /// The user name, and whether the access point acknowledged (else its error).
    Sent(String, Result<(), String>),
}

/// Ends one online session on an operator's or integration's request (console button, API):
/// a Disconnect-Request like enforcement's, audited with `note` (who asked).
pub async fn end_one(
    store: &Store,
    disconnector: &dyn Disconnector,
    id: i64,
    note: String,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Ended, StoreError> {
    let Some(session) = store.online_session(id, now - ONLINE_HORIZON).await? else {
        return Ok(Ended::NotOnline);
    };
    let user = session.user_name.clone();
    let end = SessionEnd {
        session,
        reason: Reason::Ok,
        note: Some(note),
    };
    let out = end_sessions(store, disconnector, vec![end], source, now).await?;
    Ok(match out.into_iter().next() {
        Some(o) => Ended::Sent(user, o.result),
        None => Ended::NotOnline,
    })
}

/// Ends sessions concurrently: marks them `pending`, sends the Disconnect-Requests (at most
/// [`PARALLEL`] in flight), then records each result and audits it, in one transaction each.
pub async fn end_sessions(
    store: &Store,
    disconnector: &dyn Disconnector,
    ends: Vec<SessionEnd>,
    source: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, StoreError> {
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    let pending: Vec<(i64, String)> = ends
        .iter()
        .map(|e| (e.session.id, "pending".to_string()))
        .collect();
    store.mark_disconnect(&pending, now).await?;
    let started = std::time::Instant::now();
    let results: Vec<(SessionEnd, Result<(), String>)> = futures_util::stream::iter(ends)
        .map(|e| async move {
            let result = match e.session.nas_addr.parse() {
                Ok(nas_addr) => {
                    let s = &e.session;
                    let session = SessionRef {
                        nas_id: s.nas_id,
                        nas_addr,
                        user_name: s.user_name.clone(),
                        acct_session_id: Some(s.acct_session_id.clone()),
                        calling_station_id: s
                            .mac
                            .as_deref()
                            .and_then(|m| m.parse::<MacAddr>().ok()),
                        nas_identifier: None,
                    };
                    disconnector
                        .disconnect(&session, e.reason)
                        .await
                        .map_err(|err| err.to_string())
                }
                Err(_) => Err(format!(
                    "stored NAS address {:?} is malformed",
                    e.session.nas_addr
                )),
            };
            (e, result)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let marks: Vec<(i64, String)> = results
        .iter()
        .map(|(e, r)| {
            (
                e.session.id,
                match r {
                    Ok(()) => "acked".to_string(),
                    Err(why) => format!("failed: {why}"),
                },
            )
        })
        .collect();
    let done = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    store.mark_disconnect(&marks, done).await?;
    let mut events = Vec::with_capacity(results.len());
    let mut out = Vec::with_capacity(results.len());
    for (e, result) in results {
        let s = &e.session;
        let what = format!(
            "session {} of {} on NAS #{}",
            s.acct_session_id, s.user_name, s.nas_id
        );
        events.push((
            "session.disconnect",
            session_subject(s),
            Some(format!(
                "{what} reason={} result={}",
                e.note.clone().unwrap_or_else(|| e.reason.to_string()),
                match &result {
                    Ok(()) => "ok",
                    Err(why) => why.as_str(),
                }
            )),
        ));
        out.push(Outcome {
            subject: session_subject(s),
            what,
            reason: e.reason,
            result,
        });
    }
    store.record_events(&actor(source), &events).await?;
    Ok(out)
}

/// Revokes portal devices (element removal and connection flush) and forgets them.
pub async fn end_portal_clients(
    store: &Store,
    authorizer: &dyn ClientAuthorizer,
    ends: Vec<PortalEnd>,
    source: &str,
) -> Result<Vec<Outcome>, StoreError> {
    let mut events = Vec::with_capacity(ends.len());
    let mut out = Vec::with_capacity(ends.len());
    for e in ends {
        let c = &e.client;
        let result = authorizer
            .revoke(&c.client_ref())
            .await
            .map_err(|e| e.to_string());
        if result.is_ok() {
            store.remove_portal_client(c.mac).await?;
        }
        let what = format!("portal device {} ({})", c.mac, c.kind.as_str());
        events.push((
            "portal.revoke",
            c.subject.clone(),
            Some(format!("{what} reason={}", e.reason)),
        ));
        out.push(Outcome {
            subject: c.subject.clone(),
            what,
            reason: e.reason,
            result,
        });
    }
    store.record_events(&actor(source), &events).await?;
    Ok(out)
}

/// Re-decides `member_ids` at `now` and ends what is no longer allowed: their online sessions
/// and the portal devices they let in (their own, their sponsored guests). `authorizer` is the
/// portal's (gateway or controller), when there is one.
pub async fn enforce_members(
    store: &Store,
    catalog: &Catalog,
    member_ids: &BTreeSet<String>,
    disconnector: &dyn Disconnector,
    authorizer: Option<&dyn ClientAuthorizer>,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, StoreError> {
    if member_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = member_ids.iter().map(String::as_str).collect();
    let sessions = store.online_sessions_of(&ids, now - ONLINE_HORIZON).await?;
    let mut session_ends = Vec::new();
    let mut portal_ends = Vec::new();
    for id in member_ids {
        let member = match store.member(id).await {
            Ok(m) => m,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let d = decide(
            catalog,
            Subject::Member(Holder::from(&member)),
            Resource::WIFI,
            now,
        );
        for sess in sessions
            .iter()
            .filter(|s| s.member_id.as_deref() == Some(id.as_str()))
        {
            // A MAC-authenticated device of the member (a printer) is decided as the device:
            // its own plan, bounded by its owner's status and membership.
            let device = match sess.user_name.parse::<MacAddr>() {
                Ok(mac) => store.device(mac).await?,
                Err(_) => None,
            };
            let own = device.as_ref().map(|device| {
                decide(
                    catalog,
                    Subject::Device {
                        device,
                        owner: Some(Holder::from(&member)),
                    },
                    Resource::WIFI,
                    now,
                )
            });
            let dd = own.as_ref().unwrap_or(&d);
            if !dd.allowed {
                session_ends.push(SessionEnd {
                    session: sess.clone(),
                    reason: dd.reason,
                    note: None,
                });
            } else if let Some(note) = vlan_moved(sess, dd) {
                session_ends.push(SessionEnd {
                    session: sess.clone(),
                    reason: dd.reason,
                    note: Some(note),
                });
            }
        }
        if d.allowed {
            continue;
        }
        if authorizer.is_some() {
            portal_ends.extend(store.portal_clients_of(&member.id).await?.into_iter().map(
                |client| PortalEnd {
                    client,
                    reason: d.reason,
                },
            ));
        }
    }
    let mut out = end_sessions(store, disconnector, session_ends, "enforcement", now).await?;
    if let Some(auth) = authorizer {
        out.extend(end_portal_clients(store, auth, portal_ends, "enforcement").await?);
    }
    Ok(out)
}
