//! The RADIUS server's part of `/metrics`: decisions by method, result and reason, latency
//! histograms, every counted event (drops by cause, …) and the write queues. Read from the
//! counters the workers merge about once a second: the hot path pays nothing for a scrape.

use frontdesk_core::metrics::{family, label};
use frontdesk_radius::server::{Shared, LATENCY_BUCKETS_US};

pub fn radius(shared: &Shared, out: &mut String) {
    family(
        out,
        "frontdesk_radius_auth_total",
        "counter",
        "Access-Request decisions by method, result and reason.",
    );
    let auth = shared.stats.auth();
    for (method, m) in &auth {
        let mut reasons: Vec<_> = m.by_reason.iter().collect();
        reasons.sort();
        for (reason, [rejects, accepts]) in reasons {
            for (result, n) in [("accept", accepts), ("reject", rejects)] {
                if *n > 0 {
                    out.push_str(&format!(
                        "frontdesk_radius_auth_total{{method=\"{method}\",result=\"{result}\",reason=\"{}\"}} {n}\n",
                        label(reason)
                    ));
                }
            }
        }
    }
    family(
        out,
        "frontdesk_radius_auth_latency_seconds",
        "histogram",
        "Time from receiving an Access-Request to sending the answer, by method.",
    );
    for (method, m) in &auth {
        let mut cumulative = 0;
        for (i, n) in m.buckets.iter().enumerate() {
            cumulative += n;
            let le = match LATENCY_BUCKETS_US.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".into(),
            };
            out.push_str(&format!(
                "frontdesk_radius_auth_latency_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {cumulative}\n"
            ));
        }
        out.push_str(&format!(
            "frontdesk_radius_auth_latency_seconds_sum{{method=\"{method}\"}} {}\nfrontdesk_radius_auth_latency_seconds_count{{method=\"{method}\"}} {cumulative}\n",
            m.sum_us as f64 / 1e6
        ));
    }
    family(
        out,
        "frontdesk_radius_events_total",
        "counter",
        "Everything the RADIUS server counted, summed over NAS clients: accepts, rejects, accounting, dropped packets by cause, requests from unknown NAS.",
    );
    for (event, n) in shared.stats.totals() {
        if event.starts_with("ssid:") {
            continue;
        }
        out.push_str(&format!(
            "frontdesk_radius_events_total{{event=\"{}\"}} {n}\n",
            label(&event)
        ));
    }
    let (acct, log) = shared.queue_depths();
    family(
        out,
        "frontdesk_radius_queue_depth",
        "gauge",
        "Records waiting to be written: accounting batches, auth-log entries.",
    );
    out.push_str(&format!(
        "frontdesk_radius_queue_depth{{queue=\"accounting\"}} {acct}\nfrontdesk_radius_queue_depth{{queue=\"auth_log\"}} {log}\n"
    ));
}
