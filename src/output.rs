//! Text output: `key: value` blocks and aligned tables; JSON with --json. Times print in the
//! site's local time and UTC.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub fn json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
}

pub fn kv(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{:width$} {}", format!("{k}:"), v, width = width + 1);
    }
}

pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:w$}", w = widths[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `2026-11-27 19:00:00 CET (2026-11-27T18:00:00Z)`
pub fn local_and_utc(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} ({})",
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z"),
        rfc3339(t)
    )
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn opt(s: Option<impl ToString>) -> String {
    s.map_or_else(|| "-".to_string(), |v| v.to_string())
}
