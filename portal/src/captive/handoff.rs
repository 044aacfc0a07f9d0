//! The controller's redirect in radius-only mode (SPEC §5): the space's UniFi controller sends
//! a guest to `/guest/s/<site>/?id=<client mac>&ap=<ap mac>&t=…&url=<original>&ssid=…`.
//! Frontdesk is not on the guests' network, so this redirect is the only word on which device
//! is asking: it is checked (MACs parse, the site is a site id, the URL is http(s) and not
//! huge), signed, and kept in a cookie for the portal's pages, which then treat the device as
//! `unifi/<site>` for the controller authorizer.
//!
//! The original URL is only ever shown as a link on the "you're online" page, never followed
//! automatically (no open redirect; `javascript:` and other schemes are dropped).

use super::Portal;
use crate::Conn;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use frontdesk_core::ports::ClientRef;
use frontdesk_core::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const COOKIE: &str = "fd_portal";
/// How long a redirect stays good (a guest reading the rules slowly, a phone put away).
const LIFETIME_SECS: i64 = 2 * 3600;
const MAX_QUERY: usize = 4096;
const MAX_URL: usize = 2048;
const PURPOSE: &str = "handoff";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Handoff {
    /// The controller kind that redirected (`unifi`).
    pub kind: String,
    pub site: String,
    pub mac: MacAddr,
    pub ap: Option<MacAddr>,
    pub ssid: Option<String>,
    /// Where the guest was going: http(s) only, shown as a link.
    pub url: Option<String>,
    pub expires: i64,
}

impl Handoff {
    pub fn client(&self) -> ClientRef {
        ClientRef {
            mac: self.mac,
            ip: None,
            location: Some(format!("{}/{}", self.kind, self.site)),
        }
    }
}

tokio::task_local! {
    static HANDOFF: Option<Handoff>;
}

/// The redirect behind the request being served, if any.
pub fn current() -> Option<Handoff> {
    HANDOFF.try_with(Clone::clone).ok().flatten()
}

/// Controller site ids: UniFi uses short ids (`default`, `a1b2c3d4`).
fn site_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The original URL if it is a plain http(s) URL of sane length.
pub fn safe_url(u: &str) -> Option<String> {
    let u = u.trim();
    let lower = u.to_ascii_lowercase();
    ((lower.starts_with("http://") || lower.starts_with("https://"))
        && u.len() <= MAX_URL
        && u.len() > "https://".len()
        && !u.chars().any(|c| c.is_control() || c.is_whitespace()))
    .then(|| u.to_string())
}

impl Portal {
    fn seal_handoff(&self, h: &Handoff) -> String {
        self.0.tokens.seal(
            PURPOSE,
            &serde_json::to_vec(h).expect("a handoff serialises"),
        )
    }

    fn open_handoff(&self, token: &str) -> Option<Handoff> {
        let raw = self.0.tokens.open(PURPOSE, token)?;
        let h: Handoff = serde_json::from_slice(&raw).ok()?;
        (h.expires > frontdesk_core::clock::now().timestamp()).then_some(h)
    }

    fn bad_redirect(&self, why: &str) -> Response {
        self.message(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "Your device was sent here with an incomplete or damaged address. Disconnect from the Wi-Fi, connect again and open any web page.",
            Some(why.to_string()),
        )
    }
}

/// `GET /guest/s/<site>/`: UniFi's external portal redirect.
pub async fn unifi(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(site): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return p.bad_redirect("The address is far longer than any controller sends.");
    }
    let Ok(q) = serde_urlencoded::from_str::<HashMap<String, String>>(&query) else {
        return p.bad_redirect("The address could not be read.");
    };
    if !site_ok(&site) {
        return p.bad_redirect("The controller site in the address is not valid.");
    }
    let Some(mac) = q.get("id").and_then(|m| m.parse::<MacAddr>().ok()) else {
        return p.bad_redirect("The address does not say which device you are (id).");
    };
    let ap = match q.get("ap").filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse::<MacAddr>() {
            Ok(m) => Some(m),
            Err(_) => return p.bad_redirect("The access point in the address is not valid."),
        },
    };
    let h = Handoff {
        kind: "unifi".into(),
        site,
        mac,
        ap,
        // An SSID is at most 32 bytes.
        ssid: q
            .get("ssid")
            .filter(|s| !s.is_empty() && s.len() <= 32)
            .cloned(),
        url: q.get("url").and_then(|u| safe_url(u)),
        expires: frontdesk_core::clock::now().timestamp() + LIFETIME_SECS,
    };
    tracing::info!(mac = %h.mac, site = %h.site, ap = ?h.ap.map(|a| a.to_string()), "portal: guest redirected by the UniFi controller");
    let token = p.seal_handoff(&h);
    super::redirect(
        StatusCode::FOUND,
        &format!("{}/handoff?t={token}", p.base(&conn)),
    )
}

/// `GET /handoff?t=…` on the portal's own address: the redirect becomes a cookie there.
pub async fn landing(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    RawQuery(query): RawQuery,
) -> Response {
    let token = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<HashMap<String, String>>(q).ok())
        .and_then(|q| q.get("t").cloned())
        .unwrap_or_default();
    if token.len() > 2 * MAX_QUERY || p.open_handoff(&token).is_none() {
        return p.bad_redirect("The link has expired or was changed.");
    }
    let mut r = super::redirect(StatusCode::SEE_OTHER, "/");
    let cookie = format!(
        "{COOKIE}={token}; Path=/; Max-Age={LIFETIME_SECS}; HttpOnly; SameSite=Lax{}",
        if conn.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Middleware: the request's redirect (from its cookie) for [`current`].
pub async fn scope(
    State(p): State<Portal>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let h = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|t| p.open_handoff(t));
    HANDOFF.scope(h, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_web_urls_survive() {
        assert_eq!(
            safe_url("http://example.com/a?b=c").as_deref(),
            Some("http://example.com/a?b=c")
        );
        assert!(safe_url("HTTPS://example.com/").is_some());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example/",
            "ftp://x/",
            "https://",
            "http://a b/",
            "http://x/\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_url(bad), None, "{bad}");
        }
        assert_eq!(safe_url(&format!("http://x/{}", "a".repeat(3000))), None);
    }

    #[test]
    fn site_ids() {
        assert!(site_ok("default") && site_ok("a1b2c3d4") && site_ok("x_y-z"));
        assert!(!site_ok("") && !site_ok("../x") && !site_ok("a/b") && !site_ok(&"a".repeat(65)));
    }
}
