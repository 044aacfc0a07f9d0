//! Who gets which lists: a client's plan (from its address: the VLAN subnet in gateway mode,
//! the accounting Framed-IP-Address in radius-only mode) selects the blocklists that apply;
//! allowlists and approved exceptions win over every list. Pure: the resolver asks
//! [`Filter::check`] for each query and acts on the [`Verdict`].

use crate::blocklist::{normalise, DomainSet};
use std::collections::HashMap;

/// Firefox checks this name before turning on DNS-over-HTTPS by itself; NXDOMAIN tells it the
/// network filters DNS, so it keeps using ours (Mozilla's "canary domain").
pub const DOH_CANARY: &str = "use-application-dns.net";

/// One loaded blocklist.
#[derive(Debug)]
pub struct List {
    pub name: String,
    pub block: DomainSet,
    /// The list's own exceptions (`@@||domain^`).
    pub allow: DomainSet,
    /// Plans it applies to; empty = every plan.
    pub plans: Vec<String>,
}

/// Who asks, as far as the resolver can tell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    /// Their plan; `None` when the address maps to no one (the default policy applies).
    pub plan: Option<&'a str>,
    /// The member, when known (their own approved exceptions apply).
    pub member: Option<&'a str>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Resolve normally.
    Pass,
    /// Blocked: by which list, because of which listed domain.
    Block { list: &'a str, domain: String },
    /// The DoH canary on a filtered network: answer NXDOMAIN.
    Canary,
}

/// Exceptions an operator approved: for everyone, a plan, or one member.
#[derive(Debug, Default)]
pub struct Exceptions {
    pub everyone: DomainSet,
    pub plans: HashMap<String, DomainSet>,
    pub members: HashMap<String, DomainSet>,
}

#[derive(Debug, Default)]
pub struct Filter {
    lists: Vec<List>,
    exceptions: Exceptions,
    /// The plan whose policy unmapped clients get (config `dns.default_plan`, by default the
    /// guest plan).
    default_plan: Option<String>,
    /// Plans that opted out of filtering (a team that asked).
    unfiltered: Vec<String>,
}

impl Filter {
    pub fn new(
        lists: Vec<List>,
        exceptions: Exceptions,
        default_plan: Option<String>,
        unfiltered: Vec<String>,
    ) -> Filter {
        Filter {
            lists,
            exceptions,
            default_plan,
            unfiltered,
        }
    }

    pub fn lists(&self) -> &[List] {
        &self.lists
    }

    fn applies(list: &List, plan: Option<&str>) -> bool {
        list.plans.is_empty() || plan.is_some_and(|p| list.plans.iter().any(|x| x == p))
    }

    /// Is any list in force for this plan?
    pub fn filtered(&self, plan: Option<&str>) -> bool {
        !plan.is_some_and(|p| self.unfiltered.iter().any(|u| u == p))
            && self.lists.iter().any(|l| Filter::applies(l, plan))
    }

    /// The verdict for one query name (as it came off the wire: any case, trailing dot).
    pub fn check(&self, client: Client<'_>, qname: &str) -> Verdict<'_> {
        let plan = client.plan.or(self.default_plan.as_deref());
        if !self.filtered(plan) {
            return Verdict::Pass;
        }
        let Some(name) = normalise(qname) else {
            return Verdict::Pass; // not a name a list can hold (root, an odd label)
        };
        if name == DOH_CANARY {
            return Verdict::Canary;
        }
        let e = &self.exceptions;
        let excepted = e.everyone.covering(&name).is_some()
            || plan
                .and_then(|p| e.plans.get(p))
                .is_some_and(|s| s.covering(&name).is_some())
            || client
                .member
                .and_then(|m| e.members.get(m))
                .is_some_and(|s| s.covering(&name).is_some());
        if excepted {
            return Verdict::Pass;
        }
        for list in self.lists.iter().filter(|l| Filter::applies(l, plan)) {
            if let Some(domain) = list.block.covering(&name) {
                if list.allow.covering(&name).is_none() {
                    return Verdict::Block {
                        list: &list.name,
                        domain: domain.to_string(),
                    };
                }
            }
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        let malware =
            DomainSet::parse("0.0.0.0 malware.example\n||phish.example^\n@@||ok.phish.example^\n");
        let strict = DomainSet::parse("games.example\nsocial.example\n");
        Filter::new(
            vec![
                List {
                    name: "malware".into(),
                    block: malware.block,
                    allow: malware.allow,
                    plans: vec![],
                },
                List {
                    name: "strict".into(),
                    block: strict.block,
                    allow: strict.allow,
                    plans: vec!["guest".into(), "iot".into()],
                },
            ],
            Exceptions {
                everyone: DomainSet::from_names(["cdn.malware.example"]),
                plans: HashMap::from([("guest".into(), DomainSet::from_names(["games.example"]))]),
                members: HashMap::from([("m1".into(), DomainSet::from_names(["social.example"]))]),
            },
            Some("guest".into()),
            vec!["team".into()],
        )
    }

    fn plan(p: &str) -> Client<'_> {
        Client {
            plan: Some(p),
            member: None,
        }
    }

    #[test]
    fn lists_apply_per_plan_and_exceptions_win() {
        let f = filter();
        assert_eq!(
            f.check(plan("full-time"), "WWW.Malware.Example."),
            Verdict::Block {
                list: "malware",
                domain: "malware.example".into()
            }
        );
        assert_eq!(
            f.check(plan("full-time"), "cdn.malware.example"),
            Verdict::Pass,
            "approved for everyone"
        );
        assert_eq!(
            f.check(plan("full-time"), "ok.phish.example"),
            Verdict::Pass,
            "the list's own exception"
        );
        assert!(matches!(
            f.check(plan("full-time"), "x.phish.example"),
            Verdict::Block { .. }
        ));
        // The strict list is the guests' only.
        assert_eq!(f.check(plan("full-time"), "social.example"), Verdict::Pass);
        assert!(matches!(
            f.check(plan("guest"), "social.example"),
            Verdict::Block { list: "strict", .. }
        ));
        assert_eq!(
            f.check(plan("guest"), "games.example"),
            Verdict::Pass,
            "approved for guests"
        );
        // A member's own exception.
        let m1 = Client {
            plan: Some("guest"),
            member: Some("m1"),
        };
        assert_eq!(f.check(m1, "social.example"), Verdict::Pass);
        // Unmapped clients get the default plan's policy.
        assert!(matches!(
            f.check(Client::default(), "social.example"),
            Verdict::Block { .. }
        ));
        // A team that opted out: nothing filtered, not even the canary.
        assert_eq!(f.check(plan("team"), "malware.example"), Verdict::Pass);
        assert_eq!(f.check(plan("team"), DOH_CANARY), Verdict::Pass);
    }

    #[test]
    fn the_doh_canary_is_answered_on_filtered_plans_only() {
        let f = filter();
        assert_eq!(
            f.check(plan("guest"), "use-application-dns.net."),
            Verdict::Canary
        );
        assert_eq!(
            Filter::default().check(plan("guest"), DOH_CANARY),
            Verdict::Pass
        );
    }
}
