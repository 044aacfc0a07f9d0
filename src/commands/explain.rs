//! `explain`: the decision for a user, device or voucher at an instant, with its reason.

use super::Ctx;
use crate::output::{json, kv, local_and_utc, opt, rfc3339};
use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use frontdesk_core::decide::{decide, Resource, Subject};
use frontdesk_core::store::Resolved;
use serde_json::json;

/// RFC 3339, or a local wall-clock time in the site's zone.
fn parse_at(s: &str, tz: Tz) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(s.trim(), fmt) {
            return match tz.from_local_datetime(&local).earliest() {
                Some(t) => Ok(t.with_timezone(&Utc)),
                None => bail!("--at {s}: that local time does not exist in {tz} (clocks skip it)"),
            };
        }
    }
    bail!("malformed --at {s:?}: use RFC 3339 (2026-11-27T10:00:00+01:00) or local time (2026-11-27T10:00)")
}

fn parse_resource(s: &str) -> Result<Resource<'_>> {
    match s.split_once(':') {
        None if s == "wifi" => Ok(Resource::WIFI),
        Some(("wifi", ssid)) if !ssid.is_empty() => Ok(Resource::Wifi { ssid: Some(ssid) }),
        Some(("door", group)) if !group.is_empty() => Ok(Resource::Door { group }),
        _ => bail!("malformed --resource {s:?}: use wifi, wifi:SSID or door:GROUP"),
    }
}

pub async fn explain(ctx: &Ctx, user: &str, at: Option<&str>, resource: &str) -> Result<()> {
    let res = parse_resource(resource)?;
    let store = ctx.open().await?;
    let cat = store.catalog().await?;
    let tz = cat.site.tz();
    let now = match at {
        Some(s) => parse_at(s, tz)?,
        None => frontdesk_core::clock::now(),
    };
    let resolved = store.resolve(user).await?;
    let (subject, kind, id, label) = match &resolved {
        Resolved::Member(m) => (
            Subject::Member(m.into()),
            "member",
            m.id.clone(),
            m.email.clone(),
        ),
        Resolved::Device { device, owner } => (
            Subject::Device {
                device,
                owner: owner.as_ref().map(Into::into),
            },
            "device",
            device.mac.to_string(),
            if device.name.is_empty() {
                device.mac.to_string()
            } else {
                device.name.clone()
            },
        ),
        Resolved::Voucher(v) => (
            Subject::Voucher(v),
            "voucher",
            v.code.clone(),
            v.code.clone(),
        ),
    };
    let d = decide(&cat, subject, res, now);
    // What RADIUS actually saw for this login name recently (the 2 a.m. question).
    let login_name = match &resolved {
        Resolved::Member(m) => m.wifi_username.clone(),
        Resolved::Device { device, .. } => {
            device.mac.format(frontdesk_core::mac::MacFormat::LowerBare)
        }
        Resolved::Voucher(v) => v.code.clone(),
    };
    let mut recent = store.recent_auth(&login_name, 5).await?;
    if let Resolved::Device { device, .. } = &resolved {
        // MAB User-Names come in every MAC format; match them all (recent_auth also tries the
        // lowercased name).
        for f in frontdesk_core::mac::MacFormat::ALL {
            recent.extend(store.recent_auth(&device.mac.format(f), 5).await?);
        }
        recent.sort_by_key(|r| std::cmp::Reverse(r.at));
        recent.truncate(5);
    }
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
        for r in &recent {
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
