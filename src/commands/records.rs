//! `device`, `nas`, `voucher`, `admin`, `audit`.

use super::{read_secret_file, Ctx};
use crate::cli::{AdminCommand, DeviceCommand, NasCommand, VoucherCommand};
use crate::output::{json, kv, local_and_utc, opt, rfc3339, table};
use anyhow::Result;
use chrono::Utc;
use frontdesk_core::model::{parse_cidr, Role, Vendor};
use frontdesk_core::store::{Actor, NewNas};
use frontdesk_core::MacAddr;
use serde_json::json;

pub async fn device(ctx: &Ctx, cmd: DeviceCommand, actor: &Actor) -> Result<()> {
    match cmd {
        DeviceCommand::Add {
            member,
            mac,
            plan,
            name,
        } => {
            let mac: MacAddr = mac.parse()?;
            let store = ctx.open().await?;
            let d = store
                .add_device(member.as_deref(), mac, &plan, &name, actor)
                .await?;
            if ctx.json {
                json(
                    &json!({"id": d.id, "mac": d.mac, "plan": plan, "member_id": d.member_id, "name": d.name}),
                );
            } else {
                kv(&[
                    ("mac", d.mac.to_string()),
                    ("plan", plan),
                    ("owner", opt(d.member_id)),
                    ("name", d.name),
                ]);
            }
        }
        DeviceCommand::List => {
            let store = ctx.open().await?;
            let devices = store.devices().await?;
            let cat = store.catalog().await?;
            if ctx.json {
                json(&devices);
            } else {
                let rows: Vec<Vec<String>> = devices
                    .iter()
                    .map(|d| {
                        vec![
                            d.mac.to_string(),
                            cat.plan(d.plan_id).map_or("?".into(), |p| p.name.clone()),
                            opt(d.member_id.clone()),
                            d.name.clone(),
                        ]
                    })
                    .collect();
                table(&["MAC", "PLAN", "OWNER", "NAME"], &rows);
            }
        }
    }
    Ok(())
}

pub async fn nas(ctx: &Ctx, cmd: NasCommand, actor: &Actor) -> Result<()> {
    match cmd {
        NasCommand::Add {
            name,
            address,
            secret,
            secret_file,
            vendor,
            disconnect_port,
            coa_port,
            no_require_message_authenticator,
        } => {
            let address = parse_cidr(&address).map_err(anyhow::Error::msg)?;
            let vendor: Vendor = vendor.parse().map_err(anyhow::Error::msg)?;
            let secret = match (secret, secret_file) {
                (Some(s), _) => s,
                (None, Some(f)) => read_secret_file(&f, "NAS secret")?,
                (None, None) => unreachable!("clap requires one"),
            };
            let store = ctx.open().await?;
            let n = store
                .add_nas(
                    &NewNas {
                        name,
                        address,
                        secret,
                        vendor,
                        disconnect_port,
                        coa_port,
                        require_message_authenticator: !no_require_message_authenticator,
                    },
                    actor,
                )
                .await?;
            if ctx.json {
                json(&n);
            } else {
                kv(&[
                    ("nas", n.name),
                    ("address", n.address.to_string()),
                    ("vendor", n.vendor.to_string()),
                    ("disconnect_port", n.disconnect_port.to_string()),
                    ("coa_port", n.coa_port.to_string()),
                    (
                        "require_message_authenticator",
                        n.require_message_authenticator.to_string(),
                    ),
                ]);
            }
        }
        NasCommand::List => {
            let store = ctx.open().await?;
            let list = store.nas_list().await?;
            if ctx.json {
                json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![
                            n.name.clone(),
                            n.address.to_string(),
                            n.vendor.to_string(),
                            n.disconnect_port.to_string(),
                            n.coa_port.to_string(),
                            if n.require_message_authenticator {
                                "yes"
                            } else {
                                "no"
                            }
                            .into(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAME",
                        "ADDRESS",
                        "VENDOR",
                        "DISCONNECT",
                        "COA",
                        "REQUIRE-MA",
                    ],
                    &rows,
                );
            }
        }
        NasCommand::Remove { name } => {
            let store = ctx.open().await?;
            store.remove_nas(&name, actor).await?;
            if ctx.json {
                json(&json!({"removed": name}));
            } else {
                kv(&[("removed", name)]);
            }
        }
    }
    Ok(())
}

pub async fn voucher(ctx: &Ctx, cmd: VoucherCommand, actor: &Actor) -> Result<()> {
    match cmd {
        VoucherCommand::Create {
            count,
            valid,
            devices,
            plan,
            sponsor,
        } => {
            let valid = humantime::parse_duration(&valid)
                .map_err(|e| anyhow::anyhow!("--valid {valid:?}: {e} (use e.g. 8h, 1d, 90min)"))?;
            let store = ctx.open().await?;
            let vs = store
                .create_vouchers(
                    count,
                    valid.as_secs() as i64,
                    devices,
                    &plan,
                    sponsor.as_deref(),
                    actor,
                )
                .await?;
            if ctx.json {
                json(&vs);
            } else {
                let rows: Vec<Vec<String>> = vs
                    .iter()
                    .map(|v| {
                        vec![
                            v.code.clone(),
                            plan.clone(),
                            humantime::format_duration(valid).to_string(),
                            v.devices.to_string(),
                        ]
                    })
                    .collect();
                table(&["CODE", "PLAN", "VALID FROM FIRST USE", "DEVICES"], &rows);
            }
        }
        VoucherCommand::List => {
            let store = ctx.open().await?;
            let vs = store.vouchers().await?;
            let cat = store.catalog().await?;
            let now = Utc::now();
            if ctx.json {
                json(&vs);
            } else {
                let rows: Vec<Vec<String>> = vs
                    .iter()
                    .map(|v| {
                        let state = match v.first_used_at {
                            None => "unused".to_string(),
                            Some(first) => {
                                let end = first + chrono::Duration::seconds(v.valid_secs);
                                if end <= now {
                                    "expired".into()
                                } else {
                                    format!("in use until {}", local_and_utc(end, cat.site.tz()))
                                }
                            }
                        };
                        vec![
                            v.code.clone(),
                            cat.plan(v.plan_id).map_or("?".into(), |p| p.name.clone()),
                            humantime::format_duration(std::time::Duration::from_secs(
                                v.valid_secs as u64,
                            ))
                            .to_string(),
                            v.devices.to_string(),
                            state,
                            rfc3339(v.created_at),
                        ]
                    })
                    .collect();
                table(
                    &["CODE", "PLAN", "VALID", "DEVICES", "STATE", "CREATED"],
                    &rows,
                );
            }
        }
    }
    Ok(())
}

pub async fn admin(ctx: &Ctx, cmd: AdminCommand, actor: &Actor) -> Result<()> {
    match cmd {
        AdminCommand::Add { email, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let store = ctx.open().await?;
            let (a, password) = store.add_admin(&email, role, actor).await?;
            if ctx.json {
                json(&json!({"email": a.email, "role": a.role, "one_time_password": password}));
            } else {
                kv(&[
                    ("email", a.email),
                    ("role", a.role.as_str().into()),
                    (
                        "one-time password",
                        format!("{password} (must be changed at first login)"),
                    ),
                ]);
            }
        }
    }
    Ok(())
}

pub async fn audit(ctx: &Ctx, limit: i64) -> Result<()> {
    let store = ctx.open().await?;
    let events = store.audit_log(limit.clamp(1, 10_000)).await?;
    if ctx.json {
        json(&events);
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    rfc3339(e.at),
                    e.actor.clone(),
                    e.action.clone(),
                    e.object.clone(),
                    opt(e.after.clone()),
                ]
            })
            .collect();
        table(&["AT", "ACTOR", "ACTION", "OBJECT", "AFTER"], &rows);
    }
    Ok(())
}
