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

/// Protective DNS: queries, cache hits, forwards, blocks by list, errors, cache size.
pub fn dns(out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(r) = crate::commands::dns::blocks().resolver() else {
        return;
    };
    let st = &r.stats;
    family(
        out,
        "frontdesk_dns_queries_total",
        "counter",
        "DNS queries by what became of them",
    );
    let queries = st.queries.load(Relaxed);
    let (hits, fwd, blocked, errors) = (
        st.cache_hits.load(Relaxed),
        st.forwarded.load(Relaxed),
        st.blocked.load(Relaxed),
        st.errors.load(Relaxed),
    );
    for (what, n) in [
        ("cached", hits),
        ("forwarded", fwd),
        ("blocked", blocked),
        ("error", errors),
        (
            "other",
            queries.saturating_sub(hits + fwd + blocked + errors),
        ),
    ] {
        out.push_str(&format!(
            "frontdesk_dns_queries_total{{result=\"{what}\"}} {n}\n"
        ));
    }
    family(
        out,
        "frontdesk_dns_blocked_total",
        "counter",
        "DNS queries blocked, by list",
    );
    let mut lists: Vec<(String, u64)> = st
        .by_list
        .lock()
        .expect("stats lock")
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    lists.sort();
    for (list, n) in lists {
        out.push_str(&format!(
            "frontdesk_dns_blocked_total{{list=\"{}\"}} {n}\n",
            label(&list)
        ));
    }
    family(
        out,
        "frontdesk_dns_cache_entries",
        "gauge",
        "answers cached",
    );
    out.push_str(&format!("frontdesk_dns_cache_entries {}\n", r.cache_len()));
    if let Some(v) = crate::commands::dns::validator() {
        family(
            out,
            "frontdesk_dns_dnssec_validating",
            "gauge",
            "1 while forwarded answers are DNSSEC-validated (allow-downgrade: the upstreams carry DNSSEC)",
        );
        out.push_str(&format!(
            "frontdesk_dns_dnssec_validating {}\n",
            u8::from(r.validating())
        ));
        family(
            out,
            "frontdesk_dns_dnssec_answers_total",
            "counter",
            "forwarded answers by DNSSEC validation result (bogus ones got SERVFAIL)",
        );
        for (what, n) in [
            ("secure", &v.counts.secure),
            ("insecure", &v.counts.insecure),
            ("bogus", &v.counts.bogus),
        ] {
            out.push_str(&format!(
                "frontdesk_dns_dnssec_answers_total{{result=\"{what}\"}} {}\n",
                n.load(Relaxed)
            ));
        }
    }
    if let Some(log) = crate::dnslog::running() {
        family(
            out,
            "frontdesk_dns_log_lines_total",
            "counter",
            "DNS query-log lines written to the database, or dropped (database behind or down)",
        );
        out.push_str(&format!(
            "frontdesk_dns_log_lines_total{{result=\"written\"}} {}\nfrontdesk_dns_log_lines_total{{result=\"dropped\"}} {}\n",
            log.written.load(Relaxed),
            log.dropped.load(Relaxed)
        ));
    }
}
