//! `decide()`: the one entitlement function every enforcement point calls (SPEC §1).

use crate::model::{Assignment, Device, Member, MemberStatus, Plan, Site, Team, Voucher};
use crate::schedule::{containing, instant, intersect, merge, next_start_after, Span, WindowSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a decision came out the way it did. Stable strings: scripts and logs use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Ok,
    UnknownUser,
    BadPassword,
    Suspended,
    Cancelled,
    /// The member holds no plan at all.
    NoPlan,
    PlanNotStarted,
    PlanExpired,
    OutsideHours,
    SiteClosed,
    DeviceLimit,
    NasUnknown,
    VoucherUsed,
    VoucherExpired,
    SsidNotAllowed,
    /// No plan of the subject includes the requested door group.
    NotEntitled,
    /// A private passphrase was revoked (or its last day passed).
    PassphraseRevoked,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::UnknownUser => "unknown-user",
            Reason::BadPassword => "bad-password",
            Reason::Suspended => "suspended",
            Reason::Cancelled => "cancelled",
            Reason::NoPlan => "no-plan",
            Reason::PlanNotStarted => "plan-not-started",
            Reason::PlanExpired => "plan-expired",
            Reason::OutsideHours => "outside-hours",
            Reason::SiteClosed => "site-closed",
            Reason::DeviceLimit => "device-limit",
            Reason::NasUnknown => "nas-unknown",
            Reason::VoucherUsed => "voucher-used",
            Reason::VoucherExpired => "voucher-expired",
            Reason::SsidNotAllowed => "ssid-not-allowed",
            Reason::NotEntitled => "not-entitled",
            Reason::PassphraseRevoked => "passphrase-revoked",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Member(Holder<'a>),
    /// A MAC-authenticated device; its owner's status and membership dates bound it.
    Device {
        device: &'a Device,
        owner: Option<Holder<'a>>,
    },
    Voucher(&'a Voucher),
}

/// What `decide()` reads of a member: status, team and plan assignments. A borrowed view, so
/// the RADIUS index can keep members in a compact layout instead of whole `Member` values.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub status: MemberStatus,
    pub team_id: Option<i64>,
    pub assignments: &'a [Assignment],
}

impl<'a> From<&'a Member> for Holder<'a> {
    fn from(m: &'a Member) -> Holder<'a> {
        Holder {
            status: m.status,
            team_id: m.team_id,
            assignments: &m.assignments,
        }
    }
}

/// For what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource<'a> {
    Wifi { ssid: Option<&'a str> },
    Door { group: &'a str },
}

impl Resource<'_> {
    pub const WIFI: Resource<'static> = Resource::Wifi { ssid: None };
}

/// The answer. `valid_until` is when the current allowed window ends (`None`: unbounded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub vlan: Option<u16>,
    pub valid_until: Option<DateTime<Utc>>,
    /// The plan that grants (or would grant) access.
    pub plan: Option<String>,
    /// When denied for time reasons: the next instant access opens (within the search horizon).
    pub opens_at: Option<DateTime<Utc>>,
}

impl Decision {
    /// The next instant this decision changes by time alone: the end of the allowed window, or
    /// the next opening when denied. `None`: only a change of data can change it (24/7 plans,
    /// suspended or cancelled members). The scheduler wakes at the earliest of these.
    pub fn next_change(&self) -> Option<DateTime<Utc>> {
        if self.allowed {
            self.valid_until
        } else {
            self.opens_at
        }
    }

    pub fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
            vlan: None,
            valid_until: None,
            plan: None,
            opens_at: None,
        }
    }
}

/// Everything site-wide that decisions read: the site calendar, plans and teams.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub site: Site,
    pub plans: Vec<Plan>,
    pub teams: Vec<Team>,
}

impl Catalog {
    pub fn plan(&self, id: i64) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn plan_by_name(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }

    pub fn team(&self, id: i64) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }
}

/// One source of access: a plan's window limited to the spans in which the subject holds it.
struct Grant<'a> {
    plan: &'a Plan,
    held: Vec<Span>,
}

/// The entitlement function. Pure: `now` is a parameter.
pub fn decide(
    catalog: &Catalog,
    subject: Subject<'_>,
    resource: Resource<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let cal = &catalog.site.calendar;
    match subject {
        Subject::Member(member) => {
            if let Some(denied) = status_denial(member) {
                return denied;
            }
            let grants: Vec<Grant> = member
                .assignments
                .iter()
                .filter_map(|a| {
                    let plan = catalog.plan(a.plan_id)?;
                    let end = a.valid_until.map_or(i64::MAX, |d| cal.day_end(d));
                    Some(Grant {
                        plan,
                        held: merge(vec![Span {
                            start: cal.day_start(a.valid_from),
                            end,
                        }]),
                    })
                })
                .collect();
            if grants.is_empty() {
                return Decision::deny(Reason::NoPlan);
            }
            let mut d = evaluate(catalog, grants, resource, now, Reason::PlanExpired);
            if d.allowed {
                // A team's VLAN isolates its members from everyone else, whatever their plan.
                if let Some(team) = member.team_id.and_then(|id| catalog.team(id)) {
                    d.vlan = Some(team.vlan);
                }
            }
            d
        }
        Subject::Device { device, owner } => {
            let Some(plan) = catalog.plan(device.plan_id) else {
                return Decision::deny(Reason::NoPlan);
            };
            let held = match owner {
                None => vec![Span::ALL],
                Some(m) => {
                    if let Some(denied) = status_denial(m) {
                        return denied;
                    }
                    if m.assignments.is_empty() {
                        return Decision::deny(Reason::NoPlan);
                    }
                    merge(
                        m.assignments
                            .iter()
                            .map(|a| Span {
                                start: cal.day_start(a.valid_from),
                                end: a.valid_until.map_or(i64::MAX, |d| cal.day_end(d)),
                            })
                            .collect(),
                    )
                }
            };
            evaluate(
                catalog,
                vec![Grant { plan, held }],
                resource,
                now,
                Reason::PlanExpired,
            )
        }
        Subject::Voucher(v) => {
            let Some(plan) = catalog.plan(v.plan_id) else {
                return Decision::deny(Reason::NoPlan);
            };
            // Validity starts at first use (SPEC §1).
            let start = v.first_used_at.unwrap_or(now).timestamp();
            let held = vec![Span {
                start: i64::MIN,
                end: start.saturating_add(v.valid_secs),
            }];
            evaluate(
                catalog,
                vec![Grant { plan, held }],
                resource,
                now,
                Reason::VoucherExpired,
            )
        }
    }
}

/// The plan's window for the resource (borrowed: this runs for every RADIUS request).
fn window_of<'p>(p: &'p Plan, resource: Resource<'_>) -> &'p WindowSpec {
    match resource {
        Resource::Wifi { .. } => &p.wifi,
        Resource::Door { .. } => &p.door,
    }
}

fn status_denial(m: Holder<'_>) -> Option<Decision> {
    match m.status {
        MemberStatus::Active => None,
        MemberStatus::Suspended => Some(Decision::deny(Reason::Suspended)),
        MemberStatus::Cancelled => Some(Decision::deny(Reason::Cancelled)),
    }
}

fn evaluate(
    catalog: &Catalog,
    grants: Vec<Grant<'_>>,
    resource: Resource<'_>,
    now: DateTime<Utc>,
    ended: Reason,
) -> Decision {
    let cal = &catalog.site.calendar;
    let t = now.timestamp();
    let relevant: Vec<&Grant> = grants
        .iter()
        .filter(|g| match resource {
            Resource::Wifi { ssid: None } => true,
            Resource::Wifi { ssid: Some(s) } => {
                g.plan.ssids.is_empty() || g.plan.ssids.iter().any(|x| x == s)
            }
            Resource::Door { group } => g.plan.door_groups.iter().any(|x| x == group),
        })
        .collect();
    if relevant.is_empty() {
        return Decision::deny(match resource {
            Resource::Wifi { .. } => Reason::SsidNotAllowed,
            Resource::Door { .. } => Reason::NotEntitled,
        });
    }
    // Spans during which each plan is both held and open.
    let open: Vec<(&Plan, Vec<Span>)> = relevant
        .iter()
        .map(|g| {
            (
                g.plan,
                intersect(&cal.spans(window_of(g.plan, resource), t), &g.held),
            )
        })
        .collect();
    let union = merge(open.iter().flat_map(|(_, s)| s.iter().copied()).collect());
    let opens_at = next_start_after(&union, t).map(instant);

    if let Some(span) = containing(&union, t) {
        // VLAN of the plan whose current window lasts longest.
        let (plan, _) = open
            .iter()
            .filter_map(|(p, spans)| containing(spans, t).map(|s| (*p, s.end)))
            .max_by_key(|&(_, end)| end)
            .expect("the union contains t, so some plan does");
        return Decision {
            allowed: true,
            reason: Reason::Ok,
            vlan: plan.vlan,
            valid_until: span.end_instant(),
            plan: Some(plan.name.clone()),
            opens_at: None,
        };
    }

    let current: Vec<&&Grant> = relevant
        .iter()
        .filter(|g| containing(&g.held, t).is_some())
        .collect();
    let reason = if current.is_empty() {
        if relevant.iter().any(|g| g.held.iter().any(|s| s.start > t)) {
            Reason::PlanNotStarted
        } else {
            ended
        }
    } else if current
        .iter()
        .any(|g| cal.closed_on(window_of(g.plan, resource), cal.local_date(t)))
    {
        Reason::SiteClosed
    } else {
        Reason::OutsideHours
    };
    let plan = current
        .first()
        .map(|g| **g)
        .or(relevant.first().copied())
        .map(|g| g.plan.name.clone());
    Decision {
        allowed: false,
        reason,
        vlan: None,
        valid_until: None,
        plan,
        opens_at,
    }
}

#[cfg(test)]
mod tests;
