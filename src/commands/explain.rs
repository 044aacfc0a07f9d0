//! `explain`: the decision for a user, device or voucher at an instant, with its reason.

use super::Ctx;
use crate::output::{json, kv, local_and_utc, opt, rfc3339};
use anyhow::{anyhow, Result};
use frontdesk_core::explain;
use serde_json::json;

pub async fn explain(ctx: &Ctx, user: &str, at: Option<&str>, resource: &str) -> Result<()> {
    let store = ctx.open().await?;
    // Name the flag in errors about it.
    explain::parse_resource(resource).map_err(|e| anyhow!("--resource: {e}"))?;
    if let Some(a) = at {
        let tz = store.site().await?.tz();
        explain::parse_at(a, tz).map_err(|e| anyhow!("--at: {e}"))?;
    }
    let e = explain::explain(&store, user, resource, at).await?;
    let (d, tz, now, recent) = (&e.decision, e.tz, e.at, &e.recent);
    let (kind, id, label) = (e.kind, &e.id, &e.label);
    if ctx.json {
        json(&json!({
            "allowed": d.allowed,
            "reason": d.reason,
            "vlan": d.vlan,
            "valid_until": d.valid_until.map(rfc3339),
            "valid_until_local": d.valid_until.map(|t| t.with_timezone(&tz).to_rfc3339()),
            "opens_at": d.opens_at.map(rfc3339),
            "plan": d.plan,
            "at": rfc3339(now),
            "timezone": tz.name(),
            "resource": resource,
            "subject": {"kind": kind, "id": id, "label": label},
            "recent_logins": recent,
        }));
        return Ok(());
    }
    let mut pairs = vec![
        ("subject", format!("{kind} {label} ({id})")),
        ("at", local_and_utc(now, tz)),
        ("resource", resource.to_string()),
        ("allowed", if d.allowed { "yes" } else { "no" }.to_string()),
        ("reason", d.reason.to_string()),
        ("plan", opt(d.plan.clone())),
        ("vlan", opt(d.vlan)),
        (
            "valid_until",
            match (d.allowed, d.valid_until) {
                (true, Some(t)) => local_and_utc(t, tz),
                (true, None) => "no end".into(),
                (false, _) => "-".into(),
            },
        ),
    ];
    if let Some(t) = d.opens_at {
        pairs.push(("opens_at", local_and_utc(t, tz)));
    }
    kv(&pairs);
    if !recent.is_empty() {
        println!("recent RADIUS logins:");
        for r in recent {
            println!(
                "  {}  {:6}  {:6}  {:14}  mac {}  vlan {}",
                local_and_utc(r.at, tz),
                if r.accepted { "accept" } else { "reject" },
                r.method,
                r.reason,
                r.mac.as_deref().unwrap_or("-"),
                opt(r.vlan)
            );
        }
    }
    Ok(())
}
