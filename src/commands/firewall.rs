//! `firewall show | apply` (gateway mode) and the gateway description `serve` uses.

use super::Ctx;
use crate::cli::FirewallCommand;
use crate::config::Config;
use crate::output::{json, kv};
use anyhow::{anyhow, bail, Context, Result};
use frontdesk_core::store::Store;
use frontdesk_firewall::ruleset::{Allow, Gateway, Network, Role, State};
use frontdesk_firewall::Nft;
use serde_json::json;
use std::net::SocketAddr;

/// The gateway as configured (`[gateway]`), validated, with the portal's port.
/// Tier networks with hours (`[gateway.hours]`), as the scheduler switches them.
pub fn scheduled_networks(
    config: &Config,
) -> Result<Vec<frontdesk_core::scheduler::ScheduledNetwork>> {
    let g = &config.gateway;
    g.hours
        .iter()
        .map(|(tier, spec)| {
            let iface = g.interfaces.get(tier).ok_or_else(|| {
                anyhow!("gateway.hours: {tier:?} has no entry in [gateway.interfaces]")
            })?;
            let hours = spec.parse().map_err(|e| {
                anyhow!("gateway.hours.{tier} = {spec:?}: {e} (use \"opening-hours\" or e.g. \"mon-fri 08:00-19:00\")")
            })?;
            Ok(frontdesk_core::scheduler::ScheduledNetwork {
                iface: iface.clone(),
                hours,
            })
        })
        .collect()
}

pub fn gateway(config: &Config, portal_listen: &str) -> Result<Gateway> {
    let g = &config.gateway;
    if g.interfaces.is_empty() {
        bail!("no tier networks configured: gateway mode needs [gateway.interfaces] (e.g. guest = \"vlan30\") and gateway.wan_interface, see deploy/frontdesk.example.toml");
    }
    let wan = g
        .wan_interface
        .clone()
        .ok_or_else(|| anyhow!("gateway.wan_interface is not set (the uplink, e.g. \"eth0\")"))?;
    for name in g.portal_networks.iter().chain(&g.iot_networks) {
        if !g.interfaces.contains_key(name)
            && !["guest", "day-pass", "iot"].contains(&name.as_str())
        {
            bail!("gateway: {name:?} is listed as a portal or IoT network but has no entry in [gateway.interfaces]");
        }
    }
    let networks = g
        .interfaces
        .iter()
        .map(|(name, iface)| Network {
            name: name.clone(),
            iface: iface.clone(),
            role: if g.portal_networks.contains(name) {
                Role::Portal
            } else if g.iot_networks.contains(name) {
                Role::Iot
            } else {
                Role::Members
            },
        })
        .collect();
    let iot_allow = g
        .iot_allow
        .iter()
        .map(|a| {
            a.parse::<Allow>()
                .map_err(|e| anyhow!("gateway.iot_allow: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let portal: SocketAddr = portal_listen
        .parse()
        .with_context(|| format!("malformed portal listen address {portal_listen:?}"))?;
    let gw = Gateway {
        wan,
        networks,
        portal_port: portal.port(),
        portal_tls_port: match (
            &config.portal.tls_cert_file,
            config.portal.tls_listen.parse::<SocketAddr>(),
        ) {
            (Some(_), Ok(a)) => Some(a.port()),
            _ => None,
        },
        dns_port: 53,
        dns_rate: g.dns_rate,
        iot_allow,
        masquerade: g.masquerade,
    };
    gw.validate().map_err(|e| anyhow!(e))?;
    Ok(gw)
}

/// Current state for a full render: valid portal clients with their remaining time, blocked
/// members' MACs. Closed networks come from the after-hours scheduler (none here).
pub async fn state(store: &Store) -> Result<State> {
    let now = frontdesk_core::clock::now();
    let authorized = store
        .portal_clients(now)
        .await?
        .into_iter()
        .map(|c| (c.mac, (c.valid_until - now).num_seconds().max(0) as u64))
        .collect();
    Ok(State {
        authorized,
        blocked: store.blocked_macs(now).await?,
        closed: Vec::new(),
    })
}

pub async fn run(ctx: &Ctx, cmd: FirewallCommand) -> Result<()> {
    let gw = gateway(&ctx.config, &ctx.config.portal.listen)?;
    let store = ctx.open().await?;
    let st = state(&store).await?;
    let text = frontdesk_firewall::render(&gw, &st);
    store.close().await;
    match cmd {
        FirewallCommand::Show => {
            if ctx.json {
                json(
                    &json!({"ruleset": text, "authorized": st.authorized.len(), "blocked": st.blocked.len()}),
                );
            } else {
                print!("{text}");
            }
        }
        FirewallCommand::Apply => {
            Nft::default()
                .run(&text)
                .await
                .map_err(|e| anyhow!("firewall apply: {e}"))?;
            if ctx.json {
                json(
                    &json!({"applied": true, "authorized": st.authorized.len(), "blocked": st.blocked.len()}),
                );
            } else {
                kv(&[
                    ("applied", "table inet frontdesk".into()),
                    (
                        "tier networks",
                        gw.networks
                            .iter()
                            .map(|n| format!("{}={}", n.name, n.iface))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    ("authorized clients", st.authorized.len().to_string()),
                    ("blocked MACs", st.blocked.len().to_string()),
                ]);
            }
        }
    }
    Ok(())
}
