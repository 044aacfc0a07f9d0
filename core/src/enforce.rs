//! Enforcement of changed decisions on live access (issue: after-hours): when a member is
//! suspended, cancelled, or moved to a plan that does not allow Wi-Fi now, their online RADIUS
//! sessions are disconnected and the portal devices they let in (their own, their sponsored
//! guests) are revoked. The closing-time scheduler will call the same path.

use crate::decide::{decide, Catalog, Holder, Reason, Resource, Subject};
use crate::mac::MacAddr;
use crate::ports::{ClientAuthorizer, ClientRef, Disconnector, SessionRef};
use crate::store::{Actor, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Sessions updated within this long without a Stop count as online (interim updates come
/// every few minutes; the RADIUS server uses the same horizon).
pub const ONLINE_HORIZON: chrono::Duration = chrono::Duration::minutes(25);

/// What was done for one session or portal device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub member_id: String,
    pub what: String,
    pub reason: Reason,
    pub result: Result<(), String>,
}

/// Re-decides `member_ids` at `now` and ends what is no longer allowed. `authorizer` is the
/// portal's (gateway or controller), when there is one.
pub async fn enforce_members(
    store: &Store,
    catalog: &Catalog,
    member_ids: &BTreeSet<String>,
    disconnector: &dyn Disconnector,
    authorizer: Option<&dyn ClientAuthorizer>,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut out = Vec::new();
    if member_ids.is_empty() {
        return Ok(out);
    }
    let sessions = store.sessions(Some(now - ONLINE_HORIZON), 100_000).await?;
    let actor = Actor {
        name: "frontdesk".into(),
        source: "enforcement".into(),
    };
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
        if d.allowed {
            continue;
        }
        for s in sessions
            .iter()
            .filter(|s| s.member_id.as_deref() == Some(id.as_str()))
        {
            let Ok(nas_addr) = s.nas_addr.parse() else {
                continue;
            };
            let session = SessionRef {
                nas_id: s.nas_id,
                nas_addr,
                user_name: s.user_name.clone(),
                acct_session_id: Some(s.acct_session_id.clone()),
                calling_station_id: s.mac.as_deref().and_then(|m| m.parse::<MacAddr>().ok()),
                nas_identifier: None,
            };
            let result = disconnector
                .disconnect(&session, d.reason)
                .await
                .map_err(|e| e.to_string());
            let what = format!("session {} on NAS #{}", s.acct_session_id, s.nas_id);
            store
                .record_event(
                    &actor,
                    "session.disconnect",
                    &member.id,
                    Some(format!(
                        "{what} reason={} result={}",
                        d.reason,
                        match &result {
                            Ok(()) => "ok".to_string(),
                            Err(e) => e.clone(),
                        }
                    )),
                )
                .await?;
            out.push(Outcome {
                member_id: member.id.clone(),
                what,
                reason: d.reason,
                result,
            });
        }
        if let Some(auth) = authorizer {
            for c in store.portal_clients_of(&member.id).await? {
                let client = ClientRef {
                    mac: c.mac,
                    ip: c.ip.as_deref().and_then(|i| i.parse().ok()),
                    location: c.network.clone(),
                };
                let result = auth.revoke(&client).await.map_err(|e| e.to_string());
                if result.is_ok() {
                    store.remove_portal_client(c.mac).await?;
                }
                let what = format!("portal device {} ({})", c.mac, c.kind.as_str());
                store
                    .record_event(
                        &actor,
                        "portal.revoke",
                        &member.id,
                        Some(format!("{what} reason={}", d.reason)),
                    )
                    .await?;
                out.push(Outcome {
                    member_id: member.id.clone(),
                    what,
                    reason: d.reason,
                    result,
                });
            }
        }
    }
    Ok(out)
}
