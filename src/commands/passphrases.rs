//! `passphrase issue|list|show|bind|unbind|revoke`: private Wi-Fi passphrases (identity PSK).

use super::{parse_date_arg, Ctx};
use crate::cli::PassphraseCommand;
use crate::output::{json, kv, table};
use anyhow::{Context, Result};
use frontdesk_core::store::passphrases::Owner;
use frontdesk_core::store::Actor;
use serde_json::json;

pub async fn passphrase(ctx: &Ctx, cmd: PassphraseCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        PassphraseCommand::Issue {
            member,
            team,
            plan,
            ssid,
            until,
            devices,
        } => {
            let owner = match (member, team, plan) {
                (Some(m), _, _) => Owner::Member(m),
                (None, None, Some(p)) => Owner::Plan(store.plan(p.trim()).await?.id),
                (None, Some(t), _) => {
                    let team = store
                        .teams()
                        .await?
                        .into_iter()
                        .find(|x| x.name.eq_ignore_ascii_case(t.trim()))
                        .with_context(|| format!("no team {t:?} (frontdesk team list)"))?;
                    Owner::Team(team.id)
                }
                (None, None, None) => anyhow::bail!("give --member, --team or --plan"),
            };
            let until = until.as_deref().map(parse_date_arg).transpose()?;
            let p = store
                .issue_passphrase(&owner, &ssid, until, devices, actor)
                .await?;
            if ctx.json {
                json(&as_json(&p));
            } else {
                kv(&as_kv(&p));
                println!("Give it to its owner only (it is on their /me page too; `frontdesk passphrase show {}` shows it again).", p.id);
            }
        }
        PassphraseCommand::List { all } => {
            let list = store.passphrases(all).await?;
            if ctx.json {
                json(&list);
            } else {
                table(
                    &["ID", "SSID", "OWNER", "UNTIL", "DEVICES", "STATE"],
                    &list
                        .iter()
                        .map(|p| {
                            vec![
                                p.id.to_string(),
                                p.ssid.clone(),
                                p.owner.clone(),
                                p.valid_until.map_or("-".into(), |d| d.to_string()),
                                p.max_devices.map_or("-".into(), |d| d.to_string()),
                                if p.revoked_at.is_some() {
                                    "revoked"
                                } else {
                                    "active"
                                }
                                .into(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        PassphraseCommand::Show { id } => {
            let p = store.passphrase(id).await?;
            let devices = store.passphrase_devices(id).await?;
            if ctx.json {
                let mut j = as_json(&p);
                j["revoked_at"] = json!(p.revoked_at);
                j["devices"] = json!(devices);
                json(&j);
            } else {
                let mut lines = as_kv(&p);
                lines.extend([
                    (
                        "state",
                        p.revoked_at
                            .map_or("active".into(), |t| format!("revoked {t}")),
                    ),
                    (
                        "devices",
                        format!(
                            "{}{}",
                            devices.len(),
                            p.max_devices.map_or(String::new(), |m| format!(" of {m}"))
                        ),
                    ),
                ]);
                kv(&lines);
                for d in devices {
                    println!("  {}  first {}  last {}", d.mac, d.first_at, d.last_at);
                }
            }
        }
        PassphraseCommand::Bind { id, mac } => {
            let mac = mac
                .parse()
                .with_context(|| format!("{mac:?} is not a MAC address"))?;
            store.bind_passphrase_device(id, mac, actor).await?;
            if !ctx.json {
                println!("{mac} bound to passphrase #{id}");
            }
        }
        PassphraseCommand::Unbind { id, mac } => {
            let mac = mac
                .parse()
                .with_context(|| format!("{mac:?} is not a MAC address"))?;
            store.unbind_passphrase_device(id, mac, actor).await?;
            if !ctx.json {
                println!("{mac} unbound from passphrase #{id}");
            }
        }
        PassphraseCommand::Revoke { id } => {
            store.revoke_passphrase(id, actor).await?;
            if !ctx.json {
                println!("passphrase #{id} revoked");
            }
        }
    }
    Ok(())
}

fn as_json(p: &frontdesk_core::store::passphrases::Passphrase) -> serde_json::Value {
    json!({"id": p.id, "ssid": p.ssid, "owner": p.owner, "passphrase": p.secret,
        "wifi_qr": p.wifi_uri(), "valid_until": p.valid_until, "max_devices": p.max_devices})
}

fn as_kv(p: &frontdesk_core::store::passphrases::Passphrase) -> Vec<(&'static str, String)> {
    vec![
        ("id", p.id.to_string()),
        ("ssid", p.ssid.clone()),
        ("owner", p.owner.clone()),
        ("passphrase", p.secret.clone()),
        ("join (QR)", p.wifi_uri()),
    ]
}
