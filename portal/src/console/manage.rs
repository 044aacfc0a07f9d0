//! Console pages that change or reveal things: adding members, revealing and rotating Wi-Fi
//! passwords (after the operator re-enters their own password), ending a membership at a date,
//! API tokens (owners), and the network pages: NAS list, the auth log ("why was I rejected")
//! and explain, backed by the same code as `frontdesk explain` and the API.

use super::{
    actor, can_edit, csrf_ok, member_page, require, require_editor, require_owner, unavailable,
    Console, CsrfForm, Page,
};
use crate::totp::qr_svg;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use frontdesk_core::clock;
use frontdesk_core::model::Role;
use frontdesk_core::store::console::ConsoleSession;
use frontdesk_core::store::radius::AuthLogFilter;
use frontdesk_core::store::{NewMember, StoreError};
use serde::Deserialize;
use tracing::{info, warn};

page!(MemberNewT, "console/member_new.html" {
    plans: Vec<String>,
    teams: Vec<String>,
    form: NewMemberForm,
    error: Option<String>,
});
page!(CredentialsT, "console/credentials.html" {
    member_id: String,
    name: String,
    username: String,
    password: String,
    qr: String,
    qr_kind: String,
    rotated: bool,
});
page!(TokensT, "console/tokens.html" {
    rows: Vec<TokenLine>,
    scopes: Vec<&'static str>,
    created: Option<String>,
    error: Option<String>,
});
page!(NetworkT, "console/network.html" {
    nas: Vec<NasLine>,
    controllers: Vec<ControllerLine>,
    dns_requests: Vec<DnsRequestLine>,
    dns_blocked: Vec<DnsBlockedLine>,
    can_edit: bool,
    log: Vec<LogLine>,
    f: LogQuery,
    is_owner: bool,
    vendors: Vec<&'static str>,
    notice: Option<String>,
    refused: bool,
    new_secret: Option<String>,
});

pub struct DnsRequestLine {
    pub id: i64,
    pub domain: String,
    pub who: String,
    pub list: String,
    pub reason: String,
    pub asked: String,
    pub is_member: bool,
}

/// A recently blocked query (from the DNS query log).
pub struct DnsBlockedLine {
    pub at: String,
    pub client: String,
    pub who: String,
    pub name: String,
    pub list: String,
}

/// What a change on a page led to: done, or refused with the reason.
pub enum Notice {
    Done(String),
    Refused(String),
}
page!(ExplainT, "console/explain.html" {
    q: ExplainQuery,
    result: Option<ExplainView>,
    error: Option<String>,
});

pub struct TokenLine {
    pub id: i64,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub live: bool,
}

pub struct NasLine {
    pub name: String,
    pub address: String,
    pub vendor: String,
    pub message_authenticator: bool,
}

/// A Wi-Fi controller (radius-only mode) and how its API answered last.
pub struct ControllerLine {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub last_ok: Option<String>,
    pub error: Option<String>,
}

pub struct LogLine {
    pub at: String,
    pub user: String,
    pub mac: String,
    pub nas: String,
    pub accepted: bool,
    pub reason: String,
    pub method: String,
}

pub struct ExplainView {
    pub subject: String,
    pub allowed: bool,
    pub reason: String,
    pub plan: String,
    pub vlan: String,
    pub until: String,
    pub opens: String,
    pub at: String,
    pub log: Vec<LogLine>,
}

// ---- new member -----------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct NewMemberForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub valid_until: String,
}

async fn member_new_page(
    c: &Console,
    s: &ConsoleSession,
    form: NewMemberForm,
    error: Option<String>,
) -> Response {
    let cat = match c.0.store.catalog().await {
        Ok(cat) => cat,
        Err(e) => return unavailable("new member page", e),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = MemberNewT {
        p: c.page("Add a member", Some(s)).await,
        plans: cat.plans.iter().map(|p| p.name.clone()).collect(),
        teams: cat.teams.iter().map(|t| t.name.clone()).collect(),
        form,
        error,
    };
    (status, page).into_response()
}

pub async fn member_new_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !can_edit(&s) {
        return (StatusCode::FORBIDDEN, "viewers cannot add members").into_response();
    }
    let form = NewMemberForm {
        plan: "flex".into(),
        ..Default::default()
    };
    member_new_page(&c, &s, form, None).await
}

pub async fn member_new(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<NewMemberForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot add members").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let today = match store.site().await {
        Ok(site) => site.date_at(clock::now()),
        Err(e) => return unavailable("new member", e),
    };
    let until = match f.valid_until.trim() {
        "" => None,
        d => match frontdesk_core::model::parse_date(d) {
            Ok(d) => Some(d),
            Err(e) => return member_new_page(&c, &s, f, Some(e)).await,
        },
    };
    let new = NewMember {
        name: f.name.clone(),
        email: f.email.clone(),
        plan: f.plan.clone(),
        team: Some(f.team.trim().to_string()).filter(|t| !t.is_empty()),
        valid_until: until,
        ..Default::default()
    };
    match store.add_member(&new, today, &actor(&s)).await {
        Ok((m, _password)) => {
            info!(operator = %s.operator.email, member = %m.id, "console: member added");
            // The password is not shown here: "Reveal" on the member's page shows it (and
            // asks for the operator's password), so it never sits in a page by accident.
            Redirect::to(&format!("/members/{}?added=1", m.id)).into_response()
        }
        Err(e @ (StoreError::Invalid(_) | StoreError::Duplicate(_) | StoreError::NotFound(_))) => {
            member_new_page(&c, &s, f, Some(e.to_string())).await
        }
        Err(e) => unavailable("new member", e),
    }
}

// ---- reveal, rotate, end at a date -----------------------------------------------------------

#[derive(Deserialize)]
pub struct RevealForm {
    csrf: String,
    #[serde(default)]
    password: String,
}

/// The member's Wi-Fi credentials with a QR code, after the operator re-enters their own
/// password. Owners and managers only; audited as `member.reveal`.
pub async fn reveal(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RevealForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot see passwords").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let hash = s.operator.password_hash.clone();
    let typed = f.password;
    let ok = tokio::task::spawn_blocking(move || {
        frontdesk_core::secrets::verify_login_password(&typed, &hash)
    })
    .await
    .unwrap_or(false);
    if !ok {
        warn!(operator = %s.operator.email, member = %id, "console: reveal refused (wrong password)");
        return member_page(
            &c,
            &s,
            &id,
            Some("That is not your password; the Wi-Fi password stays hidden.".into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let store = &c.0.store;
    let m = match store.member(&id).await {
        Ok(m) => m,
        Err(StoreError::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, "no such member").into_response()
        }
        Err(e) => return unavailable("reveal", e),
    };
    match store.reveal_wifi_password(&m.id, &actor(&s)).await {
        Ok(password) => credentials_page(&c, &s, m, password, false).await,
        Err(e) => unavailable("reveal", e),
    }
}

/// A new Wi-Fi password (the old one stops working at once), shown once.
pub async fn rotate(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot rotate passwords").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c.0.store.rotate_password(&id, &actor(&s)).await {
        Ok((m, password)) => {
            info!(operator = %s.operator.email, member = %m.id, "console: Wi-Fi password rotated");
            credentials_page(&c, &s, m, password, true).await
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such member").into_response(),
        Err(e) => unavailable("rotate", e),
    }
}

async fn credentials_page(
    c: &Console,
    s: &ConsoleSession,
    m: frontdesk_core::Member,
    password: String,
    rotated: bool,
) -> Response {
    let (qr, qr_kind) = join_code(&c.0.store, &m, &password).await;
    CredentialsT {
        p: c.page("Wi-Fi credentials", Some(s)).await,
        member_id: m.id.clone(),
        name: m.name.clone(),
        username: m.wifi_username.clone(),
        qr,
        qr_kind,
        password,
        rotated,
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct EndForm {
    csrf: String,
    #[serde(default)]
    last_day: String,
}

/// "Cancel at the end of the period": plans end after `last_day`; access continues until then.
pub async fn end_at(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<EndForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot change members").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let today = match store.site().await {
        Ok(site) => site.date_at(clock::now()),
        Err(e) => return unavailable("end membership", e),
    };
    let last = match frontdesk_core::model::parse_date(&f.last_day) {
        Ok(d) => d,
        Err(e) => return member_page(&c, &s, &id, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    match store.end_member_at(&id, last, today, &actor(&s)).await {
        Ok(m) => {
            member_page(
                &c,
                &s,
                &m.id,
                Some(format!(
                    "Access ends after {last} (site time); nothing changes before then."
                )),
                StatusCode::OK,
            )
            .await
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such member").into_response(),
        Err(e) => {
            member_page(
                &c,
                &s,
                &id,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

// ---- API tokens (owners) --------------------------------------------------------------------

async fn tokens_page(
    c: &Console,
    s: &ConsoleSession,
    created: Option<String>,
    error: Option<String>,
) -> Response {
    let (list, tz) = match (c.0.store.api_tokens().await, c.0.store.site().await) {
        (Ok(l), Ok(site)) => (l, site.tz()),
        (Err(e), _) | (_, Err(e)) => return unavailable("tokens page", e),
    };
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    TokensT {
        p: c.page("API tokens", Some(s)).await,
        rows: list
            .into_iter()
            .map(|t| TokenLine {
                id: t.id,
                live: t.revoked_at.is_none(),
                scopes: t.scopes.join(", "),
                created: format!("{} by {}", fmt(t.created_at), t.created_by),
                last_used: t.last_used_at.map_or("never".into(), fmt),
                name: t.name,
            })
            .collect(),
        scopes: frontdesk_core::store::api::SCOPES.to_vec(),
        created,
        error,
    }
    .into_response()
}

const TOKENS_REFUSAL: &str = "only owners manage API tokens";
const NAS_REFUSAL: &str = "only owners manage access points";

pub async fn tokens(State(c): State<Console>, headers: HeaderMap) -> Response {
    match require_owner(&c, &headers, TOKENS_REFUSAL).await {
        Ok(s) => tokens_page(&c, &s, None, None).await,
        Err(r) => r,
    }
}

pub async fn token_create(
    State(c): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let s = match require_owner(&c, &headers, TOKENS_REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Repeated `scope` fields: read the pairs ourselves (serde_urlencoded has no Vec fields).
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    if !csrf_ok(&s, &headers, field("csrf")) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let scopes: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let scopes = match frontdesk_core::store::api::parse_scopes(&scopes.join(",")) {
        Ok(s) => s,
        Err(e) => return tokens_page(&c, &s, None, Some(e.to_string())).await,
    };
    let (value, hash) = crate::api::new_token();
    match c
        .0
        .store
        .create_api_token(field("name"), &scopes, &hash, &actor(&s))
        .await
    {
        Ok(t) => {
            info!(operator = %s.operator.email, token = t.id, "console: API token created");
            tokens_page(&c, &s, Some(value), None).await
        }
        Err(e @ StoreError::Invalid(_)) => tokens_page(&c, &s, None, Some(e.to_string())).await,
        Err(e) => unavailable("token create", e),
    }
}

pub async fn token_revoke(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match require_owner(&c, &headers, TOKENS_REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match c.0.store.revoke_api_token(id, &actor(&s)).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(e @ (StoreError::NotFound(_) | StoreError::Invalid(_))) => {
            tokens_page(&c, &s, None, Some(e.to_string())).await
        }
        Err(e) => unavailable("token revoke", e),
    }
}

// ---- network: NAS list, auth log, explain ----------------------------------------------------

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub nas: String,
    /// `accepted`, `rejected` or empty.
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub reason: String,
}

fn log_lines(
    rows: Vec<frontdesk_core::store::radius::AuthLogEntry>,
    nas: &[frontdesk_core::Nas],
    tz: chrono_tz::Tz,
) -> Vec<LogLine> {
    rows.into_iter()
        .map(|r| LogLine {
            at: r
                .at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            nas: r
                .nas_id
                .and_then(|id| nas.iter().find(|n| n.id == id))
                .map_or("-".into(), |n| n.name.clone()),
            user: r.user_name,
            mac: r.mac.unwrap_or_else(|| "-".into()),
            accepted: r.accepted,
            reason: r.reason,
            method: r.method,
        })
        .collect()
}

pub async fn network(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(f): Query<LogQuery>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    network_page(&c, &s, f, None, None).await
}

async fn network_page(
    c: &Console,
    s: &ConsoleSession,
    f: LogQuery,
    notice: Option<Notice>,
    new_secret: Option<String>,
) -> Response {
    let store = &c.0.store;
    let (nas, tz) = match (store.nas_list().await, store.site().await) {
        (Ok(n), Ok(site)) => (n, site.tz()),
        (Err(e), _) | (_, Err(e)) => return unavailable("network page", e),
    };
    let filter = AuthLogFilter {
        user: Some(f.user.clone()),
        mac: Some(f.mac.clone()),
        nas_id: nas.iter().find(|n| n.name == f.nas).map(|n| n.id),
        accepted: match f.result.as_str() {
            "accepted" => Some(true),
            "rejected" => Some(false),
            _ => None,
        },
        reason: Some(f.reason.clone()),
    };
    let rows = match store.auth_log_search(&filter, 200).await {
        Ok(r) => r,
        Err(e) => return unavailable("auth log", e),
    };
    let status = match &notice {
        Some(Notice::Refused(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let (notice, refused) = match notice {
        Some(Notice::Done(t)) => (Some(t), false),
        Some(Notice::Refused(t)) => (Some(t), true),
        None => (None, false),
    };
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    let controllers = store
        .controllers()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| ControllerLine {
            error: k.last_error.map(|e| match k.last_error_at {
                Some(at) => format!("{} — {e}", local(at)),
                None => e,
            }),
            last_ok: k.last_ok_at.map(local),
            name: k.name,
            kind: k.kind,
            url: k.url,
        })
        .collect();
    // Member ids in the DNS tables, shown as "Name <email>".
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let pending = store.exceptions(Some("pending")).await.unwrap_or_default();
    let blocked = store
        .dns_log(&frontdesk_core::store::dns::QueryLogFilter {
            blocked_only: true,
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let ids = pending
        .iter()
        .filter_map(|e| e.requester.clone())
        .chain(blocked.iter().filter_map(|l| l.member.clone()));
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            let shown = match store.member(slot.key()).await {
                Ok(m) => format!("{} <{}>", m.name, m.email),
                Err(_) => slot.key().clone(),
            };
            slot.insert(shown);
        }
    }
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let dns_requests = pending
        .into_iter()
        .map(|e| DnsRequestLine {
            is_member: matches!(e.scope, frontdesk_core::store::dns::Scope::Member(_)),
            id: e.id,
            who: e
                .requester
                .as_deref()
                .map_or_else(|| "a visitor".into(), name_of),
            list: e.list.clone().unwrap_or_default(),
            reason: e.reason.clone(),
            asked: local(e.created_at),
            domain: e.domain,
        })
        .collect();
    let dns_blocked = blocked
        .into_iter()
        .map(|l| DnsBlockedLine {
            at: local(l.at),
            client: l.client,
            who: match (&l.member, &l.plan) {
                (Some(m), _) => name_of(m),
                (None, Some(p)) => format!("plan {p}"),
                (None, None) => "-".into(),
            },
            name: l.name.trim_end_matches('.').to_string(),
            list: l.list.unwrap_or_default(),
        })
        .collect();
    let page = NetworkT {
        p: c.page("Network", Some(s)).await,
        dns_requests,
        dns_blocked,
        can_edit: super::can_edit(s),
        controllers,
        is_owner: s.operator.role == Role::Owner,
        vendors: frontdesk_core::Vendor::ALL
            .iter()
            .map(|v| v.as_str())
            .collect(),
        notice,
        refused,
        new_secret,
        log: log_lines(rows, &nas, tz),
        nas: nas
            .iter()
            .map(|n| NasLine {
                name: n.name.clone(),
                address: n.address.to_string(),
                vendor: n.vendor.to_string(),
                message_authenticator: n.require_message_authenticator,
            })
            .collect(),
        f,
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct NasForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    vendor: String,
    /// Checkbox: present when ticked.
    #[serde(default)]
    require_ma: Option<String>,
}

/// Adds a RADIUS client (owners): Frontdesk generates the shared secret and shows it once.
pub async fn nas_add(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<NasForm>,
) -> Response {
    let s = match require_owner(&c, &headers, NAS_REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let bad = |m: String| network_page(&c, &s, LogQuery::default(), Some(Notice::Refused(m)), None);
    let address = match frontdesk_core::model::parse_cidr(&f.address) {
        Ok(a) => a,
        Err(e) => return bad(e).await,
    };
    let vendor: frontdesk_core::Vendor = match f.vendor.parse() {
        Ok(v) => v,
        Err(e) => return bad(e).await,
    };
    // 128 random bits as 32 hex characters: within every vendor's secret length limit, typed
    // into the access point's form once.
    let secret = super::random_hex()[..32].to_string();
    let new = frontdesk_core::store::NewNas {
        name: f.name.trim().to_string(),
        address,
        secret: secret.clone(),
        vendor,
        disconnect_port: None,
        coa_port: None,
        require_message_authenticator: f.require_ma.is_some(),
    };
    match c.0.store.add_nas(&new, &actor(&s)).await {
        Ok(n) => {
            info!(operator = %s.operator.email, nas = %n.name, "console: NAS added");
            let notice = format!(
                "Added {} ({}). Enter this shared secret on the access point now; it is not shown again:",
                n.name, n.address
            );
            network_page(
                &c,
                &s,
                LogQuery::default(),
                Some(Notice::Done(notice)),
                Some(secret),
            )
            .await
        }
        Err(e @ (StoreError::Invalid(_) | StoreError::Duplicate(_))) => bad(e.to_string()).await,
        Err(e) => unavailable("NAS add", e),
    }
}

#[derive(Deserialize)]
pub struct NasEditForm {
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    require_ma: Option<String>,
    /// Which button: `save`, `secret` (save with a new shared secret) or `remove`.
    action: String,
}

/// Owners change a NAS: address, vendor, Message-Authenticator, a new secret (shown once),
/// or remove it.
pub async fn nas_edit(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<NasEditForm>,
) -> Response {
    let s = match require_owner(&c, &headers, NAS_REFUSAL).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let store = &c.0.store;
    let bad = |m: String| network_page(&c, &s, LogQuery::default(), Some(Notice::Refused(m)), None);
    let r = match f.action.as_str() {
        "remove" => store.remove_nas(&name, &actor(&s)).await.map(|()| {
            (
                format!("Removed {name}: its requests are dropped from now on."),
                None,
            )
        }),
        "save" | "secret" => {
            let address = match frontdesk_core::model::parse_cidr(&f.address) {
                Ok(a) => a,
                Err(e) => return bad(e).await,
            };
            let vendor: frontdesk_core::Vendor = match f.vendor.parse() {
                Ok(v) => v,
                Err(e) => return bad(e).await,
            };
            let secret = (f.action == "secret").then(|| super::random_hex()[..32].to_string());
            store
                .update_nas(
                    &name,
                    address,
                    vendor,
                    f.require_ma.is_some(),
                    secret.as_deref(),
                    &actor(&s),
                )
                .await
                .map(|()| match &secret {
                    Some(_) => (
                        format!("Saved {name} with a new shared secret: enter it on the access point now (the old one stops working at once); it is not shown again:"),
                        secret.clone(),
                    ),
                    None => (format!("Saved {name}."), None),
                })
        }
        _ => return (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    };
    match r {
        Ok((notice, secret)) => {
            info!(operator = %s.operator.email, nas = %name, action = %f.action, "console: NAS changed");
            network_page(
                &c,
                &s,
                LogQuery::default(),
                Some(Notice::Done(notice)),
                secret,
            )
            .await
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such NAS").into_response(),
        Err(e @ StoreError::Invalid(_)) => bad(e.to_string()).await,
        Err(e) => unavailable("NAS change", e),
    }
}

#[derive(Deserialize, Default)]
pub struct ExplainQuery {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub at: String,
}

/// "Why was I rejected?": the console face of `frontdesk explain`.
pub async fn explain(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<ExplainQuery>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let (mut result, mut error) = (None, None);
    if !q.user.trim().is_empty() {
        let resource = if q.resource.trim().is_empty() {
            "wifi"
        } else {
            q.resource.trim()
        };
        match frontdesk_core::explain::explain(store, q.user.trim(), resource, Some(&q.at)).await {
            Ok(e) => {
                let nas = store.nas_list().await.unwrap_or_default();
                let local = |t: chrono::DateTime<chrono::Utc>| {
                    t.with_timezone(&e.tz)
                        .format("%a %Y-%m-%d %H:%M")
                        .to_string()
                };
                let d = &e.decision;
                result = Some(ExplainView {
                    subject: format!("{} {} ({})", e.kind, e.label, e.id),
                    allowed: d.allowed,
                    reason: d.reason.to_string(),
                    plan: d.plan.clone().unwrap_or_else(|| "-".into()),
                    vlan: d.vlan.map_or("-".into(), |v| v.to_string()),
                    until: match (d.allowed, d.valid_until) {
                        (true, Some(t)) => local(t),
                        (true, None) => "no end".into(),
                        (false, _) => "-".into(),
                    },
                    opens: d.opens_at.map_or("-".into(), local),
                    at: format!("{} ({})", local(e.at), e.tz.name()),
                    log: log_lines(e.recent.clone(), &nas, e.tz),
                });
            }
            Err(e @ (StoreError::Invalid(_) | StoreError::NotFound(_))) => {
                error = Some(e.to_string())
            }
            Err(e) => return unavailable("explain", e),
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ExplainT {
        p: c.page("Explain", Some(&s)).await,
        q,
        result,
        error,
    };
    (status, page).into_response()
}

/// A QR code for joining the Wi-Fi (SVG) and what it holds, for the console's and the
/// member's own credentials page.
pub(super) async fn join_code(
    store: &frontdesk_core::store::Store,
    m: &frontdesk_core::Member,
    password: &str,
) -> (String, String) {
    // A WPA2-Enterprise joining code needs the SSID: the member's plan's first SSID, if the
    // plan names one; otherwise the QR code carries the username and password as text.
    let ssid = match store.catalog().await {
        Ok(cat) => m
            .assignments
            .iter()
            .rev()
            .filter_map(|a| cat.plan(a.plan_id))
            .find_map(|p| p.ssids.first().cloned()),
        Err(_) => None,
    };
    let esc = |v: &str| {
        v.chars().fold(String::new(), |mut o, ch| {
            if matches!(ch, '\\' | ';' | ',' | ':' | '"') {
                o.push('\\');
            }
            o.push(ch);
            o
        })
    };
    let (text, qr_kind) = match &ssid {
        Some(ssid) => (
            format!(
                "WIFI:T:WPA2-EAP;S:{};E:PEAP;PH2:MSCHAPV2;I:{};P:{};;",
                esc(ssid),
                esc(&m.wifi_username),
                esc(password)
            ),
            format!("joins {ssid} (WPA2-Enterprise, PEAP) on phones that read Wi-Fi QR codes"),
        ),
        None => (
            format!(
                "Wi-Fi username: {}\nWi-Fi password: {password}",
                m.wifi_username
            ),
            "holds the username and password as text (give the plan an SSID for a joining code)"
                .into(),
        ),
    };
    (qr_svg(&text), qr_kind)
}

#[derive(Deserialize)]
pub struct DnsDecisionForm {
    csrf: String,
    /// approve | deny
    decision: String,
    /// member | plan | everyone
    #[serde(default)]
    scope: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    until: String,
}

/// Approves (for the requester, a plan or everyone, until a date) or denies a DNS exception
/// request; the requesting member is told by mail.
pub async fn dns_decide(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<DnsDecisionForm>,
) -> Response {
    let s = match require_editor(
        &c,
        &headers,
        &f.csrf,
        "viewers cannot decide DNS exceptions",
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    use frontdesk_core::store::dns::Scope;
    let store = &c.0.store;
    let refuse = |msg: String| {
        network_page(
            &c,
            &s,
            LogQuery::default(),
            Some(Notice::Refused(msg)),
            None,
        )
    };
    let request = match store.exception(id).await {
        Ok(e) => e,
        Err(e) => return refuse(e.to_string()).await,
    };
    let decision = match f.decision.as_str() {
        "deny" => None,
        "approve" => {
            let until = match f.until.trim() {
                "" => None,
                d => match frontdesk_core::model::parse_date(d) {
                    Ok(d) => Some(d),
                    Err(e) => return refuse(e).await,
                },
            };
            let scope = match f.scope.as_str() {
                "plan" => Scope::Plan(f.plan.trim().to_string()),
                "everyone" => Scope::Everyone,
                _ => request.scope.clone(),
            };
            Some((scope, until))
        }
        other => return refuse(format!("unknown decision {other:?}")).await,
    };
    let e = match store.decide_exception(id, decision, &actor(&s)).await {
        Ok(e) => e,
        Err(e) => return refuse(e.to_string()).await,
    };
    info!(operator = %s.operator.email, request = id, domain = %e.domain, status = %e.status, "console: DNS exception decided");
    if let (Some(member), Some(mailer)) = (e.requester.as_deref(), c.0.mailer.clone()) {
        if let Ok(m) = store.member(member).await {
            let site = c.site().await;
            let text = if e.status == "approved" {
                format!(
                    "{} is open for you on the {site} network now{}.",
                    e.domain,
                    e.valid_until
                        .map_or(String::new(), |d| format!(", until {d}"))
                )
            } else {
                format!(
                    "Your request for {} was declined. Ask at the front desk if you need it.",
                    e.domain
                )
            };
            let mail = frontdesk_core::ports::Mail {
                to: m.email.clone(),
                subject: format!("Your request for {}: {}", e.domain, e.status),
                body: format!("Hello {},\n\n{text}\n", m.name),
            };
            tokio::spawn(async move {
                if let Err(err) = mailer.send(mail).await {
                    warn!(error = %err, "console: DNS decision mail not sent");
                }
            });
        }
    }
    network_page(
        &c,
        &s,
        LogQuery::default(),
        Some(Notice::Done(format!("{}: {}.", e.domain, e.status))),
        None,
    )
    .await
}
