//! `controller add|list|test|remove`: the Wi-Fi controllers of radius-only mode.

use super::Ctx;
use crate::cli::ControllerCommand;
use crate::output::{json, kv, table};
use anyhow::{bail, Result};
use frontdesk_core::store::controllers::NewController;
use frontdesk_core::store::Actor;
use frontdesk_sync::controllers::connect;
use serde_json::json;

pub async fn controller(ctx: &Ctx, cmd: ControllerCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        ControllerCommand::Add {
            name,
            kind,
            url,
            site,
            username,
            secret_file,
        } => {
            let secret = secret_file
                .as_deref()
                .map(|f| super::read_secret_file(f, "--secret-file"))
                .transpose()?;
            match kind.as_str() {
                "unifi" if secret.is_none() => bail!("a UniFi controller needs --secret-file: the password of --username, or an API key (UniFi OS) without --username"),
                "omada" if secret.is_none() || username.is_none() => bail!("an Omada controller needs --username and --secret-file: a hotspot operator account (Hotspot Manager → Operators)"),
                _ => {}
            }
            let c = store
                .add_controller(
                    &NewController {
                        name: &name,
                        kind: &kind,
                        url: &url,
                        site: site.as_deref(),
                        username: username.as_deref(),
                        secret: secret.as_deref(),
                    },
                    actor,
                )
                .await?;
            // Refuse what cannot work (plain http to another host, unsupported kind) now.
            if let Err(e) = connect(&c) {
                store.remove_controller(&c.name, actor).await?;
                bail!("{e}");
            }
            if ctx.json {
                json(&c);
            } else {
                println!(
                    "controller {:?} added; check it with: frontdesk controller test {}",
                    c.name, c.name
                );
            }
        }
        ControllerCommand::List => {
            let list = store.controllers().await?;
            if ctx.json {
                json(&list);
            } else {
                let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
                        .unwrap_or_else(|| "-".into())
                };
                table(
                    &["NAME", "KIND", "URL", "SITE", "LAST OK", "LAST ERROR"],
                    &list
                        .iter()
                        .map(|c| {
                            vec![
                                c.name.clone(),
                                c.kind.clone(),
                                c.url.clone(),
                                c.site.clone().unwrap_or_else(|| "-".into()),
                                fmt(c.last_ok_at),
                                match &c.last_error {
                                    Some(e) => format!("{} ({e})", fmt(c.last_error_at)),
                                    None => "-".into(),
                                },
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        ControllerCommand::Test { name } => {
            let Some(c) = store.controller(&name).await? else {
                bail!("no controller {name:?} (frontdesk controller list)");
            };
            let site = c.site.clone().unwrap_or_else(|| "default".into());
            let client = connect(&c)?;
            let r = client.health(&site).await;
            let _ = store
                .set_controller_health(
                    &c.name,
                    r.as_ref().err().map(ToString::to_string).as_deref(),
                )
                .await;
            match r {
                Ok(summary) => {
                    if ctx.json {
                        json(&json!({"controller": c.name, "ok": true, "summary": summary}));
                    } else {
                        kv(&[
                            ("controller", c.name.clone()),
                            ("result", "OK".into()),
                            ("detail", summary),
                        ]);
                    }
                }
                Err(e) => bail!("controller {:?} FAILED: {e}", c.name),
            }
        }
        ControllerCommand::Remove { name } => {
            store.remove_controller(&name, actor).await?;
            if !ctx.json {
                println!("controller {name:?} removed");
            }
        }
    }
    Ok(())
}
