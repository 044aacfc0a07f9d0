use super::*;
use crate::model::{default_plans, Assignment, Device, Member, MemberStatus, Site, Team, Voucher};
use crate::schedule::{Calendar, Closure, OpeningHours};
use crate::MacAddr;
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;

fn catalog(tz: &str) -> Catalog {
    let mut plans = default_plans();
    for (i, p) in plans.iter_mut().enumerate() {
        p.id = i as i64 + 1;
    }
    Catalog {
        site: Site {
            id: 1,
            name: "Test".into(),
            calendar: Calendar {
                tz: tz.parse().unwrap(),
                hours: OpeningHours::default_hours(),
                closures: vec![],
            },
        },
        plans,
        teams: vec![Team {
            id: 7,
            name: "Acme".into(),
            vlan: 107,
        }],
    }
}

fn add_plan(c: &mut Catalog, name: &str, vlan: u16, wifi: &str) -> i64 {
    let id = c.plans.len() as i64 + 1;
    let mut p = c.plans[2].clone();
    p.id = id;
    p.name = name.into();
    p.vlan = Some(vlan);
    p.wifi = wifi.parse().unwrap();
    p.door = p.wifi.clone();
    c.plans.push(p);
    id
}

fn plan_id(c: &Catalog, name: &str) -> i64 {
    c.plan_by_name(name).unwrap().id
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A local wall-clock time in the catalog's zone (first occurrence if ambiguous).
fn local(c: &Catalog, s: &str) -> DateTime<Utc> {
    let ndt = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .unwrap();
    c.site
        .tz()
        .from_local_datetime(&ndt)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn member(plans: &[(i64, &str, Option<&str>)]) -> Member {
    Member {
        id: "m1".into(),
        name: "Ada".into(),
        email: "ada@example.com".into(),
        status: MemberStatus::Active,
        team_id: None,
        wifi_username: "ada@example.com".into(),
        assignments: plans
            .iter()
            .map(|&(plan_id, from, until)| Assignment {
                plan_id,
                valid_from: date(from),
                valid_until: until.map(date),
            })
            .collect(),
        created_at: utc("2026-01-01T00:00:00Z"),
    }
}

fn wifi(c: &Catalog, m: &Member, now: DateTime<Utc>) -> Decision {
    decide(c, Subject::Member(m.into()), Resource::WIFI, now)
}

#[test]
fn flex_inside_and_outside_opening_hours() {
    let c = catalog("Europe/Berlin");
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    // Friday 27 November 2026, 10:00 CET.
    let d = wifi(&c, &m, local(&c, "2026-11-27 10:00"));
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::Ok);
    assert_eq!(d.vlan, Some(20));
    assert_eq!(d.valid_until, Some(utc("2026-11-27T18:00:00Z")));
    assert_eq!(d.plan.as_deref(), Some("flex"));

    let d = wifi(&c, &m, local(&c, "2026-11-27 23:00"));
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::OutsideHours);
    assert_eq!(d.vlan, None);
    // Next opening: Monday 08:00 CET.
    assert_eq!(d.opens_at, Some(utc("2026-11-30T07:00:00Z")));

    // The last second before closing is still inside; closing time itself is outside.
    assert!(wifi(&c, &m, local(&c, "2026-11-27 18:59:59")).allowed);
    assert_eq!(
        wifi(&c, &m, local(&c, "2026-11-27 19:00:00")).reason,
        Reason::OutsideHours
    );
    // Weekend closed by default.
    assert_eq!(
        wifi(&c, &m, local(&c, "2026-11-28 10:00")).reason,
        Reason::OutsideHours
    );
}

#[test]
fn full_time_is_unbounded() {
    let c = catalog("Europe/Berlin");
    let m = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    let d = wifi(&c, &m, local(&c, "2026-11-28 03:00"));
    assert!(d.allowed);
    assert_eq!(d.vlan, Some(10));
    assert_eq!(d.valid_until, None);
}

#[test]
fn window_crossing_midnight() {
    let mut c = catalog("Europe/Berlin");
    let night = add_plan(&mut c, "night-owl", 25, "mon-fri 18:00-02:00");
    let m = member(&[(night, "2026-01-01", None)]);
    // Tuesday 01:00 belongs to Monday's window.
    let d = wifi(&c, &m, local(&c, "2026-11-24 01:00"));
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-24 02:00")));
    // Friday night runs into Saturday.
    let d = wifi(&c, &m, local(&c, "2026-11-27 23:30"));
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-28 02:00")));
    // Saturday 03:00 and Monday 01:00 (Sunday has no window) are outside.
    assert_eq!(
        wifi(&c, &m, local(&c, "2026-11-28 03:00")).reason,
        Reason::OutsideHours
    );
    assert_eq!(
        wifi(&c, &m, local(&c, "2026-11-23 01:00")).reason,
        Reason::OutsideHours
    );
}

#[test]
fn adjacent_windows_merge_across_midnight() {
    let mut c = catalog("Europe/Berlin");
    let p = add_plan(&mut c, "weekdays-all-day", 26, "mon-fri 00:00-24:00");
    let m = member(&[(p, "2026-01-01", None)]);
    // Monday 10:00: open without a cut at midnight until Saturday 00:00.
    let d = wifi(&c, &m, local(&c, "2026-11-23 10:00"));
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-28 00:00")));
}

fn daily_hours(c: &mut Catalog) {
    c.site.calendar.hours.set(
        crate::DaySet::ALL,
        Some(("08:00".parse().unwrap(), "19:00".parse().unwrap())),
    );
}

#[test]
fn berlin_spring_forward_keeps_local_hours() {
    let mut c = catalog("Europe/Berlin");
    daily_hours(&mut c);
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    let d = wifi(&c, &m, utc("2026-03-29T06:00:00Z")); // 08:00 CEST
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(utc("2026-03-29T17:00:00Z"))); // 19:00 CEST
    assert_eq!(
        wifi(&c, &m, utc("2026-03-29T05:59:59Z")).reason,
        Reason::OutsideHours
    );
    // The day before: 19:00 CET = 18:00Z.
    assert_eq!(
        wifi(&c, &m, utc("2026-03-28T12:00:00Z")).valid_until,
        Some(utc("2026-03-28T18:00:00Z"))
    );
    // Opening time seen from Saturday night is Sunday 08:00 CEST.
    assert_eq!(
        wifi(&c, &m, utc("2026-03-28T22:00:00Z")).opens_at,
        Some(utc("2026-03-29T06:00:00Z"))
    );
}

#[test]
fn window_starting_in_the_gap_starts_after_it() {
    let mut c = catalog("Europe/Berlin");
    let p = add_plan(&mut c, "odd", 27, "daily 02:30-04:00");
    let m = member(&[(p, "2026-01-01", None)]);
    let d = wifi(&c, &m, utc("2026-03-29T00:45:00Z")); // 01:45 CET, before the gap
    assert_eq!(d.reason, Reason::OutsideHours);
    assert_eq!(d.opens_at, Some(utc("2026-03-29T01:00:00Z"))); // 03:00 CEST, first instant after
    let d = wifi(&c, &m, utc("2026-03-29T01:00:00Z"));
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(utc("2026-03-29T02:00:00Z"))); // 04:00 CEST
}

#[test]
fn berlin_fall_back_keeps_local_hours_and_ambiguous_ends_late() {
    let mut c = catalog("Europe/Berlin");
    daily_hours(&mut c);
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET.
    let d = wifi(&c, &m, utc("2026-10-25T07:00:00Z")); // 08:00 CET
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(utc("2026-10-25T18:00:00Z"))); // 19:00 CET
    assert_eq!(
        wifi(&c, &m, utc("2026-10-25T06:30:00Z")).reason,
        Reason::OutsideHours
    );

    // A window ending at 02:30 on that night ends at the second 02:30 (01:30Z)...
    let late = add_plan(&mut c, "late", 28, "daily 20:00-02:30");
    let m = member(&[(late, "2026-01-01", None)]);
    let d = wifi(&c, &m, utc("2026-10-24T22:00:00Z"));
    assert_eq!(d.valid_until, Some(utc("2026-10-25T01:30:00Z")));
    // ...and one starting at 02:30 starts at the first.
    let early = add_plan(&mut c, "early", 29, "daily 02:30-05:00");
    let m = member(&[(early, "2026-01-01", None)]);
    assert_eq!(
        wifi(&c, &m, utc("2026-10-25T00:00:00Z")).opens_at,
        Some(utc("2026-10-25T00:30:00Z"))
    );
}

#[test]
fn new_york_dst_days() {
    let mut c = catalog("America/New_York");
    daily_hours(&mut c);
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    // 2026-03-08 spring forward: 08:00 EDT = 12:00Z, 19:00 EDT = 23:00Z.
    let d = wifi(&c, &m, utc("2026-03-08T12:00:00Z"));
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(utc("2026-03-08T23:00:00Z")));
    assert_eq!(
        wifi(&c, &m, utc("2026-03-08T11:59:00Z")).reason,
        Reason::OutsideHours
    );
    // 2026-11-01 fall back: 08:00 EST = 13:00Z, 19:00 EST = 00:00Z next day.
    let d = wifi(&c, &m, utc("2026-11-01T13:00:00Z"));
    assert!(d.allowed);
    assert_eq!(d.valid_until, Some(utc("2026-11-02T00:00:00Z")));
    assert_eq!(
        wifi(&c, &m, utc("2026-11-01T12:30:00Z")).reason,
        Reason::OutsideHours
    );

    // A night window across the change: Sat 22:00 EST (03:00Z) to Sun 06:00 EDT (10:00Z).
    let night = add_plan(&mut c, "night", 30, "daily 22:00-06:00");
    let m = member(&[(night, "2026-01-01", None)]);
    let d = wifi(&c, &m, utc("2026-03-08T04:00:00Z"));
    assert_eq!(d.valid_until, Some(utc("2026-03-08T10:00:00Z")));

    // valid_until of a plan ending on the change day: next local midnight (EDT).
    let m = member(&[(plan_id(&c, "full-time"), "2026-01-01", Some("2026-03-08"))]);
    let d = wifi(&c, &m, utc("2026-03-07T17:00:00Z"));
    assert_eq!(d.valid_until, Some(utc("2026-03-09T04:00:00Z")));
}

#[test]
fn closure_day() {
    let mut c = catalog("Europe/Berlin");
    c.site.calendar.closures.push(Closure {
        id: 1,
        from: date("2026-12-24"),
        to: date("2026-12-26"),
        reason: "Christmas".into(),
        all: false,
    });
    let flex = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    let d = wifi(&c, &flex, local(&c, "2026-12-24 10:00")); // a Thursday
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::SiteClosed);
    assert_eq!(d.opens_at, Some(local(&c, "2026-12-28 08:00")));
    // The day before, flex closes at 19:00 as usual.
    assert_eq!(
        wifi(&c, &flex, local(&c, "2026-12-23 10:00")).valid_until,
        Some(local(&c, "2026-12-23 19:00"))
    );
    // 24/7 members are unaffected by an opening-hours closure...
    let ft = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    assert!(wifi(&c, &ft, local(&c, "2026-12-24 10:00")).allowed);
    // ...but not by a closure of everything.
    c.site.calendar.closures[0].all = true;
    let d = wifi(&c, &ft, local(&c, "2026-12-24 10:00"));
    assert_eq!(d.reason, Reason::SiteClosed);
    assert_eq!(d.opens_at, Some(local(&c, "2026-12-27 00:00")));
    assert_eq!(
        wifi(&c, &ft, local(&c, "2026-12-23 10:00")).valid_until,
        Some(local(&c, "2026-12-24 00:00"))
    );
}

#[test]
fn plan_not_started_and_expired() {
    let c = catalog("Europe/Berlin");
    let now = local(&c, "2026-11-27 10:00");
    let tomorrow = member(&[(plan_id(&c, "full-time"), "2026-11-28", None)]);
    let d = wifi(&c, &tomorrow, now);
    assert_eq!(d.reason, Reason::PlanNotStarted);
    assert_eq!(d.opens_at, Some(local(&c, "2026-11-28 00:00")));
    let yesterday = member(&[(plan_id(&c, "full-time"), "2026-01-01", Some("2026-11-26"))]);
    assert_eq!(wifi(&c, &yesterday, now).reason, Reason::PlanExpired);
    // Until today (inclusive): allowed until the next local midnight.
    let today = member(&[(plan_id(&c, "full-time"), "2026-01-01", Some("2026-11-27"))]);
    assert_eq!(
        wifi(&c, &today, now).valid_until,
        Some(local(&c, "2026-11-28 00:00"))
    );
    let none = member(&[]);
    assert_eq!(wifi(&c, &none, now).reason, Reason::NoPlan);
}

#[test]
fn suspended_and_cancelled() {
    let c = catalog("Europe/Berlin");
    let now = local(&c, "2026-11-27 10:00");
    let mut m = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    m.status = MemberStatus::Suspended;
    assert_eq!(wifi(&c, &m, now), Decision::deny(Reason::Suspended));
    m.status = MemberStatus::Cancelled;
    assert_eq!(wifi(&c, &m, now), Decision::deny(Reason::Cancelled));
    // Their devices go with them.
    let printer = Device {
        id: 1,
        mac: "aa:bb:cc:00:00:01".parse::<MacAddr>().unwrap(),
        member_id: Some("m1".into()),
        plan_id: plan_id(&c, "iot"),
        name: "printer".into(),
    };
    let d = decide(
        &c,
        Subject::Device {
            device: &printer,
            owner: Some((&m).into()),
        },
        Resource::WIFI,
        now,
    );
    assert_eq!(d.reason, Reason::Cancelled);
    m.status = MemberStatus::Active;
    let d = decide(
        &c,
        Subject::Device {
            device: &printer,
            owner: Some((&m).into()),
        },
        Resource::WIFI,
        now,
    );
    assert!(d.allowed);
    assert_eq!(d.vlan, Some(40));
}

#[test]
fn team_vlan_overrides_plan_vlan() {
    let c = catalog("Europe/Berlin");
    let mut m = member(&[(plan_id(&c, "team"), "2026-01-01", None)]);
    m.team_id = Some(7);
    let d = wifi(&c, &m, local(&c, "2026-11-27 23:00"));
    assert!(d.allowed);
    assert_eq!(d.vlan, Some(107));
    let mut m = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    m.team_id = Some(7);
    assert_eq!(wifi(&c, &m, local(&c, "2026-11-27 23:00")).vlan, Some(107));
}

#[test]
fn valid_until_is_the_earliest_bound() {
    let c = catalog("Europe/Berlin");
    let now = local(&c, "2026-11-27 10:00");
    // Window end (19:00) before plan end (midnight).
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", Some("2026-11-27"))]);
    assert_eq!(
        wifi(&c, &m, now).valid_until,
        Some(local(&c, "2026-11-27 19:00"))
    );
    // Plan end before window end: an always plan ending today.
    let m = member(&[(plan_id(&c, "full-time"), "2026-01-01", Some("2026-11-27"))]);
    assert_eq!(
        wifi(&c, &m, now).valid_until,
        Some(local(&c, "2026-11-28 00:00"))
    );
    // Voucher end before window end, and window end before voucher end.
    let mut v = Voucher {
        code: "ABC".into(),
        plan_id: plan_id(&c, "guest"),
        valid_secs: 2 * 3600,
        devices: 1,
        sponsor_id: None,
        created_at: now,
        first_used_at: None,
    };
    let d = decide(&c, Subject::Voucher(&v), Resource::WIFI, now);
    assert_eq!((d.allowed, d.vlan), (true, Some(30)));
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-27 12:00")));
    let d = decide(
        &c,
        Subject::Voucher(&v),
        Resource::WIFI,
        local(&c, "2026-11-27 18:00"),
    );
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-27 19:00")));
    v.first_used_at = Some(local(&c, "2026-11-27 08:00"));
    assert_eq!(
        decide(&c, Subject::Voucher(&v), Resource::WIFI, now).reason,
        Reason::VoucherExpired
    );
    // Guests never get after-hours access, whoever sponsors them.
    v.first_used_at = None;
    v.sponsor_id = Some("a 24/7 member".into());
    let d = decide(
        &c,
        Subject::Voucher(&v),
        Resource::WIFI,
        local(&c, "2026-11-27 22:00"),
    );
    assert_eq!(d.reason, Reason::OutsideHours);
}

#[test]
fn several_plans_union_and_longest_window_vlan() {
    let mut c = catalog("Europe/Berlin");
    let evening = add_plan(&mut c, "evening", 21, "mon-fri 19:00-23:00");
    let m = member(&[
        (plan_id(&c, "flex"), "2026-01-01", None),
        (evening, "2026-01-01", None),
    ]);
    let d = wifi(&c, &m, local(&c, "2026-11-27 10:00"));
    // Flex 08–19 and evening 19–23 touch: one window until 23:00, VLAN of flex (the only one open).
    assert_eq!(d.valid_until, Some(local(&c, "2026-11-27 23:00")));
    assert_eq!(d.vlan, Some(20));
    assert_eq!(wifi(&c, &m, local(&c, "2026-11-27 20:00")).vlan, Some(21));
    // Flex plus full-time: the 24/7 window lasts longest.
    let m = member(&[
        (plan_id(&c, "flex"), "2026-01-01", None),
        (plan_id(&c, "full-time"), "2026-01-01", None),
    ]);
    let d = wifi(&c, &m, local(&c, "2026-11-27 10:00"));
    assert_eq!((d.vlan, d.valid_until), (Some(10), None));
}

#[test]
fn doors_and_ssids() {
    let mut c = catalog("Europe/Berlin");
    let m = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    let now = local(&c, "2026-11-27 10:00");
    assert!(
        decide(
            &c,
            Subject::Member((&m).into()),
            Resource::Door { group: "main" },
            now
        )
        .allowed
    );
    let d = decide(
        &c,
        Subject::Member((&m).into()),
        Resource::Door {
            group: "after-hours",
        },
        now,
    );
    assert_eq!(d.reason, Reason::NotEntitled);
    let ft = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    assert!(
        decide(
            &c,
            Subject::Member((&ft).into()),
            Resource::Door {
                group: "after-hours"
            },
            local(&c, "2026-11-27 23:00")
        )
        .allowed
    );
    let flex = plan_id(&c, "flex") as usize - 1;
    c.plans[flex].ssids = vec!["Members".into()];
    assert!(
        decide(
            &c,
            Subject::Member((&m).into()),
            Resource::Wifi {
                ssid: Some("Members")
            },
            now
        )
        .allowed
    );
    let d = decide(
        &c,
        Subject::Member((&m).into()),
        Resource::Wifi { ssid: Some("IoT") },
        now,
    );
    assert_eq!(d.reason, Reason::SsidNotAllowed);
}

#[test]
fn next_change_for_the_scheduler() {
    let mut c = catalog("Europe/Berlin");
    // Overlapping plans: flex ends at 19:00, an evening plan runs 17:00-22:00: the later end
    // wins, and the scheduler wakes at 22:00, not at 19:00.
    let evening = add_plan(&mut c, "evening", 31, "mon-fri 17:00-22:00");
    let m = member(&[
        (plan_id(&c, "flex"), "2026-01-01", None),
        (evening, "2026-01-01", None),
    ]);
    let d = wifi(&c, &m, local(&c, "2026-11-27 18:00"));
    assert_eq!(d.next_change(), Some(local(&c, "2026-11-27 22:00")));
    assert_eq!(d.vlan, Some(31), "the VLAN of the plan lasting longest");
    // Denied at night: next change is the next opening (Monday 08:00, flex).
    let d = wifi(&c, &m, local(&c, "2026-11-27 23:00"));
    assert_eq!(d.next_change(), Some(local(&c, "2026-11-30 08:00")));
    // 24/7 and unbounded: no time-driven change.
    let ft = member(&[(plan_id(&c, "full-time"), "2026-01-01", None)]);
    assert_eq!(
        wifi(&c, &ft, local(&c, "2026-11-27 18:00")).next_change(),
        None
    );
    // Suspended mid-session: denied now, and nothing but a data change re-opens it.
    let mut s = member(&[(plan_id(&c, "flex"), "2026-01-01", None)]);
    assert!(wifi(&c, &s, local(&c, "2026-11-27 10:00")).allowed);
    s.status = MemberStatus::Suspended;
    let d = wifi(&c, &s, local(&c, "2026-11-27 10:00"));
    assert_eq!(
        (d.allowed, d.reason, d.next_change()),
        (false, Reason::Suspended, None)
    );
    // A closure starting tomorrow: the 24/7 member's next change is its start.
    c.site.calendar.closures.push(Closure {
        id: 1,
        from: date("2026-11-28"),
        to: date("2026-11-28"),
        reason: "Inventory".into(),
        all: true,
    });
    assert_eq!(
        wifi(&c, &ft, local(&c, "2026-11-27 18:00")).next_change(),
        Some(local(&c, "2026-11-28 00:00"))
    );
}

// ---- properties ----

fn arb_window() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("always".to_string()),
        Just("opening-hours".to_string()),
        (0u8..0x80, 0u32..24, 0u32..4, 0u32..24, 0u32..4).prop_map(|(days, sh, sm, eh, em)| {
            let days = if days == 0 { 1 } else { days };
            format!(
                "{} {:02}:{:02}-{:02}:{:02}",
                crate::DaySet(days),
                sh,
                sm * 15,
                eh,
                em * 15
            )
        }),
    ]
}

fn arb_zone() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("Europe/Berlin"),
        Just("America/New_York"),
        Just("Australia/Lord_Howe"),
        Just("Pacific/Apia"),
        Just("UTC"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn allowed_means_allowed_until_valid_until(
        zone in arb_zone(),
        windows in prop::collection::vec(arb_window(), 1..3),
        until_days in prop::option::of(0i64..40),
        closure in prop::option::of((0i64..20, 0i64..3, any::<bool>())),
        // Around the 2026 DST changes and ordinary days.
        t in 1_767_225_600i64..1_798_761_600i64,
        probes in prop::collection::vec(0.0f64..1.0, 4),
    ) {
        let mut c = catalog(zone);
        let now = DateTime::from_timestamp(t, 0).unwrap();
        let today = now.with_timezone(&zone.parse::<Tz>().unwrap()).date_naive();
        if let Some((offset, len, all)) = closure {
            let from = today + chrono::Duration::days(offset - 5);
            c.site.calendar.closures.push(Closure { id: 1, from, to: from + chrono::Duration::days(len), reason: String::new(), all });
        }
        let ids: Vec<i64> = windows.iter().enumerate().map(|(i, w)| add_plan(&mut c, &format!("p{i}"), 100 + i as u16, w)).collect();
        let until = until_days.map(|d| (today + chrono::Duration::days(d)).format("%Y-%m-%d").to_string());
        let plans: Vec<(i64, &str, Option<&str>)> = ids.iter().map(|&id| (id, "2026-01-01", until.as_deref())).collect();
        let m = member(&plans);
        let d = wifi(&c, &m, now);
        if d.allowed {
            let end = d.valid_until.map(|v| v.timestamp()).unwrap_or(t + 30 * 86_400);
            prop_assert!(end > t, "valid_until {:?} not after now {}", d.valid_until, now);
            for p in probes {
                let probe = t + ((end - t - 1) as f64 * p) as i64;
                let later = wifi(&c, &m, DateTime::from_timestamp(probe, 0).unwrap());
                prop_assert!(later.allowed, "allowed at {} until {:?} but denied at {} ({})", now, d.valid_until, probe, later.reason);
            }
            let last = wifi(&c, &m, DateTime::from_timestamp(end - 1, 0).unwrap());
            prop_assert!(last.allowed);
            // The scheduler wakes at next_change: there, and not a second earlier, it flips.
            if let Some(change) = d.next_change() {
                prop_assert!(!wifi(&c, &m, change).allowed, "still allowed at next_change {}", change);
            }
        } else {
            prop_assert!(d.valid_until.is_none());
            if let Some(change) = d.next_change() {
                prop_assert!(change > now);
                prop_assert!(wifi(&c, &m, change).allowed, "denied at next_change {}", change);
                let before = DateTime::from_timestamp(change.timestamp() - 1, 0).unwrap();
                prop_assert!(!wifi(&c, &m, before).allowed, "allowed before next_change {}", change);
            }
        }
    }
}
