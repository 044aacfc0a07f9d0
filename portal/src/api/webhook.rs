//! Membership webhooks in: a billing system (Cobot, Nexudus, Optix, Stripe via a small relay)
//! tells Frontdesk that a member was created, changed, suspended, resumed or cancelled.
//!
//! Signed like Stripe's: `Frontdesk-Signature: t=UNIX,v1=HEX` where HEX is
//! HMAC-SHA256(secret, "UNIX.BODY"). The secret comes from `frontdesk webhook secret`; a
//! timestamp more than 5 minutes off is refused (replays), and an event id already applied is
//! acknowledged without being applied again (retries).

use super::{member_out, Api, ApiError, MemberOut};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::NaiveDate;
use frontdesk_core::clock;
use frontdesk_core::store::{Actor, NewMember, StoreError};
use frontdesk_core::MemberStatus;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tracing::{info, warn};
use utoipa::ToSchema;

/// The sealed-meta key of the shared secret.
pub const SECRET_KEY: &str = "webhook_secret";
pub const SIGNATURE_HEADER: &str = "frontdesk-signature";
/// How far the sender's timestamp may be from ours.
const TOLERANCE_SECS: i64 = 300;

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventType {
    #[serde(rename = "member.created")]
    Created,
    #[serde(rename = "member.updated")]
    Updated,
    #[serde(rename = "member.suspended")]
    Suspended,
    #[serde(rename = "member.resumed")]
    Resumed,
    #[serde(rename = "member.cancelled")]
    Cancelled,
}

/// The member as the billing system knows them; matched by email.
#[derive(Deserialize, ToSchema)]
pub struct EventMember {
    #[schema(format = "email")]
    pub email: String,
    /// Required for `member.created`.
    pub name: Option<String>,
    /// A Frontdesk plan name; required for `member.created`.
    pub plan: Option<String>,
    /// A team name; empty string: no team.
    pub team: Option<String>,
    /// The plan's last day (inclusive), for `created` and `updated` with `plan`.
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<String>,
    /// For `member.cancelled`: keep access until the end of this day ("end of period");
    /// absent: cancelled now.
    #[schema(value_type = Option<String>, format = Date)]
    pub last_day: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct MembershipEvent {
    /// The sender's unique event id: a retried delivery with the same id is not applied twice.
    #[schema(min_length = 1, max_length = 200)]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub member: EventMember,
}

#[derive(Serialize, ToSchema)]
pub struct EventResult {
    pub event_id: String,
    /// false: this event id was applied before (a retry); nothing changed.
    pub applied: bool,
    pub member: Option<MemberOut>,
}

/// Checks `t=…,v1=…` against the body; constant-time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), &'static str> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = t.ok_or("the signature header has no t=TIMESTAMP")?;
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(
            "the signature timestamp is more than 5 minutes off (replayed, or a clock is wrong)",
        );
    }
    for sig in sigs {
        if signed(secret, body, t).verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err("the signature does not match (wrong secret, or the body was changed)")
}

/// Signs a body as a sender would (tests, and `frontdesk webhook sign` for operators trying
/// the endpoint by hand).
pub fn sign(secret: &[u8], body: &[u8], t: i64) -> String {
    let mac = signed(secret, body, t).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(mac))
}

/// HMAC-SHA256 over "T.BODY", the signed payload of both ends.
fn signed(secret: &[u8], body: &[u8], t: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Applies a signed membership event.
#[utoipa::path(post, path = "/api/v1/webhooks/membership", tag = "webhooks",
    request_body = MembershipEvent,
    params(("Frontdesk-Signature" = String, Header,
        description = "t=UNIX,v1=HEX: HMAC-SHA256 of \"UNIX.BODY\" with the webhook secret")),
    responses(
        (status = 200, description = "Applied, or already applied", body = EventResult),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = super::ErrorBody),
        (status = 404, description = "Unknown member, plan or team", body = super::ErrorBody),
        (status = 409, description = "Conflicts with existing data", body = super::ErrorBody),
        (status = 422, description = "Invalid values", body = super::ErrorBody),
        (status = 503, description = "Webhooks are not enabled", body = super::ErrorBody),
    ))]
pub async fn membership(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EventResult>, ApiError> {
    let store = &api.0.store;
    let secret = store.sealed_meta(SECRET_KEY).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "membership webhooks are not enabled: run `frontdesk webhook secret`",
        )
    })?;
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(why) = verify(secret.as_bytes(), header, &body, clock::now().timestamp()) {
        warn!(why, "webhook: refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            why,
        ));
    }
    let ev: MembershipEvent = super::parse(&body)?;
    if ev.id.is_empty() || ev.id.len() > 200 {
        return Err(ApiError::invalid("event id: 1–200 characters"));
    }
    let cat = store.catalog().await?;
    if store.webhook_seen(&ev.id).await? {
        let m = store.find_member(&ev.member.email).await?;
        return Ok(Json(EventResult {
            event_id: ev.id,
            applied: false,
            member: m.map(|m| member_out(&cat, &m)),
        }));
    }
    let actor = Actor {
        name: "webhook".into(),
        source: "webhook".into(),
    };
    let today = cat.site.date_at(clock::now());
    let m = apply(&api, &ev, today, &actor).await?;
    store
        .record_webhook(&ev.id, kind_name(ev.kind), Some(&m.id))
        .await?;
    info!(event = %ev.id, kind = kind_name(ev.kind), member = %m.id, "webhook: applied");
    Ok(Json(EventResult {
        event_id: ev.id,
        applied: true,
        member: Some(member_out(&cat, &m)),
    }))
}

fn kind_name(k: EventType) -> &'static str {
    match k {
        EventType::Created => "member.created",
        EventType::Updated => "member.updated",
        EventType::Suspended => "member.suspended",
        EventType::Resumed => "member.resumed",
        EventType::Cancelled => "member.cancelled",
    }
}

async fn apply(
    api: &Api,
    ev: &MembershipEvent,
    today: NaiveDate,
    actor: &Actor,
) -> Result<frontdesk_core::Member, ApiError> {
    let store = &api.0.store;
    let e = &ev.member;
    let existing = store.find_member(&e.email).await?;
    let team = e.team.as_deref().map(|t| Some(t).filter(|t| !t.is_empty()));
    let valid_until = super::date("member.valid_until", &e.valid_until)?;
    let last_day = super::date("member.last_day", &e.last_day)?;
    let m = match (ev.kind, existing) {
        (EventType::Created, None) => {
            let new = NewMember {
                name: e
                    .name
                    .clone()
                    .ok_or_else(|| ApiError::invalid("member.created needs member.name"))?,
                email: e.email.clone(),
                plan: e
                    .plan
                    .clone()
                    .ok_or_else(|| ApiError::invalid("member.created needs member.plan"))?,
                team: team.flatten().map(str::to_string),
                valid_from: None,
                valid_until,
                wifi_username: None,
                wifi_password: None,
            };
            store.add_member(&new, today, actor).await?.0
        }
        (_, None) => {
            return Err(StoreError::NotFound(format!("member {}", e.email)).into());
        }
        // A created event for a member we have (sent twice with new ids, or imported first)
        // is an update.
        (EventType::Created | EventType::Updated, Some(mut m)) => {
            if m.status == MemberStatus::Cancelled {
                return Err(ApiError::invalid(format!(
                    "member {} is cancelled; cancellation is final",
                    m.email
                )));
            }
            if e.name.is_some() || team.is_some() {
                m = store
                    .update_member(&m.id, e.name.as_deref(), None, team, actor)
                    .await?;
            }
            if let Some(plan) = &e.plan {
                let cat = store.catalog().await?;
                let holds = m.assignments.iter().any(|a| {
                    cat.plan(a.plan_id).is_some_and(|p| &p.name == plan)
                        && a.valid_from <= today
                        && a.valid_until == valid_until
                });
                if !holds {
                    m = store
                        .set_member_plan(&m.id, plan, today, valid_until, actor)
                        .await?;
                }
            }
            m
        }
        (EventType::Suspended, Some(m)) => {
            set_status(api, m, MemberStatus::Suspended, actor).await?
        }
        (EventType::Resumed, Some(m)) => set_status(api, m, MemberStatus::Active, actor).await?,
        (EventType::Cancelled, Some(m)) => match last_day {
            Some(last) => store.end_member_at(&m.id, last, today, actor).await?,
            None => set_status(api, m, MemberStatus::Cancelled, actor).await?,
        },
    };
    Ok(m)
}

/// Sets a status; already being in it is fine (billing systems resend).
async fn set_status(
    api: &Api,
    m: frontdesk_core::Member,
    status: MemberStatus,
    actor: &Actor,
) -> Result<frontdesk_core::Member, ApiError> {
    if m.status == status {
        return Ok(m);
    }
    Ok(api.0.store.set_member_status(&m.id, status, actor).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign(b"s3cret", body, 1_000_000);
        assert!(verify(b"s3cret", &h, body, 1_000_000).is_ok());
        assert!(verify(b"s3cret", &h, body, 1_000_299).is_ok());
        assert!(verify(b"s3cret", &h, body, 1_000_301).is_err(), "stale");
        assert!(
            verify(b"other", &h, body, 1_000_000).is_err(),
            "wrong secret"
        );
        assert!(
            verify(b"s3cret", &h, b"{}", 1_000_000).is_err(),
            "changed body"
        );
        assert!(verify(b"s3cret", "", body, 1_000_000).is_err());
        assert!(verify(b"s3cret", "t=1000000,v1=zz", body, 1_000_000).is_err());
        // Several v1 entries (a sender mid-rotation): one matching is enough.
        let good = h.split("v1=").nth(1).unwrap();
        let two = format!("t=1000000,v1={},v1={good}", "00".repeat(32));
        assert!(verify(b"s3cret", &two, body, 1_000_000).is_ok());
    }
}
