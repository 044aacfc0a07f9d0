//! Member sign-in on the portal, for members whose device is on the guest network: their Wi-Fi
//! username and password, accepted only over HTTPS (the password must not cross the air in
//! clear), checked in constant time, limited like voucher guessing. The member's own plan
//! decides: its hours, its VLAN does not apply here, its device limit counts portal devices.

use super::pages::DeviceLimitT;
use super::{closed_page, form, redirect, store_error, Portal};
use crate::Conn;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use frontdesk_core::decide::Holder;
use frontdesk_core::store::portal::{PortalClient, PortalKind};
use frontdesk_core::{decide, Reason, Resource, Subject};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::info;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MemberForm {
    csrf: String,
    username: String,
    password: String,
}

/// Longest portal authorization for a member whose plan has no end today (24/7 plans).
const MAX_MEMBER_SESSION: chrono::Duration = chrono::Duration::hours(24);

pub(super) async fn login(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f: MemberForm = match form(&p, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if !conn.tls {
        return p.message(
            StatusCode::FORBIDDEN,
            "Use the secure page",
            "Members sign in only over a secure (https) connection, so the password never travels in clear.",
            p.0.settings.https_url.clone(),
        );
    }
    let now = frontdesk_core::clock::now();
    let ip = conn.peer.ip();
    let attempt = match p.attempt(&conn, &f.csrf, "passwords").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let client = &attempt.client;
    let user = f.username.trim();
    let member = if user.is_empty() || user.len() > 128 || f.password.len() > 128 {
        None
    } else {
        match p.0.store.find_member(user).await {
            Ok(m) => m,
            Err(e) => return store_error(&p, e),
        }
    };
    let stored = match &member {
        Some(m) => match p.0.store.wifi_password(&m.id).await {
            Ok(pw) => Some(pw),
            Err(e) => return store_error(&p, e),
        },
        None => None,
    };
    // Compare even for unknown users, so the answer time does not tell who is a member.
    let reference = stored.as_deref().unwrap_or("\u{0}unknown-user-placeholder");
    let matches = bool::from(reference.as_bytes().ct_eq(f.password.as_bytes()));
    let Some(m) = member.filter(|_| matches && stored.is_some()) else {
        attempt.fail(&p);
        info!(mac = %client.mac, %ip, "portal: wrong member sign-in");
        return p.login_page(&conn, "", Some("Wrong Wi-Fi username or password.".into()));
    };
    let catalog = p.catalog();
    let d = decide(
        &catalog,
        Subject::Member(Holder::from(&m)),
        Resource::WIFI,
        now,
    );
    if !d.allowed {
        return match d.reason {
            Reason::OutsideHours | Reason::SiteClosed => closed_page(&p, d.opens_at, now),
            other => p.message(
                StatusCode::FORBIDDEN,
                "Your membership does not include Wi-Fi now",
                "Please ask at the front desk.",
                Some(format!("Reason: {other}")),
            ),
        };
    }
    let limit = d
        .plan
        .as_deref()
        .and_then(|name| catalog.plan_by_name(name))
        .and_then(|plan| plan.device_limit);
    if let Some(limit) = limit {
        match p.0.store.portal_clients_of(&m.id).await {
            Ok(devices) => {
                let others = devices
                    .iter()
                    .filter(|c| c.mac != client.mac && c.valid_until > now)
                    .count();
                if others >= limit as usize {
                    let t = DeviceLimitT {
                        p: p.page("Device limit reached"),
                        devices: limit,
                    };
                    return (StatusCode::FORBIDDEN, t).into_response();
                }
            }
            Err(e) => return store_error(&p, e),
        }
    }
    let until = d
        .valid_until
        .unwrap_or(now + MAX_MEMBER_SESSION)
        .min(now + MAX_MEMBER_SESSION);
    let record = PortalClient {
        mac: client.mac,
        ip: Some(ip.to_string()),
        network: client.location.clone(),
        kind: PortalKind::Member,
        subject: m.id.clone(),
        authorized_at: now,
        valid_until: until,
    };
    if let Err(r) = p.let_out(record).await {
        return r;
    }
    redirect(StatusCode::SEE_OTHER, "/status")
}
