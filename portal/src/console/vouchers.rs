//! Guests & vouchers: batches made here (owners and managers), their use, and a print sheet of
//! voucher cards (print CSS: cut along the lines, hand one to each guest).

use super::{can_edit, require, require_editor, Console, Page};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use frontdesk_core::clock;
use frontdesk_core::store::StoreError;
use serde::Deserialize;
use tracing::{info, warn};

page!(VouchersT, "console/vouchers.html" {
    rows: Vec<VoucherLine>,
    unused: usize,
    active: usize,
    expired: usize,
    plans: Vec<String>,
    can_edit: bool,
    error: Option<String>,
    state: String,
    sponsored: Vec<SponsorLine>,
});
page!(VoucherSheetT, "console/voucher_sheet.html" {
    cards: Vec<VoucherLine>,
});

pub struct VoucherLine {
    pub code: String,
    pub plan: String,
    pub validity: String,
    pub devices: u32,
    pub state: &'static str,
    pub created: String,
    pub expires: String,
    /// The devices it let in so far.
    pub used: Vec<String>,
    /// The member who made it (a guest pass from /me), if any.
    pub sponsor: String,
}

/// A guest who asked a member (sponsor) on the portal.
pub struct SponsorLine {
    pub guest: String,
    pub sponsor: String,
    pub asked: String,
    pub device: String,
    pub state: &'static str,
}

fn validity(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} day{}", s / 86_400, if s == 86_400 { "" } else { "s" }),
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s => format!("{} minutes", s / 60),
    }
}

async fn lines(c: &Console) -> Result<Vec<VoucherLine>, StoreError> {
    let store = &c.0.store;
    let (list, cat, mut used) = (
        store.vouchers().await?,
        store.catalog().await?,
        store.voucher_devices().await?,
    );
    let lookup = c.lookup().await?;
    let sponsor = |id: &Option<String>| {
        id.as_ref()
            .map(|id| {
                lookup
                    .members
                    .get(id)
                    .map_or_else(|| id.clone(), |m| m.name.clone())
            })
            .unwrap_or_default()
    };
    let tz = cat.site.tz();
    let now = clock::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    Ok(list
        .into_iter()
        .map(|v| {
            let expires = v.expires_at();
            VoucherLine {
                plan: cat
                    .plan(v.plan_id)
                    .map_or_else(|| "-".into(), |p| p.name.clone()),
                validity: validity(v.valid_secs),
                devices: v.devices,
                state: match expires {
                    None => "unused",
                    Some(e) if e > now => "active",
                    Some(_) => "expired",
                },
                created: fmt(v.created_at),
                expires: expires.map_or("-".into(), fmt),
                used: used.remove(&v.code).unwrap_or_default(),
                sponsor: sponsor(&v.sponsor_id),
                code: v.code,
            }
        })
        .collect())
}

#[derive(Deserialize, Default)]
pub struct VoucherQuery {
    #[serde(default)]
    state: String,
}

async fn vouchers_page(
    c: &Console,
    s: &frontdesk_core::store::console::ConsoleSession,
    state: String,
    error: Option<String>,
) -> Response {
    let now = clock::now();
    let (all, cat, requests) = match (
        lines(c).await,
        c.0.store.catalog().await,
        c.0.store
            .sponsor_requests_since((now - chrono::Duration::days(7)).timestamp(), now)
            .await,
    ) {
        (Ok(l), Ok(cat), Ok(r)) => (l, cat, r),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            warn!(error = %e, "console: vouchers page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let count = |st: &str| all.iter().filter(|v| v.state == st).count();
    let (unused, active, expired) = (count("unused"), count("active"), count("expired"));
    let rows = all
        .into_iter()
        .filter(|v| state.is_empty() || v.state == state)
        .take(500)
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let tz = cat.site.tz();
    let lookup = c.lookup().await.ok();
    let sponsored = requests
        .iter()
        .map(|r| SponsorLine {
            guest: r.guest_name.clone(),
            sponsor: lookup
                .as_ref()
                .and_then(|l| l.members.get(&r.member_id))
                .map_or_else(|| r.member_id.clone(), |m| m.name.clone()),
            asked: r
                .created_at
                .with_timezone(&tz)
                .format("%a %d %b %H:%M")
                .to_string(),
            device: r.guest_mac.to_string(),
            state: r.state.as_str(),
        })
        .collect();
    let page = VouchersT {
        p: c.page("Guests & vouchers", Some(s)).await,
        sponsored,
        rows,
        unused,
        active,
        expired,
        plans: cat
            .plans
            .iter()
            .filter(|p| !p.mac_only)
            .map(|p| p.name.clone())
            .collect(),
        can_edit: can_edit(s),
        error,
        state,
    };
    (status, page).into_response()
}

pub async fn vouchers(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<VoucherQuery>,
) -> Response {
    match require(&c, &headers).await {
        Ok(s) => vouchers_page(&c, &s, q.state, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct BatchForm {
    csrf: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    devices: String,
    #[serde(default)]
    plan: String,
}

/// Makes a batch and answers its print sheet.
pub async fn create(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<BatchForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot make vouchers").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let num = |v: &str, lo: u32, hi: u32| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
    };
    let (Some(count), Some(hours), Some(devices)) = (
        num(&f.count, 1, 500),
        num(&f.hours, 1, 8760),
        num(&f.devices, 1, 10),
    ) else {
        return vouchers_page(
            &c,
            &s,
            String::new(),
            Some("Count 1–500, hours 1–8760, devices 1–10.".into()),
        )
        .await;
    };
    let actor = super::actor(&s);
    let plan = if f.plan.is_empty() {
        "guest"
    } else {
        f.plan.as_str()
    };
    match c
        .0
        .store
        .create_vouchers(count, i64::from(hours) * 3600, devices, plan, None, &actor)
        .await
    {
        Ok(made) => {
            info!(operator = %s.operator.email, count, "console: vouchers created");
            let codes: std::collections::HashSet<String> =
                made.into_iter().map(|v| v.code).collect();
            match lines(&c).await {
                Ok(all) => VoucherSheetT {
                    p: c.page("Voucher cards", Some(&s)).await,
                    cards: all
                        .into_iter()
                        .filter(|v| codes.contains(&v.code))
                        .collect(),
                }
                .into_response(),
                Err(e) => {
                    warn!(error = %e, "console: voucher sheet failed");
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            }
        }
        Err(e @ (StoreError::Invalid(_) | StoreError::NotFound(_))) => {
            vouchers_page(&c, &s, String::new(), Some(e.to_string())).await
        }
        Err(e) => {
            warn!(error = %e, "console: voucher create failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Every unused voucher as cards, to print again.
pub async fn sheet(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match lines(&c).await {
        Ok(all) => VoucherSheetT {
            p: c.page("Voucher cards", Some(&s)).await,
            cards: all
                .into_iter()
                .filter(|v| v.state == "unused")
                .take(500)
                .collect(),
        }
        .into_response(),
        Err(e) => {
            warn!(error = %e, "console: voucher sheet failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
