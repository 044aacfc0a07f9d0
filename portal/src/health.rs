//! Health checks for a supervisor or load balancer, on the console listener.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use frontdesk_core::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `/healthz`: the process answers. `/readyz`: every listener is bound, changes are followed
/// and the database answers now (503 with the reason otherwise). No login: they reveal nothing.
/// Writes metrics only the caller has (the RADIUS server's counters) into the page.
pub type Extra = Arc<dyn Fn(&mut String) + Send + Sync>;

pub fn router(store: Store, ready: Arc<AtomicBool>, extra: Extra) -> axum::Router {
    let cache: Arc<tokio::sync::Mutex<Option<(std::time::Instant, String)>>> = Arc::default();
    let ready_store = store.clone();
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let (store, extra, cache) = (store.clone(), extra.clone(), cache.clone());
                async move {
                    let mut out = String::new();
                    extra(&mut out);
                    out.push_str(&database_metrics(&store, &cache).await);
                    process_metrics(&mut out);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        out,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let (store, ready) = (ready_store.clone(), ready.clone());
                async move {
                    if !ready.load(Ordering::SeqCst) {
                        return (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n")
                            .into_response();
                    }
                    match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping())
                        .await
                    {
                        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
                        Ok(Err(e)) => {
                            // The detail goes to the log, not to whoever asks.
                            tracing::warn!(error = %e, "readyz: database unreachable");
                            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
                                .into_response()
                        }
                        Err(_) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "database did not answer within 2 s\n",
                        )
                            .into_response(),
                    }
                }
            }),
        )
}

/// Parts read from the database (online sessions by VLAN, door sync state), built at most
/// every 15 s: a scrape every few seconds must not decode every session each time.
async fn database_metrics(
    store: &Store,
    cache: &tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
) -> String {
    use frontdesk_core::metrics::{family, label};
    let mut c = cache.lock().await;
    if let Some((at, text)) = c.as_ref() {
        if at.elapsed() < std::time::Duration::from_secs(15) {
            return text.clone();
        }
    }
    let mut out = String::new();
    let now = frontdesk_core::clock::now();
    if let Ok(by_vlan) = store
        .online_sessions_by_vlan(now - frontdesk_core::enforce::ONLINE_HORIZON)
        .await
    {
        family(
            &mut out,
            "frontdesk_online_sessions",
            "gauge",
            "Wi-Fi sessions with recent accounting, by VLAN (tier).",
        );
        for (vlan, n) in by_vlan {
            let vlan = vlan.map_or("none".into(), |v| v.to_string());
            out.push_str(&format!(
                "frontdesk_online_sessions{{vlan=\"{}\"}} {n}\n",
                label(&vlan)
            ));
        }
    }
    // What the gateway's nftables sets hold (in radius-only mode, what the external portal
    // authorized and who is blocked).
    if let (Ok(clients), Ok(blocked)) = (
        store.portal_clients_count(now).await,
        store.blocked_macs(now).await,
    ) {
        family(
            &mut out,
            "frontdesk_firewall_elements",
            "gauge",
            "Elements of the gateway's client sets: portal clients let online, devices of suspended or cancelled members blocked.",
        );
        out.push_str(&format!(
            "frontdesk_firewall_elements{{set=\"portal_clients\"}} {clients}\nfrontdesk_firewall_elements{{set=\"blocked_macs\"}} {}\n",
            blocked.len()
        ));
    }
    if let Ok(backends) = store.door_backends().await {
        family(
            &mut out,
            "frontdesk_door_sync_members",
            "gauge",
            "Members per door backend by sync state (ok, failed, quarantined).",
        );
        for b in backends {
            let Ok(items) = store.sync_items(b.id).await else {
                continue;
            };
            for state in ["ok", "failed", "quarantined"] {
                let n = items.iter().filter(|i| i.state == state).count();
                out.push_str(&format!(
                    "frontdesk_door_sync_members{{backend=\"{}\",state=\"{state}\"}} {n}\n",
                    label(&b.name)
                ));
            }
        }
    }
    *c = Some((std::time::Instant::now(), out.clone()));
    out
}

/// Counters kept in this process (door sync, portal, console).
fn process_metrics(out: &mut String) {
    use frontdesk_core::metrics::*;
    let counters: [(&str, &str, &Counter); 7] = [
        (
            "frontdesk_door_sync_runs_total",
            "Door sync reconcile runs (full and per member).",
            &DOOR_SYNC_RUNS,
        ),
        (
            "frontdesk_door_sync_writes_total",
            "Write requests made to door systems.",
            &DOOR_SYNC_WRITES,
        ),
        (
            "frontdesk_door_sync_failures_total",
            "Members that failed a door sync round (retried with backoff).",
            &DOOR_SYNC_FAILURES,
        ),
        (
            "frontdesk_portal_clients_online_total",
            "Clients the captive portal let online.",
            &PORTAL_ONLINE,
        ),
        (
            "frontdesk_portal_refused_total",
            "Wrong voucher codes on the captive portal.",
            &PORTAL_REFUSED,
        ),
        (
            "frontdesk_console_logins_total",
            "Operator console logins.",
            &CONSOLE_LOGINS,
        ),
        (
            "frontdesk_console_login_failures_total",
            "Failed or rate-limited operator console logins.",
            &CONSOLE_LOGIN_FAILURES,
        ),
    ];
    for (name, help, c) in counters {
        family(out, name, "counter", help);
        out.push_str(&format!("{name} {}\n", c.get()));
    }
}
