//! "Who is in the space now": everyone with a live Wi-Fi session or a door unlock today, one
//! line per person, with after-hours presence highlighted; it prints as a roll-call list for
//! an evacuation.

use super::{require, Console, Page};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::TimeZone;
use frontdesk_core::clock;
use frontdesk_core::schedule::containing;
use frontdesk_core::WindowSpec;
use std::collections::BTreeMap;
use tracing::warn;

page!(PresenceT, "console/presence.html" {
    people: Vec<Person>,
    open_now: bool,
    printed: String,
});

pub struct Person {
    pub name: String,
    pub detail: String,
    pub plan: String,
    pub devices: usize,
    pub since: String,
    /// The last door they unlocked today, and when ("" if none).
    pub door: String,
    /// Online while the space is closed.
    pub after_hours: bool,
}

pub async fn presence(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let now = clock::now();
    let (sessions, lookup) = match (
        store
            .sessions(Some(now - frontdesk_core::enforce::ONLINE_HORIZON), 100_000)
            .await,
        c.lookup().await,
    ) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "console: presence page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let midnight = lookup.catalog.site.tz().from_local_datetime(
        &now.with_timezone(&lookup.catalog.site.tz())
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists"),
    );
    let since = midnight
        .earliest()
        .map_or(now - chrono::Duration::hours(24), |t| t.to_utc());
    let unlocks = match store.door_events_since(since).await {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "console: presence page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let cat = &lookup.catalog;
    let tz = cat.site.tz();
    let cal = &cat.site.calendar;
    let open_now = containing(
        &cal.spans(&WindowSpec::OpeningHours, now.timestamp()),
        now.timestamp(),
    )
    .is_some();
    let today = now.with_timezone(&tz).date_naive();
    // One line per member (or per login name for devices and vouchers), earliest session.
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    for sess in sessions {
        let member = sess
            .member_id
            .as_deref()
            .and_then(|id| lookup.members.get(id));
        let (key, name, detail, plan) = match member {
            Some(m) => (
                format!("m:{}", m.id),
                m.name.clone(),
                m.email.clone(),
                plan_of(cat, m, today),
            ),
            None => (
                format!("u:{}", sess.user_name),
                sess.user_name.clone(),
                sess.mac.clone().unwrap_or_default(),
                "device or guest".into(),
            ),
        };
        let since = sess
            .started_at
            .with_timezone(&tz)
            .format("%a %H:%M")
            .to_string();
        people
            .entry(key)
            .and_modify(|p| p.devices += 1)
            .or_insert(Person {
                name,
                detail,
                plan,
                devices: 1,
                since,
                door: String::new(),
                after_hours: !open_now,
            });
    }
    // Door unlocks today: the last door per person; people without Wi-Fi join the list.
    for e in unlocks.iter().filter(|e| e.kind == "unlock") {
        let at = e.at.with_timezone(&tz).format("%H:%M").to_string();
        let member = e.member_id.as_deref().and_then(|id| lookup.members.get(id));
        let (key, name, detail) = match (member, &e.actor) {
            (Some(m), _) => (format!("m:{}", m.id), m.name.clone(), m.email.clone()),
            (None, Some(a)) => (format!("d:{a}"), a.clone(), format!("{} user", e.backend)),
            (None, None) => continue,
        };
        let door = format!("{} {at}", e.door);
        people
            .entry(key)
            .and_modify(|p| p.door = door.clone())
            .or_insert_with(|| Person {
                name,
                detail,
                plan: member.map_or("-".into(), |m| plan_of(cat, m, today)),
                devices: 0,
                since: e.at.with_timezone(&tz).format("%a %H:%M").to_string(),
                door,
                after_hours: !open_now,
            });
    }
    let mut people: Vec<Person> = people.into_values().collect();
    people.sort_by_key(|p| p.name.to_lowercase());
    PresenceT {
        p: c.page("Who is in", Some(&s)).await,
        people,
        open_now,
        printed: now
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
    }
    .into_response()
}

fn plan_of(
    cat: &frontdesk_core::decide::Catalog,
    m: &frontdesk_core::Member,
    today: chrono::NaiveDate,
) -> String {
    m.assignment_on(today)
        .and_then(|a| cat.plan(a.plan_id))
        .map_or("-".into(), |p| p.name.clone())
}
