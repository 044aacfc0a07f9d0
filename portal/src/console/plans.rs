//! Plans, teams, opening hours and closures: everyone sees them with a week view of each
//! window in the site's time zone; owners change them (a change reaches online sessions
//! live: the change feed replans, and sessions outside their new window are ended).

use super::{actor, csrf_ok, require, unavailable, Console, Page};
use crate::week::{week_view, WeekView};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use frontdesk_core::clock;
use frontdesk_core::model::{Plan, Role};
use frontdesk_core::schedule::{parse_time, DaySet, WindowSpec};
use frontdesk_core::store::console::ConsoleSession;
use frontdesk_core::store::StoreError;
use serde::Deserialize;
use tracing::info;

page!(PlansT, "console/plans.html" {
    is_owner: bool,
    hours: Vec<HoursRow>,
    hours_week: WeekView,
    closures: Vec<ClosureLine>,
    plans: Vec<PlanLine>,
    teams: Vec<(String, u16, usize)>,
    doors: Vec<DoorLine>,
    door_maps: Vec<(String, String, String, String)>,
    notice: Option<String>,
    error: Option<String>,
});

/// A door backend and how its sync stands.
pub struct DoorLine {
    pub name: String,
    pub kind: String,
    pub last_run: String,
    pub synced: usize,
    pub failing: usize,
    pub quarantined: usize,
}
page!(PlanEditT, "console/plan_edit.html" {
    f: PlanForm,
    week: WeekView,
    error: Option<String>,
});

pub struct HoursRow {
    pub day: &'static str,
    pub key: &'static str,
    pub open: String,
    pub close: String,
}

pub struct ClosureLine {
    pub id: i64,
    pub dates: String,
    pub reason: String,
    pub all: bool,
}

pub struct PlanLine {
    pub name: String,
    pub vlan: String,
    pub wifi: String,
    pub door: String,
    pub devices: String,
    pub validity: String,
    pub members: usize,
    pub week: WeekView,
}

const DAYS: [(&str, &str); 7] = [
    ("Monday", "mon"),
    ("Tuesday", "tue"),
    ("Wednesday", "wed"),
    ("Thursday", "thu"),
    ("Friday", "fri"),
    ("Saturday", "sat"),
    ("Sunday", "sun"),
];

pub async fn plans(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    plans_page(&c, &s, None, None, StatusCode::OK).await
}

async fn plans_page(
    c: &Console,
    s: &ConsoleSession,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lookup = match c.lookup().await {
        Ok(l) => l,
        Err(e) => return unavailable("plans page", e),
    };
    let catalog = &lookup.catalog;
    let now = clock::now();
    let cal = &catalog.site.calendar;
    let hours = DAYS
        .iter()
        .enumerate()
        .map(|(i, (day, key))| {
            let w = cal.hours.days[i].first();
            HoursRow {
                day,
                key,
                open: w
                    .map(|w| w.0.format("%H:%M").to_string())
                    .unwrap_or_default(),
                close: w
                    .map(|w| w.1.format("%H:%M").to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let today = catalog.site.date_at(now);
    let closures = cal
        .closures
        .iter()
        .filter(|cl| cl.to >= today)
        .map(|cl| ClosureLine {
            id: cl.id,
            dates: if cl.from == cl.to {
                cl.from.format("%a %d %b %Y").to_string()
            } else {
                format!(
                    "{} – {}",
                    cl.from.format("%a %d %b"),
                    cl.to.format("%a %d %b %Y")
                )
            },
            reason: cl.reason.clone(),
            all: cl.all,
        })
        .collect();
    let on_plan = |id: i64| {
        lookup
            .members
            .values()
            .filter(|m| m.assignments.iter().any(|a| a.plan_id == id))
            .count()
    };
    let plans = catalog
        .plans
        .iter()
        .map(|p| PlanLine {
            name: p.name.clone(),
            vlan: p.vlan.map_or("the team's".into(), |v| v.to_string()),
            wifi: p.wifi.to_string(),
            door: p.door.to_string(),
            devices: p.device_limit.map_or("unlimited".into(), |d| d.to_string()),
            validity: p.validity_days.map_or("-".into(), |d| {
                format!("{d} day{}", if d == 1 { "" } else { "s" })
            }),
            members: on_plan(p.id),
            week: week_view(cal, &p.wifi, now),
        })
        .collect();
    let teams = catalog
        .teams
        .iter()
        .map(|t| {
            let n = lookup
                .members
                .values()
                .filter(|m| m.team_id == Some(t.id))
                .count();
            (t.name.clone(), t.vlan, n)
        })
        .collect();
    let store = &c.0.store;
    let (backends, maps, runs) = match (
        store.door_backends().await,
        store.door_maps().await,
        store.sync_runs().await,
    ) {
        (Ok(b), Ok(m), Ok(r)) => (b, m, r),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return unavailable("plans page", e),
    };
    let tz = catalog.site.tz();
    let mut doors = Vec::new();
    for b in &backends {
        let items = match store.sync_items(b.id).await {
            Ok(i) => i,
            Err(e) => return unavailable("plans page", e),
        };
        let count = |st: &str| items.iter().filter(|i| i.state == st).count();
        doors.push(DoorLine {
            name: b.name.clone(),
            kind: b.kind.clone(),
            last_run: runs
                .iter()
                .find(|r| r.backend_id == b.id)
                .map_or("never".into(), |r| {
                    let at = r.finished_at.unwrap_or(r.started_at);
                    let when = at.with_timezone(&tz).format("%a %H:%M").to_string();
                    match &r.error {
                        Some(e) => format!("{when}, failed: {e}"),
                        None if r.finished_at.is_none() => format!("running since {when}"),
                        None => format!("{when}, {} writes", r.operations),
                    }
                }),
            synced: count("ok"),
            failing: count("failed"),
            quarantined: count("quarantined"),
        });
    }
    let door_maps = maps
        .iter()
        .map(|m| {
            (
                backends
                    .iter()
                    .find(|b| b.id == m.backend_id)
                    .map_or("-".into(), |b| b.name.clone()),
                catalog
                    .plan(m.plan_id)
                    .map_or("-".into(), |p| p.name.clone()),
                m.group.clone(),
                m.schedule
                    .as_ref()
                    .map_or("the plan's door hours".into(), |w| w.to_string()),
            )
        })
        .collect();
    let page = PlansT {
        doors,
        door_maps,
        p: c.page("Plans & hours", Some(s)).await,
        is_owner: s.operator.role == Role::Owner,
        hours,
        hours_week: week_view(cal, &WindowSpec::OpeningHours, now),
        closures,
        plans,
        teams,
        notice,
        error,
    };
    (status, page).into_response()
}

/// For changes here: an owner, posting from our own page with the session's token.
async fn require_owner(
    c: &Console,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<ConsoleSession, Response> {
    let s = super::require_owner(c, headers, REFUSAL).await?;
    if !csrf_ok(&s, headers, csrf) {
        return Err(StatusCode::FORBIDDEN.into_response());
    }
    Ok(s)
}

const REFUSAL: &str = "only owners change plans, teams and hours";

/// The result of a change: the page again with a notice, or the reason it was refused.
async fn outcome(c: &Console, s: &ConsoleSession, r: Result<String, StoreError>) -> Response {
    match r {
        Ok(notice) => plans_page(c, s, Some(notice), None, StatusCode::OK).await,
        Err(StoreError::Invalid(e) | StoreError::Duplicate(e) | StoreError::NotFound(e)) => {
            plans_page(c, s, None, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => unavailable("plans page", e),
    }
}

#[derive(Deserialize)]
pub struct HoursForm {
    csrf: String,
    #[serde(flatten)]
    times: std::collections::HashMap<String, String>,
}

/// Opening hours: one window per weekday; both fields empty = closed that day.
pub async fn hours(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<HoursForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let current = match c.0.store.site().await {
        Ok(site) => site.calendar.hours,
        Err(e) => return unavailable("plans page", e),
    };
    let mut changes = Vec::new();
    for (i, (day, key)) in DAYS.iter().enumerate() {
        let get = |k: &str| {
            f.times
                .get(&format!("{key}_{k}"))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let (open, close) = (get("open"), get("close"));
        let window = match (open.is_empty(), close.is_empty()) {
            (true, true) => None,
            (false, false) => match (parse_time(&open), parse_time(&close)) {
                (Ok(o), Ok(c2)) => Some((o, c2)),
                _ => {
                    let e = format!("{day}: times look like 08:00 and 19:00.");
                    return outcome(&c, &s, Err(StoreError::Invalid(e))).await;
                }
            },
            _ => {
                let e = format!("{day}: give both opening and closing time, or neither (closed).");
                return outcome(&c, &s, Err(StoreError::Invalid(e))).await;
            }
        };
        let now: Option<(chrono::NaiveTime, chrono::NaiveTime)> = current.days[i].first().copied();
        if now != window || current.days[i].len() > 1 {
            changes.push((key, window));
        }
    }
    let actor = actor(&s);
    for (key, window) in &changes {
        let days: DaySet = key.parse().expect("weekday keys parse");
        if let Err(e) = c.0.store.set_hours(days, *window, &actor).await {
            return outcome(&c, &s, Err(e)).await;
        }
    }
    info!(operator = %s.operator.email, days = changes.len(), "console: opening hours changed");
    let notice = match changes.len() {
        0 => "Nothing changed.".to_string(),
        n => format!(
            "Opening hours changed on {n} day{}: sessions outside them end at the new closing time.",
            if n == 1 { "" } else { "s" }
        ),
    };
    outcome(&c, &s, Ok(notice)).await
}

#[derive(Deserialize)]
pub struct ClosureForm {
    csrf: String,
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    all: Option<String>,
}

pub async fn closure_add(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<ClosureForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let date = |v: &str| NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d");
    let (from, to) = match (
        date(&f.from),
        if f.to.trim().is_empty() {
            date(&f.from)
        } else {
            date(&f.to)
        },
    ) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            let e = "Dates look like 2026-12-24.".to_string();
            return outcome(&c, &s, Err(StoreError::Invalid(e))).await;
        }
    };
    let r =
        c.0.store
            .add_closure(from, to, f.reason.trim(), f.all.is_some(), &actor(&s))
            .await
            .map(|cl| {
                info!(operator = %s.operator.email, closure = cl.id, "console: closure added");
                format!(
                    "Closed {}{}.",
                    if from == to {
                        from.to_string()
                    } else {
                        format!("{from} to {to}")
                    },
                    if cl.all {
                        " for every plan (24/7 too)"
                    } else {
                        " for plans on opening hours"
                    }
                )
            });
    outcome(&c, &s, r).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn closure_remove(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let r =
        c.0.store
            .remove_closure(id, &actor(&s))
            .await
            .map(|()| "Closure removed: the normal hours apply again.".to_string());
    outcome(&c, &s, r).await
}

#[derive(Deserialize)]
pub struct TeamForm {
    csrf: String,
    name: String,
    vlan: String,
}

pub async fn team_add(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<TeamForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let r = match parse_vlan(&f.vlan) {
        Ok(Some(vlan)) => {
            c.0.store
                .add_team(&f.name, vlan, &actor(&s))
                .await
                .map(|t| format!("Team {} added on VLAN {}.", t.name, t.vlan))
        }
        Ok(None) => Err(StoreError::Invalid("A team needs its own VLAN.".into())),
        Err(e) => Err(e),
    };
    outcome(&c, &s, r).await
}

fn parse_vlan(v: &str) -> Result<Option<u16>, StoreError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<u16>() {
        Ok(n) if (1..=4094).contains(&n) => Ok(Some(n)),
        _ => Err(StoreError::Invalid(format!(
            "VLAN {v:?}: a number from 1 to 4094."
        ))),
    }
}

/// The plan form, as typed (so a refused form comes back filled in).
#[derive(Deserialize, Default, Clone)]
pub struct PlanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vlan: String,
    #[serde(default)]
    pub wifi: String,
    #[serde(default)]
    pub door: String,
    #[serde(default)]
    pub devices: String,
    #[serde(default)]
    pub validity: String,
    #[serde(default)]
    pub ssids: String,
    #[serde(default)]
    pub door_groups: String,
    #[serde(default)]
    pub mac_only: Option<String>,
    /// Set on the edit form (the plan exists), empty on "add".
    #[serde(default)]
    pub existing: String,
}

impl PlanForm {
    fn of(p: &Plan) -> PlanForm {
        PlanForm {
            name: p.name.clone(),
            vlan: p.vlan.map(|v| v.to_string()).unwrap_or_default(),
            wifi: p.wifi.to_string(),
            door: p.door.to_string(),
            devices: p.device_limit.map(|d| d.to_string()).unwrap_or_default(),
            validity: p.validity_days.map(|d| d.to_string()).unwrap_or_default(),
            ssids: p.ssids.join(", "),
            door_groups: p.door_groups.join(", "),
            mac_only: p.mac_only.then(|| "on".into()),
            existing: p.name.clone(),
            csrf: String::new(),
        }
    }

    fn plan(&self) -> Result<Plan, String> {
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let number = |v: &str, what: &str| -> Result<Option<u32>, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{what}: a whole number above 0, or empty."))
        };
        let window = |v: &str, what: &str| -> Result<WindowSpec, String> {
            v.parse::<WindowSpec>().map_err(|e| {
                format!("{what}: {e}. Write always, opening-hours, or days and times like \"mon-fri 08:00-19:00; sat 10:00-14:00\".")
            })
        };
        let wifi = window(&self.wifi, "Wi-Fi hours")?;
        let door = if self.door.trim().is_empty() {
            wifi.clone()
        } else {
            window(&self.door, "Door hours")?
        };
        Ok(Plan {
            id: 0,
            name: self.name.trim().to_string(),
            vlan: parse_vlan(&self.vlan).map_err(|e| e.to_string())?,
            wifi,
            door,
            device_limit: number(&self.devices, "Devices")?,
            door_groups: list(&self.door_groups),
            ssids: list(&self.ssids),
            mac_only: self.mac_only.is_some(),
            validity_days: number(&self.validity, "Validity")?,
        })
    }
}

pub async fn plan_edit_form(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if s.operator.role != Role::Owner {
        return (StatusCode::FORBIDDEN, REFUSAL).into_response();
    }
    let catalog = match c.0.store.catalog().await {
        Ok(cat) => cat,
        Err(e) => return unavailable("plans page", e),
    };
    let Some(p) = catalog.plan_by_name(&name) else {
        return (StatusCode::NOT_FOUND, "no such plan").into_response();
    };
    PlanEditT {
        p: c.page(&format!("Plan {name}"), Some(&s)).await,
        week: week_view(&catalog.site.calendar, &p.wifi, clock::now()),
        f: PlanForm::of(p),
        error: None,
    }
    .into_response()
}

/// Adds a plan (`existing` empty) or saves an existing one.
pub async fn plan_save(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<PlanForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let editing = !f.existing.is_empty();
    let refuse = |e: String, f: PlanForm| {
        let c = c.clone();
        let s = s.clone();
        async move {
            if !editing {
                return plans_page(&c, &s, None, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await;
            }
            let week = match c.0.store.site().await {
                Ok(site) => week_view(
                    &site.calendar,
                    &f.wifi.parse().unwrap_or(WindowSpec::Always),
                    clock::now(),
                ),
                Err(e) => return unavailable("plans page", e),
            };
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                PlanEditT {
                    p: c.page(&format!("Plan {}", f.existing), Some(&s)).await,
                    week,
                    f,
                    error: Some(e),
                },
            )
                .into_response()
        }
    };
    let mut plan = match f.plan() {
        Ok(p) => p,
        Err(e) => return refuse(e, f).await,
    };
    let actor = actor(&s);
    let r = if editing {
        plan.name = f.existing.clone();
        c.0.store.update_plan(&plan, &actor).await
    } else {
        c.0.store.add_plan(&plan, &actor).await
    };
    match r {
        Ok(p) => {
            info!(operator = %s.operator.email, plan = %p.name, "console: plan saved");
            let notice = if editing {
                format!("Plan {} saved: members on it are re-checked now.", p.name)
            } else {
                format!("Plan {} added.", p.name)
            };
            plans_page(&c, &s, Some(notice), None, StatusCode::OK).await
        }
        Err(StoreError::Invalid(e) | StoreError::Duplicate(e) | StoreError::NotFound(e)) => {
            refuse(e, f).await
        }
        Err(e) => unavailable("plans page", e),
    }
}

#[derive(Deserialize)]
pub struct DoorMapForm {
    csrf: String,
    backend: String,
    plan: String,
    group: String,
    #[serde(default)]
    window: String,
}

/// Owners let a plan open a door group in a backend (the door sync applies it at once).
pub async fn door_map(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<DoorMapForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let schedule = match f.window.trim() {
        "" | "plan" => None,
        w => match w.parse::<WindowSpec>() {
            Ok(w) => Some(w),
            Err(e) => {
                let e = format!(
                    "Door hours: {e}. Write plan, always, opening-hours or days and times."
                );
                return outcome(&c, &s, Err(StoreError::Invalid(e))).await;
            }
        },
    };
    let r = c
        .0
        .store
        .map_door(&f.backend, &f.plan, &f.group, schedule, &actor(&s))
        .await
        .map(|m| {
            info!(operator = %s.operator.email, backend = %f.backend, plan = %f.plan, group = %m.group, "console: door map");
            format!(
                "{} members now open \"{}\" in {}: the door sync applies it within seconds.",
                f.plan, m.group, f.backend
            )
        });
    outcome(&c, &s, r).await
}

/// Stops a plan opening a door group; the door sync revokes what the map granted.
pub async fn door_unmap(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<DoorMapForm>,
) -> Response {
    let s = match require_owner(&c, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let r = c
        .0
        .store
        .unmap_door(&f.backend, &f.plan, &f.group, &actor(&s))
        .await
        .map(|()| {
            info!(operator = %s.operator.email, backend = %f.backend, plan = %f.plan, group = %f.group, "console: door unmap");
            format!(
                "{} members no longer open \"{}\" in {}: the door sync revokes it within seconds.",
                f.plan, f.group, f.backend
            )
        });
    outcome(&c, &s, r).await
}
