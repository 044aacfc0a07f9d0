//! `door` and `sync`: door-access backends, plan → door group maps, and the reconciler.

use super::Ctx;
use crate::cli::{DoorCommand, SyncCommand};
use crate::output::{json, kv, opt, rfc3339, table};
use anyhow::{bail, Context, Result};
use frontdesk_core::store::{Actor, Store};
use frontdesk_sync::reconcile::{reconcile, system_for, Report, Scope};
use serde_json::json;
use std::io::IsTerminal;

pub async fn door(ctx: &Ctx, cmd: DoorCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        DoorCommand::Add {
            name,
            kind,
            url,
            secret_file,
        } => {
            let secret = secret_file
                .as_deref()
                .map(|f| super::read_secret_file(f, "--secret-file"))
                .transpose()?;
            if secret.is_none() && kind != "webhook" {
                bail!("--secret-file: {kind} needs its API key or token");
            }
            if kind == "salto-ks" {
                // Checked now, not at the first sync: client_id, client_secret, token_url.
                frontdesk_sync::salto_ks::Credentials::parse(secret.as_deref().unwrap_or(""))
                    .map_err(|e| anyhow::anyhow!("--secret-file: {e}"))?;
            }
            let b = store
                .add_door_backend(&name, &kind, &url, secret.as_deref(), actor)
                .await?;
            if ctx.json {
                json(&b);
            } else {
                kv(&[("backend", b.name), ("kind", b.kind), ("url", b.url)]);
            }
        }
        DoorCommand::Map {
            backend,
            plan,
            group,
            window,
        } => {
            let schedule = match window.as_str() {
                "plan" => None,
                w => Some(w.parse().map_err(|e| anyhow::anyhow!("--window: {e}"))?),
            };
            let m = store
                .map_door(&backend, &plan, &group, schedule, actor)
                .await?;
            if ctx.json {
                json(&m);
            } else {
                kv(&[
                    ("backend", backend),
                    ("plan", plan),
                    ("group", m.group),
                    (
                        "window",
                        m.schedule
                            .map_or("the plan's door window".into(), |s| s.to_string()),
                    ),
                ]);
            }
        }
        DoorCommand::Unmap {
            backend,
            plan,
            group,
        } => {
            store.unmap_door(&backend, &plan, &group, actor).await?;
            if !ctx.json {
                println!("unmapped; the next sync (at once under `serve`) revokes what it granted");
            }
        }
        DoorCommand::Remove { name, force } => {
            store.remove_door_backend(&name, force, actor).await?;
            if !ctx.json {
                println!("removed door backend {name}");
            }
        }
        DoorCommand::EventsSecret {
            backend,
            secret_file,
        } => {
            let (secret, generated) = match &secret_file {
                Some(f) => (
                    super::read_secret_file(f, "--secret-file")?
                        .trim()
                        .to_string(),
                    false,
                ),
                None => (
                    format!(
                        "whsec_{}",
                        frontdesk_portal::api::new_token()
                            .0
                            .trim_start_matches("fdk_")
                    ),
                    true,
                ),
            };
            store
                .set_door_events_secret(&backend, &secret, actor)
                .await?;
            let base = ctx.config.http.console_url();
            let url = format!(
                "{}/api/v1/webhooks/doors/{backend}",
                base.trim_end_matches('/')
            );
            if ctx.json {
                json(&json!({"url": url, "secret": generated.then_some(&secret)}));
            } else {
                kv(&[("webhook URL", url)]);
                if generated {
                    println!(
                        "secret (shown once; paste it into the door system's webhook settings):\n{}",
                        secret
                    );
                }
            }
        }
        DoorCommand::Events { since } => {
            let from = frontdesk_core::clock::now()
                - chrono::Duration::from_std(*since).context("--since is too long")?;
            let events = store.door_events_since(from).await?;
            if ctx.json {
                json(&events);
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            rfc3339(e.at),
                            e.kind.clone(),
                            e.door.clone(),
                            opt(e.member_id.clone().or_else(|| e.actor.clone())),
                            e.backend.clone(),
                        ]
                    })
                    .collect();
                table(&["AT", "EVENT", "DOOR", "WHO", "BACKEND"], &rows);
            }
        }
        DoorCommand::List => {
            let (backends, maps, cat) = (
                store.door_backends().await?,
                store.door_maps().await?,
                store.catalog().await?,
            );
            let plan = |id: i64| cat.plan(id).map_or("-".to_string(), |p| p.name.clone());
            if ctx.json {
                let v: Vec<_> = backends
                    .iter()
                    .map(|b| {
                        json!({"name": b.name, "kind": b.kind, "url": b.url, "maps": maps.iter().filter(|m| m.backend_id == b.id).map(|m| json!({"plan": plan(m.plan_id), "group": m.group, "window": m.schedule.as_ref().map(|s| s.to_string())})).collect::<Vec<_>>()})
                    })
                    .collect();
                json(&v);
            } else {
                let rows: Vec<Vec<String>> = maps
                    .iter()
                    .map(|m| {
                        vec![
                            backends
                                .iter()
                                .find(|b| b.id == m.backend_id)
                                .map_or("-".into(), |b| format!("{} ({})", b.name, b.kind)),
                            plan(m.plan_id),
                            m.group.clone(),
                            m.schedule.as_ref().map_or("plan".into(), |s| s.to_string()),
                        ]
                    })
                    .collect();
                for b in backends
                    .iter()
                    .filter(|b| !maps.iter().any(|m| m.backend_id == b.id))
                {
                    println!(
                        "{} ({}): no plans mapped yet (frontdesk door map)",
                        b.name, b.kind
                    );
                }
                table(&["BACKEND", "PLAN", "GROUP", "WINDOW"], &rows);
            }
        }
    }
    Ok(())
}

/// One reconcile of one backend, with a progress bar on a terminal.
pub async fn run_one(
    store: &Store,
    b: &frontdesk_core::store::doors::DoorBackend,
    members: &[String],
    show_progress: bool,
) -> Result<Report> {
    let hours = store.site().await?.calendar.hours;
    let system = system_for(b, &hours).map_err(|e| anyhow::anyhow!("{}: {e}", b.name))?;
    let bar = indicatif::ProgressBar::new(0);
    if !show_progress || !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} members")
            .expect("static template"),
    );
    bar.set_message(b.name.clone());
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let scope = if members.is_empty() {
        Scope::All
    } else {
        Scope::Members(members)
    };
    let r = reconcile(store, b, system.as_ref(), scope, &progress).await;
    bar.finish_and_clear();
    r.map_err(|e| anyhow::anyhow!("{}: {e}", b.name))
}

pub async fn sync(ctx: &Ctx, cmd: SyncCommand) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        SyncCommand::Run { backend, member } => {
            let backends = match &backend {
                Some(n) => vec![store.door_backend(n).await?],
                None => store.door_backends().await?,
            };
            if backends.is_empty() {
                bail!("no door backends yet: add one with `frontdesk door add`");
            }
            let mut ids = Vec::new();
            for m in &member {
                ids.push(store.member(m).await?.id);
            }
            let mut reports = Vec::new();
            let mut failed = false;
            for b in &backends {
                match run_one(&store, b, &ids, !ctx.json).await {
                    Ok(r) => {
                        failed |= r.failed > 0;
                        reports.push(r);
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("error: {e}");
                    }
                }
            }
            if ctx.json {
                json(&reports);
            } else {
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|r| {
                        vec![
                            r.backend.clone(),
                            r.members.to_string(),
                            r.changed.to_string(),
                            r.writes.to_string(),
                            r.requests.to_string(),
                            r.failed.to_string(),
                            r.quarantined.to_string(),
                            r.waiting.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "BACKEND",
                        "MEMBERS",
                        "CHANGED",
                        "WRITES",
                        "REQUESTS",
                        "FAILED",
                        "QUARANTINED",
                        "WAITING",
                    ],
                    &rows,
                );
            }
            if failed {
                bail!("some members were not synced: see `frontdesk sync status`");
            }
        }
        SyncCommand::Status => {
            let (backends, runs) = (store.door_backends().await?, store.sync_runs().await?);
            let mut out = Vec::new();
            for b in &backends {
                let items = store.sync_items(b.id).await?;
                let run = runs.iter().find(|r| r.backend_id == b.id);
                let bad: Vec<_> = items.iter().filter(|i| i.state != "ok").collect();
                out.push(json!({
                    "backend": b.name,
                    "kind": b.kind,
                    "last_run_started": run.map(|r| rfc3339(r.started_at)),
                    "last_run_finished": run.and_then(|r| r.finished_at.map(rfc3339)),
                    "last_run_writes": run.map(|r| r.operations),
                    "last_run_error": run.and_then(|r| r.error.clone()),
                    "synced": items.iter().filter(|i| i.state == "ok").count(),
                    "failed": bad.iter().filter(|i| i.state == "failed").count(),
                    "quarantined": bad.iter().filter(|i| i.state == "quarantined").count(),
                    "problems": bad.iter().map(|i| json!({"member": i.member_id, "state": i.state, "failures": i.failures, "next_attempt_at": i.next_attempt_at.map(rfc3339), "error": i.last_error})).collect::<Vec<_>>(),
                }));
            }
            if ctx.json {
                json(&out);
            } else {
                for o in &out {
                    kv(&[
                        (
                            "backend",
                            format!(
                                "{} ({})",
                                o["backend"].as_str().unwrap_or(""),
                                o["kind"].as_str().unwrap_or("")
                            ),
                        ),
                        (
                            "last run",
                            opt(o["last_run_finished"]
                                .as_str()
                                .or(o["last_run_started"].as_str())),
                        ),
                        ("last error", opt(o["last_run_error"].as_str())),
                        ("synced", o["synced"].to_string()),
                        ("failed", o["failed"].to_string()),
                        ("quarantined", o["quarantined"].to_string()),
                    ]);
                    for p in o["problems"].as_array().into_iter().flatten() {
                        println!(
                            "  {} {} ({} failures): {}",
                            p["member"].as_str().unwrap_or(""),
                            p["state"].as_str().unwrap_or(""),
                            p["failures"],
                            p["error"].as_str().unwrap_or("")
                        );
                    }
                }
                if out.is_empty() {
                    println!("no door backends (frontdesk door add)");
                }
            }
        }
        SyncCommand::Release { backend } => {
            let b = store.door_backend(&backend).await?;
            let n = store.sync_release(b.id).await?;
            kv(&[("released", n.to_string())]);
        }
    }
    Ok(())
}
