//! The controller's redirect in radius-only mode (SPEC §5). Frontdesk is not on the guests'
//! network, so this redirect is the only word on which device is asking: it is checked (MACs
//! parse, the site is a site id, URLs are http(s) and not huge), signed, and kept in a cookie
//! for the portal's pages, which then hand the device to the controller authorizer under a
//! location naming the controller kind and what its API needs:
//!
//! - UniFi: `/guest/s/<site>/?id=<client mac>&ap=<ap mac>&t=…&url=<original>&ssid=…` →
//!   `unifi/<site>`.
//! - Omada (external portal URL `…/omada`): `?clientMac=&apMac=&ssidName=&radioId=&site=&t=
//!   &redirectUrl=` (EAP) or `?clientMac=&gatewayMac=&vid=&site=&t=&redirectUrl=` (gateway) →
//!   `omada/<site>/ap/<ap mac>/<radio>/<ssid>` or `omada/<site>/gw/<gateway mac>/<vid>`.
//! - Meraki click-through (splash URL `…/meraki`): `?base_grant_url=&user_continue_url=
//!   &node_mac=&client_mac=` → `meraki/<node mac>`; the browser itself is sent to the grant
//!   URL (only `https://*.network-auth.com`) with `duration`, no API call.
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
    /// What else the controller's API needs after the site (Omada: `ap/<mac>/<radio>/<ssid>`
    /// or `gw/<mac>/<vid>`).
    #[serde(default)]
    pub path: Option<String>,
    /// Meraki: where the browser is sent to be let out.
    #[serde(default)]
    pub grant_url: Option<String>,
}

impl Handoff {
    pub fn client(&self) -> ClientRef {
        ClientRef {
            mac: self.mac,
            ip: None,
            location: Some(match &self.path {
                Some(p) => format!("{}/{}/{p}", self.kind, self.site),
                None => format!("{}/{}", self.kind, self.site),
            }),
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

/// Meraki's grant URL: its splash servers only, over https (never an open redirect).
pub fn safe_grant_url(u: &str) -> Option<String> {
    let u = safe_url(u)?;
    let rest = u.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    // No user-info tricks (`https://evil@…`): a plain Meraki splash host.
    (!host.contains('@') && host.ends_with(".network-auth.com")).then_some(u)
}

/// Meraki's grant request: continue URL and seconds of access.
pub fn meraki_grant(h: &Handoff, seconds: i64) -> Option<String> {
    let grant = h.grant_url.as_deref()?;
    let mut q = form_urlencoded(&[("duration", &seconds.max(60).to_string())]);
    if let Some(u) = &h.url {
        q = format!("continue_url={}&{q}", form_urlencoded_value(u));
    }
    Some(format!(
        "{grant}{}{q}",
        if grant.contains('?') { '&' } else { '?' }
    ))
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn form_urlencoded_value(v: &str) -> String {
    form_urlencoded(&[("", v)])
        .trim_start_matches('=')
        .to_string()
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
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query(&p, raw) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    if !site_ok(&site) {
        return p.bad_redirect("The controller site in the address is not valid.");
    }
    let Some(mac) = q.get("id").and_then(|m| m.parse::<MacAddr>().ok()) else {
        return p.bad_redirect("The address does not say which device you are (id).");
    };
    let Ok(ap) = mac_param(&q, "ap") else {
        return p.bad_redirect("The access point in the address is not valid.");
    };
    let h = Handoff {
        kind: "unifi".into(),
        site,
        mac,
        ap,
        ssid: ssid(&q, "ssid"),
        url: q.get("url").and_then(|u| safe_url(u)),
        expires: frontdesk_core::clock::now().timestamp() + LIFETIME_SECS,
        path: None,
        grant_url: None,
    };
    hand_over(&p, &conn, h)
}

/// An SSID is at most 32 bytes.
fn ssid(q: &HashMap<String, String>, key: &str) -> Option<String> {
    q.get(key)
        .filter(|s| !s.is_empty() && s.len() <= 32)
        .cloned()
}

/// The query of a redirect, or the page that says it is unusable.
fn query(p: &Portal, raw: Option<String>) -> Result<HashMap<String, String>, Box<Response>> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_QUERY {
        return Err(Box::new(p.bad_redirect(
            "The address is far longer than any controller sends.",
        )));
    }
    serde_urlencoded::from_str(&raw)
        .map_err(|_| Box::new(p.bad_redirect("The address could not be read.")))
}

fn mac_param(q: &HashMap<String, String>, key: &str) -> Result<Option<MacAddr>, ()> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(drop),
    }
}

fn hand_over(p: &Portal, conn: &Conn, h: Handoff) -> Response {
    tracing::info!(kind = %h.kind, mac = %h.mac, site = %h.site, ap = ?h.ap.map(|a| a.to_string()), "portal: guest redirected by the controller");
    let token = p.seal_handoff(&h);
    super::redirect(
        StatusCode::FOUND,
        &format!("{}/handoff?t={token}", p.base(conn)),
    )
}

/// `GET /omada`: Omada's external portal redirect (EAP or gateway).
pub async fn omada(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query(&p, raw) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    // Omada names sites by id or by name (names may have spaces).
    let site = q.get("site").cloned().unwrap_or_default();
    if site.is_empty() || site.len() > 64 || site.chars().any(|c| c == '/' || c.is_control()) {
        return p.bad_redirect("The controller site in the address is not valid.");
    }
    let Ok(Some(mac)) = mac_param(&q, "clientMac") else {
        return p.bad_redirect("The address does not say which device you are (clientMac).");
    };
    let (ap, path) = match (mac_param(&q, "apMac"), mac_param(&q, "gatewayMac")) {
        (Ok(Some(ap)), _) => {
            let radio: u8 = match q.get("radioId").map(|r| r.parse()) {
                Some(Ok(r)) if r <= 3 => r,
                None => 0,
                _ => return p.bad_redirect("The radio in the address is not valid."),
            };
            let Some(ssid) = ssid(&q, "ssidName") else {
                return p.bad_redirect("The address does not name the Wi-Fi (ssidName).");
            };
            (Some(ap), format!("ap/{ap}/{radio}/{ssid}"))
        }
        (Ok(None), Ok(Some(gw))) => {
            let vid: u16 = match q.get("vid").map(|v| v.parse()) {
                Some(Ok(v)) if v <= 4094 => v,
                _ => return p.bad_redirect("The VLAN in the address is not valid."),
            };
            (Some(gw), format!("gw/{gw}/{vid}"))
        }
        _ => return p.bad_redirect("The access point or gateway in the address is not valid."),
    };
    let h = Handoff {
        kind: "omada".into(),
        site,
        mac,
        ap,
        ssid: ssid(&q, "ssidName"),
        url: q.get("redirectUrl").and_then(|u| safe_url(u)),
        expires: frontdesk_core::clock::now().timestamp() + LIFETIME_SECS,
        path: Some(path),
        grant_url: None,
    };
    hand_over(&p, &conn, h)
}

/// `GET /meraki`: Meraki's click-through splash redirect.
pub async fn meraki(
    State(p): State<Portal>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query(&p, raw) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let Some(grant) = q.get("base_grant_url").and_then(|u| safe_grant_url(u)) else {
        return p.bad_redirect("The address has no Meraki grant URL (https://…network-auth.com).");
    };
    let Ok(Some(mac)) = mac_param(&q, "client_mac") else {
        return p.bad_redirect("The address does not say which device you are (client_mac).");
    };
    let Ok(node) = mac_param(&q, "node_mac") else {
        return p.bad_redirect("The access point in the address is not valid.");
    };
    let h = Handoff {
        kind: "meraki".into(),
        site: node
            .map(|n| n.to_string().replace([':', '-'], "").to_ascii_lowercase())
            .unwrap_or_else(|| "splash".into()),
        mac,
        ap: node,
        ssid: None,
        url: q.get("user_continue_url").and_then(|u| safe_url(u)),
        expires: frontdesk_core::clock::now().timestamp() + LIFETIME_SECS,
        path: None,
        grant_url: Some(grant),
    };
    hand_over(&p, &conn, h)
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
    fn meraki_grants_go_only_to_merakis_splash_servers() {
        assert!(safe_grant_url("https://n143.network-auth.com/splash/grant").is_some());
        for bad in [
            "http://n143.network-auth.com/splash/grant",
            "https://network-auth.com.evil.example/x",
            "https://evil.example/?x=.network-auth.com",
            "https://evil.example#.network-auth.com",
            "https://evil.example@n1.network-auth.com/splash/grant",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_grant_url(bad), None, "{bad}");
        }
        let h = Handoff {
            kind: "meraki".into(),
            site: "splash".into(),
            mac: "aa:bb:cc:dd:ee:01".parse().unwrap(),
            ap: None,
            ssid: None,
            url: Some("http://example.com/a?b=c".into()),
            expires: 0,
            path: None,
            grant_url: Some("https://n1.network-auth.com/splash/grant".into()),
        };
        assert_eq!(
            meraki_grant(&h, 5400).unwrap(),
            "https://n1.network-auth.com/splash/grant?continue_url=http%3A%2F%2Fexample.com%2Fa%3Fb%3Dc&duration=5400"
        );
    }

    #[test]
    fn site_ids() {
        assert!(site_ok("default") && site_ok("a1b2c3d4") && site_ok("x_y-z"));
        assert!(!site_ok("") && !site_ok("../x") && !site_ok("a/b") && !site_ok(&"a".repeat(65)));
    }
}
