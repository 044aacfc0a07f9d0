//! `member …`: add, import/export (CSV), list, show, status changes, plan changes, passwords.

use super::{parse_date_arg, site_today, Ctx};
use crate::cli::MemberCommand;
use crate::output::{json, kv, local_and_utc, opt, rfc3339, table};
use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use frontdesk_core::decide::{decide, Catalog, Resource, Subject};
use frontdesk_core::model::{Member, MemberStatus};
use frontdesk_core::store::{Actor, ImportRow, MemberFilter, NewMember, Store};
use serde_json::json;
use std::io::IsTerminal;

/// The assignment in force today, else the next one, else the last one.
fn plan_of<'a>(m: &'a Member, cat: &'a Catalog, today: NaiveDate) -> (String, Option<NaiveDate>) {
    let current = m
        .assignments
        .iter()
        .find(|a| a.valid_from <= today && a.valid_until.is_none_or(|u| u >= today))
        .or_else(|| m.assignments.iter().find(|a| a.valid_from > today))
        .or(m.assignments.last());
    match current {
        Some(a) => (
            cat.plan(a.plan_id).map_or("?".into(), |p| p.name.clone()),
            a.valid_until,
        ),
        None => ("-".into(), None),
    }
}

fn team_name(m: &Member, cat: &Catalog) -> Option<String> {
    m.team_id.and_then(|t| cat.team(t)).map(|t| t.name.clone())
}

fn member_json(m: &Member, cat: &Catalog, today: NaiveDate) -> serde_json::Value {
    let (plan, until) = plan_of(m, cat, today);
    json!({
        "id": m.id, "name": m.name, "email": m.email, "status": m.status,
        "wifi_username": m.wifi_username, "plan": plan, "team": team_name(m, cat),
        "valid_until": until, "assignments": m.assignments,
        "created_at": rfc3339(m.created_at),
    })
}

pub async fn member(ctx: &Ctx, cmd: MemberCommand, actor: &Actor) -> Result<()> {
    match cmd {
        MemberCommand::Add {
            name,
            email,
            plan,
            team,
            from,
            until,
            wifi_username,
        } => {
            let new = NewMember {
                name,
                email,
                plan,
                team,
                valid_from: from.as_deref().map(parse_date_arg).transpose()?,
                valid_until: until.as_deref().map(parse_date_arg).transpose()?,
                wifi_username,
                wifi_password: None,
            };
            let store = ctx.open().await?;
            let today = site_today(&store).await?;
            let (m, password) = store.add_member(&new, today, actor).await?;
            let cat = store.catalog().await?;
            let (plan, until) = plan_of(&m, &cat, today);
            if ctx.json {
                json(&json!({
                    "id": m.id, "wifi_username": m.wifi_username, "wifi_password": password,
                    "name": m.name, "email": m.email, "plan": plan, "team": team_name(&m, &cat),
                    "valid_from": m.assignments.first().map(|a| a.valid_from), "valid_until": until,
                }));
            } else {
                kv(&[
                    ("id", m.id.clone()),
                    ("name", m.name.clone()),
                    ("email", m.email.clone()),
                    ("plan", plan),
                    ("valid_until", opt(until)),
                    ("wifi_username", m.wifi_username.clone()),
                    ("wifi_password", password),
                ]);
            }
        }
        MemberCommand::Import { csv } => import(ctx, &csv, actor).await?,
        MemberCommand::Export { csv, with_secrets } => export(ctx, &csv, with_secrets).await?,
        MemberCommand::List {
            plan,
            status,
            team,
            search,
        } => {
            let status = status
                .as_deref()
                .map(str::parse::<MemberStatus>)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let store = ctx.open().await?;
            let filter = MemberFilter {
                plan,
                status,
                team,
                search,
            };
            let members = store.members(&filter).await?;
            let cat = store.catalog().await?;
            let today = site_today(&store).await?;
            if ctx.json {
                json(
                    &members
                        .iter()
                        .map(|m| member_json(m, &cat, today))
                        .collect::<Vec<_>>(),
                );
            } else {
                let rows: Vec<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        let (plan, until) = plan_of(m, &cat, today);
                        vec![
                            m.id.clone(),
                            m.name.clone(),
                            m.email.clone(),
                            plan,
                            m.status.to_string(),
                            opt(team_name(m, &cat)),
                            opt(until),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "NAME", "EMAIL", "PLAN", "STATUS", "TEAM", "UNTIL"],
                    &rows,
                );
            }
        }
        MemberCommand::Show { id } => {
            let store = ctx.open().await?;
            let m = store.member(&id).await?;
            show(ctx, &store, &m).await?;
        }
        MemberCommand::Suspend { id } => status(ctx, &id, MemberStatus::Suspended, actor).await?,
        MemberCommand::Resume { id } => status(ctx, &id, MemberStatus::Active, actor).await?,
        MemberCommand::Cancel { id } => status(ctx, &id, MemberStatus::Cancelled, actor).await?,
        MemberCommand::SetPlan { id, plan, until } => {
            let until = until.as_deref().map(parse_date_arg).transpose()?;
            let store = ctx.open().await?;
            let today = site_today(&store).await?;
            let m = store
                .set_member_plan(&id, &plan, today, until, actor)
                .await?;
            show(ctx, &store, &m).await?;
        }
        MemberCommand::RotatePassword { id } => {
            let store = ctx.open().await?;
            let (m, password) = store.rotate_password(&id, actor).await?;
            if ctx.json {
                json(
                    &json!({"id": m.id, "wifi_username": m.wifi_username, "wifi_password": password}),
                );
            } else {
                kv(&[
                    ("id", m.id),
                    ("wifi_username", m.wifi_username),
                    ("wifi_password", password),
                ]);
            }
        }
    }
    Ok(())
}

async fn status(ctx: &Ctx, id: &str, status: MemberStatus, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    let m = store.set_member_status(id, status, actor).await?;
    show(ctx, &store, &m).await
}

async fn show(ctx: &Ctx, store: &Store, m: &Member) -> Result<()> {
    let cat = store.catalog().await?;
    let today = site_today(store).await?;
    let now = frontdesk_core::clock::now();
    let d = decide(&cat, Subject::Member(m.into()), Resource::WIFI, now);
    if ctx.json {
        let mut v = member_json(m, &cat, today);
        v["wifi_now"] = serde_json::to_value(&d)?;
        json(&v);
        return Ok(());
    }
    let (plan, until) = plan_of(m, &cat, today);
    let tz = cat.site.tz();
    let wifi_now = if d.allowed {
        format!(
            "allowed, VLAN {}, until {}",
            opt(d.vlan),
            d.valid_until
                .map_or("no end".into(), |t| local_and_utc(t, tz))
        )
    } else {
        format!("denied: {}", d.reason)
    };
    kv(&[
        ("id", m.id.clone()),
        ("name", m.name.clone()),
        ("email", m.email.clone()),
        ("status", m.status.to_string()),
        ("plan", plan),
        ("valid_until", opt(until)),
        ("team", opt(team_name(m, &cat))),
        ("wifi_username", m.wifi_username.clone()),
        ("wifi now", wifi_now),
    ]);
    Ok(())
}

const COLUMNS: [&str; 7] = [
    "name",
    "email",
    "plan",
    "team",
    "valid_until",
    "wifi_username",
    "wifi_password",
];

async fn import(ctx: &Ctx, path: &std::path::Path, actor: &Actor) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = reader.headers()?.iter().map(|h| h.to_lowercase()).collect();
    for h in &headers {
        if !COLUMNS.contains(&h.as_str()) {
            bail!(
                "line 1: unknown column {h:?} (columns: {})",
                COLUMNS.join(",")
            );
        }
    }
    for required in ["name", "email", "plan"] {
        if !headers.iter().any(|h| h == required) {
            bail!("line 1: missing column {required:?} (required: name,email,plan)");
        }
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (name_i, email_i, plan_i) = (
        col("name").expect("checked"),
        col("email").expect("checked"),
        col("plan").expect("checked"),
    );
    let (team_i, until_i, user_i, pass_i) = (
        col("team"),
        col("valid_until"),
        col("wifi_username"),
        col("wifi_password"),
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("line {line}: {}", e.to_string().replace('\n', " "))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let get = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let valid_until = get(until_i)
            .map(|s| parse_date_arg(&s))
            .transpose()
            .map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
        rows.push(ImportRow {
            line,
            name: get(Some(name_i)).unwrap_or_default(),
            email: get(Some(email_i)).unwrap_or_default(),
            plan: get(Some(plan_i)).unwrap_or_default(),
            team: get(team_i),
            valid_until,
            wifi_username: get(user_i),
            wifi_password: get(pass_i),
        });
    }
    let store = ctx.open().await?;
    let today = site_today(&store).await?;
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "importing {bar:40} {pos}/{len} members ({eta} left)",
        )
        .expect("static template"),
    );
    let progress = |n: usize| bar.set_position(n as u64);
    let started = std::time::Instant::now();
    let summary = store.import_members(&rows, today, actor, &progress).await?;
    bar.finish_and_clear();
    if ctx.json {
        json(&summary);
    } else {
        kv(&[
            ("created", summary.created.to_string()),
            ("updated", summary.updated.to_string()),
            ("unchanged", summary.unchanged.to_string()),
            ("took", format!("{:.2} s", started.elapsed().as_secs_f64())),
        ]);
    }
    Ok(())
}

async fn export(ctx: &Ctx, path: &std::path::Path, with_secrets: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let store = ctx.open().await?;
    let members = store.members(&MemberFilter::default()).await?;
    let cat = store.catalog().await?;
    let today = site_today(&store).await?;
    // Exports carry personal data (and maybe passwords): private file.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut w = csv::Writer::from_writer(file);
    let cols = if with_secrets {
        &COLUMNS[..]
    } else {
        &COLUMNS[..6]
    };
    w.write_record(cols)?;
    for m in &members {
        let (plan, until) = plan_of(m, &cat, today);
        let mut rec = vec![
            m.name.clone(),
            m.email.clone(),
            plan,
            team_name(m, &cat).unwrap_or_default(),
            until.map(|d| d.to_string()).unwrap_or_default(),
            m.wifi_username.clone(),
        ];
        if with_secrets {
            rec.push(store.wifi_password(&m.id).await?);
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    if ctx.json {
        json(&json!({"exported": members.len(), "path": path}));
    } else {
        kv(&[
            ("exported", members.len().to_string()),
            ("path", path.display().to_string()),
        ]);
    }
    Ok(())
}
