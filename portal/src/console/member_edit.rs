//! Changing a member from their console page: name, email, team and plan (a plan change
//! moves their sessions to the new VLAN or ends them, through the change feed), and the
//! devices registered to them (MAC authentication).

use super::{actor, member_page, require_editor, Console};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use frontdesk_core::clock;
use frontdesk_core::store::StoreError;
use serde::Deserialize;
use tracing::{info, warn};

const REFUSAL: &str = "viewers cannot change members";

#[derive(Deserialize)]
pub struct EditForm {
    csrf: String,
    name: String,
    email: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    plan: String,
    /// Last day of the new plan (empty: the plan's default validity, or open-ended).
    #[serde(default)]
    until: String,
}

/// A refusal the member page explains (`Ok`), or the response for a missing member or a
/// storage failure.
fn refused(e: StoreError) -> Result<String, Box<Response>> {
    match e {
        StoreError::NotFound(m) if m.starts_with("member") => Err(Box::new(
            (StatusCode::NOT_FOUND, "no such member").into_response(),
        )),
        StoreError::Invalid(m) | StoreError::Duplicate(m) | StoreError::NotFound(m) => Ok(m),
        e => {
            warn!(error = %e, "console: member change failed");
            Err(Box::new(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage unavailable; try again",
                )
                    .into_response(),
            ))
        }
    }
}

pub async fn edit(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let actor = actor(&s);
    let fail = |msg: String| member_page(&c, &s, &id, Some(msg), StatusCode::UNPROCESSABLE_ENTITY);
    let until = match f.until.trim() {
        "" => None,
        d => match frontdesk_core::model::parse_date(d) {
            Ok(d) => Some(d),
            Err(e) => return fail(e).await,
        },
    };
    let team = f.team.trim();
    let m = match store
        .update_member(
            &id,
            Some(&f.name),
            Some(&f.email),
            Some(Some(team).filter(|t| !t.is_empty())),
            &actor,
        )
        .await
    {
        Ok(m) => m,
        Err(e) => {
            return match refused(e) {
                Ok(msg) => fail(msg).await,
                Err(r) => *r,
            }
        }
    };
    let mut notice = "Saved.".to_string();
    let catalog = match store.catalog().await {
        Ok(cat) => cat,
        Err(e) => {
            return match refused(e) {
                Ok(msg) => fail(msg).await,
                Err(r) => *r,
            }
        }
    };
    let now = clock::now();
    let current = super::me::current_plan(&catalog, &m, now).map(|p| p.name.clone());
    let plan = f.plan.trim();
    if !plan.is_empty() && (current.as_deref() != Some(plan) || until.is_some()) {
        let today = catalog.site.date_at(now);
        match store
            .set_member_plan(&m.id, plan, today, until, &actor)
            .await
        {
            Ok(_) => {
                notice = format!(
                    "Saved. Now on {plan}{}: online sessions move to its VLAN or end if it does not allow them now.",
                    until.map(|u| format!(" until {u}")).unwrap_or_default()
                )
            }
            Err(e) => {
                return match refused(e) {
                    Ok(msg) => fail(msg).await,
                    Err(r) => *r,
                }
            }
        }
    }
    info!(operator = %s.operator.email, member = %m.id, "console: member edited");
    member_page(&c, &s, &m.id, Some(notice), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct DeviceForm {
    csrf: String,
    mac: String,
    #[serde(default)]
    name: String,
}

pub async fn device_add(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DeviceForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let fail = |msg: String| member_page(&c, &s, &id, Some(msg), StatusCode::UNPROCESSABLE_ENTITY);
    let Ok(mac) = f.mac.trim().parse::<frontdesk_core::MacAddr>() else {
        return fail(format!(
            "{:?} is not a MAC address (like 3C:22:FB:12:34:56).",
            f.mac.trim()
        ))
        .await;
    };
    let store = &c.0.store;
    let (m, catalog) = match (store.member(&id).await, store.catalog().await) {
        (Ok(m), Ok(cat)) => (m, cat),
        (Err(e), _) | (_, Err(e)) => {
            return match refused(e) {
                Ok(msg) => fail(msg).await,
                Err(r) => *r,
            }
        }
    };
    let Some(plan) = super::me::current_plan(&catalog, &m, clock::now()) else {
        return fail("The member has no plan: give them one first.".into()).await;
    };
    let name = match f.name.trim() {
        "" => "device",
        n => n,
    };
    match store
        .add_device(Some(&m.id), mac, &plan.name, name, &actor(&s))
        .await
    {
        Ok(d) => {
            info!(operator = %s.operator.email, member = %m.id, mac = %d.mac, "console: device registered");
            let msg = format!(
                "{} ({}) registered on {}: it joins by MAC authentication.",
                d.name, d.mac, plan.name
            );
            member_page(&c, &s, &m.id, Some(msg), StatusCode::OK).await
        }
        Err(e) => match refused(e) {
            Ok(msg) => fail(msg).await,
            Err(r) => *r,
        },
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    mac: String,
}

pub async fn device_remove(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RemoveForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(mac) = f.mac.parse::<frontdesk_core::MacAddr>() else {
        return (StatusCode::NOT_FOUND, "no such device").into_response();
    };
    match c.0.store.remove_device(mac, Some(&id), &actor(&s)).await {
        Ok(()) => {
            let msg = format!("{mac} is no longer registered.");
            member_page(&c, &s, &id, Some(msg), StatusCode::OK).await
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such device").into_response(),
        Err(e) => match refused(e) {
            Ok(msg) => member_page(&c, &s, &id, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await,
            Err(r) => *r,
        },
    }
}
