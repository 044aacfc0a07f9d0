//! The protective DNS block page: a blocked name resolves to the portal's address, so the
//! browser's request for it lands here (any path, that Host). It says which list blocked it
//! and lets the visitor ask for an exception, which an operator approves or denies.

use super::pages::{BlockedT, MessageT};
use super::{Conn, Portal};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::time::Instant;
use tracing::info;

/// Runs before routing: a request for a blocked host gets the block page.
pub async fn intercept(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
    next: Next,
) -> Response {
    let Some(blocks) = p.0.blocks.clone() else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':').map_or(h, |(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    h
                }
            })
        })
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if p.is_ours(&conn, &host) || req.method() != Method::GET {
        return next.run(req).await;
    }
    match blocks.blocked(conn.peer.ip(), &host) {
        Some((list, domain)) => {
            let now = frontdesk_core::clock::now();
            let page = BlockedT {
                p: p.page("Blocked on this network"),
                host: host.clone(),
                list,
                domain,
                action: format!("{}/dns/request", p.base(&conn)),
                csrf: p.0.tokens.issue("dns", conn.peer.ip(), now.timestamp()),
            };
            (StatusCode::FORBIDDEN, page).into_response()
        }
        None => next.run(req).await,
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    csrf: String,
    host: String,
    list: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    reason: String,
}

/// The exception request from the block page.
pub async fn request(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Form(f): Form<RequestForm>,
) -> Response {
    let now = frontdesk_core::clock::now();
    let ip = conn.peer.ip();
    if !p.0.tokens.check("dns", ip, &f.csrf, now.timestamp()) {
        return p.message(
            StatusCode::FORBIDDEN,
            "Please try again",
            "This form expired; go back and send it again.",
            None,
        );
    }
    let key = ip.to_string();
    if p.0.dns_limit.blocked(&key, Instant::now()).is_some() {
        return p.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "This device asked for several exceptions already; try again in an hour or ask at the front desk.",
            None,
        );
    }
    p.0.dns_limit.fail(&key, Instant::now());
    let email = f.email.trim();
    let member = if email.is_empty() {
        None
    } else {
        p.0.store.member(email).await.ok()
    };
    let reason = if email.is_empty() || member.is_some() {
        f.reason.trim().to_string()
    } else {
        format!("{} (from {email})", f.reason.trim())
    };
    let reason: String = reason.chars().take(480).collect();
    match p
        .0
        .store
        .request_exception(
            &f.host,
            member.as_ref().map(|m| m.id.as_str()),
            &reason,
            Some(f.list.as_str()).filter(|l| !l.is_empty()),
            &p.0.actor,
        )
        .await
    {
        Ok(e) => {
            info!(domain = %e.domain, request = e.id, member = member.as_ref().map_or("-", |m| m.id.as_str()), "DNS exception requested");
            MessageT {
                p: p.page("Request sent"),
                is_error: false,
                text: format!("Your request for {} went to the operators.", e.domain),
                // The same words whether or not the email is a member's: the page must not
                // tell who is a member.
                detail: Some(
                    "Members who gave their email get a mail when it is decided; ask at the front desk if it is urgent."
                        .into(),
                ),
            }
            .into_response()
        }
        Err(e) => p.message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Request not sent",
            &e.to_string(),
            None,
        ),
    }
}
