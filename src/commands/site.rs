//! `init`, `site`, `team`, `plan`.

use super::{parse_date_arg, Ctx};
use crate::cli::{ClosureCommand, PlanCommand, SiteCommand, TeamCommand};
use crate::output::{json, kv, opt, table};
use anyhow::{bail, Result};
use frontdesk_core::model::{parse_timezone, parse_vlan, Plan};
use frontdesk_core::schedule::{format_time, parse_time, DaySet, WindowSpec};
use frontdesk_core::store::Actor;
use serde_json::json;

pub async fn init(ctx: &Ctx, site: &str, timezone: &str, actor: &Actor) -> Result<()> {
    // Validate before anything touches the disk: a failed init leaves no database behind.
    let tz = parse_timezone(timezone).map_err(anyhow::Error::msg)?;
    if site.trim().is_empty() {
        bail!("site name is empty");
    }
    let store = ctx.create().await?;
    let s = store.init_site(site, tz.name(), actor).await?;
    let key = ctx.key_path();
    let pki = super::cert::create(ctx, &store).await?;
    let ca_sha256 = frontdesk_radius::eap::pki::fingerprint(&pki.ca_cert)?;
    if ctx.json {
        json(
            &json!({"site": s.name, "timezone": tz.name(), "database": frontdesk_core::store::redact_url(&ctx.db_url), "key_file": key, "eap_server_name": pki.server_name, "ca_sha256": ca_sha256}),
        );
    } else {
        kv(&[
            ("site", s.name.clone()),
            ("timezone", tz.name().to_string()),
            ("database", frontdesk_core::store::redact_url(&ctx.db_url)),
            (
                "key_file",
                format!(
                    "{} (back it up: it decrypts Wi-Fi passwords)",
                    key.display()
                ),
            ),
            (
                "plans",
                store
                    .plans()
                    .await?
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "opening hours",
                "mon-fri 08:00-19:00, weekends closed".into(),
            ),
            ("802.1X server name", pki.server_name.clone()),
            ("802.1X CA SHA-256", ca_sha256),
        ]);
    }
    Ok(())
}

fn hours_lines(site: &frontdesk_core::Site) -> Vec<(String, String)> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    site.hours()
        .days
        .iter()
        .enumerate()
        .map(|(i, ws)| {
            let text = if ws.is_empty() {
                "closed".to_string()
            } else {
                ws.iter()
                    .map(|(o, c)| format!("{}-{}", format_time(*o), format_time(*c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (NAMES[i].to_string(), text)
        })
        .collect()
}

pub async fn site(ctx: &Ctx, cmd: SiteCommand, actor: &Actor) -> Result<()> {
    match cmd {
        SiteCommand::Hours {
            days,
            open,
            close,
            closed,
        } => {
            let days: DaySet = days.parse()?;
            let window = if closed {
                None
            } else {
                let (o, c) = (open.unwrap_or_default(), close.unwrap_or_default());
                Some((parse_time(&o)?, parse_time(&c)?))
            };
            let store = ctx.open().await?;
            store.set_hours(days, window, actor).await?;
            print_site(ctx, &store.site().await?);
        }
        SiteCommand::Closure(ClosureCommand::Add {
            from,
            to,
            reason,
            all,
        }) => {
            let from = parse_date_arg(&from)?;
            let to = to
                .as_deref()
                .map(parse_date_arg)
                .transpose()?
                .unwrap_or(from);
            let store = ctx.open().await?;
            let c = store.add_closure(from, to, &reason, all, actor).await?;
            if ctx.json {
                json(&c);
            } else {
                kv(&[
                    ("closure", c.id.to_string()),
                    ("from", c.from.to_string()),
                    ("to", c.to.to_string()),
                    ("reason", c.reason),
                    (
                        "applies to",
                        if c.all {
                            "everything"
                        } else {
                            "opening-hours plans"
                        }
                        .into(),
                    ),
                ]);
            }
        }
        SiteCommand::Closure(ClosureCommand::List) => {
            let store = ctx.open().await?;
            let site = store.site().await?;
            if ctx.json {
                json(&site.closures());
            } else {
                let rows: Vec<Vec<String>> = site
                    .closures()
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.to_string(),
                            c.from.to_string(),
                            c.to.to_string(),
                            if c.all { "all" } else { "opening-hours" }.into(),
                            c.reason.clone(),
                        ]
                    })
                    .collect();
                table(&["ID", "FROM", "TO", "APPLIES", "REASON"], &rows);
            }
        }
        SiteCommand::Show => {
            let store = ctx.open().await?;
            print_site(ctx, &store.site().await?);
        }
        SiteCommand::Add { name, timezone } => {
            let store = ctx.open().await?;
            store.add_site(&name, &timezone, actor).await?;
            if !ctx.json {
                println!(
                    "site {name:?} added; on its appliance set `site = \"{name}\"` in the configuration (or FRONTDESK_SITE={name})"
                );
            }
        }
        SiteCommand::List => {
            let store = ctx.open().await?;
            let sites = store.sites().await?;
            if ctx.json {
                crate::output::json(
                    &sites
                        .iter()
                        .map(|(n, tz)| serde_json::json!({"name": n, "timezone": tz}))
                        .collect::<Vec<_>>(),
                );
            } else {
                crate::output::table(
                    &["SITE", "TIME ZONE"],
                    &sites
                        .into_iter()
                        .map(|(n, tz)| vec![n, tz])
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(())
}

fn print_site(ctx: &Ctx, site: &frontdesk_core::Site) {
    let hours = hours_lines(site);
    if ctx.json {
        let map: serde_json::Map<String, serde_json::Value> =
            hours.into_iter().map(|(d, h)| (d, json!(h))).collect();
        json(
            &json!({"site": site.name, "timezone": site.tz().name(), "hours": map, "closures": site.closures()}),
        );
    } else {
        let mut pairs = vec![
            ("site", site.name.clone()),
            ("timezone", site.tz().name().to_string()),
        ];
        for (d, h) in &hours {
            pairs.push((d.as_str(), h.clone()));
        }
        pairs.push(("closures", site.closures().len().to_string()));
        kv(&pairs);
    }
}

pub async fn team(ctx: &Ctx, cmd: TeamCommand, actor: &Actor) -> Result<()> {
    match cmd {
        TeamCommand::Add { name, vlan } => {
            let vlan = parse_vlan(vlan).map_err(anyhow::Error::msg)?;
            let store = ctx.open().await?;
            let t = store.add_team(&name, vlan, actor).await?;
            if ctx.json {
                json(&t);
            } else {
                kv(&[("team", t.name), ("vlan", t.vlan.to_string())]);
            }
        }
        TeamCommand::List => {
            let store = ctx.open().await?;
            let teams = store.teams().await?;
            if ctx.json {
                json(&teams);
            } else {
                let rows: Vec<Vec<String>> = teams
                    .iter()
                    .map(|t| vec![t.name.clone(), t.vlan.to_string()])
                    .collect();
                table(&["NAME", "VLAN"], &rows);
            }
        }
    }
    Ok(())
}

pub async fn plan(ctx: &Ctx, cmd: PlanCommand, actor: &Actor) -> Result<()> {
    match cmd {
        PlanCommand::List => {
            let store = ctx.open().await?;
            let plans = store.plans().await?;
            if ctx.json {
                json(&plans);
            } else {
                let rows: Vec<Vec<String>> = plans
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.vlan.map_or("team".into(), |v| v.to_string()),
                            p.wifi.to_string(),
                            p.door.to_string(),
                            opt(p.device_limit),
                            if p.door_groups.is_empty() {
                                "-".into()
                            } else {
                                p.door_groups.join(",")
                            },
                            if p.mac_only {
                                "mac only".into()
                            } else {
                                String::new()
                            },
                        ]
                    })
                    .collect();
                table(
                    &["NAME", "VLAN", "WIFI", "DOOR", "DEVICES", "DOOR GROUPS", ""],
                    &rows,
                );
            }
        }
        PlanCommand::Add {
            name,
            vlan,
            wifi,
            door,
            devices,
            door_groups,
            ssids,
            mac_only,
            validity_days,
        } => {
            let vlan = vlan
                .map(parse_vlan)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let wifi: WindowSpec = wifi.parse()?;
            let door: WindowSpec = match door {
                Some(d) => d.parse()?,
                None => wifi.clone(),
            };
            let plan = Plan {
                id: 0,
                name,
                vlan,
                wifi,
                door,
                device_limit: devices,
                door_groups: door_groups.into_iter().filter(|g| !g.is_empty()).collect(),
                ssids: ssids.into_iter().filter(|s| !s.is_empty()).collect(),
                mac_only,
                validity_days,
            };
            let store = ctx.open().await?;
            let p = store.add_plan(&plan, actor).await?;
            if ctx.json {
                json(&p);
            } else {
                kv(&[
                    ("plan", p.name),
                    ("vlan", opt(p.vlan)),
                    ("wifi", p.wifi.to_string()),
                    ("door", p.door.to_string()),
                    ("devices", opt(p.device_limit)),
                ]);
            }
        }
    }
    Ok(())
}
