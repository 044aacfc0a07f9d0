//! The dashboard's charts (server-side SVG) and alerts. Charts read a week or four of
//! history, so they are computed at most once a minute and shared; alerts are read fresh.

use super::Console;
use crate::week::{heat_map, stacked_bars};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use frontdesk_core::decide::Catalog;
use frontdesk_core::store::StoreError;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Charts {
    pub auth: String,
    pub auth_legend: Vec<(usize, String)>,
    pub tiers: String,
    pub tiers_legend: Vec<(usize, String)>,
    pub heat: String,
}

pub struct Alert {
    /// `bad` (act now) or `warn`.
    pub level: &'static str,
    pub text: String,
}

/// Series shown at most in one chart (the rest is summed as "other").
const SERIES: usize = 5;
/// Weeks of history in the occupancy heat map.
const HEAT_WEEKS: i64 = 4;

impl Console {
    pub(super) async fn charts(&self, catalog: &Catalog) -> Result<Arc<Charts>, StoreError> {
        let mut cached = self.0.charts.lock().await;
        if let Some((at, c)) = &*cached {
            if at.elapsed() < std::time::Duration::from_secs(60) {
                return Ok(c.clone());
            }
        }
        let fresh = Arc::new(build(&self.0.store, catalog, frontdesk_core::clock::now()).await?);
        *cached = Some((std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    pub(super) async fn alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let store = &self.0.store;
        let now = frontdesk_core::clock::now();
        let (nas, stats, failures) = (
            store.nas_list().await?,
            store.nas_stats().await?,
            store
                .disconnect_failures_since(now - Duration::hours(24))
                .await?,
        );
        let mut out = Vec::new();
        for n in &nas {
            let get = |k: &str| {
                stats
                    .iter()
                    .find(|s| s.0 == n.id && s.1 == k)
                    .map_or(0, |s| s.2)
            };
            let heard = stats.iter().filter(|s| s.0 == n.id).map(|s| s.3).max();
            let unsigned = get("unsigned");
            if !n.require_message_authenticator && unsigned > 0 {
                out.push(Alert {
                    level: "bad",
                    text: format!(
                        "{} sends requests without Message-Authenticator ({unsigned} so far): forged answers (BlastRADIUS) are possible. Update its firmware, then require Message-Authenticator for it.",
                        n.name
                    ),
                });
            } else if !n.require_message_authenticator && get("signed") > 0 {
                out.push(Alert {
                    level: "warn",
                    text: format!(
                        "{} signs every request: require Message-Authenticator for it (Network page) to refuse forged ones.",
                        n.name
                    ),
                });
            }
            if let Some(t) = heard.filter(|t| now - *t > Duration::hours(24)) {
                out.push(Alert {
                    level: "warn",
                    text: format!(
                        "{} has sent nothing since {}: is it switched on and pointed at Frontdesk?",
                        n.name,
                        t.with_timezone(&tz_of(store).await)
                            .format("%a %d %b %H:%M")
                    ),
                });
            }
        }
        for (addr, count, last) in failures {
            let name = nas
                .iter()
                .find(|n| {
                    addr.parse::<std::net::IpAddr>()
                        .is_ok_and(|a| n.address.contains(&a))
                })
                .map_or(addr.clone(), |n| n.name.clone());
            out.push(Alert {
                level: "bad",
                text: format!(
                    "{name} did not answer {count} Disconnect-Request{} in the last 24 hours ({last}): people it should have cut off may still be online. Check its dynamic-authorization (CoA) setting and shared secret.",
                    if count == 1 { "" } else { "s" }
                ),
            });
        }
        // A Wi-Fi controller whose API failed last (cleared by the next success).
        let failing: Vec<_> = store
            .controllers()
            .await?
            .into_iter()
            .filter(|k| k.last_error.is_some())
            .collect();
        // The site's zone only when there is something to show (a database read).
        let tz = if failing.is_empty() {
            None
        } else {
            Some(tz_of(store).await)
        };
        for k in &failing {
            if let (Some(e), Some(tz)) = (&k.last_error, tz) {
                out.push(Alert {
                    level: "bad",
                    text: format!(
                        "Wi-Fi controller {} ({}) failed{}: {e}. Portal guests cannot be let out or taken back through it; check it with `frontdesk controller test {}`.",
                        k.name,
                        k.kind,
                        k.last_error_at
                            .map(|t| format!(
                                " at {}",
                                t.with_timezone(&tz).format("%a %d %b %H:%M")
                            ))
                            .unwrap_or_default(),
                        k.name
                    ),
                });
            }
        }
        // Doors held open or forced in the last 24 hours, per door (the door system's events).
        let mut alarms: BTreeMap<(String, &'static str), (usize, chrono::DateTime<chrono::Utc>)> =
            BTreeMap::new();
        for e in store.door_events_since(now - Duration::hours(24)).await? {
            let kind = match e.kind.as_str() {
                "forced" => "forced open",
                "held_open" => "held open",
                _ => continue,
            };
            let a = alarms.entry((e.door.clone(), kind)).or_insert((0, e.at));
            a.0 += 1;
            a.1 = a.1.max(e.at);
        }
        if !alarms.is_empty() {
            let tz = tz_of(store).await;
            for ((door, kind), (count, last)) in alarms {
                out.push(Alert {
                    level: if kind == "forced open" { "bad" } else { "warn" },
                    text: format!(
                        "{door} was {kind} {count} time{} in the last 24 hours (last {}).",
                        if count == 1 { "" } else { "s" },
                        last.with_timezone(&tz).format("%a %H:%M")
                    ),
                });
            }
        }
        // Door sync: quarantined members, a failing or stale full reconcile.
        let runs = store.sync_runs().await?;
        for b in store.door_backends().await? {
            let items = store.sync_items(b.id).await?;
            let quarantined = items.iter().filter(|i| i.state == "quarantined").count();
            let failing = items.iter().filter(|i| i.state == "failed").count();
            if quarantined > 0 {
                out.push(Alert {
                    level: "bad",
                    text: format!(
                        "Door sync {}: {quarantined} member{} quarantined after repeated failures; their door access may not match their plan. See `frontdesk sync status`, fix the cause, then `frontdesk sync release --backend {}`.",
                        b.name,
                        if quarantined == 1 { "" } else { "s" },
                        b.name
                    ),
                });
            }
            if failing > 0 {
                out.push(Alert {
                    level: "warn",
                    text: format!(
                        "Door sync {}: {failing} member(s) failing, retrying with backoff.",
                        b.name
                    ),
                });
            }
            match runs.iter().find(|r| r.backend_id == b.id) {
                Some(r) if r.error.is_some() => out.push(Alert {
                    level: "bad",
                    text: format!(
                        "Door sync {}: the last full run failed: {}",
                        b.name,
                        r.error.clone().unwrap_or_default()
                    ),
                }),
                Some(r) if now - r.finished_at.unwrap_or(r.started_at) > Duration::minutes(30) => {
                    out.push(Alert {
                        level: "warn",
                        text: format!(
                            "Door sync {}: no full run for {} minutes (is `serve` running?).",
                            b.name,
                            (now - r.finished_at.unwrap_or(r.started_at)).num_minutes()
                        ),
                    })
                }
                Some(_) => {}
                None => out.push(Alert {
                    level: "warn",
                    text: format!("Door sync {}: never run yet.", b.name),
                }),
            }
        }
        Ok(out)
    }
}

async fn tz_of(store: &frontdesk_core::store::Store) -> chrono_tz::Tz {
    store.site().await.map(|s| s.tz()).unwrap_or(chrono_tz::UTC)
}

/// Keeps the `SERIES - 1` biggest series and sums the rest as "other".
fn top(mut series: Vec<(String, Vec<u64>)>, len: usize) -> Vec<(String, Vec<u64>)> {
    series.sort_by_key(|s| std::cmp::Reverse(s.1.iter().sum::<u64>()));
    if series.len() > SERIES {
        let rest = series.split_off(SERIES - 1);
        let mut other = vec![0; len];
        for (_, v) in rest {
            for (o, x) in other.iter_mut().zip(v) {
                *o += x;
            }
        }
        series.push(("other".into(), other));
    }
    series
}

fn legend(series: &[(String, Vec<u64>)]) -> Vec<(usize, String)> {
    series
        .iter()
        .enumerate()
        .map(|(i, s)| (i % 6, s.0.clone()))
        .collect()
}

async fn build(
    store: &frontdesk_core::store::Store,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<Charts, StoreError> {
    let tz = catalog.site.tz();
    let hour_now = now.timestamp().div_euclid(3600);

    // Logins and rejections per hour, last 24 hours, accepted first then by reason.
    let counts = store.auth_counts_since(now - Duration::hours(23)).await?;
    let first = hour_now - 23;
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut accepted = vec![0u64; 24];
    for c in counts {
        let i = (c.hour - first) as usize;
        if i >= 24 {
            continue;
        }
        if c.accepted {
            accepted[i] += c.count as u64;
        } else {
            by.entry(format!("rejected: {}", c.reason))
                .or_insert_with(|| vec![0; 24])[i] += c.count as u64;
        }
    }
    let mut auth_series = vec![("accepted".to_string(), accepted)];
    auth_series.extend(top(by.into_iter().collect(), 24).into_iter().take(SERIES));
    let hour_label = |h: i64, fmt: &str| {
        DateTime::from_timestamp(h * 3600, 0)
            .unwrap_or_default()
            .with_timezone(&tz)
            .format(fmt)
            .to_string()
    };
    let auth_labels: Vec<String> = (first..=hour_now).map(|h| hour_label(h, "%H:00")).collect();
    let auth = stacked_bars(
        &auth_labels,
        &auth_series,
        "Logins and rejections per hour, last 24 hours",
        3,
    );

    // Sessions online per hour by tier (VLAN → plan or team), last 7 days; and people
    // (distinct members) online per weekday and hour, averaged over four weeks.
    let spans = store
        .session_spans(
            now - Duration::days(7 * HEAT_WEEKS),
            now,
            frontdesk_core::enforce::ONLINE_HORIZON,
        )
        .await?;
    let tier_of = |vlan: Option<i64>| -> String {
        match vlan {
            None => "no VLAN".into(),
            // Plans sharing a VLAN share a tier: "day-pass/flex".
            Some(v) => {
                let mut names: Vec<&str> = catalog
                    .plans
                    .iter()
                    .filter(|p| p.vlan.map(i64::from) == Some(v))
                    .map(|p| p.name.as_str())
                    .collect();
                if catalog.teams.iter().any(|t| i64::from(t.vlan) == v) {
                    names.push("teams");
                }
                if names.is_empty() {
                    format!("VLAN {v}")
                } else {
                    names.join("/")
                }
            }
        }
    };
    let week_first = hour_now - 7 * 24 + 1;
    let mut tiers: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in &spans {
        let (a, b) = (
            (s.start.div_euclid(3600)).max(week_first),
            (s.end.div_euclid(3600)).min(hour_now),
        );
        if a > b {
            continue;
        }
        let row = tiers
            .entry(tier_of(s.vlan))
            .or_insert_with(|| vec![0; 7 * 24]);
        for h in a..=b {
            row[(h - week_first) as usize] += 1;
        }
    }
    let tier_series = top(tiers.into_iter().collect(), 7 * 24);
    let tier_labels: Vec<String> = (week_first..=hour_now)
        .map(|h| hour_label(h, "%a %H:00"))
        .collect();
    let tiers_svg = stacked_bars(
        &tier_labels,
        &tier_series,
        "Devices online per hour by tier, last 7 days",
        24,
    );

    // Occupancy: merge each member's sessions (a phone and a laptop are one person), then
    // count them per hour.
    let heat_first = hour_now - HEAT_WEEKS * 7 * 24 + 1;
    let mut per_member: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for s in &spans {
        if let Some(m) = &s.member_id {
            per_member
                .entry(m.as_str())
                .or_default()
                .push((s.start.div_euclid(3600), s.end.div_euclid(3600)));
        }
    }
    let mut people = vec![0u32; (hour_now - heat_first + 1) as usize];
    for (_, mut list) in per_member {
        list.sort_unstable();
        let mut last = i64::MIN;
        for (a, b) in list {
            let a = a.max(heat_first).max(last + 1);
            let b = b.min(hour_now);
            for h in a..=b {
                people[(h - heat_first) as usize] += 1;
            }
            last = last.max(b);
        }
    }
    let mut cells = vec![vec![0.0f64; 24]; 7];
    for (i, n) in people.iter().enumerate() {
        let t = DateTime::from_timestamp((heat_first + i as i64) * 3600, 0)
            .unwrap_or_default()
            .with_timezone(&tz);
        cells[t.weekday().num_days_from_monday() as usize][t.hour() as usize] +=
            f64::from(*n) / HEAT_WEEKS as f64;
    }
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(String::from);
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let heat = heat_map(
        &days,
        &hours,
        &cells,
        "People online by weekday and hour, average of the last four weeks",
    );
    Ok(Charts {
        auth,
        auth_legend: legend(&auth_series),
        tiers: tiers_svg,
        tiers_legend: legend(&tier_series),
        heat,
    })
}
