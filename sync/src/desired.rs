//! Desired door state from the entitlement source: for each member, the Frontdesk-owned door
//! groups they belong in (plan → group maps, each with its schedule) and until when.
//! Suspended and cancelled members belong in none: the reconciler revokes what they hold.

use chrono::NaiveDate;
use frontdesk_core::decide::Catalog;
use frontdesk_core::model::{Member, MemberStatus};
use frontdesk_core::store::doors::DoorMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A door group as Frontdesk creates it in a backend: the mapped group name plus the
/// schedule (two maps naming one group with different schedules are two backend groups).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub group: String,
    /// Canonical window text (`always`, `opening-hours`, `mon-fri 08:00-19:00`).
    pub schedule: String,
}

/// Every group Frontdesk creates is named with this prefix: the mark of ownership. Groups
/// without it are never read for grants, changed or deleted.
pub const OWNED_PREFIX: &str = "Frontdesk · ";

impl GroupKey {
    pub fn owned_name(&self) -> String {
        format!("{OWNED_PREFIX}{} · {}", self.group, self.schedule)
    }

    /// The key back from an owned group's name; `None` for groups Frontdesk does not own.
    pub fn from_owned_name(name: &str) -> Option<GroupKey> {
        let rest = name.strip_prefix(OWNED_PREFIX)?;
        let (group, schedule) = rest.rsplit_once(" · ")?;
        Some(GroupKey {
            group: group.into(),
            schedule: schedule.into(),
        })
    }
}

/// Weekday keys, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A same-day interval (`to` may be `24:00`), `day` 0 = Monday.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub day: usize,
    pub from: String,
    pub to: String,
}

/// A window in words for an operator who sets it by hand in a door system that Frontdesk
/// cannot write schedules to: `mon, tue, wed, thu, fri 08:00-19:00; sat 10:00-16:00`, or
/// `always`.
pub fn describe_window(schedule: &str, hours: &frontdesk_core::schedule::OpeningHours) -> String {
    let intervals = same_day_intervals(schedule, hours);
    if intervals.len() == 7
        && intervals
            .iter()
            .all(|i| i.from == "00:00" && i.to == "24:00")
    {
        return "always".into();
    }
    if intervals.is_empty() {
        return "never".into();
    }
    let mut by_time: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for i in intervals {
        by_time.entry((i.from, i.to)).or_default().push(i.day);
    }
    let mut parts: Vec<(usize, String)> = by_time
        .into_iter()
        .map(|((from, to), mut days)| {
            days.sort_unstable();
            let names: Vec<&str> = days.iter().map(|d| DAYS[*d]).collect();
            (days[0], format!("{} {from}-{to}", names.join(", ")))
        })
        .collect();
    parts.sort();
    parts
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A window as same-day intervals per weekday, for door systems that accept no interval over
/// midnight: `22:00-02:00` on Friday becomes Friday 22:00–24:00 and Saturday 00:00–02:00.
/// `opening-hours` follows the site's hours (closures are Frontdesk's to enforce).
pub fn same_day_intervals(
    schedule: &str,
    hours: &frontdesk_core::schedule::OpeningHours,
) -> Vec<Interval> {
    use chrono::NaiveTime;
    use frontdesk_core::schedule::WindowSpec;
    let spec: WindowSpec = schedule.parse().unwrap_or(WindowSpec::Always);
    let fmt = |t: NaiveTime| t.format("%H:%M").to_string();
    let mut out = Vec::new();
    let mut push = |day: usize, start: NaiveTime, end: NaiveTime| {
        if end > start {
            out.push(Interval {
                day,
                from: fmt(start),
                to: fmt(end),
            });
        } else {
            out.push(Interval {
                day,
                from: fmt(start),
                to: "24:00".into(),
            });
            if end > NaiveTime::MIN {
                out.push(Interval {
                    day: (day + 1) % 7,
                    from: "00:00".into(),
                    to: fmt(end),
                });
            }
        }
    };
    match spec {
        WindowSpec::Always => {
            for d in 0..7 {
                push(d, NaiveTime::MIN, NaiveTime::MIN);
            }
        }
        WindowSpec::OpeningHours => {
            for (d, windows) in hours.days.iter().enumerate() {
                for (o, c) in windows {
                    push(d, *o, *c);
                }
            }
        }
        WindowSpec::Weekly(ws) => {
            for w in ws {
                for day in w.days.days() {
                    push(day.num_days_from_monday() as usize, w.start, w.end);
                }
            }
        }
    }
    out
}

/// Grants: group → last day (inclusive, site time; `None` = open-ended).
pub type Grants = BTreeMap<GroupKey, Option<NaiveDate>>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    pub member_id: String,
    pub email: String,
    pub name: String,
    pub status: MemberStatus,
    pub grants: Grants,
}

/// The entitlement of each member for one backend's maps, on the site-local `today`.
pub fn desired<'a>(
    catalog: &Catalog,
    members: impl IntoIterator<Item = &'a Member>,
    maps: &[DoorMap],
    today: NaiveDate,
) -> BTreeMap<String, Entitlement> {
    let mut out = BTreeMap::new();
    for m in members {
        let mut grants = Grants::new();
        if m.status == MemberStatus::Active {
            for a in &m.assignments {
                // Current assignments only; one starting later is granted by the periodic full
                // reconcile on its first day.
                if a.valid_from > today || a.valid_until.is_some_and(|u| u < today) {
                    continue;
                }
                let Some(plan) = catalog.plan(a.plan_id) else {
                    continue;
                };
                for map in maps.iter().filter(|mp| mp.plan_id == plan.id) {
                    let schedule = map.schedule.as_ref().unwrap_or(&plan.door).to_string();
                    let key = GroupKey {
                        group: map.group.clone(),
                        schedule,
                    };
                    // Two assignments to one group: the later end wins; open-ended beats all.
                    let until = grants.entry(key).or_insert(a.valid_until);
                    *until = match (*until, a.valid_until) {
                        (None, _) | (_, None) => None,
                        (Some(x), Some(y)) => Some(x.max(y)),
                    };
                }
            }
        }
        out.insert(
            m.id.clone(),
            Entitlement {
                member_id: m.id.clone(),
                email: m.email.clone(),
                name: m.name.clone(),
                status: m.status,
                grants,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::model::{Assignment, Site};
    use frontdesk_core::schedule::{Calendar, OpeningHours};

    fn catalog() -> Catalog {
        let mut plans = frontdesk_core::model::default_plans();
        for (i, p) in plans.iter_mut().enumerate() {
            p.id = i as i64 + 1;
        }
        Catalog {
            site: Site {
                id: 1,
                name: "s".into(),
                calendar: Calendar {
                    tz: chrono_tz::Europe::Berlin,
                    hours: OpeningHours::default_hours(),
                    closures: vec![],
                },
            },
            plans,
            teams: vec![],
        }
    }

    fn member(id: &str, plan: &str, status: MemberStatus, until: Option<NaiveDate>) -> Member {
        let cat = catalog();
        Member {
            id: id.into(),
            name: id.into(),
            email: format!("{id}@example.com"),
            status,
            team_id: None,
            wifi_username: id.into(),
            assignments: vec![Assignment {
                plan_id: cat.plan_by_name(plan).unwrap().id,
                valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                valid_until: until,
            }],
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn plans_map_to_groups_with_schedules_and_inactive_members_get_none() {
        let cat = catalog();
        let id = |p: &str| cat.plan_by_name(p).unwrap().id;
        let map = |plan: &str, group: &str, schedule: Option<&str>| DoorMap {
            id: 0,
            backend_id: 1,
            plan_id: id(plan),
            group: group.into(),
            schedule: schedule.map(|s| s.parse().unwrap()),
        };
        // The usual setup: studio doors in opening hours for everyone, the after-hours door
        // for 24/7 members at any time.
        let maps = vec![
            map("flex", "Studio", Some("opening-hours")),
            map("full-time", "Studio", Some("opening-hours")),
            map("full-time", "After-hours door", Some("always")),
        ];
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let members = [
            member("flex", "flex", MemberStatus::Active, Some(last)),
            member("full", "full-time", MemberStatus::Active, None),
            member("gone", "full-time", MemberStatus::Cancelled, None),
            member(
                "old",
                "flex",
                MemberStatus::Active,
                Some(today.pred_opt().unwrap()),
            ),
            member("guest", "guest", MemberStatus::Active, None),
        ];
        let d = desired(&cat, &members, &maps, today);
        let studio = GroupKey {
            group: "Studio".into(),
            schedule: "opening-hours".into(),
        };
        let after = GroupKey {
            group: "After-hours door".into(),
            schedule: "always".into(),
        };
        assert_eq!(
            d["flex"].grants,
            Grants::from([(studio.clone(), Some(last))])
        );
        assert_eq!(
            d["full"].grants,
            Grants::from([(studio.clone(), None), (after.clone(), None)])
        );
        assert!(d["gone"].grants.is_empty());
        assert!(d["old"].grants.is_empty(), "an ended plan grants nothing");
        assert!(d["guest"].grants.is_empty(), "guests are never mapped");
        assert_eq!(GroupKey::from_owned_name(&after.owned_name()), Some(after));
        assert_eq!(GroupKey::from_owned_name("Cleaning crew"), None);
    }
}
