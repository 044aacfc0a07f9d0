//! The captive portal (SPEC §5): acceptable-use page, voucher login, status, "closed now" and
//! "device limit reached" pages, the OS connectivity probes and the RFC 8908 API.
//!
//! It does not know how a client is let out: a [`ClientAuthorizer`] does that (nftables set in
//! gateway mode, the controller's API in radius-only mode), and a [`ClientLocator`] says which
//! device is behind a connection. The same pages serve both modes.

mod blocked;
pub mod handoff;
mod member;
mod pages;
mod sponsor;

use crate::csrf::Tokens;
use crate::limit::Limiter;
use crate::Conn;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use frontdesk_core::decide::Catalog;
use frontdesk_core::ports::{ClientAuthorizer, ClientLocator, ClientRef, Mailer};
use frontdesk_core::store::portal::{PortalClient, PortalKind, Redeemed};
use frontdesk_core::store::{Actor, Store};
use frontdesk_core::{decide, Reason, Resource, Subject, Voucher};
use pages::*;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{info, warn};

/// Longest form body the portal reads; anything bigger gets a clear page, not a parse.
const MAX_FORM: usize = 8 * 1024;
/// Longest voucher code accepted (codes are 10 characters plus a dash; phones add spaces).
const MAX_CODE: usize = 64;

pub const DEFAULT_AUP: &str = "This network is provided for the guests of our space. \
Do not use it for anything illegal, to attack or scan other devices, or to send spam.\n\n\
We may limit or end access for devices that disturb others. We do not read your traffic; \
we keep which device used which voucher and when, for as long as the law requires.";

#[derive(Clone, Debug)]
pub struct PortalSettings {
    /// The plan whose Wi-Fi window says when guests may get in ("closed now" page).
    pub guest_plan: String,
    /// The portal's own URL (`[portal] public_url`); default: the address it was reached on.
    pub public_url: Option<String>,
    /// Path of the RFC 8908 API (the URL that DHCP option 114 announces).
    pub api_path: String,
    /// Acceptable-use text; paragraphs separated by blank lines.
    pub aup: String,
    pub max_failures_per_mac: u32,
    pub max_failures_per_ip: u32,
    pub failure_window: Duration,
    /// Offer "invited by a member?" (needs mail).
    pub sponsors: bool,
    /// How long a member's approval link works.
    pub sponsor_request_ttl: Duration,
    /// Longest access a sponsor grants (the guest plan's hours bound it too).
    pub sponsor_validity: Duration,
    pub max_sponsor_requests_per_hour: u32,
    /// The portal's HTTPS address (member sign-in is offered only there); None without TLS.
    pub https_url: Option<String>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            guest_plan: "guest".into(),
            public_url: None,
            api_path: "/.well-known/captive-portal".into(),
            aup: DEFAULT_AUP.into(),
            max_failures_per_mac: 5,
            max_failures_per_ip: 20,
            failure_window: Duration::from_secs(600),
            sponsors: true,
            sponsor_request_ttl: Duration::from_secs(30 * 60),
            sponsor_validity: Duration::from_secs(8 * 3600),
            max_sponsor_requests_per_hour: 3,
            https_url: None,
        }
    }
}

/// The portal's shared state; cheap to clone.
#[derive(Clone)]
pub struct Portal(Arc<Inner>);

struct Inner {
    store: Store,
    catalog: watch::Receiver<Arc<Catalog>>,
    authorizer: Arc<dyn ClientAuthorizer>,
    locator: Arc<dyn ClientLocator>,
    mailer: Arc<dyn Mailer>,
    settings: PortalSettings,
    aup: Vec<String>,
    tokens: Tokens,
    by_mac: Limiter,
    by_ip: Limiter,
    sponsor_limit: Limiter,
    /// Exception requests from the block page, per client address.
    dns_limit: Limiter,
    /// What the protective DNS blocks (the block page); `None` without it.
    blocks: Option<Arc<dyn frontdesk_core::ports::DnsBlocks>>,
    actor: Actor,
}

impl Portal {
    /// `key`: 32 random bytes for form tokens (a restart invalidates open forms, harmlessly).
    pub fn new(
        store: Store,
        catalog: watch::Receiver<Arc<Catalog>>,
        authorizer: Arc<dyn ClientAuthorizer>,
        locator: Arc<dyn ClientLocator>,
        mailer: Arc<dyn Mailer>,
        settings: PortalSettings,
        key: [u8; 32],
    ) -> Portal {
        let aup = settings
            .aup
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        Portal(Arc::new(Inner {
            by_mac: Limiter::new(settings.max_failures_per_mac, settings.failure_window),
            by_ip: Limiter::new(settings.max_failures_per_ip, settings.failure_window),
            sponsor_limit: Limiter::new(
                settings.max_sponsor_requests_per_hour,
                Duration::from_secs(3600),
            ),
            dns_limit: Limiter::new(5, Duration::from_secs(3600)),
            blocks: None,
            store,
            catalog,
            authorizer,
            locator,
            mailer,
            aup,
            settings,
            tokens: Tokens::new(key),
            actor: Actor {
                name: "portal".into(),
                source: "portal".into(),
            },
        }))
    }

    /// Serves the protective DNS block page for what `blocks` says is blocked.
    pub fn with_dns_blocks(mut self, blocks: Arc<dyn frontdesk_core::ports::DnsBlocks>) -> Portal {
        Arc::get_mut(&mut self.0)
            .expect("set before the portal is shared")
            .blocks = Some(blocks);
        self
    }

    pub fn router(&self) -> Router {
        let api = self.0.settings.api_path.clone();
        // The portal's own pages answer only under its own address: "/" of any other site
        // (redirected here before login) goes through `other`, like every foreign URL.
        let pages = Router::new()
            .route("/", get(index))
            .route("/dns/request", post(blocked::request))
            .route("/aup", get(aup))
            .route("/accept", post(accept))
            .route("/login", post(login))
            .route("/status", get(status))
            .route("/handoff", get(handoff::landing))
            .route("/member", post(member::login))
            .route("/sponsor", post(sponsor::request))
            .route("/sponsor/wait/{id}", get(sponsor::wait))
            .route(
                "/sponsor/approve/{token}",
                get(sponsor::approve_page).post(sponsor::approve),
            )
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), own_host));
        Router::new()
            .merge(pages)
            // A controller's external-portal redirect (radius-only mode), on whatever address
            // the controller was told.
            .route("/guest/s/{site}/", get(handoff::unifi))
            .route("/guest/s/{site}", get(handoff::unifi))
            .route("/omada", get(handoff::omada))
            .route("/meraki", get(handoff::meraki))
            // Apple (iOS, macOS).
            .route("/hotspot-detect.html", get(apple))
            .route("/library/test/success.html", get(apple))
            // Android, ChromeOS.
            .route("/generate_204", get(android))
            .route("/gen_204", get(android))
            // Windows.
            .route("/connecttest.txt", get(windows))
            .route("/ncsi.txt", get(windows_ncsi))
            // Firefox.
            .route("/success.txt", get(firefox))
            .route(&api, get(captive_api))
            .fallback(other)
            .layer(DefaultBodyLimit::max(MAX_FORM))
            .layer(axum::middleware::map_response(headers))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                handoff::scope,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                blocked::intercept,
            ))
            .with_state(self.clone())
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.0.catalog.borrow().clone()
    }

    fn site(&self) -> String {
        self.catalog().site.name.clone()
    }

    async fn client(&self, conn: &Conn) -> Option<ClientRef> {
        // Sent by a controller (radius-only mode): its redirect named the device.
        if let Some(h) = handoff::current() {
            return Some(h.client());
        }
        self.0.locator.locate(conn.peer.ip()).await
    }

    /// The client's current authorization, if any.
    async fn online(&self, client: Option<&ClientRef>) -> Option<PortalClient> {
        let c = client?;
        match self
            .0
            .store
            .portal_client(c.mac, frontdesk_core::clock::now())
            .await
        {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "portal: cannot read portal clients");
                None
            }
        }
    }

    /// `Some(opens_at)` when guests cannot get in now.
    fn closed(&self, now: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
        let catalog = self.catalog();
        let plan = catalog.plan_by_name(&self.0.settings.guest_plan)?;
        let probe = Voucher {
            code: String::new(),
            plan_id: plan.id,
            valid_secs: 366 * 86_400,
            devices: 1,
            sponsor_id: None,
            created_at: now,
            first_used_at: Some(now),
        };
        let d = decide(&catalog, Subject::Voucher(&probe), Resource::WIFI, now);
        matches!(d.reason, Reason::OutsideHours | Reason::SiteClosed).then_some(d.opens_at)
    }

    fn base(&self, conn: &Conn) -> String {
        match &self.0.settings.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            // Browsers leave the default port out of the Host header and of URLs: so do we
            // (a portal on port 80 whose own links said ":80" redirected to itself forever).
            None if conn.local.port() == 80 => match conn.local.ip() {
                std::net::IpAddr::V4(ip) => format!("http://{ip}"),
                std::net::IpAddr::V6(ip) => format!("http://[{ip}]"),
            },
            None => format!("http://{}", conn.local),
        }
    }

    fn to_portal(&self, conn: &Conn) -> Response {
        redirect(StatusCode::FOUND, &format!("{}/", self.base(conn)))
    }

    fn page(&self, title: &str) -> Page {
        Page {
            site: self.site(),
            title: title.to_string(),
            refresh: 0,
        }
    }

    fn message(
        &self,
        status: StatusCode,
        title: &str,
        text: &str,
        detail: Option<String>,
    ) -> Response {
        let t = MessageT {
            p: self.page(title),
            is_error: status.is_client_error() || status.is_server_error(),
            text: text.to_string(),
            detail,
        };
        (status, t).into_response()
    }

    fn status_page(&self, pc: &PortalClient) -> Response {
        let catalog = self.catalog();
        let now = frontdesk_core::clock::now();
        StatusT {
            p: self.page("You're online"),
            until: when(pc.valid_until, catalog.site.tz(), now),
            remaining: remaining((pc.valid_until - now).num_seconds()),
            continue_url: handoff::current().and_then(|h| h.url),
        }
        .into_response()
    }

    fn login_page(&self, conn: &Conn, code: &str, error: Option<String>) -> Response {
        let status = if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        let t = LoginT {
            p: self.page("Enter your voucher"),
            csrf: self.0.tokens.issue(
                "login",
                conn.peer.ip(),
                frontdesk_core::clock::now().timestamp(),
            ),
            code: code.chars().take(MAX_CODE).collect(),
            error,
            sponsors: self.0.settings.sponsors,
            members: conn.tls,
            https_url: self.0.settings.https_url.clone(),
        };
        (status, t).into_response()
    }
}

fn redirect(status: StatusCode, to: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Portal answers must never be cached (a cached probe answer keeps a phone "online" or
/// "captive" wrongly), and the pages are not to be framed or to leak where they came from.
async fn headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

type Ctx = (State<Portal>, ConnectInfo<Conn>);

async fn index(State(p): State<Portal>, ConnectInfo(conn): ConnectInfo<Conn>) -> Response {
    let client = p.client(&conn).await;
    if let Some(pc) = p.online(client.as_ref()).await {
        return p.status_page(&pc);
    }
    let now = frontdesk_core::clock::now();
    if let Some(opens) = p.closed(now) {
        return closed_page(&p, opens, now);
    }
    WelcomeT {
        p: p.page("Welcome"),
        aup: p.0.aup.clone(),
        csrf: p.0.tokens.issue("accept", conn.peer.ip(), now.timestamp()),
    }
    .into_response()
}

fn closed_page(p: &Portal, opens: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Response {
    let tz = p.catalog().site.tz();
    let t = ClosedT {
        p: p.page("Closed now"),
        opens: opens.map(|o| when(o, tz, now)),
    };
    (StatusCode::FORBIDDEN, t).into_response()
}

async fn aup(State(p): State<Portal>) -> Response {
    AupT {
        p: p.page("Acceptable use"),
        aup: p.0.aup.clone(),
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AcceptForm {
    csrf: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf: String,
    code: String,
}

/// Reads a urlencoded form; oversized or malformed bodies get a clear page.
fn form<T: for<'de> Deserialize<'de>>(
    p: &Portal,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Box<Response>> {
    let body = body.map_err(|_| {
        Box::new(p.message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That was too much",
            "The form you sent is far larger than any real answer.",
            None,
        ))
    })?;
    parse_form(&body).ok_or_else(|| {
        Box::new(p.message(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "The form could not be read. Please start again.",
            None,
        ))
    })
}

fn parse_form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

fn not_on_guest_network(p: &Portal, ip: std::net::IpAddr) -> Response {
    p.message(
        StatusCode::FORBIDDEN,
        "We can't see your device",
        "This page only works from a device connected to the guest Wi-Fi.",
        Some(format!("Your address: {ip}")),
    )
}

fn expired_form(p: &Portal) -> Response {
    p.message(
        StatusCode::FORBIDDEN,
        "This page has expired",
        "For your safety, forms are only valid for a while and on the device that opened them.",
        Some("Start again from the welcome page.".into()),
    )
}

/// A login attempt that passed the checks every login form shares.
struct Attempt {
    client: ClientRef,
    mac_key: String,
    ip_key: String,
    at: Instant,
}

impl Attempt {
    /// Counts a wrong code or password against the device and its address.
    fn fail(&self, p: &Portal) {
        p.0.by_mac.fail(&self.mac_key, self.at);
        p.0.by_ip.fail(&self.ip_key, self.at);
    }
}

impl Portal {
    /// The form token, the device behind the connection, and the failure limits: what every
    /// login form checks first. `what` names the guessed secret in the "too many" page.
    async fn attempt(&self, conn: &Conn, csrf: &str, what: &str) -> Result<Attempt, Response> {
        let ip = conn.peer.ip();
        if !self
            .0
            .tokens
            .check("login", ip, csrf, frontdesk_core::clock::now().timestamp())
        {
            return Err(expired_form(self));
        }
        let Some(client) = self.client(conn).await else {
            return Err(not_on_guest_network(self, ip));
        };
        let at = Instant::now();
        let mac_key = format!("mac:{}", client.mac);
        let ip_key = format!("ip:{}", ip);
        if let Some(wait) = self
            .0
            .by_mac
            .blocked(&mac_key, at)
            .or_else(|| self.0.by_ip.blocked(&ip_key, at))
        {
            return Err(self.message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("Too many wrong {what} from this device."),
                Some(format!("Try again in {}.", remaining(wait as i64))),
            ));
        }
        Ok(Attempt {
            client,
            mac_key,
            ip_key,
            at,
        })
    }

    /// Lets the client out until `until` and records it (so a restart keeps it online). An
    /// authorizer failure is the only error: a failed record is logged, the client is online.
    async fn let_out(&self, record: PortalClient) -> Result<(), Response> {
        let client = record.client_ref();
        if let Err(e) = self
            .0
            .authorizer
            .authorize(&client, Some(record.valid_until))
            .await
        {
            warn!(mac = %record.mac, error = %e, kind = record.kind.as_str(), "portal: authorizing a client failed");
            return Err(self.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "We could not connect you",
                "The network did not let the device through. Please ask at the front desk.",
                None,
            ));
        }
        if let Err(e) = self.0.store.record_portal_client(&record).await {
            warn!(mac = %record.mac, error = %e, "portal: could not record an authorized client");
        }
        info!(mac = %record.mac, kind = record.kind.as_str(), subject = %record.subject, until = %record.valid_until, "portal: client online");
        frontdesk_core::metrics::PORTAL_ONLINE.inc();
        Ok(())
    }
}

async fn accept(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f: AcceptForm = match form(&p, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if !p.0.tokens.check(
        "accept",
        conn.peer.ip(),
        &f.csrf,
        frontdesk_core::clock::now().timestamp(),
    ) {
        return expired_form(&p);
    }
    p.login_page(&conn, "", None)
}

async fn login(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let f: LoginForm = match form(&p, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let now = frontdesk_core::clock::now();
    let ip = conn.peer.ip();
    let attempt = match p.attempt(&conn, &f.csrf, "codes").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let client = &attempt.client;
    let fail = |msg: &str| {
        attempt.fail(&p);
        info!(mac = %client.mac, %ip, "portal: wrong voucher code");
        frontdesk_core::metrics::PORTAL_REFUSED.inc();
        p.login_page(&conn, &f.code, Some(msg.to_string()))
    };
    let code = f.code.trim();
    if code.is_empty() {
        return p.login_page(
            &conn,
            "",
            Some("Please enter the code from your voucher.".into()),
        );
    }
    if code.len() > MAX_CODE {
        return fail("That is not a voucher code. Codes look like ABCDE-FGHJK.");
    }
    let voucher = match p.0.store.voucher(code).await {
        Ok(Some(v)) => v,
        Ok(None) => return fail("That code is not valid. Check it and try again."),
        Err(e) => return store_error(&p, e),
    };
    let catalog = p.catalog();
    // Decide before counting the device, so a try outside hours does not start the voucher.
    let d = decide(&catalog, Subject::Voucher(&voucher), Resource::WIFI, now);
    if !d.allowed {
        return denied(&p, &conn, &f.code, d.reason, d.opens_at, now);
    }
    let voucher = match p
        .0
        .store
        .redeem_voucher(code, client.mac, now, &p.0.actor)
        .await
    {
        Ok(Redeemed::Ok(v)) => v,
        Ok(Redeemed::NotFound) => return fail("That code is not valid. Check it and try again."),
        Ok(Redeemed::DeviceLimit { devices }) => {
            let t = DeviceLimitT {
                p: p.page("Device limit reached"),
                devices,
            };
            return (StatusCode::FORBIDDEN, t).into_response();
        }
        Err(e) => return store_error(&p, e),
    };
    let d = decide(&catalog, Subject::Voucher(&voucher), Resource::WIFI, now);
    if !d.allowed {
        return denied(&p, &conn, &f.code, d.reason, d.opens_at, now);
    }
    let until = d
        .valid_until
        .unwrap_or(now + chrono::Duration::seconds(voucher.valid_secs));
    let record = PortalClient {
        mac: client.mac,
        ip: Some(ip.to_string()),
        network: client.location.clone(),
        kind: PortalKind::Voucher,
        subject: voucher.code.clone(),
        authorized_at: now,
        valid_until: until,
    };
    if let Err(r) = p.let_out(record).await {
        return r;
    }
    redirect(StatusCode::SEE_OTHER, "/status")
}

fn denied(
    p: &Portal,
    conn: &Conn,
    code: &str,
    reason: Reason,
    opens: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Response {
    match reason {
        Reason::OutsideHours | Reason::SiteClosed => closed_page(p, opens, now),
        Reason::VoucherExpired | Reason::VoucherUsed | Reason::PlanExpired => p.login_page(
            conn,
            code,
            Some("This voucher has expired. Ask at the front desk for a new one.".into()),
        ),
        other => p.message(
            StatusCode::FORBIDDEN,
            "This voucher does not work here",
            "Please ask at the front desk.",
            Some(format!("Reason: {other}")),
        ),
    }
}

fn store_error(p: &Portal, e: frontdesk_core::store::StoreError) -> Response {
    warn!(error = %e, "portal: database error");
    p.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "Something went wrong on our side. Try again in a minute.",
        None,
    )
}

async fn status(State(p): State<Portal>, ConnectInfo(conn): ConnectInfo<Conn>) -> Response {
    let client = p.client(&conn).await;
    match p.online(client.as_ref()).await {
        // Meraki lets the device out when the browser asks its splash server to.
        Some(pc) => match handoff::current()
            .filter(|h| h.kind == "meraki")
            .and_then(|h| {
                handoff::meraki_grant(
                    &h,
                    (pc.valid_until - frontdesk_core::clock::now()).num_seconds(),
                )
            }) {
            Some(grant) => redirect(StatusCode::SEE_OTHER, &grant),
            None => p.status_page(&pc),
        },
        None => redirect(StatusCode::SEE_OTHER, "/"),
    }
}

async fn is_online((State(p), ConnectInfo(conn)): &Ctx) -> bool {
    let client = p.client(conn).await;
    p.online(client.as_ref()).await.is_some()
}

const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";

async fn apple(s: State<Portal>, c: ConnectInfo<Conn>) -> Response {
    let ctx = (s, c);
    if is_online(&ctx).await {
        ([(header::CONTENT_TYPE, "text/html")], APPLE_SUCCESS).into_response()
    } else {
        ctx.0.to_portal(&ctx.1)
    }
}

async fn android(s: State<Portal>, c: ConnectInfo<Conn>) -> Response {
    let ctx = (s, c);
    if is_online(&ctx).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ctx.0.to_portal(&ctx.1)
    }
}

async fn text_probe(ctx: Ctx, body: &'static str) -> Response {
    if is_online(&ctx).await {
        ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
    } else {
        ctx.0.to_portal(&ctx.1)
    }
}

async fn windows(s: State<Portal>, c: ConnectInfo<Conn>) -> Response {
    text_probe((s, c), "Microsoft Connect Test").await
}

async fn windows_ncsi(s: State<Portal>, c: ConnectInfo<Conn>) -> Response {
    text_probe((s, c), "Microsoft NCSI").await
}

async fn firefox(s: State<Portal>, c: ConnectInfo<Conn>) -> Response {
    text_probe((s, c), "success\n").await
}

/// RFC 8908 §5: `captive`, `user-portal-url`, and `seconds-remaining` while online.
async fn captive_api(State(p): State<Portal>, ConnectInfo(conn): ConnectInfo<Conn>) -> Response {
    let client = p.client(&conn).await;
    let online = p.online(client.as_ref()).await;
    let mut body = serde_json::json!({
        "captive": online.is_none(),
        "user-portal-url": format!("{}/", p.base(&conn)),
    });
    if let Some(pc) = online {
        body["seconds-remaining"] = (pc.valid_until - frontdesk_core::clock::now())
            .num_seconds()
            .max(0)
            .into();
        body["can-extend-session"] = false.into();
    }
    (
        [(header::CONTENT_TYPE, "application/captive+json")],
        body.to_string(),
    )
        .into_response()
}

async fn own_host(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = host_of(req.headers());
    if p.is_ours(&conn, &host) {
        next.run(req).await
    } else {
        let uri = req.uri().clone();
        other(State(p), ConnectInfo(conn), req.headers().clone(), uri).await
    }
}

fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

impl Portal {
    /// Is `host` (the Host header) this portal's own address or public name? The default
    /// port may be given or left out.
    pub(crate) fn is_ours(&self, conn: &Conn, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let base = self.base(conn).to_ascii_lowercase();
        let bare = match base.split_once("://") {
            Some(("https", _)) => host.strip_suffix(":443"),
            _ => host.strip_suffix(":80"),
        };
        host.is_empty()
            || base.ends_with(&format!("//{host}"))
            || bare.is_some_and(|b| base.ends_with(&format!("//{b}")))
    }
}

/// Anything else: a request meant for another site (port 80 redirected here before login, or a
/// browser reusing such a connection after login) goes to the portal, or, once online, back to
/// where it was going on a new connection. Our own unknown paths get a plain "not found".
async fn other(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if p.is_ours(&conn, &host) {
        return p.message(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing at this address.",
            None,
        );
    }
    let client = p.client(&conn).await;
    let mut r = if p.online(client.as_ref()).await.is_some() && valid_host(&host) {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        redirect(StatusCode::FOUND, &format!("http://{host}{path}"))
    } else {
        p.to_portal(&conn)
    };
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// "today at 19:00", "tomorrow at 08:00", "Monday at 08:00", or a date further out.
pub fn when(t: DateTime<Utc>, tz: chrono_tz::Tz, now: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    let days = (local.date_naive() - today).num_days();
    let hm = local.format("%H:%M");
    match days {
        0 => format!("today at {hm}"),
        1 => format!("tomorrow at {hm}"),
        2..=6 => format!("{} at {hm}", local.format("%A")),
        _ => format!("{} at {hm}", local.format("%a %-d %b")),
    }
}

/// "2 h 5 min", "45 min", "30 s".
pub fn remaining(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", (s + 59) / 60),
        _ => {
            let m = (s + 59) / 60;
            if m % 60 == 0 {
                format!("{} h", m / 60)
            } else {
                format!("{} h {} min", m / 60, m % 60)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(remaining(30), "30 s");
        assert_eq!(remaining(61), "2 min");
        assert_eq!(remaining(3600), "1 h");
        assert_eq!(remaining(3600 * 2 + 300), "2 h 5 min");
        assert_eq!(remaining(-5), "0 s");
    }

    #[test]
    fn instants_read_naturally_in_the_site_zone() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(when(at("2026-11-27T18:00:00Z"), tz, now), "today at 19:00");
        assert_eq!(
            when(at("2026-11-28T07:00:00Z"), tz, now),
            "tomorrow at 08:00"
        );
        assert_eq!(when(at("2026-11-30T07:00:00Z"), tz, now), "Monday at 08:00");
        assert_eq!(
            when(at("2026-12-10T07:00:00Z"), tz, now),
            "Thu 10 Dec at 08:00"
        );
    }

    #[test]
    fn only_plain_hosts_are_redirected_back() {
        assert!(valid_host("example.com:8080"));
        assert!(valid_host("[2001:db8::1]"));
        assert!(!valid_host("evil.com/\r\nSet-Cookie:x"));
        assert!(!valid_host(""));
    }
}
