//! Week views and charts as server-rendered SVG (no JavaScript, no inline styles: the CSP
//! forbids both). A week view shows when a window (a plan's Wi-Fi hours, the opening hours)
//! is open on each of the next seven local days, from the same `Calendar::spans` that
//! decisions use, so closures and DST days look exactly as they behave.

use chrono::{DateTime, Duration, Utc};
use frontdesk_core::schedule::{Calendar, WindowSpec};
use std::fmt::Write;

/// One day of a week view, for the text table beside the picture (screen readers, print).
pub struct DayLine {
    pub day: String,
    pub hours: String,
}

pub struct WeekView {
    pub svg: String,
    pub days: Vec<DayLine>,
}

const LABEL: f64 = 92.0;
const HOUR: f64 = 26.0;
const ROW: f64 = 26.0;

/// When `spec` is open on each of the seven local days starting at `now`'s date.
pub fn week_view(cal: &Calendar, spec: &WindowSpec, now: DateTime<Utc>) -> WeekView {
    let spans = cal.spans(spec, now.timestamp());
    let today = cal.local_date(now.timestamp());
    let width = LABEL + 24.0 * HOUR + 12.0;
    let height = 20.0 + 7.0 * ROW;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="week" viewBox="0 0 {width} {height}" role="img" aria-label="Open hours for the next seven days" xmlns="http://www.w3.org/2000/svg">"#
    );
    for h in (0..=24).step_by(3) {
        let x = LABEL + f64::from(h) * HOUR;
        let _ = write!(
            svg,
            r#"<line x1="{x}" y1="16" x2="{x}" y2="{height}" class="grid"/><text x="{x}" y="12" class="axis" text-anchor="middle">{h:02}</text>"#
        );
    }
    let mut days = Vec::new();
    for i in 0..7 {
        let date = today + Duration::days(i);
        let (start, end) = (cal.day_start(date), cal.day_end(date));
        let y = 20.0 + f64::from(i as u32) * ROW;
        let label = date.format("%a %d %b").to_string();
        let _ = write!(
            svg,
            r#"<text x="0" y="{}" class="day">{label}</text>"#,
            y + ROW * 0.65
        );
        // Hours on this local day, in local clock time (a DST day has 23 or 25 hours: the
        // bar is placed by its local clock times, as a member reads them).
        let mut parts = Vec::new();
        for s in &spans {
            let (a, b) = (s.start.max(start), s.end.min(end));
            if a >= b {
                continue;
            }
            let local = |t: i64| {
                frontdesk_core::schedule::instant(t)
                    .with_timezone(&cal.tz)
                    .naive_local()
            };
            let minutes = |t: i64| {
                if t >= end {
                    24.0 * 60.0
                } else {
                    let l = local(t);
                    let d = l.date().signed_duration_since(date).num_days();
                    (d * 24 * 60) as f64 + f64::from(l.time().num_seconds_from_midnight()) / 60.0
                }
            };
            let (ma, mb) = (minutes(a).max(0.0), minutes(b).min(24.0 * 60.0));
            let x = LABEL + ma / 60.0 * HOUR;
            let w = ((mb - ma) / 60.0 * HOUR).max(1.0);
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" class="open"/>"#,
                y + 3.0,
                ROW - 6.0
            );
            let fmt = |m: f64| {
                let m = m.round() as i64;
                format!("{:02}:{:02}", m / 60, m % 60)
            };
            parts.push(format!("{}–{}", fmt(ma), fmt(mb)));
        }
        let closed = cal.closed_on(spec, date);
        days.push(DayLine {
            day: label,
            hours: match (parts.is_empty(), closed) {
                (true, true) => "closed (closure)".into(),
                (true, false) => "closed".into(),
                (false, true) => format!("{} (closure on part of the day)", parts.join(", ")),
                (false, false) => parts.join(", "),
            },
        });
    }
    svg.push_str("</svg>");
    WeekView { svg, days }
}

use chrono::Timelike;

/// A bar chart of counts (one bar per label), stacked by series: `series[k].1[i]` is series
/// k's count at label i. Used for logins and rejections per hour.
/// Every `axis_every`th label is written under its bar; all are in the bars' tooltips.
pub fn stacked_bars(
    labels: &[String],
    series: &[(String, Vec<u64>)],
    aria: &str,
    axis_every: usize,
) -> String {
    let n = labels.len().max(1);
    let (w, h, left, bottom) = (720.0, 180.0, 34.0, 22.0);
    let max = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.1.get(i).copied().unwrap_or(0))
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let bw = (w - left) / n as f64;
    let scale = (h - bottom - 8.0) / max as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(aria)
    );
    let base = h - bottom;
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{base}" x2="{w}" y2="{base}" class="grid"/><text x="{}" y="14" class="axis" text-anchor="end">{max}</text><text x="{}" y="{base}" class="axis" text-anchor="end">0</text>"#,
        left - 4.0,
        left - 4.0
    );
    for (i, label) in labels.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = base;
        for (k, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let bh = v as f64 * scale;
            y -= bh;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" class="s{}"><title>{} {}: {v}</title></rect>"#,
                x + 1.0,
                (bw - 2.0).max(1.0),
                k % 6,
                esc(label),
                esc(name)
            );
        }
        if i % axis_every.max(1) == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
                x + bw / 2.0,
                h - 6.0,
                esc(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A heat map: rows × columns of counts, darker for more (occupancy by weekday and hour).
pub fn heat_map(rows: &[String], cols: &[String], cells: &[Vec<f64>], aria: &str) -> String {
    let (left, top, cw, ch) = (44.0, 16.0, 27.0, 22.0);
    let w = left + cw * cols.len() as f64;
    let h = top + ch * rows.len() as f64;
    let max = cells
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(aria)
    );
    for (j, c) in cols.iter().enumerate() {
        if j % 3 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="12" class="axis" text-anchor="middle">{}</text>"#,
                left + j as f64 * cw + cw / 2.0,
                esc(c)
            );
        }
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * ch;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}" class="day">{}</text>"#,
            y + ch * 0.7,
            esc(r)
        );
        for (j, c) in cols.iter().enumerate() {
            let v = cells
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .unwrap_or(0.0);
            // Five steps, so the classes (and the CSS colours) stay few.
            let level = if v <= 0.0 {
                0
            } else {
                1 + ((v / max) * 4.0).floor().min(3.0) as u8
            };
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" class="h{level}"><title>{} {}: {v:.1}</title></rect>"#,
                left + j as f64 * cw + 1.0,
                cw - 2.0,
                ch - 2.0,
                esc(r),
                esc(c)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text for SVG (labels may be plan names an operator typed).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use frontdesk_core::schedule::OpeningHours;

    fn berlin() -> Calendar {
        Calendar {
            tz: chrono_tz::Europe::Berlin,
            hours: OpeningHours::default_hours(),
            closures: vec![],
        }
    }

    #[test]
    fn opening_hours_week_shows_weekdays_and_closed_weekends() {
        // Monday 2026-11-23, 10:00 Berlin.
        let now = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let v = week_view(&berlin(), &WindowSpec::OpeningHours, now);
        assert_eq!(v.days.len(), 7);
        assert_eq!(v.days[0].hours, "08:00–19:00");
        assert_eq!(v.days[5].hours, "closed");
        assert_eq!(v.svg.matches("class=\"open\"").count(), 5);
    }

    #[test]
    fn dst_day_keeps_local_clock_times() {
        // Sunday 2026-03-29 is 23 hours long in Berlin; a 24/7 plan is open 00:00–24:00.
        let now = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2026, 3, 28, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let spec: WindowSpec = "mon-sun 07:00-22:00".parse().unwrap();
        let v = week_view(&berlin(), &spec, now);
        assert_eq!(v.days[1].hours, "07:00–22:00", "{}", v.days[1].day);
        let always = week_view(&berlin(), &WindowSpec::Always, now);
        assert_eq!(always.days[1].hours, "00:00–24:00");
    }

    #[test]
    fn chart_labels_are_escaped() {
        let svg = stacked_bars(&["00".into()], &[("<script>".into(), vec![3])], "a & b", 1);
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains("a &amp; b"));
        let heat = heat_map(&["Mon".into()], &["00".into()], &[vec![2.0]], "x");
        assert!(heat.contains("class=\"h4\""));
    }
}
