//! Door events in: a door system's own webhooks (SPEC §6, issue 9). An unlock feeds the audit
//! log and "who is in the space"; a door held open or forced raises a dashboard alert and a
//! log line.
//!
//! `POST /api/v1/webhooks/doors/{backend}`, verified with the backend's events secret
//! (`frontdesk door events-secret`), after the shapes noted in DOORS.md:
//! - **Kisi**: `X-Signature: HEX(HMAC-SHA256(secret, BODY))`; an event with `id`, `action`
//!   (`unlock`, …), `success`, `object_name` (the door), `actor_id` / `actor_name` /
//!   `actor_email`, `created_at`. No timestamp is signed, so a replay is caught by the event
//!   id (recorded once).
//! - **UniFi Access**: `Signature: t=UNIX,v1=HEX` over `"UNIX.BODY"` (refused 5 minutes off);
//!   `event` (`access.door.unlock`, …), `data.location.name` (the door), `data.actor`,
//!   `data.object.result`. Without an event id in the body, the body's hash is the id, so a
//!   redelivery is recorded once.
//!
//! Vendors word the kinds differently; an event is `held_open` when its type speaks of a door
//! held open, `forced` when forced, `unlock` / `denied` by its result, else `other` (kept,
//! never dropped silently).

use super::{Api, ApiError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use frontdesk_core::clock;
use frontdesk_core::store::doors::DoorEvent;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct DoorEventResult {
    /// false: this event was recorded before (a redelivery).
    pub recorded: bool,
    /// `unlock`, `denied`, `held_open`, `forced` or `other`.
    pub kind: String,
    pub door: String,
    /// The Frontdesk member behind the door system's user, when linked.
    pub member: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The kind from an event type and whether it succeeded.
fn kind_of(kind: &str, granted: Option<bool>) -> &'static str {
    let k = kind.to_ascii_lowercase();
    if k.contains("held") {
        "held_open"
    } else if k.contains("forced") {
        "forced"
    } else if k.contains("unlock") {
        if granted == Some(false) {
            "denied"
        } else {
            "unlock"
        }
    } else {
        "other"
    }
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()),
        Value::Number(n) => {
            let n = n.as_i64()?;
            // Milliseconds when too large to be seconds.
            let secs = if n > 100_000_000_000 { n / 1000 } else { n };
            DateTime::from_timestamp(secs, 0)
        }
        _ => None,
    }
}

/// What the handler needs from one vendor event.
struct Parsed {
    id: String,
    kind: &'static str,
    door: String,
    at: Option<DateTime<Utc>>,
    actor_id: Option<String>,
    actor_name: Option<String>,
    actor_email: Option<String>,
}

fn kisi(v: &Value) -> Result<Parsed, ApiError> {
    let id = text(&v["id"]).ok_or_else(|| ApiError::invalid("Kisi event without id"))?;
    let action = text(&v["action"])
        .or_else(|| text(&v["type"]))
        .unwrap_or_default();
    Ok(Parsed {
        id,
        kind: kind_of(&action, v["success"].as_bool()),
        door: text(&v["object_name"])
            .or_else(|| text(&v["lock"]["name"]))
            .or_else(|| text(&v["object_id"]).map(|i| format!("Kisi lock {i}")))
            .unwrap_or_else(|| "Kisi".into()),
        at: time_of(&v["created_at"]),
        actor_id: text(&v["actor_id"]),
        actor_name: text(&v["actor_name"]),
        actor_email: text(&v["actor_email"]),
    })
}

fn unifi(v: &Value, body: &[u8]) -> Parsed {
    let event = text(&v["event"]).unwrap_or_default();
    let d = &v["data"];
    let result = text(&d["object"]["result"]).map(|r| r.to_ascii_lowercase());
    let granted = result.map(|r| r.contains("grant") || r == "access");
    Parsed {
        id: text(&v["event_id"])
            .or_else(|| text(&v["id"]))
            .unwrap_or_else(|| hex::encode(Sha256::digest(body))),
        kind: kind_of(&event, granted),
        door: text(&d["location"]["name"])
            .or_else(|| text(&d["device"]["name"]))
            .unwrap_or_else(|| "UniFi Access".into()),
        at: time_of(&d["object"]["timestamp"]).or_else(|| time_of(&v["timestamp"])),
        actor_id: text(&d["actor"]["id"]),
        actor_name: text(&d["actor"]["name"]),
        actor_email: text(&d["actor"]["email"]),
    }
}

/// `X-Signature`: hex HMAC-SHA256 of the body; constant-time.
fn verify_kisi(secret: &[u8], header: &str, body: &[u8]) -> Result<(), &'static str> {
    let sig = hex::decode(header.trim()).map_err(|_| "X-Signature is not hex")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "the signature does not match (wrong secret, or the body was changed)")
}

/// Records a signed event from a door system.
#[utoipa::path(post, path = "/api/v1/webhooks/doors/{backend}", tag = "webhooks",
    params(("backend" = String, Path, description = "The door backend's name in Frontdesk")),
    request_body(content = Object, description = "The door system's event, as it sends it"),
    responses(
        (status = 200, description = "Recorded, or recorded before", body = DoorEventResult),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = super::ErrorBody),
        (status = 404, description = "No such backend, or its events are not enabled", body = super::ErrorBody),
        (status = 422, description = "Not an event", body = super::ErrorBody),
    ))]
pub async fn door_event(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DoorEventResult>, ApiError> {
    let store = &api.0.store;
    let backend = store.door_backend(&name).await?;
    let Some(secret) = backend.events_secret.as_deref() else {
        return Err(ApiError::not_found(format!(
            "door events are not enabled for {name}: run `frontdesk door events-secret --backend {name}`"
        )));
    };
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let checked = match backend.kind.as_str() {
        "kisi" => verify_kisi(secret.as_bytes(), &header("x-signature"), &body),
        "unifi-access" => super::webhook::verify(
            secret.as_bytes(),
            &header("signature"),
            &body,
            clock::now().timestamp(),
        ),
        _ => Err("this kind of door system sends no events Frontdesk reads"),
    };
    if let Err(why) = checked {
        warn!(backend = %name, why, "door event: refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            why,
        ));
    }
    let v: Value = super::parse(&body)?;
    if !v.is_object() {
        return Err(ApiError::invalid("an event is a JSON object"));
    }
    let p = match backend.kind.as_str() {
        "kisi" => kisi(&v)?,
        _ => unifi(&v, &body),
    };
    let member = match &p.actor_id {
        Some(uid) => store.member_for_door_user(backend.id, uid).await?,
        None => None,
    };
    let member = match (member, &p.actor_email) {
        (Some(m), _) => Some(m),
        (None, Some(email)) => store.find_member(email).await?.map(|m| m.id),
        (None, None) => None,
    };
    let event = DoorEvent {
        backend: backend.name.clone(),
        event_id: p.id.chars().take(200).collect(),
        at: p.at.unwrap_or_else(clock::now),
        kind: p.kind.into(),
        door: p.door.chars().take(200).collect(),
        member_id: member.clone(),
        actor: p.actor_name.map(|a| a.chars().take(200).collect()),
    };
    let recorded = store.record_door_event(backend.id, &event).await?;
    if recorded {
        match p.kind {
            "held_open" | "forced" => {
                warn!(backend = %name, door = %event.door, kind = p.kind, "door alarm")
            }
            _ => {
                info!(backend = %name, door = %event.door, kind = p.kind, member = ?member, "door event")
            }
        }
    }
    Ok(Json(DoorEventResult {
        recorded,
        kind: p.kind.into(),
        door: event.door,
        member,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_vendor_wording() {
        assert_eq!(kind_of("unlock", Some(true)), "unlock");
        assert_eq!(kind_of("unlock", Some(false)), "denied");
        assert_eq!(kind_of("access.door.unlock", None), "unlock");
        assert_eq!(kind_of("access.door.held_open", None), "held_open");
        assert_eq!(kind_of("lock.door_forced_open", None), "forced");
        assert_eq!(kind_of("access.doorbell.incoming", None), "other");
    }

    #[test]
    fn kisi_signature_is_checked_in_constant_time_over_the_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"{}");
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(verify_kisi(b"k", &good, b"{}").is_ok());
        assert!(verify_kisi(b"k", &good, b"{ }").is_err());
        assert!(verify_kisi(b"other", &good, b"{}").is_err());
        assert!(verify_kisi(b"k", "zz", b"{}").is_err());
    }
}
