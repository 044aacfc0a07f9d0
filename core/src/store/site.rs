//! Site, opening hours, closures, plans and teams.

use super::{dup, now_secs, Actor, Audit, Result, Store, StoreError};
use crate::decide::Catalog;
use crate::model::{default_plans, parse_timezone, Plan, Site, Team};
use crate::schedule::{format_time, parse_time, Calendar, Closure, DaySet, OpeningHours};
use chrono::{NaiveDate, NaiveTime};

type PlanRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
    Option<i64>,
);

fn plan_from_row(r: PlanRow) -> Result<Plan> {
    let (id, name, vlan, wifi, door, devices, groups, ssids, mac_only, validity) = r;
    let corrupt =
        |what: &str| StoreError::Invalid(format!("plan {name}: stored {what} is invalid"));
    Ok(Plan {
        id,
        vlan: vlan.map(|v| v as u16),
        wifi: wifi.parse().map_err(|_| corrupt("wifi window"))?,
        door: door.parse().map_err(|_| corrupt("door window"))?,
        device_limit: devices.map(|d| d as u32),
        door_groups: serde_json::from_str(&groups).map_err(|_| corrupt("door groups"))?,
        ssids: serde_json::from_str(&ssids).map_err(|_| corrupt("ssids"))?,
        mac_only: mac_only != 0,
        validity_days: validity.map(|v| v as u32),
        name,
    })
}

impl Store {
    /// Another site in a database that has one already (multi-site on PostgreSQL): its own
    /// time zone and default opening hours; plans, members and NAS clients are shared.
    pub async fn add_site(&self, name: &str, timezone: &str, actor: &Actor) -> Result<()> {
        let tz = parse_timezone(timezone).map_err(StoreError::Invalid)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("site name is empty".into()));
        }
        let mut tx = self.begin().await?;
        insert_site(&mut tx, name, tz).await?;
        let audit = Audit::new("site.add", "site", name).after(format!("timezone={}", tz.name()));
        self.finish(tx, actor, audit).await
    }

    /// Every site in the database: (name, time zone).
    pub async fn sites(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT name, timezone FROM sites ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Creates the site with default opening hours and the default plans. Fails if a site exists.
    pub async fn init_site(&self, name: &str, timezone: &str, actor: &Actor) -> Result<Site> {
        let tz = parse_timezone(timezone).map_err(StoreError::Invalid)?;
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("site name is empty".into()));
        }
        let mut tx = self.begin().await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT name FROM sites LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((existing,)) = existing {
            return Err(StoreError::Invalid(format!(
                "database already initialised for site {existing:?}; nothing changed (another site in the same PostgreSQL database: `frontdesk site add`)"
            )));
        }
        insert_site(&mut tx, name.trim(), tz).await?;
        for plan in default_plans() {
            insert_plan(&mut tx, &plan).await?;
        }
        let audit =
            Audit::new("site.init", "site", name.trim()).after(format!("timezone={}", tz.name()));
        self.finish(tx, actor, audit).await?;
        self.site().await
    }

    /// Serve this site of a shared database (several appliances, one PostgreSQL): its hours,
    /// closures and time zone are the ones decisions use. Members, plans, NAS clients and
    /// doors are shared by every site.
    pub fn select_site(&mut self, name: &str) {
        self.site_name = Some(name.trim().into());
    }

    /// The selected site, or the first one.
    pub async fn site(&self) -> Result<Site> {
        let row: Option<(i64, String, String)> = match &self.site_name {
            Some(n) => {
                let row = sqlx::query_as("SELECT id, name, timezone FROM sites WHERE name = $1")
                    .bind(n.as_ref())
                    .fetch_optional(&self.pool)
                    .await?;
                if row.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "site {n:?} in this database (see `frontdesk site list`; `frontdesk site add` makes it)"
                    )));
                }
                row
            }
            None => {
                sqlx::query_as("SELECT id, name, timezone FROM sites ORDER BY id LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let (id, name, tz) =
            row.ok_or_else(|| StoreError::NotInitialised(super::redact_url(&self.url)))?;
        let tz = parse_timezone(&tz).map_err(StoreError::Invalid)?;
        let mut hours = OpeningHours::default();
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT weekday, open_at, close_at FROM opening_hours WHERE site_id = $1 ORDER BY weekday, open_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for (day, open, close) in rows {
            let parse = |t: &str| parse_time(t).map_err(|e| StoreError::Invalid(e.to_string()));
            hours.days[day as usize % 7].push((parse(&open)?, parse(&close)?));
        }
        Ok(Site {
            id,
            name,
            calendar: Calendar {
                tz,
                hours,
                closures: self.closures(id).await?,
            },
        })
    }

    pub async fn catalog(&self) -> Result<Catalog> {
        Ok(Catalog {
            site: self.site().await?,
            plans: self.plans().await?,
            teams: self.teams().await?,
        })
    }

    /// Replaces the opening hours of `days` with one window, or closes them (`None`).
    pub async fn set_hours(
        &self,
        days: DaySet,
        window: Option<(NaiveTime, NaiveTime)>,
        actor: &Actor,
    ) -> Result<()> {
        let site = self.site().await?;
        let mut tx = self.begin().await?;
        for d in days.days() {
            let day = d.num_days_from_monday() as i64;
            sqlx::query("DELETE FROM opening_hours WHERE site_id = $1 AND weekday = $2")
                .bind(site.id)
                .bind(day)
                .execute(&mut *tx)
                .await?;
            if let Some((open, close)) = window {
                sqlx::query("INSERT INTO opening_hours (site_id, weekday, open_at, close_at) VALUES ($1, $2, $3, $4)")
                    .bind(site.id)
                    .bind(day)
                    .bind(format_time(open))
                    .bind(format_time(close))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let after = match window {
            Some((o, c)) => format!("{days} {}-{}", format_time(o), format_time(c)),
            None => format!("{days} closed"),
        };
        self.finish(
            tx,
            actor,
            Audit::new("site.hours", "site", &site.name).after(after),
        )
        .await
    }

    async fn closures(&self, site_id: i64) -> Result<Vec<Closure>> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, from_date, to_date, reason, all_windows FROM closures WHERE site_id = $1 ORDER BY from_date, id",
        )
        .bind(site_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, from, to, reason, all)| {
                let d = |s: &str| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                        StoreError::Invalid(format!("stored closure date {s:?} is invalid"))
                    })
                };
                Ok(Closure {
                    id,
                    from: d(&from)?,
                    to: d(&to)?,
                    reason,
                    all: all != 0,
                })
            })
            .collect()
    }

    pub async fn add_closure(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        reason: &str,
        all: bool,
        actor: &Actor,
    ) -> Result<Closure> {
        if to < from {
            return Err(StoreError::Invalid(format!(
                "closure ends ({to}) before it starts ({from})"
            )));
        }
        let site = self.site().await?;
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO closures (site_id, from_date, to_date, reason, all_windows) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(site.id)
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(reason)
        .bind(all as i64)
        .fetch_one(&mut *tx)
        .await?;
        let audit = Audit::new("closure.add", "site", format!("closure {id}"))
            .after(format!("{from}..{to} all={all} {reason}"));
        self.finish(tx, actor, audit).await?;
        Ok(Closure {
            id,
            from,
            to,
            reason: reason.into(),
            all,
        })
    }

    pub async fn plans(&self) -> Result<Vec<Plan>> {
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT id, name, vlan, wifi_window, door_window, device_limit, door_groups, ssids, mac_only, validity_days FROM plans ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(plan_from_row).collect()
    }

    pub async fn plan(&self, name: &str) -> Result<Plan> {
        self.plans()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| unknown_plan(name))
    }

    pub async fn add_plan(&self, plan: &Plan, actor: &Actor) -> Result<Plan> {
        validate_plan_name(&plan.name)?;
        let mut tx = self.begin().await?;
        let id = insert_plan(&mut tx, plan).await?;
        let audit = Audit::new("plan.add", "plan", &plan.name).after(format!(
            "vlan={:?} wifi={} door={}",
            plan.vlan, plan.wifi, plan.door
        ));
        self.finish(tx, actor, audit).await?;
        Ok(Plan { id, ..plan.clone() })
    }

    /// Changes a plan (found by name; the name itself stays): VLAN, windows, limits, door
    /// groups, SSIDs. Members on it are re-decided live (the change feed replans).
    pub async fn update_plan(&self, plan: &Plan, actor: &Actor) -> Result<Plan> {
        let before = self.plan(&plan.name).await?;
        let summary = |p: &Plan| {
            format!(
                "vlan={:?} wifi={} door={} devices={:?} validity_days={:?} ssids={} door_groups={}",
                p.vlan,
                p.wifi,
                p.door,
                p.device_limit,
                p.validity_days,
                p.ssids.join(","),
                p.door_groups.join(",")
            )
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE plans SET vlan = $1, wifi_window = $2, door_window = $3, device_limit = $4, door_groups = $5, \
             ssids = $6, mac_only = $7, validity_days = $8 WHERE id = $9",
        )
        .bind(plan.vlan.map(i64::from))
        .bind(plan.wifi.to_string())
        .bind(plan.door.to_string())
        .bind(plan.device_limit.map(i64::from))
        .bind(serde_json::to_string(&plan.door_groups).expect("strings serialise"))
        .bind(serde_json::to_string(&plan.ssids).expect("strings serialise"))
        .bind(plan.mac_only as i64)
        .bind(plan.validity_days.map(i64::from))
        .bind(before.id)
        .execute(&mut *tx)
        .await?;
        let audit = Audit::new("plan.update", "plan", &plan.name)
            .before(summary(&before))
            .after(summary(plan));
        self.finish(tx, actor, audit).await?;
        Ok(Plan {
            id: before.id,
            ..plan.clone()
        })
    }

    /// Removes a closure (a day off that is no longer off).
    pub async fn remove_closure(&self, id: i64, actor: &Actor) -> Result<()> {
        let mut tx = self.begin().await?;
        let row: Option<(String, String, String)> = sqlx::query_as(
            "DELETE FROM closures WHERE id = $1 RETURNING from_date, to_date, reason",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((from, to, reason)) = row else {
            return Err(StoreError::NotFound(format!("closure {id}")));
        };
        let audit = Audit::new("closure.remove", "site", format!("closure {id}"))
            .before(format!("{from}..{to} {reason}"));
        self.finish(tx, actor, audit).await
    }

    pub async fn teams(&self) -> Result<Vec<Team>> {
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, name, vlan FROM teams ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, vlan)| Team {
                id,
                name,
                vlan: vlan as u16,
            })
            .collect())
    }

    pub async fn add_team(&self, name: &str, vlan: u16, actor: &Actor) -> Result<Team> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("team name is empty".into()));
        }
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO teams (name, vlan, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name.trim())
        .bind(vlan as i64)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("team {:?}", name.trim())))?;
        self.finish(
            tx,
            actor,
            Audit::new("team.add", "team", name.trim()).after(format!("vlan={vlan}")),
        )
        .await?;
        Ok(Team {
            id,
            name: name.trim().into(),
            vlan,
        })
    }

    pub async fn team(&self, name: &str) -> Result<Team> {
        self.teams()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                StoreError::NotFound(format!("team {name:?} (see `frontdesk team list`)"))
            })
    }
}

fn unknown_plan(name: &str) -> StoreError {
    StoreError::NotFound(format!("plan {name:?} (see `frontdesk plan list`)"))
}

fn validate_plan_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "plan name {name:?}: use letters, digits, '-' and '_' only"
        )))
    }
}

/// A site row with the default opening hours; its id.
async fn insert_site(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    name: &str,
    tz: chrono_tz::Tz,
) -> Result<i64> {
    let (site_id,): (i64,) = sqlx::query_as(
        "INSERT INTO sites (name, timezone, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(tz.name())
    .bind(now_secs())
    .fetch_one(&mut **tx)
    .await
    .map_err(super::dup(format!("site {name:?}")))?;
    for (day, windows) in OpeningHours::default_hours().days.iter().enumerate() {
        for (open, close) in windows {
            sqlx::query("INSERT INTO opening_hours (site_id, weekday, open_at, close_at) VALUES ($1, $2, $3, $4)")
                .bind(site_id)
                .bind(day as i64)
                .bind(format_time(*open))
                .bind(format_time(*close))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(site_id)
}

async fn insert_plan(tx: &mut sqlx::Transaction<'static, sqlx::Any>, plan: &Plan) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO plans (name, vlan, wifi_window, door_window, device_limit, door_groups, ssids, mac_only, validity_days, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&plan.name)
    .bind(plan.vlan.map(i64::from))
    .bind(plan.wifi.to_string())
    .bind(plan.door.to_string())
    .bind(plan.device_limit.map(i64::from))
    .bind(serde_json::to_string(&plan.door_groups).expect("strings serialise"))
    .bind(serde_json::to_string(&plan.ssids).expect("strings serialise"))
    .bind(plan.mac_only as i64)
    .bind(plan.validity_days.map(i64::from))
    .bind(now_secs())
    .fetch_one(&mut **tx)
    .await
    .map_err(dup(format!("plan {:?}", plan.name)))?;
    Ok(id)
}
