//! Private Wi-Fi passphrases (identity PSK) in the console (issue, show with QR, revoke on
//! the member page) and on `/me` (the member's own and their team's, with a joining QR code).

use super::me::signed_in_post;
use super::{member_page, require_editor, unavailable, Console, Page};
use crate::totp::qr_svg;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use frontdesk_core::store::passphrases::{Owner, Passphrase};
use frontdesk_core::store::{Actor, StoreError};
use serde::Deserialize;
use tracing::info;

page!(PassphraseT, "console/passphrase.html" {
    v: View,
});
// The member's view: the same card in the self-service frame (no operator navigation).
page!(MePassphraseT, "me/passphrase.html" {
    v: View,
});

pub struct View {
    back: String,
    back_label: String,
    ssid: String,
    owner: String,
    secret: String,
    qr: String,
    devices: Vec<(String, String)>,
    issued: bool,
}

/// A passphrase as a row: (id, SSID, owner, devices "n of max", last day).
pub type Row = (i64, String, String, String, String);

/// Passphrases in force for a member: their own and their team's.
pub async fn rows_for(
    store: &frontdesk_core::store::Store,
    m: &frontdesk_core::Member,
) -> Result<Vec<Row>, StoreError> {
    let mine: Vec<Passphrase> = store
        .passphrases(false)
        .await?
        .into_iter()
        .filter(|p| {
            p.member_id.as_deref() == Some(m.id.as_str())
                || (p.team_id.is_some() && p.team_id == m.team_id)
        })
        .collect();
    let mut rows = Vec::with_capacity(mine.len());
    for p in mine {
        let n = store.passphrase_devices(p.id).await?.len();
        rows.push((
            p.id,
            p.ssid.clone(),
            p.owner.clone(),
            match p.max_devices {
                Some(max) => format!("{n} of {max}"),
                None => n.to_string(),
            },
            p.valid_until.map_or("-".into(), |d| d.to_string()),
        ));
    }
    Ok(rows)
}

async fn view(
    p: Passphrase,
    store: &frontdesk_core::store::Store,
    back: String,
    back_label: &str,
    issued: bool,
) -> Result<View, Response> {
    let devices = store
        .passphrase_devices(p.id)
        .await
        .map_err(|e| unavailable("passphrase", e))?;
    Ok(View {
        back,
        back_label: back_label.into(),
        qr: qr_svg(&p.wifi_uri()),
        ssid: p.ssid.clone(),
        owner: p.owner.clone(),
        secret: p.secret.clone(),
        devices: devices
            .iter()
            .map(|d| {
                (
                    d.mac.to_string(),
                    d.last_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                )
            })
            .collect(),
        issued,
    })
}

async fn show(
    p: Passphrase,
    store: &frontdesk_core::store::Store,
    back: String,
    back_label: &str,
    issued: bool,
    page: Page,
) -> Response {
    match view(p, store, back, back_label, issued).await {
        Ok(v) => PassphraseT { p: page, v }.into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct IssueForm {
    csrf: String,
    ssid: String,
    #[serde(default)]
    devices: String,
}

fn operator(s: &super::ConsoleSession) -> Actor {
    Actor {
        name: s.operator.email.clone(),
        source: "console".into(),
    }
}

/// Console: issue a passphrase for a member; the page shows it once with its QR code.
pub async fn issue(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<IssueForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot issue passphrases").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let fail = |msg: String| member_page(&c, &s, &id, Some(msg), StatusCode::UNPROCESSABLE_ENTITY);
    let devices = match f.devices.trim() {
        "" => None,
        n => match n.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return fail(format!(
                    "Devices: a number, or empty for no limit (not {n:?})."
                ))
                .await
            }
        },
    };
    let store = &c.0.store;
    match store
        .issue_passphrase(
            &Owner::Member(id.clone()),
            &f.ssid,
            None,
            devices,
            &operator(&s),
        )
        .await
    {
        Ok(p) => {
            info!(operator = %s.operator.email, member = %id, passphrase = p.id, ssid = %p.ssid, "console: passphrase issued");
            let page = c.page("Private passphrase", Some(&s)).await;
            show(
                p,
                store,
                format!("/members/{id}"),
                "Back to the member",
                true,
                page,
            )
            .await
        }
        Err(StoreError::Invalid(msg)) | Err(StoreError::NotFound(msg)) => fail(msg).await,
        Err(e) => unavailable("passphrase", e),
    }
}

#[derive(Deserialize)]
pub struct PassphraseForm {
    csrf: String,
}

/// Console: revoke one; its devices' sessions are ended by the scheduler.
pub async fn revoke(
    State(c): State<Console>,
    headers: HeaderMap,
    Path((id, pid)): Path<(String, i64)>,
    Form(f): Form<PassphraseForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot revoke passphrases").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let msg = match c.0.store.revoke_passphrase(pid, &operator(&s)).await {
        Ok(()) => {
            info!(operator = %s.operator.email, member = %id, passphrase = pid, "console: passphrase revoked");
            format!("Passphrase #{pid} revoked: its devices are disconnected.")
        }
        Err(StoreError::NotFound(m)) => format!("Not found: {m}"),
        Err(e) => return unavailable("passphrase", e),
    };
    member_page(&c, &s, &id, Some(msg), StatusCode::OK).await
}

/// Console: show one (an editor's view, audited by the log line).
pub async fn reveal(
    State(c): State<Console>,
    headers: HeaderMap,
    Path((id, pid)): Path<(String, i64)>,
    Form(f): Form<PassphraseForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot see passphrases").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c.0.store.passphrase(pid).await {
        Ok(p) => {
            info!(operator = %s.operator.email, member = %id, passphrase = pid, "console: passphrase shown");
            let page = c.page("Private passphrase", Some(&s)).await;
            show(
                p,
                &c.0.store,
                format!("/members/{id}"),
                "Back to the member",
                false,
                page,
            )
            .await
        }
        Err(e) => unavailable("passphrase", e),
    }
}

#[derive(Deserialize)]
pub struct MeForm {
    csrf: String,
    id: i64,
}

/// `/me`: the member's own (or their team's) passphrase with its joining QR code.
pub async fn me_show(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<MeForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = match c.0.store.passphrase(f.id).await {
        Ok(p) => p,
        Err(e) => return unavailable("self-service", e),
    };
    let theirs = p.member_id.as_deref() == Some(m.id.as_str())
        || (p.team_id.is_some() && p.team_id == m.team_id);
    if !theirs || p.revoked_at.is_some() {
        return (StatusCode::NOT_FOUND, "no such passphrase").into_response();
    }
    info!(member = %m.id, passphrase = p.id, "self-service: passphrase shown");
    let page = c
        .me_page("My private passphrase", Some(&m), s.csrf.clone())
        .await;
    match view(p, &c.0.store, "/me".into(), "Back to my page", false).await {
        Ok(v) => MePassphraseT { p: page, v }.into_response(),
        Err(r) => r,
    }
}
