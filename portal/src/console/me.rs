//! Member self-service (`/me`), on the console's listener with its own sessions: members sign
//! in with a link by mail (good once, 20 minutes; the address it points to is the configured
//! public URL, never the request's Host header) or with a password they set here; they see
//! their plan and this week's access hours, reveal and rotate their Wi-Fi password, register
//! a few devices (MAC authentication for a printer or console) within their plan's limit, and
//! make guest passes for visitors. Every query is keyed by the member id of the session,
//! never by an id in the request: one member cannot reach another's data.

use super::manage::join_code;
use super::{cookie_value, random_hex, same_origin, token_hash, unavailable, Console, Page};
use crate::Conn;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use frontdesk_core::clock;
use frontdesk_core::ports::Mail;
use frontdesk_core::store::selfservice::MemberSession;
use frontdesk_core::store::{Actor, StoreError};
use frontdesk_core::Member;
use serde::Deserialize;
use std::time::Instant;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

const COOKIE: &str = "fd_me";
/// The sign-in forms' double-submit token (no session yet).
const LOGIN_CSRF: &str = "fd_me_csrf";
const LINK_MINUTES: i64 = 20;
/// Registered devices when the plan sets no device limit.
const DEVICES_UNLIMITED: u32 = 10;
/// Guest passes a member may make per day.
const GUEST_PASSES_PER_DAY: usize = 5;

page!(MeLoginT, "me/login.html" { email: String, error: Option<String>, notice: Option<String> });
page!(MeLinkT, "me/link.html" { token: String, valid: bool });
page!(MeHomeT, "me/home.html" {
    m: Member,
    plans: String,
    allowed: bool,
    why: String,
    week: Option<crate::week::WeekView>,
    devices: Vec<(String, String)>,
    device_limit: u32,
    guests: Vec<GuestPass>,
    requests: Vec<(String, String, String)>,
    can_sponsor: bool,
    has_password: bool,
    passphrases: Vec<super::passphrases::Row>,
    notice: Option<String>,
    error: Option<String>,
});
page!(MeCredentialsT, "me/credentials.html" {
    username: String,
    password: String,
    qr: String,
    qr_kind: String,
    rotated: bool,
});

pub struct GuestPass {
    pub code: String,
    pub made: String,
    pub state: String,
}

/// Self-service actions are audited under the member's email.
fn actor(m: &Member) -> Actor {
    Actor {
        name: m.email.clone(),
        source: "self-service".into(),
    }
}

impl Console {
    fn me_cookie(&self, token: &str, max_age: i64) -> HeaderValue {
        let secure = if self.0.settings.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/me; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII")
    }

    pub(super) async fn me_page(&self, title: &str, who: Option<&Member>, csrf: String) -> Page {
        Page {
            site: self.site().await,
            title: title.into(),
            operator: who.map(|m| m.name.clone()),
            role: "member".into(),
            csrf,
        }
    }

    async fn member_session(&self, headers: &HeaderMap) -> Option<MemberSession> {
        let token = cookie_value(headers, COOKIE)?;
        let s = &self.0.settings;
        match self
            .0
            .store
            .member_session(&token_hash(&token), clock::now(), s.idle, s.absolute)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "self-service: cannot read sessions");
                None
            }
        }
    }
}

/// The signed-in member, or the sign-in page.
async fn signed_in(c: &Console, headers: &HeaderMap) -> Result<(MemberSession, Member), Response> {
    let Some(s) = c.member_session(headers).await else {
        return Err(Redirect::to("/me/login").into_response());
    };
    match c.0.store.member(&s.member_id).await {
        Ok(m) => Ok((s, m)),
        Err(e) => Err(unavailable("self-service", e)),
    }
}

/// For changes: signed in, posting from our own page with the session's token.
pub(super) async fn signed_in_post(
    c: &Console,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(MemberSession, Member), Response> {
    let (s, m) = signed_in(c, headers).await?;
    if !same_origin(headers) || !bool::from(s.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(StatusCode::FORBIDDEN.into_response());
    }
    Ok((s, m))
}

fn login_csrf_ok(headers: &HeaderMap, sent: &str) -> bool {
    same_origin(headers)
        && match cookie_value(headers, LOGIN_CSRF) {
            Some(c) => !sent.is_empty() && bool::from(c.as_bytes().ct_eq(sent.as_bytes())),
            None => false,
        }
}

/// A page without a session: a fresh double-submit token as cookie and form field.
async fn with_login_csrf(
    c: &Console,
    status: StatusCode,
    build: impl FnOnce(Page) -> Response,
) -> Response {
    let csrf = random_hex();
    let p = c.me_page("Member sign-in", None, csrf.clone()).await;
    let secure = if c.0.settings.tls { "; Secure" } else { "" };
    let cookie = HeaderValue::from_str(&format!(
        "{LOGIN_CSRF}={csrf}; Path=/me; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    ))
    .expect("ASCII");
    let mut r = build(p);
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

async fn render_login(
    c: &Console,
    email: String,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    with_login_csrf(c, status, |p| {
        MeLoginT {
            p,
            email,
            error,
            notice,
        }
        .into_response()
    })
    .await
}

pub async fn login_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    if c.member_session(&headers).await.is_some() {
        return Redirect::to("/me").into_response();
    }
    render_login(&c, String::new(), None, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(c): State<Console>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let email = f.email.trim().to_lowercase();
    if !login_csrf_ok(&headers, &f.csrf) {
        let msg = "The form expired. Please try again.".to_string();
        return render_login(&c, email, Some(msg), None, StatusCode::FORBIDDEN).await;
    }
    let now = Instant::now();
    let ip = conn.peer.ip().to_string();
    let (account, address) = (format!("me:{email}"), format!("address:{ip}"));
    if let Some(wait) =
        c.0.by_address
            .blocked(&address, now)
            .or_else(|| c.0.by_account.blocked(&account, now))
    {
        warn!(%ip, "self-service: sign-in refused, too many failed attempts");
        let msg = format!(
            "Too many failed attempts. Try again in {} minutes, or use a sign-in link.",
            wait.div_ceil(60)
        );
        return render_login(&c, email, Some(msg), None, StatusCode::TOO_MANY_REQUESTS).await;
    }
    let found = match c.0.store.member_login(&email).await {
        Ok(f) => f,
        Err(e) => return unavailable("self-service", e),
    };
    let (id, hash) = match found {
        Some((id, Some(hash))) => (Some(id), hash),
        // No such member, or no password set: the same work and the same answer.
        _ => (None, c.0.dummy_hash.clone()),
    };
    let password = f.password.clone();
    let verified = tokio::task::spawn_blocking(move || {
        frontdesk_core::secrets::verify_login_password(&password, &hash)
    })
    .await
    .unwrap_or(false);
    let member = match id.filter(|_| verified) {
        Some(id) => match c.0.store.member(&id).await {
            Ok(m) if m.status == frontdesk_core::model::MemberStatus::Active => Some(m),
            Ok(_) => None,
            Err(e) => return unavailable("self-service", e),
        },
        None => None,
    };
    let Some(m) = member else {
        c.0.by_account.fail(&account, now);
        c.0.by_address.fail(&address, now);
        info!(%ip, "self-service: failed sign-in");
        let msg = "Wrong email or password (or no password set yet: use a sign-in link).";
        return render_login(&c, email, Some(msg.into()), None, StatusCode::UNAUTHORIZED).await;
    };
    start(&c, &m, &ip).await
}

async fn start(c: &Console, m: &Member, ip: &str) -> Response {
    // A new token at every sign-in (no fixation).
    let token = random_hex();
    if let Err(e) =
        c.0.store
            .create_member_session(&token_hash(&token), &m.id, &random_hex(), ip, clock::now())
            .await
    {
        return unavailable("self-service", e);
    }
    info!(member = %m.id, %ip, "self-service: sign-in");
    let _ =
        c.0.store
            .record_event(
                &actor(m),
                "member.sign_in",
                &m.id,
                Some(format!("from {ip}")),
            )
            .await;
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                c.me_cookie(&token, c.0.settings.absolute.num_seconds()),
            ),
            (header::LOCATION, HeaderValue::from_static("/me")),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LinkRequestForm {
    csrf: String,
    email: String,
}

/// "Mail me a sign-in link": the same answer whether or not the address is a member's; the
/// mail is sent in the background (an SMTP round trip would tell the two apart).
pub async fn link_request(
    State(c): State<Console>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    Form(f): Form<LinkRequestForm>,
) -> Response {
    let email = f.email.trim().to_lowercase();
    if !login_csrf_ok(&headers, &f.csrf) {
        let msg = "The form expired. Please try again.".to_string();
        return render_login(&c, email, Some(msg), None, StatusCode::FORBIDDEN).await;
    }
    let now = Instant::now();
    let (by_mail, by_ip) = (
        format!("link:{email}"),
        format!("link-ip:{}", conn.peer.ip()),
    );
    if c.0.links.blocked(&by_mail, now).is_some() || c.0.links.blocked(&by_ip, now).is_some() {
        let msg = "Several links were sent already: please use the newest one, or wait a while.";
        return render_login(
            &c,
            email,
            Some(msg.into()),
            None,
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    c.0.links.fail(&by_mail, now);
    c.0.links.fail(&by_ip, now);
    let sent = format!(
        "If {email} belongs to a member, a sign-in link is on its way. It works once, for {LINK_MINUTES} minutes."
    );
    let member = match c.0.store.member(&email).await {
        Ok(m) if m.status == frontdesk_core::model::MemberStatus::Active => Some(m),
        Ok(_) | Err(StoreError::NotFound(_)) => None,
        Err(e) => return unavailable("self-service", e),
    };
    match (member, c.0.mailer.clone()) {
        (Some(m), Some(mailer)) => {
            let token = random_hex();
            let t = clock::now();
            if let Err(e) =
                c.0.store
                    .create_member_link(
                        &token_hash(&token),
                        &m.id,
                        t,
                        t + chrono::Duration::minutes(LINK_MINUTES),
                    )
                    .await
            {
                return unavailable("self-service", e);
            }
            let site = c.site().await;
            let url = format!(
                "{}/me/link/{token}",
                c.0.settings.public_url.trim_end_matches('/')
            );
            let mail = Mail {
                to: m.email.clone(),
                subject: format!("Your sign-in link for {site}"),
                body: format!(
                    "Hello {},\n\nSign in to your {site} member page here (the link works once, for {LINK_MINUTES} minutes):\n\n{url}\n\n\
                     If you did not ask for it, ignore this mail: nobody can sign in without the link.\n",
                    m.name
                ),
            };
            let id = m.id.clone();
            tokio::spawn(async move {
                match mailer.send(mail).await {
                    Ok(()) => info!(member = %id, "self-service: sign-in link sent"),
                    Err(e) => {
                        warn!(member = %id, error = %e, "self-service: sign-in link not sent")
                    }
                }
            });
        }
        (Some(m), None) => warn!(member = %m.id, "self-service: no mailer, sign-in link not sent"),
        (None, _) => {
            info!("self-service: sign-in link asked for an address that is no active member")
        }
    }
    render_login(&c, email, None, Some(sent), StatusCode::OK).await
}

fn valid_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opening the link changes nothing (mail scanners open links): a button signs in.
pub async fn link_page(State(c): State<Console>, Path(token): Path<String>) -> Response {
    let valid = valid_token(&token)
        && match c
            .0
            .store
            .member_link_valid(&token_hash(&token), clock::now())
            .await
        {
            Ok(v) => v,
            Err(e) => return unavailable("self-service", e),
        };
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    with_login_csrf(&c, status, |p| MeLinkT { p, token, valid }.into_response()).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn link_use(
    State(c): State<Console>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !login_csrf_ok(&headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let used = match valid_token(&token) {
        true => match c
            .0
            .store
            .use_member_link(&token_hash(&token), clock::now())
            .await
        {
            Ok(u) => u,
            Err(e) => return unavailable("self-service", e),
        },
        false => None,
    };
    let member = match used {
        Some(id) => match c.0.store.member(&id).await {
            Ok(m) if m.status == frontdesk_core::model::MemberStatus::Active => Some(m),
            Ok(_) => None,
            Err(e) => return unavailable("self-service", e),
        },
        None => None,
    };
    match member {
        Some(m) => start(&c, &m, &conn.peer.ip().to_string()).await,
        None => {
            with_login_csrf(&c, StatusCode::GONE, |p| {
                MeLinkT {
                    p,
                    token: String::new(),
                    valid: false,
                }
                .into_response()
            })
            .await
        }
    }
}

pub async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(s) = c.member_session(&headers).await {
        if !same_origin(&headers) || !bool::from(s.csrf.as_bytes().ct_eq(f.csrf.as_bytes())) {
            return StatusCode::FORBIDDEN.into_response();
        }
        if let Some(t) = cookie_value(&headers, COOKIE) {
            if let Err(e) = c.0.store.end_member_session(&token_hash(&t)).await {
                warn!(error = %e, "self-service: sign-out failed");
            }
        }
        info!(member = %s.member_id, "self-service: sign-out");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, c.me_cookie("", 0)),
            (header::LOCATION, HeaderValue::from_static("/me/login")),
        ],
    )
        .into_response()
}

pub async fn home(State(c): State<Console>, headers: HeaderMap) -> Response {
    let (s, m) = match signed_in(&c, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    home_page(&c, &s, m, None, None, StatusCode::OK).await
}

/// The member's current plan: the newest assignment that holds today, else the newest.
pub(super) fn current_plan<'a>(
    catalog: &'a frontdesk_core::decide::Catalog,
    m: &Member,
    now: DateTime<Utc>,
) -> Option<&'a frontdesk_core::Plan> {
    let today = catalog.site.date_at(now);
    m.assignment_on(today)
        .or(m.assignments.last())
        .and_then(|a| catalog.plan(a.plan_id))
}

async fn home_page(
    c: &Console,
    s: &MemberSession,
    m: Member,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let store = &c.0.store;
    let now = clock::now();
    let (catalog, devices, vouchers, requests, login) = match (
        store.catalog().await,
        store.devices_of(&m.id).await,
        store.vouchers_sponsored_by(&m.id).await,
        store.sponsor_requests_of(&m.id, now, 7).await,
        store.member_login(&m.email).await,
    ) {
        (Ok(a), Ok(b), Ok(v), Ok(r), Ok(l)) => (a, b, v, r, l),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), ..) | (.., Err(e), _) | (.., Err(e)) => {
            return unavailable("self-service", e)
        }
    };
    let passphrases = match super::passphrases::rows_for(store, &m).await {
        Ok(p) => p,
        Err(e) => return unavailable("self-service", e),
    };
    let tz = catalog.site.tz();
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %d %b %H:%M").to_string();
    let d = frontdesk_core::decide(
        &catalog,
        frontdesk_core::Subject::Member((&m).into()),
        frontdesk_core::Resource::WIFI,
        now,
    );
    let why = if d.allowed {
        match d.valid_until {
            Some(t) => format!("Wi-Fi works now, until {}.", when(t)),
            None => "Wi-Fi works now, with no end.".into(),
        }
    } else {
        match d.opens_at {
            Some(t) => format!("No Wi-Fi right now ({}); it opens {}.", d.reason, when(t)),
            None => format!("No Wi-Fi ({}). Ask at the front desk.", d.reason),
        }
    };
    let plan = current_plan(&catalog, &m, now);
    let week = plan.map(|p| crate::week::week_view(&catalog.site.calendar, &p.wifi, now));
    let device_limit = plan
        .and_then(|p| p.device_limit)
        .unwrap_or(DEVICES_UNLIMITED);
    let guests = vouchers
        .iter()
        .take(20)
        .map(|v| GuestPass {
            code: v.code.clone(),
            made: when(v.created_at),
            state: match v.expires_at() {
                None => "not used yet".into(),
                Some(t) if t > now => format!("in use, until {}", when(t)),
                Some(_) => "used, expired".into(),
            },
        })
        .collect();
    let plans = super::plan_names(&catalog, &m);
    let page = MeHomeT {
        p: c.me_page("My membership", Some(&m), s.csrf.clone()).await,
        plans,
        allowed: d.allowed,
        why,
        week,
        devices: devices
            .iter()
            .map(|d| (d.mac.to_string(), d.name.clone()))
            .collect(),
        device_limit,
        guests,
        requests: requests
            .iter()
            .map(|r| {
                (
                    r.guest_name.clone(),
                    when(r.created_at),
                    r.state.as_str().to_string(),
                )
            })
            .collect(),
        can_sponsor: catalog.plan_by_name(&c.0.settings.guest_plan).is_some(),
        has_password: matches!(login, Some((_, Some(_)))),
        passphrases,
        notice,
        error,
        m,
    };
    (status, page).into_response()
}

pub async fn reveal(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match c.0.store.reveal_wifi_password(&m.id, &actor(&m)).await {
        Ok(password) => credentials(&c, &s, m, password, false).await,
        Err(e) => unavailable("self-service", e),
    }
}

pub async fn rotate(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match c.0.store.rotate_password(&m.id, &actor(&m)).await {
        Ok((m, password)) => {
            info!(member = %m.id, "self-service: Wi-Fi password rotated");
            credentials(&c, &s, m, password, true).await
        }
        Err(e) => unavailable("self-service", e),
    }
}

async fn credentials(
    c: &Console,
    s: &MemberSession,
    m: Member,
    password: String,
    rotated: bool,
) -> Response {
    let (qr, qr_kind) = join_code(&c.0.store, &m, &password).await;
    MeCredentialsT {
        p: c.me_page("My Wi-Fi", Some(&m), s.csrf.clone()).await,
        username: m.wifi_username.clone(),
        password,
        qr,
        qr_kind,
        rotated,
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct DeviceForm {
    csrf: String,
    mac: String,
    #[serde(default)]
    name: String,
}

pub async fn device_add(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<DeviceForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let fail = |msg: String| {
        home_page(
            &c,
            &s,
            m.clone(),
            None,
            Some(msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let Ok(mac) = f.mac.trim().parse::<frontdesk_core::MacAddr>() else {
        return fail(format!(
            "{:?} is not a MAC address: it looks like 3C:22:FB:12:34:56 (on the device's label or network settings).",
            f.mac.trim()
        ))
        .await;
    };
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return fail("Give the device a name (up to 60 characters), e.g. \"printer\".".into())
            .await;
    }
    let catalog = match c.0.store.catalog().await {
        Ok(cat) => cat,
        Err(e) => return unavailable("self-service", e),
    };
    let Some(plan) = current_plan(&catalog, &m, clock::now()) else {
        return fail("You have no plan, so no device can be registered.".into()).await;
    };
    let limit = plan.device_limit.unwrap_or(DEVICES_UNLIMITED);
    match c
        .0
        .store
        .add_member_device(&m.id, mac, plan.id, name, limit, &actor(&m))
        .await
    {
        Ok(d) => {
            info!(member = %m.id, mac = %d.mac, "self-service: device registered");
            let msg = format!("{} ({}) is registered: it joins without a password.", d.name, d.mac);
            home_page(&c, &s, m, Some(msg), None, StatusCode::OK).await
        }
        Err(StoreError::Invalid(e)) => fail(format!("{}.", capitalised(&e))).await,
        Err(StoreError::Duplicate(_)) => {
            fail(format!("{mac} is registered already (to you or someone else): ask at the front desk if it is yours.")).await
        }
        Err(e) => unavailable("self-service", e),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    mac: String,
}

pub async fn device_remove(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<RemoveForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(mac) = f.mac.parse::<frontdesk_core::MacAddr>() else {
        return (StatusCode::NOT_FOUND, "no such device").into_response();
    };
    // Scoped by the session's member: someone else's MAC is "not found".
    match c.0.store.remove_device(mac, Some(&m.id), &actor(&m)).await {
        Ok(()) => {
            let msg = format!("{mac} is no longer registered.");
            home_page(&c, &s, m, Some(msg), None, StatusCode::OK).await
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such device").into_response(),
        Err(e) => unavailable("self-service", e),
    }
}

pub async fn guest_pass(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let now = clock::now();
    let made_today = match store.vouchers_sponsored_by(&m.id).await {
        Ok(v) => v
            .iter()
            .filter(|v| now - v.created_at < chrono::Duration::hours(24))
            .count(),
        Err(e) => return unavailable("self-service", e),
    };
    if made_today >= GUEST_PASSES_PER_DAY {
        let msg = format!("You made {GUEST_PASSES_PER_DAY} guest passes in the last 24 hours; ask at the front desk for more.");
        return home_page(&c, &s, m, None, Some(msg), StatusCode::TOO_MANY_REQUESTS).await;
    }
    let settings = &c.0.settings;
    match store
        .create_vouchers(
            1,
            settings.guest_pass_hours * 3600,
            1,
            &settings.guest_plan,
            Some(&m.id),
            &actor(&m),
        )
        .await
    {
        Ok(v) => {
            let code = v.first().map(|v| v.code.clone()).unwrap_or_default();
            info!(member = %m.id, "self-service: guest pass made");
            let msg = format!(
                "Guest pass {code}: your guest types it on the Wi-Fi sign-in page; it works on one device for {} hours from first use.",
                settings.guest_pass_hours
            );
            home_page(&c, &s, m, Some(msg), None, StatusCode::OK).await
        }
        Err(StoreError::NotFound(_)) => {
            let msg = "Guest passes are not set up here; ask at the front desk.".to_string();
            home_page(&c, &s, m, None, Some(msg), StatusCode::CONFLICT).await
        }
        Err(e) => unavailable("self-service", e),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    #[serde(default)]
    current: String,
    new: String,
    confirm: String,
}

/// Sets the self-service password (not the Wi-Fi password). Changing one needs the current
/// one; the first one can be set by a member signed in by link. Other sessions end.
pub async fn password(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let (s, m) = match signed_in_post(&c, &headers, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let fail = |msg: &str| {
        home_page(
            &c,
            &s,
            m.clone(),
            None,
            Some(msg.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let existing = match c.0.store.member_login(&m.email).await {
        Ok(Some((_, h))) => h,
        Ok(None) => None,
        Err(e) => return unavailable("self-service", e),
    };
    if let Some(hash) = existing {
        let current = f.current.clone();
        let ok = tokio::task::spawn_blocking(move || {
            frontdesk_core::secrets::verify_login_password(&current, &hash)
        })
        .await
        .unwrap_or(false);
        if !ok {
            return fail("The current password is wrong.").await;
        }
    }
    if f.new.chars().count() < 12 {
        return fail("The new password needs at least 12 characters.").await;
    }
    if f.new != f.confirm {
        return fail("The two new passwords differ.").await;
    }
    let new = f.new.clone();
    let hash =
        tokio::task::spawn_blocking(move || frontdesk_core::secrets::hash_login_password(&new))
            .await
            .unwrap_or_default();
    let keep = cookie_value(&headers, COOKIE).map(|t| token_hash(&t));
    if let Err(e) =
        c.0.store
            .set_member_login(&m.id, &hash, keep.as_deref(), &actor(&m))
            .await
    {
        return unavailable("self-service", e);
    }
    let msg = "Password saved: sign in with your email and it next time (other sign-ins ended).";
    home_page(&c, &s, m, Some(msg.into()), None, StatusCode::OK).await
}
