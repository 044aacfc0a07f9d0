//! Health checks for a supervisor or load balancer, on the console listener.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use frontdesk_core::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `/healthz`: the process answers. `/readyz`: every listener is bound, changes are followed
/// and the database answers now (503 with the reason otherwise). No login: they reveal nothing.
pub fn router(store: Store, ready: Arc<AtomicBool>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let (store, ready) = (store.clone(), ready.clone());
                async move {
                    if !ready.load(Ordering::SeqCst) {
                        return (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n")
                            .into_response();
                    }
                    match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping())
                        .await
                    {
                        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
                        Ok(Err(e)) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("database unreachable: {e}\n"),
                        )
                            .into_response(),
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
