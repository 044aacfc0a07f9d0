//! "Why was I rejected?": the decision for a user, device or voucher at an instant, with what
//! RADIUS saw for that login recently. One implementation for `frontdesk explain`, the console's
//! explain page and `GET /api/v1/explain`.

use crate::decide::{decide, Decision, Resource, Subject};
use crate::mac::MacFormat;
use crate::store::radius::AuthLogEntry;
use crate::store::{Resolved, Result, Store, StoreError};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Clone, Debug)]
pub struct Explanation {
    /// `member`, `device` or `voucher`.
    pub kind: &'static str,
    pub id: String,
    pub label: String,
    pub resource: String,
    pub at: DateTime<Utc>,
    pub tz: Tz,
    pub decision: Decision,
    /// The newest RADIUS logins under this subject's login name(s), newest first.
    pub recent: Vec<AuthLogEntry>,
}

/// RFC 3339, or a local wall-clock time in the site's zone.
pub fn parse_at(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
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
                None => Err(format!(
                    "{s}: that local time does not exist in {tz} (clocks skip it)"
                )),
            };
        }
    }
    Err(format!(
        "malformed time {s:?}: use RFC 3339 (2026-11-27T10:00:00+01:00) or local time (2026-11-27T10:00)"
    ))
}

/// `wifi`, `wifi:SSID` or `door:GROUP`.
pub fn parse_resource(s: &str) -> Result<Resource<'_>, String> {
    match s.split_once(':') {
        None if s == "wifi" => Ok(Resource::WIFI),
        Some(("wifi", ssid)) if !ssid.is_empty() => Ok(Resource::Wifi { ssid: Some(ssid) }),
        Some(("door", group)) if !group.is_empty() => Ok(Resource::Door { group }),
        _ => Err(format!(
            "malformed resource {s:?}: use wifi, wifi:SSID or door:GROUP"
        )),
    }
}

/// Explains `user` (member id, email, Wi-Fi username, MAC or voucher code) for `resource` at
/// `at` (default now).
pub async fn explain(
    store: &Store,
    user: &str,
    resource: &str,
    at: Option<&str>,
) -> Result<Explanation> {
    let res = parse_resource(resource).map_err(StoreError::Invalid)?;
    let cat = store.catalog().await?;
    let tz = cat.site.tz();
    let now = match at.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse_at(s, tz).map_err(StoreError::Invalid)?,
        None => crate::clock::now(),
    };
    let resolved = store.resolve(user).await?;
    let (subject, kind, id, label, login) = match &resolved {
        Resolved::Member(m) => (
            Subject::Member(m.into()),
            "member",
            m.id.clone(),
            m.email.clone(),
            m.wifi_username.clone(),
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
            device.mac.format(MacFormat::LowerBare),
        ),
        Resolved::Voucher(v) => (
            Subject::Voucher(v),
            "voucher",
            v.code.clone(),
            v.code.clone(),
            v.code.clone(),
        ),
    };
    let decision = decide(&cat, subject, res, now);
    let mut recent = store.recent_auth(&login, 5).await?;
    if let Resolved::Device { device, .. } = &resolved {
        // MAB User-Names come in every MAC format; match them all.
        for f in MacFormat::ALL {
            recent.extend(store.recent_auth(&device.mac.format(f), 5).await?);
        }
        recent.sort_by_key(|r| std::cmp::Reverse(r.at));
        recent.dedup_by(|a, b| a.at == b.at && a.user_name == b.user_name);
        recent.truncate(5);
    }
    Ok(Explanation {
        kind,
        id,
        label,
        resource: resource.to_string(),
        at: now,
        tz,
        decision,
        recent,
    })
}
