//! Sponsored guests: the guest names a member; the member approves by a link in a mail; the
//! guest's page waits and refreshes itself (captive mini-browsers have no mail app and keep no
//! cookies, so the waiting page is keyed by an unguessable request id in its URL).
//!
//! No answer tells the guest whether an address belongs to a member: unknown addresses get the
//! same waiting page, which simply never gets an answer. Guests never get in outside the guest
//! plan's hours, whoever approves.

use super::pages::{SponsorApproveT, SponsorWaitT};
use super::{form, redirect, remaining, store_error, when, Portal};
use crate::Conn;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use frontdesk_core::ports::Mail;
use frontdesk_core::store::portal::{NewSponsorRequest, PortalClient, PortalKind, SponsorState};
use frontdesk_core::{decide, MemberStatus, Resource, Subject, Voucher};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SponsorForm {
    csrf: String,
    email: String,
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DecisionForm {
    csrf: String,
    decision: String,
}

/// Request ids: the creation time (8 hex digits) and 96 random bits, so the waiting page can
/// tell when any request, even one that was never stored, has run out.
fn request_id(now: DateTime<Utc>) -> String {
    format!(
        "{:08x}{}",
        now.timestamp().clamp(0, u32::MAX as i64),
        random_hex(12)
    )
}

fn id_time(id: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::from(u32::from_str_radix(id.get(..8)?, 16).ok()?), 0)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A guest's name as shown to the member: printable, one line, at most 80 characters.
fn clean_name(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    s.chars().take(80).collect()
}

impl Portal {
    /// Until when a sponsored guest would be let in now: the guest plan's current window,
    /// capped by the sponsorship length; `Err(opens_at)` when guests cannot get in now.
    fn sponsored_until(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, Option<DateTime<Utc>>> {
        let catalog = self.catalog();
        let Some(plan) = catalog.plan_by_name(&self.0.settings.guest_plan) else {
            return Err(None);
        };
        let v = Voucher {
            code: String::new(),
            plan_id: plan.id,
            valid_secs: self.0.settings.sponsor_validity.as_secs() as i64,
            devices: 1,
            sponsor_id: None,
            created_at: now,
            first_used_at: Some(now),
        };
        let d = decide(&catalog, Subject::Voucher(&v), Resource::WIFI, now);
        if d.allowed {
            Ok(d.valid_until
                .unwrap_or(now + chrono::Duration::seconds(v.valid_secs)))
        } else {
            Err(d.opens_at)
        }
    }

    fn wait_page(&self, heading: &str, text: String, waiting: bool, failed: bool) -> Response {
        let mut p = self.page(heading);
        if waiting {
            p.refresh = 3;
        }
        SponsorWaitT {
            p,
            heading: heading.into(),
            text,
            waiting,
            failed,
        }
        .into_response()
    }
}

pub(super) async fn request(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f: SponsorForm = match form(&p, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let now = frontdesk_core::clock::now();
    let ip = conn.peer.ip();
    if !p.0.tokens.check("login", ip, &f.csrf, now.timestamp()) {
        return super::expired_form(&p);
    }
    let Some(client) = p.client(&conn).await else {
        return super::not_on_guest_network(&p, ip);
    };
    if let Err(opens) = p.sponsored_until(now) {
        return super::closed_page(&p, opens, now);
    }
    let email = f.email.trim().to_ascii_lowercase();
    let name = clean_name(&f.name);
    if email.len() > 254 || !email.contains('@') || name.is_empty() {
        return p.login_page(
            &conn,
            "",
            Some("Please give your host's email address and your name.".into()),
        );
    }
    // Every request counts, also for addresses that are no member (they send no mail, but
    // the guest must not learn the difference by being limited differently).
    let key = format!("sponsor:{}", client.mac);
    if p.0
        .sponsor_limit
        .blocked(&key, std::time::Instant::now())
        .is_some()
    {
        return p.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "This device has asked for approval too often. Please ask at the front desk.",
            None,
        );
    }
    p.0.sponsor_limit.fail(&key, std::time::Instant::now());
    let id = request_id(now);
    let member = match p.0.store.member(&email).await {
        Ok(m) if m.status == MemberStatus::Active => Some(m),
        Ok(_) | Err(frontdesk_core::store::StoreError::NotFound(_)) => None,
        Err(e) => return store_error(&p, e),
    };
    if let Some(member) = member {
        let token = random_hex(32);
        let ttl = p.0.settings.sponsor_request_ttl;
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or_default();
        let req = NewSponsorRequest {
            id: &id,
            token_hash: &token_hash(&token),
            member_id: &member.id,
            guest_mac: client.mac,
            guest_ip: Some(ip.to_string()),
            network: client.location.clone(),
            guest_name: &name,
            expires_at: expires,
        };
        if let Err(e) = p.0.store.create_sponsor_request(&req, now).await {
            return store_error(&p, e);
        }
        let first = member
            .name
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let site = p.site();
        let mail = Mail {
            to: member.email.clone(),
            subject: format!("{name} asks to use the guest Wi-Fi at {site}"),
            body: format!(
                "Hello {first},\n\n{name} is at {site} and asks to use the guest Wi-Fi as your guest.\n\
                 Approve or decline here (the link works once, for {}):\n\n{}/sponsor/approve/{token}\n\n\
                 If you do not know this person, decline or ignore this mail.\n",
                remaining(ttl.as_secs() as i64),
                p.base(&conn)
            ),
        };
        if let Err(e) = p.0.mailer.send(mail).await {
            warn!(error = %e, "portal: sponsor mail not sent");
            return p.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "We could not reach your host",
                "The approval mail could not be sent. Please ask at the front desk.",
                None,
            );
        }
        info!(request = %id, member = %member.id, mac = %client.mac, "portal: sponsor request sent");
    } else {
        info!(mac = %client.mac, "portal: sponsor request for an address that is no active member (not told to the guest)");
    }
    redirect(StatusCode::SEE_OTHER, &format!("/sponsor/wait/{id}"))
}

pub(super) async fn wait(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(id): Path<String>,
) -> Response {
    let now = frontdesk_core::clock::now();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return p.message(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing at this address.",
            None,
        );
    }
    let req = match p.0.store.sponsor_request(&id, now).await {
        Ok(r) => r,
        Err(e) => return store_error(&p, e),
    };
    let waiting = |p: &Portal| {
        p.wait_page(
            "Waiting for your host",
            "We sent your host a mail. As soon as they approve, you are online.".into(),
            true,
            false,
        )
    };
    let Some(req) = req else {
        // An address that is no active member: it looks the same as a real request, until
        // the time a real one would have run out.
        let ttl = chrono::Duration::from_std(p.0.settings.sponsor_request_ttl).unwrap_or_default();
        return match id_time(&id) {
            Some(t) if now - t <= ttl && t <= now + chrono::Duration::minutes(1) => waiting(&p),
            _ => p.wait_page(
                "No answer",
                "Your host did not answer in time. Ask them, or ask at the front desk.".into(),
                false,
                true,
            ),
        };
    };
    match req.state {
        SponsorState::Pending => waiting(&p),
        SponsorState::Approved => {
            let client = p.client(&conn).await;
            if client.is_some_and(|c| c.mac == req.guest_mac) {
                redirect(StatusCode::SEE_OTHER, "/status")
            } else {
                p.wait_page(
                    "Approved",
                    "Your host approved. Your device is online.".into(),
                    false,
                    false,
                )
            }
        }
        SponsorState::Declined => p.wait_page(
            "Not approved",
            "Your host declined. Ask at the front desk for a voucher.".into(),
            false,
            true,
        ),
        SponsorState::Expired => p.wait_page(
            "No answer",
            "Your host did not answer in time. Ask them, or ask at the front desk.".into(),
            false,
            true,
        ),
    }
}

fn valid_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The member's page: what is asked, and two buttons. Opening the link changes nothing (mail
/// scanners open links); only the form's POST decides.
pub(super) async fn approve_page(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(token): Path<String>,
) -> Response {
    let now = frontdesk_core::clock::now();
    let req = match valid_token(&token) {
        true => match p
            .0
            .store
            .sponsor_request_by_token(&token_hash(&token), now)
            .await
        {
            Ok(r) => r,
            Err(e) => return store_error(&p, e),
        },
        false => None,
    };
    let Some(req) = req.filter(|r| r.state == SponsorState::Pending) else {
        return p.message(
            StatusCode::GONE,
            "This link is no longer valid",
            "It was used already, or it is more than a few minutes old.",
            None,
        );
    };
    let tz = p.catalog().site.tz();
    let (until, closed) = match p.sponsored_until(now) {
        Ok(u) => (Some(when(u, tz, now)), None),
        Err(opens) => (
            None,
            Some(
                opens
                    .map(|o| when(o, tz, now))
                    .unwrap_or_else(|| "later".into()),
            ),
        ),
    };
    SponsorApproveT {
        p: p.page("Your guest"),
        guest: req.guest_name.clone(),
        asked: when(req.created_at, tz, now),
        device: req.guest_mac.to_string(),
        until,
        closed,
        csrf: p.0.tokens.issue("approve", conn.peer.ip(), now.timestamp()),
    }
    .into_response()
}

pub(super) async fn approve(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(token): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f: DecisionForm = match form(&p, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let now = frontdesk_core::clock::now();
    if !p
        .0
        .tokens
        .check("approve", conn.peer.ip(), &f.csrf, now.timestamp())
    {
        return super::expired_form(&p);
    }
    let gone = |p: &Portal| {
        p.message(
            StatusCode::GONE,
            "This link is no longer valid",
            "It was used already, or it is more than a few minutes old.",
            None,
        )
    };
    if !valid_token(&token) {
        return gone(&p);
    }
    let req = match p
        .0
        .store
        .sponsor_request_by_token(&token_hash(&token), now)
        .await
    {
        Ok(Some(r)) if r.state == SponsorState::Pending => r,
        Ok(_) => return gone(&p),
        Err(e) => return store_error(&p, e),
    };
    // The sponsor must still be an active member.
    match p.0.store.member(&req.member_id).await {
        Ok(m) if m.status == MemberStatus::Active => {}
        Ok(_) => return gone(&p),
        Err(e) => return store_error(&p, e),
    }
    let actor = frontdesk_core::store::Actor {
        name: req.member_id.clone(),
        source: "portal".into(),
    };
    if f.decision != "approve" {
        return match p
            .0
            .store
            .decide_sponsor_request(&req.id, false, None, now, &actor)
            .await
        {
            Ok(true) => p.message(
                StatusCode::OK,
                "Declined",
                "Your guest is told that you declined.",
                None,
            ),
            Ok(false) => gone(&p),
            Err(e) => store_error(&p, e),
        };
    }
    let until = match p.sponsored_until(now) {
        Ok(u) => u,
        Err(opens) => return super::closed_page(&p, opens, now),
    };
    // Recorded as answered first: two clicks on "approve" let the guest out once.
    match p
        .0
        .store
        .decide_sponsor_request(&req.id, true, Some(until), now, &actor)
        .await
    {
        Ok(true) => {}
        Ok(false) => return gone(&p),
        Err(e) => return store_error(&p, e),
    }
    let record = PortalClient {
        mac: req.guest_mac,
        ip: req.guest_ip.clone(),
        network: req.network.clone(),
        kind: PortalKind::Sponsor,
        subject: req.member_id.clone(),
        authorized_at: now,
        valid_until: until,
    };
    if let Err(r) = p.let_out(record).await {
        return r;
    }
    info!(request = %req.id, member = %req.member_id, mac = %req.guest_mac, until = %until, "portal: sponsored guest online");
    let tz = p.catalog().site.tz();
    p.message(
        StatusCode::OK,
        "Approved",
        &format!(
            "{} is online until {}.",
            req.guest_name,
            when(until, tz, now)
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_clean_line() {
        assert_eq!(clean_name("  Ada\n\tLovelace\u{7}  "), "Ada Lovelace");
        assert_eq!(clean_name(&"x".repeat(200)).len(), 80);
        assert!(valid_token(&"a".repeat(64)));
        assert!(!valid_token(&"g".repeat(64)));
    }
}
