//! `device`, `nas`, `voucher`, `admin`, `audit`.

use super::{read_secret_file, Ctx};
use crate::cli::{AdminCommand, DeviceCommand, NasCommand, VoucherCommand};
use crate::output::{json, kv, local_and_utc, opt, rfc3339, table};
use anyhow::Result;
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
            let stats = store.nas_stats().await?;
            let counters = |id: i64| -> Vec<(String, i64)> {
                stats
                    .iter()
                    .filter(|s| s.0 == id)
                    .map(|s| (s.1.clone(), s.2))
                    .collect()
            };
            if ctx.json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|n| {
                        let mut j = serde_json::to_value(n).expect("serialisable");
                        j["counters"] = counters(n.id)
                            .into_iter()
                            .map(|(k, v)| (k, serde_json::Value::from(v)))
                            .collect::<serde_json::Map<_, _>>()
                            .into();
                        j
                    })
                    .collect();
                json(&v);
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
                            nas_health(&counters(n.id)),
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
                        "TRAFFIC",
                    ],
                    &rows,
                );
            }
        }
        NasCommand::Test { name } => nas_test(ctx, &name).await?,
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

async fn nas_test(ctx: &Ctx, name: &str) -> Result<()> {
    let store = ctx.open().await?;
    let nas = store
        .nas_list()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| anyhow::anyhow!("NAS {name:?} not found (see `frontdesk nas list`)"))?;
    let stats: Vec<(String, i64)> = store
        .nas_stats()
        .await?
        .into_iter()
        .filter(|s| s.0 == nas.id)
        .map(|s| (s.1, s.2))
        .collect();
    let get = |k: &str| stats.iter().find(|c| c.0 == k).map_or(0, |c| c.1);
    let profile = frontdesk_radius::nas::profile(nas.vendor);
    let attributes: Vec<String> = stats
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("attr:").map(String::from))
        .collect();
    let mut ssids: Vec<(String, i64)> = stats
        .iter()
        .filter_map(|(k, n)| Some((k.strip_prefix("ssid:")?.to_string(), *n)))
        .collect();
    ssids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let drops: Vec<(String, i64)> = stats
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "no-message-authenticator"
                    | "proxy-state-without-message-authenticator"
                    | "bad-authenticator"
                    | "malformed"
                    | "rate-limited"
                    | "unexpected-code"
            )
        })
        .cloned()
        .collect();
    let last_heard =
        chrono::DateTime::from_timestamp(get("last-seen"), 0).filter(|_| get("last-seen") > 0);
    let (signed, unsigned) = (get("signed"), get("unsigned"));
    let signing = match (signed, unsigned) {
        (0, 0) => "no requests yet".to_string(),
        (_, 0) => format!("signs every request with Message-Authenticator ({signed})"),
        (0, _) => format!(
            "sends no Message-Authenticator ({unsigned} requests){}",
            if nas.require_message_authenticator {
                ": they are dropped; enable it on the NAS, or (old gear) `nas remove` and add again with --no-require-message-authenticator"
            } else {
                ""
            }
        ),
        _ => format!("{signed} signed, {unsigned} unsigned requests"),
    };
    if ctx.json {
        json(&json!({
            "nas": nas,
            "last_heard": last_heard.map(rfc3339),
            "requests": get("requests"), "accepts": get("accepts"), "rejects": get("rejects"),
            "signed": signed, "unsigned": unsigned,
            "attributes": attributes,
            "ssids": ssids.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "dropped": drops.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "profile": {
                "vlan_style": format!("{:?}", profile.vlan_style), "mac_format": format!("{:?}", profile.mac_format),
                "session_timeout": [profile.session_timeout_min, profile.session_timeout_max],
                "acct_interim_interval": profile.acct_interim_interval, "coa": format!("{:?}", profile.coa),
                "source": profile.source,
            },
        }));
        return Ok(());
    }
    let tz = store.site().await?.tz();
    kv(&[
        ("nas", format!("{} ({}, vendor {})", nas.name, nas.address, nas.vendor)),
        (
            "last heard",
            last_heard.map_or_else(
                || format!("never: point the NAS at this server and check it sends from {}", nas.address),
                |t| local_and_utc(t, tz),
            ),
        ),
        ("requests", format!("{} ({} accepted, {} rejected)", get("requests"), get("accepts"), get("rejects"))),
        ("message-authenticator", signing),
        ("attributes sent", if attributes.is_empty() { "-".into() } else { attributes.join(", ") }),
        (
            "SSIDs seen",
            if ssids.is_empty() {
                "none (no Called-Station-Id with an SSID)".into()
            } else {
                ssids.iter().map(|(s, n)| format!("{s} ({n})")).collect::<Vec<_>>().join(", ")
            },
        ),
        (
            "dropped",
            if drops.is_empty() {
                "none".into()
            } else {
                drops.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
            },
        ),
        (
            "profile",
            format!(
                "VLAN {:?}, MAC {:?}, Session-Timeout {}..{} s, interim {} s, Disconnect port {}, CoA port {} via {:?}",
                profile.vlan_style,
                profile.mac_format,
                profile.session_timeout_min,
                profile.session_timeout_max,
                profile.acct_interim_interval,
                nas.disconnect_port,
                nas.coa_port,
                profile.coa
            ),
        ),
        ("profile source", profile.source.into()),
        ("CoA reachability", "not tested yet: Disconnect/CoA arrive with the after-hours issue".into()),
    ]);
    Ok(())
}

/// One line an operator can act on: traffic, and every kind of drop spelled out.
fn nas_health(counters: &[(String, i64)]) -> String {
    let get = |k: &str| counters.iter().find(|c| c.0 == k).map_or(0, |c| c.1);
    let requests = get("requests");
    if requests == 0 && counters.is_empty() {
        return "never heard from".into();
    }
    let mut parts = vec![format!(
        "{requests} requests, {} accepts, {} rejects",
        get("accepts"),
        get("rejects")
    )];
    for (k, v) in counters {
        let what = match k.as_str() {
            "no-message-authenticator" => "sent without Message-Authenticator (dropped)",
            "proxy-state-without-message-authenticator" => {
                "with Proxy-State but no Message-Authenticator (dropped)"
            }
            "bad-authenticator" => "with a wrong secret or Message-Authenticator (dropped)",
            "malformed" => "malformed (dropped)",
            "rate-limited" => "over the rate limit (dropped)",
            "unexpected-code" => "of an unexpected type (dropped)",
            _ => continue,
        };
        parts.push(format!("{v} {what}"));
    }
    if let Some((_, t)) = counters.iter().find(|c| c.0 == "last-seen") {
        if let Some(at) = chrono::DateTime::from_timestamp(*t, 0) {
            parts.push(format!("last heard {}", rfc3339(at)));
        }
    }
    parts.join("; ")
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
            let now = frontdesk_core::clock::now();
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

pub async fn sessions(ctx: &Ctx, online: bool, limit: i64) -> Result<()> {
    let store = ctx.open().await?;
    // Online: no Stop and an update within 2.5 interim intervals of the longest profile (600 s).
    let now = frontdesk_core::clock::now();
    let since = online.then(|| now - frontdesk_core::enforce::ONLINE_HORIZON);
    let rows = store.sessions(since, limit.clamp(1, 100_000)).await?;
    // For online sessions: until when the member's decision lets them stay (the scheduler and
    // the change path disconnect them then).
    let catalog = store.catalog().await?;
    let mut decisions: std::collections::HashMap<String, frontdesk_core::Decision> =
        std::collections::HashMap::new();
    for id in rows
        .iter()
        .filter(|r| r.stopped_at.is_none())
        .filter_map(|r| r.member_id.clone())
    {
        if decisions.contains_key(&id) {
            continue;
        }
        if let Ok(m) = store.member(&id).await {
            let d = frontdesk_core::decide(
                &catalog,
                frontdesk_core::Subject::Member(frontdesk_core::decide::Holder::from(&m)),
                frontdesk_core::Resource::WIFI,
                now,
            );
            decisions.insert(id, d);
        }
    }
    let decision = |r: &frontdesk_core::store::radius::SessionRow| {
        r.stopped_at
            .is_none()
            .then(|| r.member_id.as_ref().and_then(|id| decisions.get(id)))
            .flatten()
    };
    if ctx.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(d) = decision(r) {
                    v["allowed"] = d.allowed.into();
                    v["reason"] = d.reason.as_str().into();
                    v["valid_until"] = d.valid_until.map(rfc3339).into();
                }
                v
            })
            .collect();
        json(&out);
    } else {
        let tz = catalog.site.tz();
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|s| {
                let until = match decision(s) {
                    Some(d) if !d.allowed => format!("now ({})", d.reason),
                    Some(d) => d
                        .valid_until
                        .map_or("no end".into(), |t| local_and_utc(t, tz)),
                    None => "-".into(),
                };
                vec![
                    s.user_name.clone(),
                    opt(s.mac.clone()),
                    opt(s.framed_ip.clone()),
                    s.nas_addr.clone(),
                    opt(s.vlan),
                    local_and_utc(s.started_at, tz),
                    s.stopped_at
                        .map_or("online".into(), |t| local_and_utc(t, tz)),
                    until,
                    match (&s.disconnect, s.disconnect_at) {
                        (Some(state), Some(at)) if state == "pending" => {
                            format!(
                                "disconnect pending since {}",
                                at.with_timezone(&tz).format("%H:%M:%S")
                            )
                        }
                        (Some(state), _) => format!("disconnect {state}"),
                        (None, _) => "-".into(),
                    },
                    format!("{}/{}", s.input_octets, s.output_octets),
                ]
            })
            .collect();
        table(
            &[
                "USER",
                "MAC",
                "IP",
                "NAS",
                "VLAN",
                "STARTED",
                "STOPPED",
                "GOES OFFLINE",
                "ENFORCEMENT",
                "IN/OUT OCTETS",
            ],
            &table_rows,
        );
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
