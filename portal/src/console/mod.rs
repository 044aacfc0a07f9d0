//! The operator console (SPEC §7), first slice: login with argon2id passwords, sessions in the
//! database (cookie token stored hashed; idle and absolute expiry; log out everywhere),
//! one-time passwords replaced at first login, per-session CSRF tokens plus an Origin check,
//! login limits per account and per address with one answer for every failure, strict
//! security headers (CSP without inline code), and the dashboard ("who goes offline when").

use crate::limit::Limiter;
use crate::Conn;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use frontdesk_core::clock;
use frontdesk_core::scheduler::{Lookup, StoreLookup};
use frontdesk_core::store::console::{ConsoleSession, Operator};
use frontdesk_core::store::{Actor, Store};
use rand::RngCore;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

const COOKIE: &str = "fd_console";
mod charts;
mod manage;
mod me;
mod member_edit;
mod passphrases;
mod plans;
mod presence;
mod vouchers;

const CSS: &str = include_str!("../../static/console.css");

#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// A session unused this long ends.
    pub idle: chrono::Duration,
    /// A session ends this long after login, used or not.
    pub absolute: chrono::Duration,
    /// Served over HTTPS: cookies are `Secure`, HSTS is sent.
    pub tls: bool,
    /// Where members reach this listener (`[http] public_url`): sign-in links by mail point
    /// here, never to the request's Host header (which an attacker chooses).
    pub public_url: String,
    /// The plan of guest passes members make on `/me` (`[portal] guest_plan`).
    pub guest_plan: String,
    /// A guest pass's validity from first use.
    pub guest_pass_hours: i64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle: chrono::Duration::minutes(30),
            absolute: chrono::Duration::hours(12),
            tls: false,
            public_url: "http://127.0.0.1:8080".into(),
            guest_plan: "guest".into(),
            guest_pass_hours: 8,
        }
    }
}

struct Inner {
    store: Store,
    /// Ends RADIUS sessions (the operator's Disconnect button); `None`: no button.
    disconnector: Option<Arc<dyn frontdesk_core::ports::Disconnector>>,
    /// Sends members their sign-in links; `None`: links cannot be sent (passwords only).
    mailer: Option<Arc<dyn frontdesk_core::ports::Mailer>>,
    /// Sign-in link requests per address and per IP (5 an hour).
    links: Limiter,
    settings: ConsoleSettings,
    /// Failed logins: per account and per address (5 and 20 per 15 minutes).
    by_account: Limiter,
    by_address: Limiter,
    /// Verified against for unknown accounts, so they take as long as known ones.
    dummy_hash: String,
    /// Members, devices and catalog as of change-feed sequence number N: pages that decide
    /// every online session reuse it until something changes.
    lookup: tokio::sync::Mutex<Option<(i64, Arc<StoreLookup>)>>,
    /// The dashboard's charts, rebuilt at most once a minute.
    charts: tokio::sync::Mutex<Option<(Instant, Arc<charts::Charts>)>>,
}

#[derive(Clone)]
pub struct Console(Arc<Inner>);

/// What every console page's layout needs.
pub struct Page {
    pub site: String,
    pub title: String,
    pub operator: Option<String>,
    pub role: String,
    pub csrf: String,
}

page!(LoginT, "console/login.html" { email: String, error: Option<String> });
page!(TotpLoginT, "console/totp_login.html" { error: Option<String> });
page!(TotpEnrolT, "console/totp_enrol.html" { required: bool, qr: String, secret: String, error: Option<String> });
page!(RecoveryT, "console/recovery.html" { codes: Vec<String> });
page!(PasswordT, "console/password.html" { forced: bool, error: Option<String> });
page!(DashboardT, "console/dashboard.html" {
    online: usize,
    guests: usize,
    failed_hour: i64,
    by_plan: Vec<(String, usize)>,
    leaving: Vec<Leaving>,
    leaving_more: usize,
    alerts: Vec<charts::Alert>,
    charts: Arc<charts::Charts>,
});

page!(MembersT, "console/members.html" {
    q: String,
    status: String,
    plan: String,
    plans: Vec<String>,
    rows: Vec<MemberRow>,
    truncated: bool,
    can_add: bool,
});
page!(MemberT, "console/member.html" {
    m: frontdesk_core::Member,
    plans: String,
    allowed: bool,
    why: String,
    can_edit: bool,
    notice: Option<String>,
    sessions: Vec<(String, String, String, String)>,
    timeline: Vec<(String, String, String, String)>,
    devices: Vec<(String, String, String)>,
    doors: String,
    plan_names: Vec<String>,
    team_names: Vec<String>,
    current_plan: String,
    team: String,
    passphrases: Vec<passphrases::Row>,
});

page!(SessionsT, "console/sessions.html" {
    rows: Vec<SessionLine>,
    can_edit: bool,
    notice: Option<String>,
});

page!(AuditT, "console/audit.html" {
    action: String,
    q: String,
    csv: String,
    rows: Vec<(String, String, String, String, String)>,
});

pub struct SessionLine {
    pub id: i64,
    pub user: String,
    pub mac: String,
    pub nas: String,
    pub since: String,
    pub until: String,
    pub enforcement: String,
}

pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub plans: String,
    pub status: String,
}

/// Rows shown at most on the members list (search narrows it).
const LIST_MAX: usize = 500;

pub struct Leaving {
    pub who: String,
    pub plan: String,
    pub at: String,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Session tokens are stored as the same SHA-256 hex as API tokens.
fn token_hash(token: &str) -> String {
    crate::api::token_hash(token)
}

/// Changes made on the console are audited under the operator's email.
fn actor(s: &ConsoleSession) -> Actor {
    Actor {
        name: s.operator.email.clone(),
        source: "console".into(),
    }
}

/// The value of the cookie `name` the browser sent.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// A state-changing request must come from our own pages: when the browser says where it
/// comes from (Origin, else Referer), that must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    match from {
        None => true,
        Some(o) => o
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next() == Some(host))
            .unwrap_or(false),
    }
}

impl Console {
    pub fn new(store: Store, settings: ConsoleSettings) -> Console {
        Console(Arc::new(Inner {
            store,
            disconnector: None,
            mailer: None,
            links: Limiter::new(5, Duration::from_secs(3600)),
            settings,
            by_account: Limiter::new(5, Duration::from_secs(15 * 60)),
            by_address: Limiter::new(20, Duration::from_secs(15 * 60)),
            dummy_hash: frontdesk_core::secrets::hash_login_password(&random_hex()),
            lookup: tokio::sync::Mutex::new(None),
            charts: tokio::sync::Mutex::new(None),
        }))
    }

    /// Lets operators end sessions from the sessions page (Disconnect-Request).
    pub fn with_disconnector(
        self,
        disconnector: Arc<dyn frontdesk_core::ports::Disconnector>,
    ) -> Console {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_disconnector is called before the console is shared"));
        Console(Arc::new(Inner {
            disconnector: Some(disconnector),
            ..inner
        }))
    }

    /// Lets members ask for sign-in links by mail on `/me/login`.
    pub fn with_mailer(self, mailer: Arc<dyn frontdesk_core::ports::Mailer>) -> Console {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("with_mailer is called before the console is shared"));
        Console(Arc::new(Inner {
            mailer: Some(mailer),
            ..inner
        }))
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(dashboard))
            .route("/login", get(login_form).post(login))
            .route("/password", get(password_form).post(password))
            .route("/login/totp", get(totp_login_form).post(totp_login))
            .route("/totp", get(totp_enrol_form).post(totp_enrol))
            .route("/logout", post(logout))
            .route("/members", get(members))
            .route(
                "/members/new",
                get(manage::member_new_form).post(manage::member_new),
            )
            .route("/members/{id}", get(member))
            .route("/members/{id}/reveal", post(manage::reveal))
            .route("/members/{id}/rotate", post(manage::rotate))
            .route("/members/{id}/end", post(manage::end_at))
            .route("/members/{id}/edit", post(member_edit::edit))
            .route("/members/{id}/devices", post(member_edit::device_add))
            .route("/members/{id}/passphrases", post(passphrases::issue))
            .route(
                "/members/{id}/passphrases/{pid}/revoke",
                post(passphrases::revoke),
            )
            .route(
                "/members/{id}/passphrases/{pid}/show",
                post(passphrases::reveal),
            )
            .route(
                "/members/{id}/devices/remove",
                post(member_edit::device_remove),
            )
            .route("/tokens", get(manage::tokens).post(manage::token_create))
            .route("/tokens/{id}/revoke", post(manage::token_revoke))
            .route("/network", get(manage::network))
            .route("/network/nas", post(manage::nas_add))
            .route("/network/dns/{id}", post(manage::dns_decide))
            .route("/network/nas/{name}", post(manage::nas_edit))
            .route("/presence", get(presence::presence))
            .route("/vouchers", get(vouchers::vouchers).post(vouchers::create))
            .route("/vouchers/print", get(vouchers::sheet))
            .route("/explain", get(manage::explain))
            .route("/members/{id}/status", post(member_status))
            .route("/sessions", get(sessions))
            .route("/audit", get(audit))
            .route("/audit.csv", get(audit_csv))
            .route("/sessions/{id}/disconnect", post(disconnect_session))
            .route("/static/console.css", get(css))
            .route("/plans", get(plans::plans).post(plans::plan_save))
            .route("/plans/{name}/edit", get(plans::plan_edit_form))
            .route("/plans/hours", post(plans::hours))
            .route("/plans/closures", post(plans::closure_add))
            .route("/plans/closures/{id}/remove", post(plans::closure_remove))
            .route("/plans/teams", post(plans::team_add))
            .route("/plans/doors", post(plans::door_map))
            .route("/plans/doors/stop", post(plans::door_unmap))
            .route("/me", get(me::home))
            .route("/me/login", get(me::login_form).post(me::login))
            .route("/me/link", post(me::link_request))
            .route("/me/link/{token}", get(me::link_page).post(me::link_use))
            .route("/me/logout", post(me::logout))
            .route("/me/password", post(me::password))
            .route("/me/reveal", post(me::reveal))
            .route("/me/rotate", post(me::rotate))
            .route("/me/devices", post(me::device_add))
            .route("/me/devices/remove", post(me::device_remove))
            .route("/me/guests", post(me::guest_pass))
            .route("/me/passphrase", post(passphrases::me_show))
            .layer(axum::middleware::map_response_with_state(
                self.clone(),
                security_headers,
            ))
            .layer(DefaultBodyLimit::max(16 * 1024))
            .with_state(self)
    }

    /// The directory of members, devices and plans, reloaded only when the change feed moved
    /// (any process's change; a change landing during a load is seen on the next call, since
    /// the sequence number is read first).
    async fn lookup(&self) -> Result<Arc<StoreLookup>, frontdesk_core::store::StoreError> {
        let seq = self.0.store.last_change_seq().await?;
        let mut cached = self.0.lookup.lock().await;
        if let Some((at, l)) = &*cached {
            if *at == seq {
                return Ok(l.clone());
            }
        }
        let fresh = Arc::new(StoreLookup::load(&self.0.store).await?);
        *cached = Some((seq, fresh.clone()));
        Ok(fresh)
    }

    async fn site(&self) -> String {
        self.0
            .store
            .site()
            .await
            .map(|s| s.name)
            .unwrap_or_else(|_| "Frontdesk".into())
    }

    async fn page(&self, title: &str, session: Option<&ConsoleSession>) -> Page {
        Page {
            site: self.site().await,
            title: title.into(),
            operator: session.map(|s| s.operator.email.clone()),
            role: session
                .map(|s| s.operator.role.as_str().to_string())
                .unwrap_or_default(),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
        }
    }

    /// The session behind the request's cookie, if it is live.
    async fn session(&self, headers: &HeaderMap) -> Option<ConsoleSession> {
        let token = cookie_token(headers)?;
        let s = &self.0.settings;
        match self
            .0
            .store
            .console_session(&token_hash(&token), clock::now(), s.idle, s.absolute)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "console: cannot read sessions");
                None
            }
        }
    }

    /// Sets the session cookie and sends the browser to `to`.
    fn with_session_cookie(&self, token: &str, to: &'static str) -> Response {
        (
            StatusCode::SEE_OTHER,
            [
                (
                    header::SET_COOKIE,
                    self.cookie(token, self.0.settings.absolute.num_seconds()),
                ),
                (header::LOCATION, HeaderValue::from_static(to)),
            ],
        )
            .into_response()
    }

    fn cookie(&self, token: &str, max_age: i64) -> HeaderValue {
        let secure = if self.0.settings.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie is ASCII")
    }
}

async fn security_headers(State(c): State<Console>, mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own
    // form posts, and the Origin check would refuse them.
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    if c.0.settings.tls {
        set(h, "strict-transport-security", "max-age=31536000");
    }
    r
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// The login form has no session yet: its CSRF token is a random value also set as a
/// short-lived cookie (double submit), checked together with the Origin.
const LOGIN_CSRF: &str = "fd_login_csrf";

async fn login_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    if c.session(&headers).await.is_some() {
        return Redirect::to("/").into_response();
    }
    render_login(&c, String::new(), None, StatusCode::OK).await
}

async fn render_login(
    c: &Console,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = random_hex();
    let mut p = c.page("Log in", None).await;
    p.csrf = csrf.clone();
    let secure = if c.0.settings.tls { "; Secure" } else { "" };
    let cookie = HeaderValue::from_str(&format!(
        "{LOGIN_CSRF}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    ))
    .expect("ASCII");
    (
        status,
        [(header::SET_COOKIE, cookie)],
        LoginT { p, email, error },
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

fn login_csrf_ok(headers: &HeaderMap, sent: &str) -> bool {
    match cookie_value(headers, LOGIN_CSRF) {
        Some(c) => !sent.is_empty() && bool::from(c.as_bytes().ct_eq(sent.as_bytes())),
        None => false,
    }
}

async fn login(
    State(c): State<Console>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let email = f.email.trim().to_lowercase();
    if !same_origin(&headers) || !login_csrf_ok(&headers, &f.csrf) {
        return render_login(
            &c,
            email,
            Some("The form expired. Please try again.".into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let now = Instant::now();
    let ip = conn.peer.ip().to_string();
    let account = format!("account:{email}");
    let address = format!("address:{ip}");
    if let Some(wait) =
        c.0.by_address
            .blocked(&address, now)
            .or_else(|| c.0.by_account.blocked(&account, now))
    {
        // The same message whether or not the account exists.
        warn!(%ip, "console: login refused, too many failed attempts");
        frontdesk_core::metrics::CONSOLE_LOGIN_FAILURES.inc();
        return render_login(
            &c,
            email,
            Some(format!(
                "Too many failed attempts. Try again in {} minutes.",
                wait.div_ceil(60)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    let found = match c.0.store.operator_by_email(&email).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "console: cannot read operators");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let password = f.password.clone();
    let hash = found
        .as_ref()
        .map(|o| o.password_hash.clone())
        .unwrap_or_else(|| c.0.dummy_hash.clone());
    // Argon2 takes tens of milliseconds: off the async workers.
    let verified = tokio::task::spawn_blocking(move || {
        frontdesk_core::secrets::verify_login_password(&password, &hash)
    })
    .await
    .unwrap_or(false);
    let Some(op) = found.filter(|_| verified) else {
        c.0.by_account.fail(&account, now);
        c.0.by_address.fail(&address, now);
        info!(%ip, "console: failed login");
        frontdesk_core::metrics::CONSOLE_LOGIN_FAILURES.inc();
        return render_login(
            &c,
            email,
            Some("Wrong email or password.".into()),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    start_session(&c, &op, &ip).await
}

async fn start_session(c: &Console, op: &Operator, ip: &str) -> Response {
    // A new token at every login: a token planted before login is never promoted.
    let token = random_hex();
    if let Err(e) =
        c.0.store
            .create_console_session(
                &token_hash(&token),
                op.id,
                &random_hex(),
                ip,
                op.totp,
                clock::now(),
            )
            .await
    {
        warn!(error = %e, "console: cannot store the session");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    info!(operator = %op.email, %ip, "console: login");
    frontdesk_core::metrics::CONSOLE_LOGINS.inc();
    let _ =
        c.0.store
            .record_event(
                &Actor {
                    name: op.email.clone(),
                    source: "console".into(),
                },
                "console.login",
                &op.email,
                Some(format!("from {ip}")),
            )
            .await;
    let to = if op.totp {
        "/login/totp"
    } else if op.must_change_password {
        "/password"
    } else {
        "/"
    };
    c.with_session_cookie(&token, to)
}

/// A session past its second factor (it may still have to change its password).
async fn full_session(c: &Console, headers: &HeaderMap) -> Result<ConsoleSession, Response> {
    match c.session(headers).await {
        None => Err(Redirect::to("/login").into_response()),
        Some(s) if s.mfa_pending => Err(Redirect::to("/login/totp").into_response()),
        Some(s) => Ok(s),
    }
}

async fn password_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match full_session(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    PasswordT {
        forced: s.operator.must_change_password,
        p: c.page("Password", Some(&s)).await,
        error: None,
    }
    .into_response()
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

fn csrf_ok(s: &ConsoleSession, headers: &HeaderMap, sent: &str) -> bool {
    same_origin(headers) && bool::from(s.csrf.as_bytes().ct_eq(sent.as_bytes()))
}

async fn password(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let s = match full_session(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let fail = |error: &str| {
        let error = error.to_string();
        let c = c.clone();
        let s = s.clone();
        async move {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                PasswordT {
                    forced: s.operator.must_change_password,
                    p: c.page("Password", Some(&s)).await,
                    error: Some(error),
                },
            )
                .into_response()
        }
    };
    let (current, stored) = (f.current.clone(), s.operator.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || {
        frontdesk_core::secrets::verify_login_password(&current, &stored)
    })
    .await
    .unwrap_or(false);
    if !ok {
        return fail("The current password is wrong.").await;
    }
    if f.new.chars().count() < 12 {
        return fail("The new password needs at least 12 characters.").await;
    }
    if f.new != f.confirm {
        return fail("The two new passwords differ.").await;
    }
    if f.new == f.current {
        return fail("The new password must differ from the current one.").await;
    }
    let new = f.new.clone();
    let hash =
        tokio::task::spawn_blocking(move || frontdesk_core::secrets::hash_login_password(&new))
            .await
            .unwrap_or_default();
    let token = cookie_token(&headers).map(|t| token_hash(&t));
    let actor = actor(&s);
    if let Err(e) =
        c.0.store
            .set_operator_password(s.operator.id, &hash, token.as_deref(), &actor)
            .await
    {
        warn!(error = %e, "console: cannot store the password");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
    #[serde(default)]
    everywhere: Option<String>,
}

async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(s) = c.session(&headers).await {
        if !csrf_ok(&s, &headers, &f.csrf) {
            return StatusCode::FORBIDDEN.into_response();
        }
        let r = if f.everywhere.is_some() {
            c.0.store
                .end_console_sessions_of(s.operator.id)
                .await
                .map(|_| ())
        } else {
            match cookie_token(&headers) {
                Some(t) => c.0.store.end_console_session(&token_hash(&t)).await,
                None => Ok(()),
            }
        };
        if let Err(e) = r {
            warn!(error = %e, "console: logout failed");
        }
        info!(operator = %s.operator.email, "console: logout");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, c.cookie("", 0)),
            (header::LOCATION, HeaderValue::from_static("/login")),
        ],
    )
        .into_response()
}

async fn dashboard(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match dashboard_page(&c, &s).await {
        Ok(page) => page.into_response(),
        Err(e) => {
            warn!(error = %e, "console: dashboard failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Rows of "goes offline in the next 24 hours" on the dashboard.
const LEAVING_MAX: usize = 50;

async fn dashboard_page(
    c: &Console,
    s: &ConsoleSession,
) -> Result<DashboardT, frontdesk_core::store::StoreError> {
    let store = &c.0.store;
    let now = clock::now();
    let sessions = store
        .sessions(Some(now - frontdesk_core::enforce::ONLINE_HORIZON), 100_000)
        .await?;
    let lookup = c.lookup().await?;
    let catalog = lookup.catalog();
    let tz = catalog.site.tz();
    let mut by_plan = std::collections::BTreeMap::<String, usize>::new();
    let mut leaving = Vec::new();
    for row in &sessions {
        let Some(d) = lookup.decide_session(&catalog, row, now) else {
            *by_plan.entry("(unknown user)".into()).or_default() += 1;
            continue;
        };
        let plan = d.plan.clone().unwrap_or_else(|| "-".into());
        *by_plan.entry(plan.clone()).or_default() += 1;
        // Denied but still online: being disconnected now (or the NAS has not answered).
        let at: Option<DateTime<Utc>> = if d.allowed { d.valid_until } else { Some(now) };
        if let Some(at) = at.filter(|t| *t <= now + chrono::Duration::hours(24)) {
            let label = if d.allowed {
                at.with_timezone(&tz).format("%a %H:%M").to_string()
            } else {
                format!("now ({})", d.reason)
            };
            leaving.push((at, row.user_name.clone(), plan, label));
        }
    }
    leaving.sort();
    let guests = store.portal_clients(now).await?.len();
    let failed_hour = store
        .failed_logins_since(now - chrono::Duration::hours(1))
        .await?;
    let alerts = c.alerts().await?;
    let charts = c.charts(&catalog).await?;
    Ok(DashboardT {
        alerts,
        charts,
        p: c.page("Dashboard", Some(s)).await,
        online: sessions.len(),
        guests,
        failed_hour,
        by_plan: by_plan.into_iter().collect(),
        leaving_more: leaving.len().saturating_sub(LEAVING_MAX),
        // The soonest first; a big space's full list is the Sessions page.
        leaving: leaving
            .into_iter()
            .take(LEAVING_MAX)
            .map(|(_, who, plan, at)| Leaving { who, plan, at })
            .collect(),
    })
}

/// Owners and managers change members; viewers only look.
fn can_edit(s: &ConsoleSession) -> bool {
    matches!(
        s.operator.role,
        frontdesk_core::model::Role::Owner | frontdesk_core::model::Role::Manager
    )
}

/// The logged-in session, or where to send the browser instead. Order: the second factor,
/// the operator's own password, then (owners) two-factor enrolment.
async fn require(c: &Console, headers: &HeaderMap) -> Result<ConsoleSession, Response> {
    let s = full_session(c, headers).await?;
    if s.operator.must_change_password {
        return Err(Redirect::to("/password").into_response());
    }
    if s.operator.role == frontdesk_core::model::Role::Owner && !s.operator.totp {
        return Err(Redirect::to("/totp").into_response());
    }
    Ok(s)
}

/// A storage failure: logged with what failed, the operator asked to try again.
fn unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    warn!(error = %e, "console: {what} failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; try again",
    )
        .into_response()
}

/// Owners only; `refusal` is what others are told.
async fn require_owner(
    c: &Console,
    headers: &HeaderMap,
    refusal: &'static str,
) -> Result<ConsoleSession, Response> {
    let s = require(c, headers).await?;
    if s.operator.role != frontdesk_core::model::Role::Owner {
        return Err((StatusCode::FORBIDDEN, refusal).into_response());
    }
    Ok(s)
}

/// For changes: a logged-in owner or manager, posting from our own page with the session's
/// token. `refusal` is what a viewer is told.
async fn require_editor(
    c: &Console,
    headers: &HeaderMap,
    csrf: &str,
    refusal: &'static str,
) -> Result<ConsoleSession, Response> {
    let s = require(c, headers).await?;
    if !csrf_ok(&s, headers, csrf) {
        return Err(StatusCode::FORBIDDEN.into_response());
    }
    if !can_edit(&s) {
        return Err((StatusCode::FORBIDDEN, refusal).into_response());
    }
    Ok(s)
}

fn plan_names(catalog: &frontdesk_core::decide::Catalog, m: &frontdesk_core::Member) -> String {
    let names: Vec<&str> = m
        .assignments
        .iter()
        .filter_map(|a| catalog.plan(a.plan_id).map(|p| p.name.as_str()))
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

#[derive(Deserialize, Default)]
struct MembersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    plan: String,
}

async fn members(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<MembersQuery>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = frontdesk_core::store::MemberFilter {
        plan: Some(q.plan.clone()).filter(|p| !p.is_empty()),
        status: q.status.parse().ok(),
        team: None,
        search: Some(q.q.trim().to_string()).filter(|t| !t.is_empty()),
    };
    let lookup = match c.lookup().await {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "console: members list failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let catalog = &lookup.catalog;
    let plan_id = match &filter.plan {
        Some(p) => match catalog.plan_by_name(p) {
            Some(p) => Some(p.id),
            None => return (StatusCode::NOT_FOUND, "no such plan").into_response(),
        },
        None => None,
    };
    let mut list: Vec<&frontdesk_core::Member> = lookup
        .members
        .values()
        .filter(|m| filter.keeps(m, plan_id, None))
        .collect();
    list.sort_unstable_by(|a, b| (&a.name, &a.email).cmp(&(&b.name, &b.email)));
    let truncated = list.len() > LIST_MAX;
    let rows = list
        .iter()
        .take(LIST_MAX)
        .map(|m| MemberRow {
            id: m.id.clone(),
            name: m.name.clone(),
            email: m.email.clone(),
            plans: plan_names(catalog, m),
            status: m.status.as_str().into(),
        })
        .collect();
    MembersT {
        p: c.page("Members", Some(&s)).await,
        q: q.q,
        status: q.status,
        plan: q.plan,
        plans: catalog.plans.iter().map(|p| p.name.clone()).collect(),
        rows,
        truncated,
        can_add: can_edit(&s),
    }
    .into_response()
}

async fn member(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let notice = (query.as_deref() == Some("added=1")).then(|| {
        "Added. \"Reveal\" shows their Wi-Fi password and a QR code for joining.".to_string()
    });
    member_page(&c, &s, &id, notice, StatusCode::OK).await
}

async fn member_page(
    c: &Console,
    s: &ConsoleSession,
    id: &str,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let store = &c.0.store;
    let m = match store.member(id).await {
        Ok(m) => m,
        Err(frontdesk_core::store::StoreError::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, "no such member").into_response()
        }
        Err(e) => {
            warn!(error = %e, "console: member page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let now = clock::now();
    let passphrases = match passphrases::rows_for(store, &m).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "console: member page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let (catalog, sessions, timeline, devices) = match (
        store.catalog().await,
        store
            .online_sessions_of(
                &[m.id.as_str()],
                now - frontdesk_core::enforce::ONLINE_HORIZON,
            )
            .await,
        store.audit_of(&m.id, 50).await,
        store.devices_of(&m.id).await,
    ) {
        (Ok(a), Ok(b), Ok(t), Ok(d)) => (a, b, t, d),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            warn!(error = %e, "console: member page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let tz = catalog.site.tz();
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let d = frontdesk_core::decide(
        &catalog,
        frontdesk_core::Subject::Member((&m).into()),
        frontdesk_core::Resource::WIFI,
        now,
    );
    let why = if d.allowed {
        match d.valid_until {
            Some(t) => format!("until {} ({})", when(t), d.plan.clone().unwrap_or_default()),
            None => format!("no end ({})", d.plan.clone().unwrap_or_default()),
        }
    } else {
        match d.opens_at {
            Some(t) => format!("{} — opens {}", d.reason, when(t)),
            None => d.reason.to_string(),
        }
    };
    let plan = me::current_plan(&catalog, &m, now);
    // Door access by the same decision as Wi-Fi, for the plan's door groups (the door
    // systems themselves are mirrored by the door sync).
    let doors = match plan {
        Some(p) if p.door_groups.is_empty() => "no door groups on this plan".to_string(),
        Some(p) => p
            .door_groups
            .iter()
            .map(|g| {
                let d = frontdesk_core::decide(
                    &catalog,
                    frontdesk_core::Subject::Member((&m).into()),
                    frontdesk_core::Resource::Door { group: g },
                    now,
                );
                if d.allowed {
                    format!("{g}: open to them now")
                } else {
                    format!("{g}: not now ({})", d.reason)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => "no plan".into(),
    };
    let page = MemberT {
        passphrases,
        devices: devices
            .iter()
            .map(|d| {
                (
                    d.mac.to_string(),
                    d.name.clone(),
                    catalog
                        .plan(d.plan_id)
                        .map_or_else(|| "-".into(), |p| p.name.clone()),
                )
            })
            .collect(),
        doors,
        plan_names: catalog.plans.iter().map(|p| p.name.clone()).collect(),
        team_names: catalog.teams.iter().map(|t| t.name.clone()).collect(),
        current_plan: plan.map(|p| p.name.clone()).unwrap_or_default(),
        team: m
            .team_id
            .and_then(|id| catalog.team(id))
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        p: c.page(&m.name, Some(s)).await,
        plans: plan_names(&catalog, &m),
        allowed: d.allowed,
        why,
        can_edit: can_edit(s),
        notice,
        sessions: sessions
            .iter()
            .map(|r| {
                (
                    r.mac.clone().unwrap_or_else(|| r.user_name.clone()),
                    when(r.started_at),
                    r.nas_addr.clone(),
                    r.disconnect.clone().unwrap_or_else(|| "-".into()),
                )
            })
            .collect(),
        timeline: timeline
            .into_iter()
            .map(|e| {
                (
                    when(e.at),
                    e.actor,
                    e.action,
                    e.after.or(e.before).unwrap_or_default(),
                )
            })
            .collect(),
        m,
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
struct StatusForm {
    csrf: String,
    status: String,
}

async fn member_status(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot change members").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(status) = f.status.parse::<frontdesk_core::model::MemberStatus>() else {
        return (StatusCode::BAD_REQUEST, "unknown status").into_response();
    };
    let actor = actor(&s);
    match c.0.store.set_member_status(&id, status, &actor).await {
        Ok(m) => {
            info!(operator = %s.operator.email, member = %m.id, status = status.as_str(), "console: member status changed");
            let notice = match status {
                frontdesk_core::model::MemberStatus::Active => "Resumed.".to_string(),
                other => format!(
                    "Now {}: Wi-Fi sessions and portal devices are being ended.",
                    other.as_str()
                ),
            };
            member_page(&c, &s, &m.id, Some(notice), StatusCode::OK).await
        }
        Err(frontdesk_core::store::StoreError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "no such member").into_response()
        }
        Err(e) => member_page(&c, &s, &id, Some(e.to_string()), StatusCode::CONFLICT).await,
    }
}

async fn totp_login_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    match c.session(&headers).await {
        Some(s) if s.mfa_pending => TotpLoginT {
            p: c.page("Two-factor code", Some(&s)).await,
            error: None,
        }
        .into_response(),
        Some(_) => Redirect::to("/").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn totp_login(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let Some(s) = c.session(&headers).await.filter(|s| s.mfa_pending) else {
        return Redirect::to("/login").into_response();
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let now = Instant::now();
    let account = format!("account:{}", s.operator.email);
    let fail = |c: Console, s: ConsoleSession, msg: String, status: StatusCode| async move {
        (
            status,
            TotpLoginT {
                p: c.page("Two-factor code", Some(&s)).await,
                error: Some(msg),
            },
        )
            .into_response()
    };
    if let Some(wait) = c.0.by_account.blocked(&account, now) {
        return fail(
            c.clone(),
            s,
            format!(
                "Too many failed attempts. Try again in {} minutes.",
                wait.div_ceil(60)
            ),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
    }
    let store = &c.0.store;
    let code = f.code.trim().to_lowercase();
    let ok = if code.contains('-') {
        store
            .use_recovery_code(s.operator.id, &token_hash(&code))
            .await
            .unwrap_or(false)
    } else {
        match store.totp_secret(s.operator.id).await {
            Ok(Some((secret, last))) => {
                match crate::totp::verify(&secret, &code, clock::now().timestamp(), last) {
                    Some(step) => store
                        .use_totp_step(s.operator.id, step)
                        .await
                        .unwrap_or(false),
                    None => false,
                }
            }
            _ => false,
        }
    };
    if !ok {
        c.0.by_account.fail(&account, now);
        info!(operator = %s.operator.email, "console: wrong two-factor code");
        return fail(
            c.clone(),
            s,
            "That code is not right (or was used already).".into(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    // A new token for the full session: the half-open one is void.
    let Some(old) = cookie_token(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let token = random_hex();
    match store
        .complete_mfa(&token_hash(&old), &token_hash(&token))
        .await
    {
        Ok(true) => {}
        _ => return Redirect::to("/login").into_response(),
    }
    let to = if s.operator.must_change_password {
        "/password"
    } else {
        "/"
    };
    c.with_session_cookie(&token, to)
}

async fn totp_enrol_page(
    c: &Console,
    s: &ConsoleSession,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let secret = match c.0.store.totp_pending(s.operator.id).await {
        Ok(Some(sec)) if error.is_some() => sec,
        _ => {
            let sec = crate::totp::new_secret().to_vec();
            if let Err(e) = c.0.store.set_totp_pending(s.operator.id, &sec).await {
                warn!(error = %e, "console: cannot store a two-factor secret");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            sec
        }
    };
    let site = c.site().await;
    let uri = crate::totp::uri(&format!("Frontdesk {site}"), &s.operator.email, &secret);
    (
        status,
        TotpEnrolT {
            p: c.page("Two-factor", Some(s)).await,
            required: s.operator.role == frontdesk_core::model::Role::Owner,
            qr: crate::totp::qr_svg(&uri),
            secret: crate::totp::base32(&secret),
            error,
        },
    )
        .into_response()
}

async fn totp_enrol_form(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match full_session(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if s.operator.must_change_password {
        return Redirect::to("/password").into_response();
    }
    totp_enrol_page(&c, &s, None, StatusCode::OK).await
}

async fn totp_enrol(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let s = match full_session(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&s, &headers, &f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let store = &c.0.store;
    let pending = match store.totp_pending(s.operator.id).await {
        Ok(Some(p)) => p,
        _ => return Redirect::to("/totp").into_response(),
    };
    let Some(step) = crate::totp::verify(&pending, &f.code, clock::now().timestamp(), 0) else {
        return totp_enrol_page(
            &c,
            &s,
            Some("That code does not match. Check the phone's time and try the next code.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let codes = crate::totp::recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| token_hash(c)).collect();
    let actor = actor(&s);
    if let Err(e) = store
        .enable_totp(s.operator.id, step, &hashes, &actor)
        .await
    {
        warn!(error = %e, "console: cannot enable two-factor");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    info!(operator = %s.operator.email, "console: two-factor enabled");
    RecoveryT {
        p: c.page("Recovery codes", Some(&s)).await,
        codes,
    }
    .into_response()
}

async fn sessions(State(c): State<Console>, headers: HeaderMap) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    sessions_page(&c, &s, None).await
}

async fn sessions_page(c: &Console, s: &ConsoleSession, notice: Option<String>) -> Response {
    let store = &c.0.store;
    let now = clock::now();
    let (rows, lookup) = match (
        store
            .sessions(Some(now - frontdesk_core::enforce::ONLINE_HORIZON), 5_000)
            .await,
        c.lookup().await,
    ) {
        (Ok(r), Ok(l)) => (r, l),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "console: sessions page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let catalog = lookup.catalog();
    let tz = catalog.site.tz();
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %H:%M").to_string();
    let lines = rows
        .iter()
        .map(|r| {
            let until = match lookup.decide_session(&catalog, r, now) {
                Some(d) if !d.allowed => format!("now ({})", d.reason),
                Some(d) => d.valid_until.map_or("no end".into(), when),
                None => "-".into(),
            };
            SessionLine {
                id: r.id,
                user: r.user_name.clone(),
                mac: r.mac.clone().unwrap_or_default(),
                nas: r.nas_addr.clone(),
                since: when(r.started_at),
                until,
                enforcement: r.disconnect.clone().unwrap_or_else(|| "-".into()),
            }
        })
        .collect();
    SessionsT {
        p: c.page("Sessions", Some(s)).await,
        rows: lines,
        can_edit: can_edit(s) && c.0.disconnector.is_some(),
        notice,
    }
    .into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn disconnect_session(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match require_editor(&c, &headers, &f.csrf, "viewers cannot disconnect sessions").await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(disconnector) = c.0.disconnector.clone() else {
        return (StatusCode::NOT_FOUND, "disconnecting is not available").into_response();
    };
    use frontdesk_core::enforce::{end_one, Ended};
    let note = format!("operator {}", s.operator.email);
    let notice = match end_one(
        &c.0.store,
        disconnector.as_ref(),
        id,
        note,
        "console",
        clock::now(),
    )
    .await
    {
        Ok(Ended::NotOnline) => "That session is not online any more.".to_string(),
        Ok(Ended::Sent(user, Ok(()))) => {
            format!("{user} was disconnected; the device may log in again.")
        }
        Ok(Ended::Sent(_, Err(e))) => format!("The access point did not confirm: {e}"),
        Err(e) => format!("Could not disconnect: {e}"),
    };
    info!(operator = %s.operator.email, session = id, "console: session disconnect");
    sessions_page(&c, &s, Some(notice)).await
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    q: String,
}

async fn audit(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = &c.0.store;
    let (events, site) = match (
        store
            .audit_search(Some(q.action.trim()), Some(q.q.trim()), 500)
            .await,
        store.site().await,
    ) {
        (Ok(e), Ok(site)) => (e, site),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "console: audit page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let tz = site.tz();
    let csv = format!(
        "/audit.csv?{}",
        serde_urlencoded::to_string([("action", q.action.as_str()), ("q", q.q.as_str())])
            .unwrap_or_default()
    );
    AuditT {
        p: c.page("Audit", Some(&s)).await,
        rows: events
            .into_iter()
            .map(|e| {
                (
                    e.at.with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    e.actor,
                    e.action,
                    e.object,
                    e.after.or(e.before).unwrap_or_default(),
                )
            })
            .collect(),
        action: q.action,
        q: q.q,
        csv,
    }
    .into_response()
}

/// One CSV field: quoted, quotes doubled, and cells a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR) prefixed with `'` (CSV injection).
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

async fn audit_csv(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Response {
    let s = match require(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let events = match c
        .0
        .store
        .audit_search(Some(q.action.trim()), Some(q.q.trim()), 1_000_000)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "console: audit export failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let mut out = String::from("id,at,actor,source,action,object,before,after\r\n");
    for e in &events {
        let fields = [
            e.id.to_string(),
            e.at.to_rfc3339(),
            e.actor.clone(),
            e.source.clone(),
            e.action.clone(),
            e.object.clone(),
            e.before.clone().unwrap_or_default(),
            e.after.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    info!(operator = %s.operator.email, events = events.len(), "console: audit exported");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"frontdesk-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+2"), "\"'=1+2\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("-5"), "\"'-5\"");
    }
}
