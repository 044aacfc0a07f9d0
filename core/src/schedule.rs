//! Schedules in a site's local time and their translation into UTC spans.
//!
//! Rules (SPEC §1 "rules of time"):
//! - windows are local wall-clock times; a window whose end is at or before its start crosses
//!   midnight into the next day (`00:00-00:00` is a whole day);
//! - adjacent windows merge, so a 24/7 custom schedule has no cut at midnight;
//! - a local time in a spring-forward gap means the first instant after the gap; an ambiguous
//!   (autumn) local time means its first occurrence when it starts a window, its second when it
//!   ends one;
//! - a closure removes the opening-hours windows that start on its days; `all` closures also cut
//!   `always` and custom windows;
//! - searches look at most [`HORIZON_DAYS`] ahead: a window that is still open at the horizon
//!   reports the horizon as its end (a safe under-estimate, re-evaluated at that point).

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How far ahead a window end is searched, in days.
pub const HORIZON_DAYS: i64 = 14;

/// A half-open interval `[start, end)` of Unix seconds; `i64::MIN`/`i64::MAX` mean unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub const ALL: Span = Span {
        start: i64::MIN,
        end: i64::MAX,
    };

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The end as an instant, `None` when unbounded.
    pub fn end_instant(&self) -> Option<DateTime<Utc>> {
        (self.end != i64::MAX).then(|| DateTime::from_timestamp(self.end, 0).expect("in range"))
    }
}

/// Sorts and merges overlapping or touching spans.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.start < s.end);
    spans.sort_by_key(|s| s.start);
    // In place: this runs several times for every RADIUS request.
    let mut kept = 0usize;
    for i in 0..spans.len() {
        let s = spans[i];
        match kept.checked_sub(1).map(|k| &mut spans[k]) {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => {
                spans[kept] = s;
                kept += 1;
            }
        }
    }
    spans.truncate(kept);
    spans
}

/// Intersection of two merged span lists.
pub fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let start = x.start.max(y.start);
            let end = x.end.min(y.end);
            if start < end {
                out.push(Span { start, end });
            }
        }
    }
    merge(out)
}

/// `a` minus every span in `cuts`.
pub fn subtract(a: &[Span], cuts: &[Span]) -> Vec<Span> {
    let mut current = a.to_vec();
    for c in cuts {
        let mut next = Vec::with_capacity(current.len() + 1);
        for s in current {
            if c.end <= s.start || c.start >= s.end {
                next.push(s);
                continue;
            }
            if s.start < c.start {
                next.push(Span {
                    start: s.start,
                    end: c.start,
                });
            }
            if c.end < s.end {
                next.push(Span {
                    start: c.end,
                    end: s.end,
                });
            }
        }
        current = next;
    }
    merge(current)
}

pub fn containing(spans: &[Span], t: i64) -> Option<Span> {
    spans.iter().copied().find(|s| s.contains(t))
}

pub fn next_start_after(spans: &[Span], t: i64) -> Option<i64> {
    spans.iter().map(|s| s.start).filter(|&s| s > t).min()
}

/// Resolves a local wall-clock time to an instant following the gap/overlap rules above.
pub fn resolve_local(tz: Tz, local: NaiveDateTime, ends_window: bool) -> i64 {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.timestamp(),
        LocalResult::Ambiguous(first, second) => {
            if ends_window {
                second.timestamp()
            } else {
                first.timestamp()
            }
        }
        LocalResult::None => {
            // Spring-forward gap: walk to the first local minute that exists; it maps to the
            // transition instant itself. Gaps are at most a day (Samoa 2011), so this is bounded.
            let mut probe = local
                .with_second(0)
                .and_then(|p| p.with_nanosecond(0))
                .unwrap_or(local);
            for _ in 0..(2 * 24 * 60) {
                probe += Duration::minutes(1);
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.timestamp(),
                    LocalResult::None => {}
                }
            }
            local.and_utc().timestamp()
        }
    }
}

use chrono::Timelike;

/// Set of weekdays, bit 0 = Monday.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DaySet(pub u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl DaySet {
    pub const ALL: DaySet = DaySet(0x7f);

    pub fn contains(&self, d: Weekday) -> bool {
        self.0 & (1 << d.num_days_from_monday()) != 0
    }

    pub fn days(&self) -> impl Iterator<Item = Weekday> + '_ {
        (0..7u8)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Weekday::try_from(i).expect("0..7"))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "unknown day {0:?}: use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, or daily"
    )]
    Day(String),
    #[error("malformed time {0:?}: use HH:MM (24-hour clock; 24:00 allowed as an end)")]
    Time(String),
    #[error("malformed window {0:?}: use always, opening-hours, or e.g. \"mon-fri 18:00-02:00; sat 10:00-16:00\"")]
    Window(String),
}

const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn day_index(name: &str) -> Result<u8, ScheduleError> {
    let lower = name.trim().to_ascii_lowercase();
    (0..7)
        .find(|&i| lower == DAY_NAMES[i] || lower == FULL_DAY_NAMES[i])
        .map(|i| i as u8)
        .ok_or_else(|| ScheduleError::Day(name.trim().to_string()))
}

impl FromStr for DaySet {
    type Err = ScheduleError;

    /// `mon-fri`, `sat,sun`, `mon-wed,fri`, `fri-mon` (wraps), `daily`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if matches!(
            s.to_ascii_lowercase().as_str(),
            "daily" | "all" | "every day"
        ) {
            return Ok(DaySet::ALL);
        }
        if s.is_empty() {
            return Err(ScheduleError::Day(s.to_string()));
        }
        let mut bits = 0u8;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day_index(a)?, day_index(b)?);
                    let mut i = a;
                    loop {
                        bits |= 1 << i;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => bits |= 1 << day_index(part)?,
            }
        }
        Ok(DaySet(bits))
    }
}

impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == DaySet::ALL {
            return f.write_str("daily");
        }
        // Render runs of consecutive days as ranges: "mon-fri,sun".
        let mut parts = Vec::new();
        let mut i = 0u8;
        while i < 7 {
            if self.0 & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.0 & (1 << (i + 1)) != 0 {
                i += 1;
            }
            parts.push(match i - start {
                0 => DAY_NAMES[start as usize].to_string(),
                1 => format!("{},{}", DAY_NAMES[start as usize], DAY_NAMES[i as usize]),
                _ => format!("{}-{}", DAY_NAMES[start as usize], DAY_NAMES[i as usize]),
            });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DaySet({self})")
    }
}

/// Parses `HH:MM`; `24:00` is accepted and means midnight at the end of the day.
pub fn parse_time(s: &str) -> Result<NaiveTime, ScheduleError> {
    let t = s.trim();
    if t == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    let (h, m) = t
        .split_once(':')
        .ok_or_else(|| ScheduleError::Time(t.to_string()))?;
    let ok = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !(ok(h) || (h.len() == 1 && ok(&format!("0{h}")))) || !ok(m) {
        return Err(ScheduleError::Time(t.to_string()));
    }
    let (h, m): (u32, u32) = (h.parse().unwrap_or(99), m.parse().unwrap_or(99));
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(|| ScheduleError::Time(t.to_string()))
}

pub fn format_time(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// A weekly recurring window in local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalWindow {
    pub days: DaySet,
    pub start: NaiveTime,
    /// At or before `start`: the window ends on the next day.
    pub end: NaiveTime,
}

impl LocalWindow {
    fn span_on(&self, tz: Tz, date: NaiveDate) -> Span {
        let end_date = if self.end <= self.start {
            date.succ_opt().expect("date in range")
        } else {
            date
        };
        Span {
            start: resolve_local(tz, date.and_time(self.start), false),
            end: resolve_local(tz, end_date.and_time(self.end), true),
        }
    }
}

impl fmt::Display for LocalWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = if self.end == NaiveTime::MIN && self.start != NaiveTime::MIN {
            "24:00".to_string()
        } else {
            format_time(self.end)
        };
        write!(f, "{} {}-{}", self.days, format_time(self.start), end)
    }
}

impl FromStr for LocalWindow {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (days, times) = s
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| ScheduleError::Window(s.to_string()))?;
        let (a, b) = times
            .split_once('-')
            .ok_or_else(|| ScheduleError::Window(s.to_string()))?;
        Ok(LocalWindow {
            days: days.parse()?,
            start: parse_time(a)?,
            end: parse_time(b)?,
        })
    }
}

/// When a plan grants access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSpec {
    Always,
    OpeningHours,
    Weekly(Vec<LocalWindow>),
}

impl FromStr for WindowSpec {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" | "24/7" => Ok(WindowSpec::Always),
            "opening-hours" => Ok(WindowSpec::OpeningHours),
            "" => Err(ScheduleError::Window(s.to_string())),
            _ => {
                let windows = s
                    .split(';')
                    .filter(|p| !p.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<Vec<LocalWindow>, _>>()?;
                if windows.is_empty() {
                    return Err(ScheduleError::Window(s.to_string()));
                }
                Ok(WindowSpec::Weekly(windows))
            }
        }
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowSpec::Always => f.write_str("always"),
            WindowSpec::OpeningHours => f.write_str("opening-hours"),
            WindowSpec::Weekly(ws) => {
                let parts: Vec<String> = ws.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join("; "))
            }
        }
    }
}

impl Serialize for WindowSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WindowSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A site's opening hours: windows per weekday (index 0 = Monday).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpeningHours {
    pub days: [Vec<(NaiveTime, NaiveTime)>; 7],
}

impl OpeningHours {
    /// Mon–Fri 08:00–19:00, weekends closed.
    pub fn default_hours() -> Self {
        let mut h = OpeningHours::default();
        let (open, close) = (
            NaiveTime::from_hms_opt(8, 0, 0).expect("valid"),
            NaiveTime::from_hms_opt(19, 0, 0).expect("valid"),
        );
        for d in h.days.iter_mut().take(5) {
            d.push((open, close));
        }
        h
    }

    pub fn set(&mut self, days: DaySet, window: Option<(NaiveTime, NaiveTime)>) {
        for d in days.days() {
            let slot = &mut self.days[d.num_days_from_monday() as usize];
            slot.clear();
            slot.extend(window);
        }
    }

    fn windows_on(&self, d: Weekday) -> impl Iterator<Item = LocalWindow> + '_ {
        self.days[d.num_days_from_monday() as usize]
            .iter()
            .map(move |&(start, end)| LocalWindow {
                days: DaySet(1 << d.num_days_from_monday()),
                start,
                end,
            })
    }
}

/// Dates (inclusive, local) on which the site is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub reason: String,
    /// Also cuts `always` and custom windows (e.g. building shut down), not only opening hours.
    pub all: bool,
}

impl Closure {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }

    fn span(&self, tz: Tz) -> Span {
        Span {
            start: resolve_local(tz, self.from.and_time(NaiveTime::MIN), false),
            end: resolve_local(
                tz,
                self.to
                    .succ_opt()
                    .expect("date in range")
                    .and_time(NaiveTime::MIN),
                true,
            ),
        }
    }
}

/// The site data a schedule needs.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub tz: Tz,
    pub hours: OpeningHours,
    pub closures: Vec<Closure>,
}

impl Calendar {
    pub fn local_date(&self, t: i64) -> NaiveDate {
        DateTime::from_timestamp(t, 0)
            .expect("in range")
            .with_timezone(&self.tz)
            .date_naive()
    }

    /// The instant a local date starts (its first midnight).
    pub fn day_start(&self, date: NaiveDate) -> i64 {
        resolve_local(self.tz, date.and_time(NaiveTime::MIN), false)
    }

    /// The instant an inclusive local date ends: the next local midnight.
    pub fn day_end(&self, date: NaiveDate) -> i64 {
        resolve_local(
            self.tz,
            date.succ_opt()
                .expect("date in range")
                .and_time(NaiveTime::MIN),
            true,
        )
    }

    /// Whether `spec` is affected by a closure on `date`.
    pub fn closed_on(&self, spec: &WindowSpec, date: NaiveDate) -> bool {
        self.closures
            .iter()
            .any(|c| c.covers(date) && (c.all || *spec == WindowSpec::OpeningHours))
    }

    /// The merged spans during which `spec` is open, around `t` (from two days before to
    /// [`HORIZON_DAYS`] after the local date of `t`; `always` is unbounded).
    pub fn spans(&self, spec: &WindowSpec, t: i64) -> Vec<Span> {
        let all_cuts: Vec<Span> = self
            .closures
            .iter()
            .filter(|c| c.all)
            .map(|c| c.span(self.tz))
            .collect();
        let raw = match spec {
            WindowSpec::Always => vec![Span::ALL],
            WindowSpec::OpeningHours | WindowSpec::Weekly(_) => {
                let today = self.local_date(t);
                let mut out = Vec::new();
                for offset in -2..=HORIZON_DAYS {
                    let date = today + Duration::days(offset);
                    match spec {
                        WindowSpec::OpeningHours => {
                            if self.closures.iter().any(|c| c.covers(date)) {
                                continue;
                            }
                            out.extend(
                                self.hours
                                    .windows_on(date.weekday())
                                    .map(|w| w.span_on(self.tz, date)),
                            );
                        }
                        WindowSpec::Weekly(ws) => out.extend(
                            ws.iter()
                                .filter(|w| w.days.contains(date.weekday()))
                                .map(|w| w.span_on(self.tz, date)),
                        ),
                        WindowSpec::Always => unreachable!(),
                    }
                }
                merge(out)
            }
        };
        subtract(&raw, &all_cuts)
    }
}

pub fn instant(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).expect("in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_sets_parse_and_print() {
        assert_eq!("mon-fri".parse::<DaySet>().unwrap(), DaySet(0b0011111));
        assert_eq!("sat,sun".parse::<DaySet>().unwrap(), DaySet(0b1100000));
        assert_eq!("fri-mon".parse::<DaySet>().unwrap(), DaySet(0b1110001));
        assert_eq!("Monday".parse::<DaySet>().unwrap(), DaySet(1));
        assert_eq!("daily".parse::<DaySet>().unwrap(), DaySet::ALL);
        assert_eq!(DaySet(0b1011111).to_string(), "mon-fri,sun");
        assert_eq!(DaySet(0b1100000).to_string(), "sat,sun");
        assert!("funday".parse::<DaySet>().is_err());
        assert!("".parse::<DaySet>().is_err());
    }

    #[test]
    fn windows_parse_and_print() {
        let w: WindowSpec = "mon-fri 18:00-02:00; sat 10:00-16:00".parse().unwrap();
        assert_eq!(w.to_string(), "mon-fri 18:00-02:00; sat 10:00-16:00");
        assert_eq!("Always".parse::<WindowSpec>().unwrap(), WindowSpec::Always);
        let full: WindowSpec = "daily 00:00-24:00".parse().unwrap();
        assert_eq!(full.to_string(), "daily 00:00-00:00");
        for bad in [
            "",
            "mon 25:00-26:00",
            "mon 8-9",
            "mon",
            "xyz 10:00-11:00",
            "mon 10:00",
        ] {
            assert!(bad.parse::<WindowSpec>().is_err(), "{bad}");
        }
        assert_eq!(
            parse_time("8:30").unwrap(),
            NaiveTime::from_hms_opt(8, 30, 0).unwrap()
        );
    }

    #[test]
    fn merge_joins_touching_spans() {
        let m = merge(vec![
            Span { start: 5, end: 10 },
            Span { start: 0, end: 5 },
            Span { start: 12, end: 13 },
        ]);
        assert_eq!(
            m,
            vec![Span { start: 0, end: 10 }, Span { start: 12, end: 13 }]
        );
        assert_eq!(
            subtract(&[Span { start: 0, end: 10 }], &[Span { start: 3, end: 4 }]),
            vec![Span { start: 0, end: 3 }, Span { start: 4, end: 10 }]
        );
    }

    #[test]
    fn gap_resolves_to_transition_and_overlap_by_role() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: first instant after the gap is 01:00Z.
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            instant(resolve_local(tz, gap, false)).to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
        // 2026-10-25 02:30 happens twice: 00:30Z (CEST) and 01:30Z (CET).
        let amb = NaiveDate::from_ymd_opt(2026, 10, 25)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            instant(resolve_local(tz, amb, false)).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            instant(resolve_local(tz, amb, true)).to_rfc3339(),
            "2026-10-25T01:30:00+00:00"
        );
    }
}
