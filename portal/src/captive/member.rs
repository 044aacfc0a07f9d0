//! Member sign-in on the portal, for members whose device is on the guest network: their Wi-Fi
//! username and password, accepted only over HTTPS (the password must not cross the air in
//! clear), checked in constant time, limited like voucher guessing. The member's own plan
//! decides: its hours, its VLAN does not apply here, its device limit counts portal devices.

use super::pages::DeviceLimitT;
use super::{closed_page, form, not_on_guest_network, redirect, store_error, Portal};
use crate::Conn;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use frontdesk_core::decide::Holder;
use frontdesk_core::store::portal::{PortalClient, PortalKind};
use frontdesk_core::{decide, Reason, Resource, Subject};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

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
    let now = Utc::now();
    let ip = conn.peer.ip();
    if !p.0.tokens.check("login", ip, &f.csrf, now.timestamp()) {
        return super::expired_form(&p);
    }
    let Some(client) = p.client(&conn).await else {
        return not_on_guest_network(&p, ip);
    };
    let t = std::time::Instant::now();
    let mac_key = format!("mac:{}", client.mac);
    let ip_key = format!("ip:{}", super::frontdesk_core_ip(ip));
    if let Some(wait) =
        p.0.by_mac
            .blocked(&mac_key, t)
            .or_else(|| p.0.by_ip.blocked(&ip_key, t))
    {
        return p.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many wrong passwords from this device.",
            Some(format!("Try again in {}.", super::remaining(wait as i64))),
        );
    }
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
        p.0.by_mac.fail(&mac_key, t);
        p.0.by_ip.fail(&ip_key, t);
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
    if let Err(e) = p.0.authorizer.authorize(&client, Some(until)).await {
        warn!(mac = %client.mac, error = %e, "portal: authorizing a member failed");
        return p.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "We could not connect you",
            "The network did not let your device through. Please ask at the front desk.",
            None,
        );
    }
    let record = PortalClient {
        mac: client.mac,
        ip: Some(super::frontdesk_core_ip(ip).to_string()),
        network: client.location.clone(),
        kind: PortalKind::Member,
        subject: m.id.clone(),
        authorized_at: now,
        valid_until: until,
    };
    if let Err(e) = p.0.store.record_portal_client(&record).await {
        warn!(mac = %client.mac, error = %e, "portal: could not record a member's device");
    }
    info!(mac = %client.mac, member = %m.id, until = %until, "portal: member online");
    redirect(StatusCode::SEE_OTHER, "/status")
}
