//! Operator console, in process: login and its limits, one-time passwords, sessions (cookie,
//! expiry, logout everywhere), CSRF and Origin checks, security headers, escaping, dashboard.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use frontdesk_core::model::Role;
use frontdesk_core::store::{Actor, NewMember, OpenMode, Store};
use frontdesk_portal::console::{Console, ConsoleSettings};
use frontdesk_portal::totp;
use frontdesk_portal::Conn;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use tower::ServiceExt;

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        source: "test".into(),
    }
}

struct Lab {
    store: Store,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap().to_string())
    }

    fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    fn csrf(&self) -> String {
        let i = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form token")
            + 19;
        self.body[i..].split('"').next().unwrap().to_string()
    }
}

async fn lab(settings: ConsoleSettings) -> (Lab, String) {
    lab_with(settings, None).await
}

async fn lab_with(
    settings: ConsoleSettings,
    disconnector: Option<std::sync::Arc<dyn frontdesk_core::ports::Disconnector>>,
) -> (Lab, String) {
    lab_full(settings, disconnector, None).await
}

async fn lab_full(
    settings: ConsoleSettings,
    disconnector: Option<std::sync::Arc<dyn frontdesk_core::ports::Disconnector>>,
    mailer: Option<std::sync::Arc<dyn frontdesk_core::ports::Mailer>>,
) -> (Lab, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("c.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await.unwrap();
    store
        .init_site("Console Lab", "Europe/Berlin", &actor())
        .await
        .unwrap();
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "test-key")
        .await
        .unwrap();
    let (_, one_time) = store
        .add_admin("owner@example.com", Role::Owner, &actor())
        .await
        .unwrap();
    let mut console = Console::new(store.clone(), settings);
    if let Some(d) = disconnector {
        console = console.with_disconnector(d);
    }
    if let Some(m) = mailer {
        console = console.with_mailer(m);
    }
    let app = console.router();
    (
        Lab {
            store,
            app,
            _dir: dir,
        },
        one_time,
    )
}

impl Lab {
    async fn req(
        &self,
        method: &str,
        path: &str,
        cookies: &[&str],
        origin: Option<&str>,
        form: Option<String>,
    ) -> Resp {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "console.test");
        if !cookies.is_empty() {
            r = r.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        if form.is_some() {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut r = r.body(Body::from(form.unwrap_or_default())).unwrap();
        let peer: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(Conn {
            peer,
            local: "192.0.2.1:8080".parse().unwrap(),
            tls: false,
        }));
        let resp = self.app.clone().oneshot(r).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Login form, then POST; the response and the form's cookie.
    async fn login(&self, email: &str, password: &str) -> Resp {
        let form = self.req("GET", "/login", &[], None, None).await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf_cookie = form.set_cookie("fd_login_csrf").expect("login csrf cookie");
        let body = format!(
            "csrf={}&email={}&password={}",
            form.csrf(),
            urlencode(email),
            urlencode(password)
        );
        self.req(
            "POST",
            "/login",
            &[&csrf_cookie],
            Some("http://console.test"),
            Some(body),
        )
        .await
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

#[tokio::test]
async fn login_one_time_password_dashboard_and_logout() {
    let (lab, one_time) = lab(ConsoleSettings::default()).await;
    // Not logged in: to the login page. Strict headers everywhere.
    let r = lab.req("GET", "/", &[], None, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
    let r = lab.req("GET", "/login", &[], None, None).await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["referrer-policy"], "same-origin");
    assert!(!r.body.contains("<style"), "no inline styles under the CSP");

    // The one-time password logs in, but only to the password page.
    let r = lab.login("Owner@Example.com", &one_time).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/password"));
    let cookie = r.set_cookie("fd_console").unwrap();
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let r = lab.req("GET", "/", &[&cookie], None, None).await;
    assert_eq!(r.location(), Some("/password"));
    let page = lab.req("GET", "/password", &[&cookie], None, None).await;
    assert!(page.body.contains("one-time password"));
    let csrf = page.csrf();
    // Too short, then mismatched, then right.
    let change = |new: &str, confirm: &str| {
        format!(
            "csrf={csrf}&current={}&new={}&confirm={}",
            urlencode(&one_time),
            urlencode(new),
            urlencode(confirm)
        )
    };
    let r = lab
        .req(
            "POST",
            "/password",
            &[&cookie],
            None,
            Some(change("short", "short")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("at least 12"));
    let good = "correct horse battery";
    let r = lab
        .req(
            "POST",
            "/password",
            &[&cookie],
            None,
            Some(change(good, good)),
        )
        .await;
    assert_eq!(r.location(), Some("/"), "{}", r.body);
    // Owners must set up two-factor before anything else.
    let r = lab.req("GET", "/", &[&cookie], None, None).await;
    assert_eq!(r.location(), Some("/totp"));
    let r = lab.req("GET", "/members", &[&cookie], None, None).await;
    assert_eq!(r.location(), Some("/totp"));
    let (secret, recovery) = enrol_totp(&lab, &cookie).await;

    // The dashboard: an online session of a member named like an attack renders as text.
    let today = chrono::Utc::now().date_naive();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "<script>alert(1)</script>".into(),
                email: "x@example.com".into(),
                plan: "full-time".into(),
                wifi_username: Some("<b>x</b>@example.com".into()),
                ..Default::default()
            },
            today,
            &actor(),
        )
        .await
        .unwrap();
    lab.store
        .record_accounting(&[frontdesk_core::store::radius::AccountingRecord {
            at: chrono::Utc::now(),
            nas_id: 1,
            nas_addr: "192.0.2.50:1813".into(),
            status: frontdesk_core::store::radius::AcctStatus::Start,
            session_id: "s1".into(),
            user_name: m.wifi_username.clone(),
            member_id: Some(m.id.clone()),
            mac: None,
            framed_ip: None,
            vlan: None,
            class: None,
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            terminate_cause: None,
        }])
        .await
        .unwrap();
    let r = lab.req("GET", "/", &[&cookie], None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Wi-Fi sessions online"));
    assert!(r.body.contains("full-time"), "{}", r.body);
    assert!(!r.body.contains("<b>x</b>"), "escaped");

    // Logout needs the session's token and our origin.
    let csrf = r.csrf();
    let r = lab
        .req(
            "POST",
            "/logout",
            &[&cookie],
            Some("http://evil.example"),
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "cross-origin logout refused"
    );
    let r = lab
        .req(
            "POST",
            "/logout",
            &[&cookie],
            None,
            Some("csrf=wrong".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            "/logout",
            &[&cookie],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.location(), Some("/login"));
    let r = lab.req("GET", "/", &[&cookie], None, None).await;
    assert_eq!(r.location(), Some("/login"), "the old cookie is dead");

    // The new password leads to the code page; the half-open session opens nothing else.
    let r = lab.login("owner@example.com", good).await;
    assert_eq!(r.location(), Some("/login/totp"));
    let half = r.set_cookie("fd_console").unwrap();
    let r = lab.req("GET", "/", &[&half], None, None).await;
    assert_eq!(r.location(), Some("/login/totp"));
    let r = lab.req("GET", "/password", &[&half], None, None).await;
    assert_eq!(r.location(), Some("/login/totp"));
    let page = lab.req("GET", "/login/totp", &[&half], None, None).await;
    let csrf = page.csrf();
    let r = lab
        .req(
            "POST",
            "/login/totp",
            &[&half],
            None,
            Some(format!("csrf={csrf}&code=123456")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The code used at enrolment cannot be replayed: wait for the next step.
    let next = (chrono::Utc::now().timestamp() / 30 + 1) * 30;
    let wait = next - chrono::Utc::now().timestamp();
    tokio::time::sleep(std::time::Duration::from_secs(wait.max(0) as u64 + 1)).await;
    let r = lab
        .req(
            "POST",
            "/login/totp",
            &[&half],
            None,
            Some(format!("csrf={csrf}&code={}", current_code(&secret))),
        )
        .await;
    assert_eq!(r.location(), Some("/"), "{}", r.body);
    let full = r.set_cookie("fd_console").unwrap();
    assert_ne!(full, half, "a new token after the second factor");
    assert_eq!(
        lab.req("GET", "/", &[&half], None, None).await.location(),
        Some("/login")
    );
    assert_eq!(
        lab.req("GET", "/", &[&full], None, None).await.status,
        StatusCode::OK
    );
    // A recovery code works once.
    for expect_ok in [true, false] {
        let r = lab.login("owner@example.com", good).await;
        let half = r.set_cookie("fd_console").unwrap();
        let csrf = lab
            .req("GET", "/login/totp", &[&half], None, None)
            .await
            .csrf();
        let r = lab
            .req(
                "POST",
                "/login/totp",
                &[&half],
                None,
                Some(format!("csrf={csrf}&code={}", recovery[0])),
            )
            .await;
        if expect_ok {
            assert_eq!(r.location(), Some("/"), "{}", r.body);
        } else {
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "a recovery code is good once"
            );
        }
    }
    // The one-time password does not work any more.
    assert_eq!(
        lab.login("owner@example.com", &one_time).await.status,
        StatusCode::UNAUTHORIZED
    );
    let dump = lab.store.logical_dump().await.unwrap();
    assert!(dump.contains("admin.password") && dump.contains("admin.totp-enable"));
}

#[tokio::test]
async fn failed_logins_are_limited_and_do_not_reveal_accounts() {
    let (lab, _) = lab(ConsoleSettings::default()).await;
    let unknown = lab.login("nobody@example.com", "whatever-password").await;
    let wrong = lab.login("owner@example.com", "whatever-password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let text = |b: &str| b.find("role=\"alert\"").map(|i| b[i..i + 60].to_string());
    assert_eq!(text(&unknown.body), text(&wrong.body), "same answer");
    // Five failures per account in 15 minutes; the sixth try is refused unseen.
    for _ in 0..4 {
        lab.login("owner@example.com", "still-wrong-password").await;
    }
    let r = lab.login("owner@example.com", "still-wrong-password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many failed attempts"));
    // A login form posted without its cookie (another site, a replay) is refused.
    let form = lab.req("GET", "/login", &[], None, None).await;
    let r = lab
        .req(
            "POST",
            "/login",
            &[],
            None,
            Some(format!(
                "csrf={}&email=owner%40example.com&password=x",
                form.csrf()
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_new_logins_get_new_tokens() {
    let (lab, one_time) = lab(ConsoleSettings {
        idle: chrono::Duration::seconds(0),
        ..ConsoleSettings::default()
    })
    .await;
    let r = lab.login("owner@example.com", &one_time).await;
    let cookie = r.set_cookie("fd_console").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = lab.req("GET", "/password", &[&cookie], None, None).await;
    assert_eq!(r.location(), Some("/login"), "idle session ended");
    // A cookie set before login (fixation) is never what the login hands out.
    let planted = "fd_console=0000";
    let r = lab.login("owner@example.com", &one_time).await;
    assert_ne!(r.set_cookie("fd_console").as_deref(), Some(planted));
}

fn current_code(secret: &[u8]) -> String {
    let step = chrono::Utc::now().timestamp() / 30;
    format!("{:06}", totp::hotp(secret, step as u64, 6))
}

/// Enrols two-factor from the enrolment page; the secret and the recovery codes.
async fn enrol_totp(lab: &Lab, cookie: &str) -> (Vec<u8>, Vec<String>) {
    let page = lab.req("GET", "/totp", &[cookie], None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<svg"), "QR code inline");
    let i = page.body.find("id=\"secret\">").unwrap() + 12;
    let secret = totp::base32_decode(page.body[i..].split('<').next().unwrap()).unwrap();
    let r = lab
        .req(
            "POST",
            "/totp",
            &[cookie],
            None,
            Some(format!("csrf={}&code=000000", page.csrf())),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code is refused"
    );
    let page = lab.req("GET", "/totp", &[cookie], None, None).await;
    let i = page.body.find("id=\"secret\">").unwrap() + 12;
    let secret2 = totp::base32_decode(page.body[i..].split('<').next().unwrap()).unwrap();
    assert_ne!(secret, secret2, "a fresh secret for every enrolment page");
    let r = lab
        .req(
            "POST",
            "/totp",
            &[cookie],
            None,
            Some(format!(
                "csrf={}&code={}",
                page.csrf(),
                current_code(&secret2)
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes: Vec<String> = r
        .body
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", r.body);
    (secret2, codes)
}

/// Logs in with the one-time password and replaces it; the session cookie.
async fn ready_operator(lab: &Lab, email: &str, one_time: &str) -> String {
    let r = lab.login(email, one_time).await;
    let cookie = r.set_cookie("fd_console").expect("logged in");
    let page = lab.req("GET", "/password", &[&cookie], None, None).await;
    let new = "a much better password";
    let form = format!(
        "csrf={}&current={}&new={}&confirm={}",
        page.csrf(),
        urlencode(one_time),
        urlencode(new),
        urlencode(new)
    );
    let r = lab
        .req("POST", "/password", &[&cookie], None, Some(form))
        .await;
    assert_eq!(r.location(), Some("/"), "{}", r.body);
    let home = lab.req("GET", "/", &[&cookie], None, None).await;
    if home.location() == Some("/totp") {
        enrol_totp(lab, &cookie).await;
    }
    cookie
}

#[tokio::test]
async fn members_list_detail_and_status_changes_by_role() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, viewer_pw) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    for (name, email, plan) in [
        ("Ada Lovelace", "ada@example.com", "full-time"),
        ("Grace Hopper", "grace@example.com", "flex"),
    ] {
        lab.store
            .add_member(
                &NewMember {
                    name: name.into(),
                    email: email.into(),
                    plan: plan.into(),
                    ..Default::default()
                },
                today,
                &actor(),
            )
            .await
            .unwrap();
    }
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;

    // The list, searched and filtered.
    let r = lab.req("GET", "/members", &[&viewer], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Ada Lovelace") && r.body.contains("Grace Hopper"));
    let r = lab
        .req("GET", "/members?q=grace", &[&viewer], None, None)
        .await;
    assert!(r.body.contains("Grace Hopper") && !r.body.contains("Ada Lovelace"));
    let r = lab
        .req(
            "GET",
            "/members?plan=full-time&status=active",
            &[&viewer],
            None,
            None,
        )
        .await;
    assert!(r.body.contains("Ada Lovelace") && !r.body.contains("Grace Hopper"));

    // The detail page; a viewer sees no buttons and cannot post a change.
    let ada = lab.store.member("ada@example.com").await.unwrap();
    let path = format!("/members/{}", ada.id);
    let r = lab.req("GET", &path, &[&viewer], None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("ada@example.com") && r.body.contains("allowed"));
    assert!(!r.body.contains("id=\"suspend\""));
    let csrf = r.csrf();
    let post = format!("{path}/status");
    let r = lab
        .req(
            "POST",
            &post,
            &[&viewer],
            None,
            Some(format!("csrf={csrf}&status=suspended")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        lab.store.member(&ada.id).await.unwrap().status.as_str(),
        "active"
    );

    // The owner suspends: decision and timeline follow.
    let r = lab.req("GET", &path, &[&owner], None, None).await;
    assert!(
        r.body.contains("id=\"suspend\""),
        "{:?} {:?} {}",
        r.status,
        r.location(),
        r.body
    );
    let csrf = r.csrf();
    let r = lab
        .req(
            "POST",
            &post,
            &[&owner],
            None,
            Some(format!("csrf={csrf}&status=suspended")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Now suspended"));
    assert!(r.body.contains("refused") && r.body.contains("suspended"));
    assert!(
        r.body.contains("member.suspend") || r.body.contains("member.status"),
        "timeline: {}",
        r.body
    );
    // Another session's token does not work for this one.
    let r = lab
        .req(
            "POST",
            &post,
            &[&owner],
            None,
            Some("csrf=0000&status=active".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab.req("GET", "/members/nope", &[&owner], None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Records Disconnect requests (an access point that always acknowledges).
#[derive(Default)]
struct Nas(std::sync::Mutex<Vec<frontdesk_core::ports::SessionRef>>);

#[async_trait::async_trait]
impl frontdesk_core::ports::Disconnector for Nas {
    async fn disconnect(
        &self,
        s: &frontdesk_core::ports::SessionRef,
        _: frontdesk_core::Reason,
    ) -> Result<(), frontdesk_core::ports::ActError> {
        self.0.lock().unwrap().push(s.clone());
        Ok(())
    }
}

#[tokio::test]
async fn operators_disconnect_sessions_and_viewers_cannot() {
    let nas = std::sync::Arc::new(Nas::default());
    let (lab, owner_pw) = lab_with(ConsoleSettings::default(), Some(nas.clone())).await;
    let (_, viewer_pw) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                plan: "full-time".into(),
                ..Default::default()
            },
            chrono::Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    lab.store
        .record_accounting(&[frontdesk_core::store::radius::AccountingRecord {
            at: chrono::Utc::now(),
            nas_id: 1,
            nas_addr: "192.0.2.50:1813".into(),
            status: frontdesk_core::store::radius::AcctStatus::Start,
            session_id: "s-42".into(),
            user_name: m.wifi_username.clone(),
            member_id: Some(m.id.clone()),
            mac: Some("aa:00:00:00:00:01".parse().unwrap()),
            framed_ip: None,
            vlan: None,
            class: None,
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            terminate_cause: None,
        }])
        .await
        .unwrap();
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let page = lab.req("GET", "/sessions", &[&viewer], None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada@example.com") && page.body.contains("no end"));
    // Who is in: one line per person, for viewers too.
    let who = lab.req("GET", "/presence", &[&viewer], None, None).await;
    assert_eq!(who.status, StatusCode::OK);
    assert!(who.body.contains("id=\"count\">1<"), "{}", who.body);
    assert!(who.body.contains("Ada") && who.body.contains("full-time"));
    assert!(
        !page.body.contains("Disconnect</button>"),
        "no button for viewers"
    );
    let id = lab.store.sessions(None, 10).await.unwrap()[0].id;
    let path = format!("/sessions/{id}/disconnect");
    let csrf = page.csrf();
    let r = lab
        .req(
            "POST",
            &path,
            &[&viewer],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(nas.0.lock().unwrap().is_empty());

    let page = lab.req("GET", "/sessions", &[&owner], None, None).await;
    assert!(page.body.contains("Disconnect</button>"));
    let r = lab
        .req(
            "POST",
            &path,
            &[&owner],
            None,
            Some(format!("csrf={}", page.csrf())),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("was disconnected"), "{}", r.body);
    assert!(r.body.contains("acked"));
    let sent = nas.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].acct_session_id.as_deref(), Some("s-42"));
    let dump = lab.store.logical_dump().await.unwrap();
    assert!(
        dump.contains("reason=operator owner@example.com"),
        "audited"
    );
}

#[tokio::test]
async fn audit_page_filters_and_exports_csv_safely() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    lab.store
        .add_member(
            &NewMember {
                name: "Formula Test".into(),
                email: "formula@example.com".into(),
                plan: "flex".into(),
                ..Default::default()
            },
            chrono::Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    let r = lab.req("GET", "/audit", &[&owner], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("member.add") && r.body.contains("admin.totp-enable"));
    let r = lab
        .req(
            "GET",
            "/audit?action=member.&q=formula",
            &[&owner],
            None,
            None,
        )
        .await;
    assert!(
        r.body.contains("member.add") && !r.body.contains("admin.totp-enable"),
        "{}",
        r.body
    );
    // A % in the search is a character, not a wildcard.
    let r = lab.req("GET", "/audit?q=%25", &[&owner], None, None).await;
    assert!(!r.body.contains("member.add"), "{}", r.body);
    let r = lab
        .req("GET", "/audit.csv?action=&q=", &[&owner], None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(r
        .body
        .starts_with("id,at,actor,source,action,object,before,after\r\n"));
    assert!(r.body.contains("\"member.add\""));
    // Not logged in: no export.
    let r = lab.req("GET", "/audit.csv", &[], None, None).await;
    assert_eq!(r.location(), Some("/login"));
}

#[tokio::test]
async fn add_member_reveal_rotate_and_end_by_role() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, viewer_pw) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;

    // Viewers cannot add; the form is not even offered.
    let r = lab.req("GET", "/members/new", &[&viewer], None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let list = lab.req("GET", "/members", &[&viewer], None, None).await;
    assert!(!list.body.contains("/members/new"));
    let form = lab.req("GET", "/members/new", &[&owner], None, None).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    let r = lab
        .req(
            "POST",
            "/members/new",
            &[&viewer],
            None,
            Some(format!(
                "csrf={csrf}&name=X&email=x%40example.com&plan=flex"
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A bad email comes back with the form filled in and the reason.
    let r = lab
        .req(
            "POST",
            "/members/new",
            &[&owner],
            None,
            Some(format!("csrf={csrf}&name=Zoe&email=zoe&plan=flex")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("malformed email") && r.body.contains("value=\"Zoe\""));
    let r = lab
        .req(
            "POST",
            "/members/new",
            &[&owner],
            Some("http://evil.test"),
            Some(format!(
                "csrf={csrf}&name=Zoe&email=zoe%40example.com&plan=flex"
            )),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "cross-origin posts are refused"
    );
    let r = lab
        .req(
            "POST",
            "/members/new",
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&name=Zoe&email=zoe%40example.com&plan=flex&team=&valid_until="
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let zoe = lab.store.member("zoe@example.com").await.unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/members/{}?added=1", zoe.id).as_str())
    );
    let password = lab.store.wifi_password(&zoe.id).await.unwrap();
    let page = lab
        .req("GET", r.location().unwrap(), &[&owner], None, None)
        .await;
    assert!(page.body.contains("Added."));
    // The member list (its directory was loaded before Zoe existed) sees her at once.
    let list = lab
        .req("GET", "/members?q=zoe", &[&owner], None, None)
        .await;
    assert!(list.body.contains("Zoe"), "{}", list.body);
    assert!(!page.body.contains(&password), "never shown without reveal");

    // Reveal: the operator's own password first; a wrong one shows nothing.
    let reveal = format!("/members/{}/reveal", zoe.id);
    let r = lab
        .req(
            "POST",
            &reveal,
            &[&owner],
            None,
            Some(format!("csrf={csrf}&password=wrong")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.body.contains(&password));
    let r = lab
        .req(
            "POST",
            &reveal,
            &[&viewer],
            None,
            Some(format!(
                "csrf={csrf}&password={}",
                urlencode("a much better password")
            )),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "viewers never see passwords"
    );
    let r = lab
        .req(
            "POST",
            &reveal,
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&password={}",
                urlencode("a much better password")
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(&password) && r.body.contains("<svg"));
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let audit = lab.store.audit_of(&zoe.id, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "member.reveal" && a.actor == "owner@example.com"));

    // Rotate: a new password, shown once, and the stored one changes.
    let r = lab
        .req(
            "POST",
            &format!("/members/{}/rotate", zoe.id),
            &[&owner],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let fresh = lab.store.wifi_password(&zoe.id).await.unwrap();
    assert_ne!(fresh, password);
    assert!(r.body.contains(&fresh) && r.body.contains("old one no longer works"));

    // End at the end of the period.
    let last = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let r = lab
        .req(
            "POST",
            &format!("/members/{}/end", zoe.id),
            &[&owner],
            None,
            Some(format!("csrf={csrf}&last_day={last}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(&format!("Access ends after {last}")));
    let zoe = lab.store.member(&zoe.id).await.unwrap();
    assert_eq!(zoe.assignments.last().unwrap().valid_until, Some(last));
    let r = lab
        .req(
            "POST",
            &format!("/members/{}/end", zoe.id),
            &[&owner],
            None,
            Some(format!("csrf={csrf}&last_day=2001-01-01")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn owners_manage_api_tokens_and_others_cannot() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, manager_pw) = lab
        .store
        .add_admin("manager@example.com", Role::Manager, &actor())
        .await
        .unwrap();
    let manager = ready_operator(&lab, "manager@example.com", &manager_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let r = lab.req("GET", "/tokens", &[&manager], None, None).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a manager cannot reach owner pages"
    );
    let home = lab.req("GET", "/", &[&manager], None, None).await;
    assert!(!home.body.contains("/tokens"));
    let page = lab.req("GET", "/tokens", &[&owner], None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let r = lab
        .req(
            "POST",
            "/tokens",
            &[&owner],
            None,
            Some(format!("csrf={csrf}&name=billing")),
        )
        .await;
    assert!(r.body.contains("at least one scope"), "{}", r.body);
    let r = lab
        .req(
            "POST",
            "/tokens",
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&name=billing&scope=members%3Aread&scope=plans%3Aread"
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let i = r.body.find("id=\"new-token\">").expect("shown once") + 15;
    let token = r.body[i..].split('<').next().unwrap().to_string();
    assert!(token.starts_with("fdk_"));
    let list = lab.store.api_tokens().await.unwrap();
    assert_eq!(list[0].scopes, vec!["members:read", "plans:read"]);
    let again = lab.req("GET", "/tokens", &[&owner], None, None).await;
    assert!(!again.body.contains(&token), "never shown again");
    let r = lab
        .req(
            "POST",
            "/tokens",
            &[&manager],
            None,
            Some(format!("csrf={csrf}&name=x&scope=all")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            &format!("/tokens/{}/revoke", list[0].id),
            &[&owner],
            None,
            Some("csrf=wrong".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            &format!("/tokens/{}/revoke", list[0].id),
            &[&owner],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.location(), Some("/tokens"));
    assert!(lab.store.api_tokens().await.unwrap()[0]
        .revoked_at
        .is_some());
}

#[tokio::test]
async fn network_auth_log_and_explain_pages() {
    use frontdesk_core::store::radius::AuthLogEntry;
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let today = chrono::Utc::now().date_naive();
    lab.store
        .add_member(
            &NewMember {
                name: "Grace Hopper".into(),
                email: "grace@example.com".into(),
                plan: "flex".into(),
                ..Default::default()
            },
            today,
            &actor(),
        )
        .await
        .unwrap();
    lab.store
        .set_member_status(
            "grace@example.com",
            frontdesk_core::MemberStatus::Suspended,
            &actor(),
        )
        .await
        .unwrap();
    let entry = |user: &str, accepted: bool, reason: &str| AuthLogEntry {
        at: chrono::Utc::now(),
        nas_id: None,
        user_name: user.into(),
        mac: Some("aa-bb-cc-dd-ee-ff".into()),
        method: "pap".into(),
        accepted,
        reason: reason.into(),
        vlan: None,
        latency_us: 5,
    };
    lab.store
        .record_auth_log(&[
            entry("grace@example.com", false, "suspended"),
            entry("<b>mallory</b>", false, "unknown-user"),
            entry("ada@example.com", true, "ok"),
        ])
        .await
        .unwrap();
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let r = lab.req("GET", "/network", &[&owner], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("mallory") && !r.body.contains("<b>mallory"),
        "escaped"
    );
    let r = lab
        .req(
            "GET",
            "/network?result=rejected&user=grace",
            &[&owner],
            None,
            None,
        )
        .await;
    assert!(r.body.contains("grace@example.com") && !r.body.contains("ada@example.com"));
    let r = lab
        .req(
            "GET",
            "/network?mac=AA%3ABB%3ACC%3ADD%3AEE%3AFF&result=accepted",
            &[&owner],
            None,
            None,
        )
        .await;
    assert!(r.body.contains("ada@example.com") && !r.body.contains("grace@example.com"));

    // Owners add a NAS; the secret is generated, shown once, stored sealed.
    let csrf = lab
        .req("GET", "/network", &[&owner], None, None)
        .await
        .csrf();
    let r = lab
        .req(
            "POST",
            "/network/nas",
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&name=lobby&address=10.9.0.0%2F24&vendor=unifi&require_ma=1"
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let i = r.body.find("id=\"nas-secret\">").expect("secret shown") + 16;
    let secret = r.body[i..].split('<').next().unwrap().to_string();
    assert_eq!(secret.len(), 32);
    let nas = lab.store.nas_list().await.unwrap();
    let lobby = nas.iter().find(|n| n.name == "lobby").unwrap();
    assert_eq!(lobby.secret, secret);
    assert!(lobby.require_message_authenticator);
    let again = lab.req("GET", "/network", &[&owner], None, None).await;
    assert!(
        again.body.contains("lobby") && !again.body.contains(&secret),
        "shown once"
    );
    let r = lab
        .req(
            "POST",
            "/network/nas",
            &[&owner],
            None,
            Some(format!("csrf={csrf}&name=x&address=ten&vendor=unifi")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("malformed address"));

    let r = lab
        .req(
            "GET",
            "/explain?user=grace%40example.com",
            &[&owner],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("id=\"verdict\">refused") && r.body.contains("id=\"reason\">suspended")
    );
    assert!(r.body.contains("What RADIUS saw") && r.body.contains(">suspended<"));
    let r = lab
        .req("GET", "/explain?user=nobody", &[&owner], None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "GET",
            "/explain?user=grace%40example.com&at=someday",
            &[&owner],
            None,
            None,
        )
        .await;
    assert!(r.body.contains("malformed time"));
    let r = lab.req("GET", "/explain", &[], None, None).await;
    assert_eq!(
        r.location(),
        Some("/login"),
        "not logged in: to the login page"
    );
}

#[tokio::test]
async fn vouchers_are_made_printed_and_counted_by_role() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, viewer_pw) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let page = lab.req("GET", "/vouchers", &[&owner], None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let r = lab
        .req(
            "POST",
            "/vouchers",
            &[&viewer],
            None,
            Some(format!("csrf={csrf}&count=3&hours=24&devices=2&plan=guest")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            "/vouchers",
            &[&owner],
            None,
            Some(format!("csrf={csrf}&count=0&hours=24&devices=2&plan=guest")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "POST",
            "/vouchers",
            &[&owner],
            None,
            Some(format!("csrf={csrf}&count=3&hours=24&devices=2&plan=guest")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let made = lab.store.vouchers().await.unwrap();
    assert_eq!(made.len(), 3);
    for v in &made {
        assert!(r.body.contains(&v.code), "every new code is on the sheet");
    }
    assert_eq!(r.body.matches("class=\"voucher\"").count(), 3);
    assert!(r.body.contains("Valid 1 day from first use, 2 devices"));
    // Viewers see the list and the sheet, not the form.
    let list = lab.req("GET", "/vouchers", &[&viewer], None, None).await;
    assert!(list.body.contains(&made[0].code) && !list.body.contains("make-vouchers"));
    let sheet = lab
        .req("GET", "/vouchers/print", &[&viewer], None, None)
        .await;
    assert_eq!(sheet.body.matches("class=\"voucher\"").count(), 3);
    let used = lab
        .req("GET", "/vouchers?state=active", &[&viewer], None, None)
        .await;
    assert!(!used.body.contains(&made[0].code), "none in use yet");

    // Usage per device, and guests who asked a member on the portal.
    let mac: frontdesk_core::MacAddr = "CC:00:00:00:00:01".parse().unwrap();
    lab.store
        .redeem_voucher(&made[0].code, mac, chrono::Utc::now(), &actor())
        .await
        .unwrap();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Host Member".into(),
                email: "host@example.com".into(),
                plan: "flex".into(),
                ..Default::default()
            },
            chrono::Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    lab.store
        .create_sponsor_request(
            &frontdesk_core::store::portal::NewSponsorRequest {
                id: "0123456789abcdef0123456789abcdef",
                token_hash: "h",
                member_id: &m.id,
                guest_mac: "DD:00:00:00:00:02".parse().unwrap(),
                guest_ip: None,
                network: None,
                guest_name: "<i>Visitor</i>",
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(30),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let used = lab
        .req("GET", "/vouchers?state=active", &[&viewer], None, None)
        .await;
    assert!(used.body.contains(&made[0].code), "{}", used.body);
    assert!(
        used.body
            .contains("1 of 2<br><code class=\"muted\">cc:00:00:00:00:01</code>"),
        "{}",
        used.body
    );
    assert!(used.body.contains("&#60;i&#62;Visitor") && used.body.contains("Host Member"));
    assert!(used.body.contains("pending"));
}

/// Mails the console would send, kept for the test to read.
#[derive(Default)]
struct Outbox(std::sync::Mutex<Vec<frontdesk_core::ports::Mail>>);

#[async_trait::async_trait]
impl frontdesk_core::ports::Mailer for Outbox {
    async fn send(
        &self,
        mail: frontdesk_core::ports::Mail,
    ) -> Result<(), frontdesk_core::ports::ActError> {
        self.0.lock().unwrap().push(mail);
        Ok(())
    }
}

impl Outbox {
    /// Waits for the `n`th mail (links are sent in the background).
    async fn wait_for(&self, n: usize) -> Vec<frontdesk_core::ports::Mail> {
        for _ in 0..200 {
            {
                let mails = self.0.lock().unwrap();
                if mails.len() >= n {
                    return mails.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("mail {n} never came");
    }
}

/// A member signs in to /me: by link (once, on a configured URL), then with a password of
/// their own; sees plan and hours; reveals and rotates the Wi-Fi password; registers devices
/// within the plan's limit and cannot touch another member's; makes a guest pass; loses the
/// session when suspended.
#[tokio::test]
async fn members_sign_in_to_self_service_and_manage_their_own_things_only() {
    let outbox = std::sync::Arc::new(Outbox::default());
    let settings = ConsoleSettings {
        public_url: "https://frontdesk.example.org/".into(),
        ..Default::default()
    };
    let (lab, _) = lab_full(settings, None, Some(outbox.clone())).await;
    let today = chrono::Utc::now().date_naive();
    let mut ids = Vec::new();
    for (name, email, plan) in [
        ("Ada <Lovelace>", "ada@example.com", "flex"),
        ("Bob", "bob@example.com", "full-time"),
    ] {
        let (m, _) = lab
            .store
            .add_member(
                &NewMember {
                    name: name.into(),
                    email: email.into(),
                    plan: plan.into(),
                    ..Default::default()
                },
                today,
                &actor(),
            )
            .await
            .unwrap();
        ids.push(m.id);
    }
    let bob_mac: frontdesk_core::MacAddr = "BB:00:00:00:00:01".parse().unwrap();
    lab.store
        .add_device(Some(&ids[1]), bob_mac, "full-time", "bob's tv", &actor())
        .await
        .unwrap();

    let r = lab.req("GET", "/me", &[], None, None).await;
    assert_eq!(r.location(), Some("/me/login"));
    let form = lab.req("GET", "/me/login", &[], None, None).await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = form.set_cookie("fd_me_csrf").expect("sign-in csrf cookie");
    let csrf = form.csrf();
    let ask = |email: &str| format!("csrf={csrf}&email={}", urlencode(email));
    // Without the form's cookie: refused.
    let r = lab
        .req("POST", "/me/link", &[], None, Some(ask("ada@example.com")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A member and a stranger get the same answer; only the member gets a mail.
    let r = lab
        .req(
            "POST",
            "/me/link",
            &[&login_cookie],
            Some("http://console.test"),
            Some(ask("ada@example.com")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("a sign-in link is on its way"),
        "{}",
        r.body
    );
    let stranger = lab
        .req(
            "POST",
            "/me/link",
            &[&login_cookie],
            None,
            Some(ask("nobody@example.com")),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert_eq!(
        stranger.body.replace("nobody@example.com", "X").len()
            - stranger.body.matches("csrf").count(),
        r.body.replace("ada@example.com", "X").len() - r.body.matches("csrf").count()
    );
    let mails = outbox.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(outbox.0.lock().unwrap().len(), 1, "no mail for a stranger");
    assert_eq!(mails[0].to, "ada@example.com");
    // The link points at the configured URL, not at the Host the request named.
    let url = mails[0]
        .body
        .lines()
        .find(|l| l.starts_with("https://"))
        .expect("a link")
        .to_string();
    assert!(
        url.starts_with("https://frontdesk.example.org/me/link/"),
        "{url}"
    );
    let path = url.trim_start_matches("https://frontdesk.example.org");

    // Opening the link changes nothing; the button signs in, once.
    let page = lab.req("GET", path, &[], None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.set_cookie("fd_me").is_none());
    let page_cookie = page.set_cookie("fd_me_csrf").unwrap();
    let body = format!("csrf={}", page.csrf());
    let r = lab.req("POST", path, &[], None, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no double-submit cookie");
    let r = lab
        .req("POST", path, &[&page_cookie], None, Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/me"));
    let me = r.set_cookie("fd_me").expect("a member session");
    let again = lab
        .req("POST", path, &[&page_cookie], None, Some(body))
        .await;
    assert_eq!(again.status, StatusCode::GONE, "a link works once");
    // The operator console does not take a member's session.
    let r = lab.req("GET", "/", &[&me], None, None).await;
    assert_eq!(r.location(), Some("/login"));

    let home = lab.req("GET", "/me", &[&me], None, None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("Hello, Ada &#60;Lovelace&#62;"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("Ada <Lovelace>"));
    assert!(home.body.contains("flex") && home.body.contains("class=\"week\""));
    assert!(!home.body.contains("bob's tv") && !home.body.contains("BB:00:00:00:00:01"));
    let csrf = home.csrf();

    // Reveal (audited) and rotate; a forged post does neither.
    let r = lab
        .req(
            "POST",
            "/me/reveal",
            &[&me],
            None,
            Some("csrf=wrong".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            "/me/reveal",
            &[&me],
            Some("http://evil.test"),
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let old = lab.store.wifi_password(&ids[0]).await.unwrap();
    let r = lab
        .req(
            "POST",
            "/me/reveal",
            &[&me],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&old));
    let audit = lab.store.audit_of(&ids[0], 20).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "member.reveal" && e.source == "self-service"));
    let r = lab
        .req(
            "POST",
            "/me/rotate",
            &[&me],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let new = lab.store.wifi_password(&ids[0]).await.unwrap();
    assert_ne!(new, old);
    assert!(r.body.contains(&new) && r.body.contains("old one no longer works"));

    // Devices: a bad MAC is explained; the plan's limit (flex: 3) holds; another member's
    // device cannot be removed (it is "not found").
    let add = |mac: &str, name: &str| {
        format!(
            "csrf={csrf}&mac={}&name={}",
            urlencode(mac),
            urlencode(name)
        )
    };
    let r = lab
        .req(
            "POST",
            "/me/devices",
            &[&me],
            None,
            Some(add("printer", "printer")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a MAC address"));
    for i in 1..=3 {
        let r = lab
            .req(
                "POST",
                "/me/devices",
                &[&me],
                None,
                Some(add(&format!("aa-00-00-00-00-0{i}"), &format!("device {i}"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = lab
        .req(
            "POST",
            "/me/devices",
            &[&me],
            None,
            Some(add("aa:00:00:00:00:04", "four")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("allows 3 registered devices"), "{}", r.body);
    let r = lab
        .req(
            "POST",
            "/me/devices",
            &[&me],
            None,
            Some(add("BB:00:00:00:00:01", "mine!")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "POST",
            "/me/devices/remove",
            &[&me],
            None,
            Some(format!("csrf={csrf}&mac=BB:00:00:00:00:01")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(lab.store.device(bob_mac).await.unwrap().is_some());
    assert_eq!(lab.store.devices_of(&ids[0]).await.unwrap().len(), 3);
    let r = lab
        .req(
            "POST",
            "/me/devices/remove",
            &[&me],
            None,
            Some(format!("csrf={csrf}&mac=AA:00:00:00:00:01")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(lab.store.devices_of(&ids[0]).await.unwrap().len(), 2);

    // A guest pass, sponsored by the member.
    let r = lab
        .req(
            "POST",
            "/me/guests",
            &[&me],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let passes = lab.store.vouchers_sponsored_by(&ids[0]).await.unwrap();
    assert_eq!(passes.len(), 1);
    assert!(r.body.contains(&passes[0].code));

    // A password of their own; then sign out and in with it. A wrong one, and an address
    // without a password, get the same answer.
    let r = lab
        .req(
            "POST",
            "/me/password",
            &[&me],
            None,
            Some(format!("csrf={csrf}&new=short&confirm=short")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let pw = "ada's own long passphrase";
    let r = lab
        .req(
            "POST",
            "/me/password",
            &[&me],
            None,
            Some(format!("csrf={csrf}&new={0}&confirm={0}", urlencode(pw))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = lab
        .req(
            "POST",
            "/me/logout",
            &[&me],
            None,
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.location(), Some("/me/login"));
    let r = lab.req("GET", "/me", &[&me], None, None).await;
    assert_eq!(r.location(), Some("/me/login"), "signed out");
    let sign_in = |email: &str, pw: &str| {
        format!(
            "csrf={}&email={}&password={}",
            form.csrf(),
            urlencode(email),
            urlencode(pw)
        )
    };
    let wrong = lab
        .req(
            "POST",
            "/me/login",
            &[&login_cookie],
            None,
            Some(sign_in("ada@example.com", "nope")),
        )
        .await;
    let nopass = lab
        .req(
            "POST",
            "/me/login",
            &[&login_cookie],
            None,
            Some(sign_in("bob@example.com", "nope")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(nopass.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Wrong email or password")
            && nopass.body.contains("Wrong email or password")
    );
    let r = lab
        .req(
            "POST",
            "/me/login",
            &[&login_cookie],
            None,
            Some(sign_in("ADA@example.com", pw)),
        )
        .await;
    assert_eq!(r.location(), Some("/me"));
    let me = r.set_cookie("fd_me").unwrap();
    assert_eq!(
        lab.req("GET", "/me", &[&me], None, None).await.status,
        StatusCode::OK
    );

    // Suspension ends self-service at once.
    lab.store
        .set_member_status(
            &ids[0],
            frontdesk_core::model::MemberStatus::Suspended,
            &actor(),
        )
        .await
        .unwrap();
    let r = lab.req("GET", "/me", &[&me], None, None).await;
    assert_eq!(r.location(), Some("/me/login"));
}

/// The dashboard warns about NASes that send unsigned requests or leave Disconnect-Requests
/// unanswered, and draws its three charts from the auth log and session history.
#[tokio::test]
async fn dashboard_alerts_and_charts() {
    use frontdesk_core::store::radius::{AccountingRecord, AcctStatus, AuthLogEntry};
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let r = lab.req("GET", "/", &[&owner], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("Act now"), "no alerts yet");
    assert_eq!(r.body.matches("<svg class=\"chart\"").count(), 3);

    let nas = lab
        .store
        .add_nas(
            &frontdesk_core::store::NewNas {
                name: "lobby-ap".into(),
                address: "192.0.2.50/32".parse().unwrap(),
                secret: "a-long-shared-secret".into(),
                vendor: frontdesk_core::model::Vendor::Generic,
                disconnect_port: None,
                coa_port: None,
                require_message_authenticator: false,
            },
            &actor(),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    lab.store
        .save_nas_stats(&[(nas.id, "unsigned".into(), 3)], now)
        .await
        .unwrap();
    let today = now.date_naive();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Flex Person".into(),
                email: "flex@example.com".into(),
                plan: "flex".into(),
                ..Default::default()
            },
            today,
            &actor(),
        )
        .await
        .unwrap();
    let entry = |accepted: bool, reason: &str| AuthLogEntry {
        at: now,
        nas_id: Some(nas.id),
        user_name: "flex@example.com".into(),
        mac: None,
        method: "pap".into(),
        accepted,
        reason: reason.into(),
        vlan: None,
        latency_us: 10,
    };
    lab.store
        .record_auth_log(&[
            entry(true, "ok"),
            entry(false, "bad-password"),
            entry(false, "<outside-hours>"),
        ])
        .await
        .unwrap();
    lab.store
        .record_accounting(&[AccountingRecord {
            at: now - chrono::Duration::hours(2),
            nas_id: nas.id,
            nas_addr: "192.0.2.50".into(),
            status: AcctStatus::Start,
            session_id: "s1".into(),
            user_name: m.wifi_username.clone(),
            member_id: Some(m.id.clone()),
            mac: None,
            framed_ip: None,
            vlan: Some(20),
            class: None,
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            terminate_cause: None,
        }])
        .await
        .unwrap();
    let sessions = lab.store.sessions(None, 10).await.unwrap();
    lab.store
        .mark_disconnect(&[(sessions[0].id, "failed: no answer".into())], now)
        .await
        .unwrap();

    // A fresh console: the charts cache of the first one is a minute long.
    let app = Console::new(lab.store.clone(), ConsoleSettings::default()).router();
    let lab = Lab { app, ..lab };
    let r = lab.req("GET", "/", &[&owner], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("lobby-ap sends requests without Message-Authenticator (3 so far)"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("lobby-ap did not answer 1 Disconnect-Request"),
        "{}",
        r.body
    );
    assert!(r.body.contains("rejected: bad-password"));
    assert!(
        r.body.contains("rejected: &lt;outside-hours&gt;")
            || r.body.contains("rejected: &#60;outside-hours&#62;")
    );
    assert!(
        !r.body.contains("<outside-hours>"),
        "escaped in SVG and legend"
    );
    // The flex session (VLAN 20) is in the tier chart, and Flex Person in the heat map.
    assert!(
        r.body.contains("<title>") && r.body.contains(" day-pass/flex: 1</title>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("class=\"h4\""), "the busiest cell");
}

/// Everyone sees plans, hours, closures and teams with week views; only owners change them.
#[tokio::test]
async fn owners_edit_plans_hours_closures_and_teams() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, manager_pw) = lab
        .store
        .add_admin("manager@example.com", Role::Manager, &actor())
        .await
        .unwrap();
    let manager = ready_operator(&lab, "manager@example.com", &manager_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;

    let r = lab.req("GET", "/plans", &[&manager], None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("class=\"week\"") && r.body.contains("full-time"));
    assert!(!r.body.contains("save-hours") && !r.body.contains("/edit\""));
    let csrf = r.csrf();
    let r = lab
        .req(
            "POST",
            "/plans/teams",
            &[&manager],
            None,
            Some(format!("csrf={csrf}&name=Acme&vlan=101")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req("GET", "/plans/flex/edit", &[&manager], None, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let page = lab.req("GET", "/plans", &[&owner], None, None).await;
    assert!(page.body.contains("save-hours"));
    let csrf = page.csrf();
    let post = |path: &str, form: String| {
        let lab = &lab;
        let owner = owner.clone();
        let path = path.to_string();
        async move {
            lab.req(
                "POST",
                &path,
                &[&owner],
                Some("http://console.test"),
                Some(form),
            )
            .await
        }
    };
    // Opening hours: Monday 09:00-18:00, Saturday 10:00-14:00, the rest unchanged.
    let mut hours = format!("csrf={csrf}");
    for (day, o, c) in [
        ("mon", "09:00", "18:00"),
        ("tue", "08:00", "19:00"),
        ("wed", "08:00", "19:00"),
        ("thu", "08:00", "19:00"),
        ("fri", "08:00", "19:00"),
        ("sat", "10:00", "14:00"),
        ("sun", "", ""),
    ] {
        hours.push_str(&format!("&{day}_open={o}&{day}_close={c}"));
    }
    let r = post("/plans/hours", hours.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("changed on 2 days"), "{}", r.body);
    let h = lab.store.site().await.unwrap().calendar.hours;
    assert_eq!(h.days[0][0].0.to_string(), "09:00:00");
    assert_eq!(h.days[5][0].1.to_string(), "14:00:00");
    assert!(h.days[6].is_empty());
    let r = post(
        "/plans/hours",
        hours.replace("sat_close=14:00", "sat_close="),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Saturday: give both"));
    let r = post(
        "/plans/hours",
        hours.replace("mon_open=09:00", "mon_open=9am"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Closures: added (escaped), then removed.
    let r = post(
        "/plans/closures",
        format!("csrf={csrf}&from=2099-12-24&to=2099-12-26&reason=%3Cb%3EXmas%3C%2Fb%3E&all=on"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("&#60;b&#62;Xmas") && !r.body.contains("<b>Xmas"));
    let cl = lab.store.site().await.unwrap().calendar.closures;
    assert_eq!(cl.len(), 1);
    assert!(cl[0].all);
    let r = post("/plans/closures", format!("csrf={csrf}&from=24.12.2099")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(
        &format!("/plans/closures/{}/remove", cl[0].id),
        format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(lab.store.site().await.unwrap().calendar.closures.is_empty());

    // Teams.
    let r = post("/plans/teams", format!("csrf={csrf}&name=Acme&vlan=5000")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post("/plans/teams", format!("csrf={csrf}&name=Acme&vlan=101")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Team Acme added on VLAN 101"));

    // Plans: add, refuse a bad window with the reason, edit.
    let r = post(
        "/plans",
        format!("csrf={csrf}&name=evening&vlan=25&wifi=mon-fri+17%3A00-23%3A00&devices=2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let evening = lab.store.plan("evening").await.unwrap();
    assert_eq!(evening.wifi.to_string(), "mon-fri 17:00-23:00");
    assert_eq!(evening.device_limit, Some(2));
    let r = post("/plans", format!("csrf={csrf}&name=late&wifi=weekdays+5pm")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Wi-Fi hours:"), "{}", r.body);
    let form = lab
        .req("GET", "/plans/flex/edit", &[&owner], None, None)
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("value=\"opening-hours\""));
    let r = post(
        "/plans",
        format!("csrf={csrf}&existing=flex&name=flex&vlan=20&wifi=mon-sat+07%3A00-22%3A00&devices=4&ssids=Members"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let flex = lab.store.plan("flex").await.unwrap();
    assert_eq!(flex.wifi.to_string(), "mon-sat 07:00-22:00");
    assert_eq!(flex.device_limit, Some(4));
    assert_eq!(flex.ssids, vec!["Members".to_string()]);
    let audit = lab
        .store
        .audit_search(Some("plan.update"), None, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0]
        .before
        .as_deref()
        .unwrap()
        .contains("wifi=opening-hours"));
    // A bad edit comes back on the edit form, filled in.
    let r = post(
        "/plans",
        format!("csrf={csrf}&existing=flex&name=flex&wifi=always&devices=none"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Devices: a whole number") && r.body.contains("value=\"none\""));
}

/// Owners change a NAS (vendor, Message-Authenticator, a new secret shown once) and remove
/// it; managers cannot.
#[tokio::test]
async fn owners_change_and_remove_a_nas() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, manager_pw) = lab
        .store
        .add_admin("manager@example.com", Role::Manager, &actor())
        .await
        .unwrap();
    let manager = ready_operator(&lab, "manager@example.com", &manager_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    lab.store
        .add_nas(
            &frontdesk_core::store::NewNas {
                name: "lobby ap".into(),
                address: "192.0.2.50/32".parse().unwrap(),
                secret: "the-old-secret".into(),
                vendor: frontdesk_core::model::Vendor::Generic,
                disconnect_port: None,
                coa_port: None,
                require_message_authenticator: false,
            },
            &actor(),
        )
        .await
        .unwrap();
    let page = lab.req("GET", "/network", &[&owner], None, None).await;
    assert!(
        page.body.contains("action=\"/network/nas/lobby%20ap\""),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let m = lab.req("GET", "/network", &[&manager], None, None).await;
    assert!(!m.body.contains("/network/nas/lobby"));
    let form = |action: &str| {
        format!("csrf={csrf}&address=192.0.2.0%2F24&vendor=unifi&require_ma=1&action={action}")
    };
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&manager],
            None,
            Some(format!(
                "csrf={}&address=x&vendor=unifi&action=remove",
                m.csrf()
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&owner],
            None,
            Some(form("save")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let n = &lab.store.nas_list().await.unwrap()[0];
    assert_eq!(n.address.to_string(), "192.0.2.0/24");
    assert_eq!(n.vendor, frontdesk_core::model::Vendor::Unifi);
    assert!(n.require_message_authenticator);
    assert_eq!(n.secret, "the-old-secret");
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&owner],
            None,
            Some(form("secret")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let n = &lab.store.nas_list().await.unwrap()[0];
    assert_ne!(n.secret, "the-old-secret");
    assert!(r
        .body
        .contains(&format!("<code id=\"nas-secret\">{}</code>", n.secret)));
    let audit = lab
        .store
        .audit_search(Some("nas.update"), None, 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    assert!(
        !audit.iter().any(|e| format!("{:?}", e).contains(&n.secret)),
        "secret not audited"
    );
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&owner],
            None,
            Some(form("save").replace("192.0.2.0%2F24", "not-an-address")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(lab.store.nas_list().await.unwrap()[0].address.to_string() == "192.0.2.0/24");
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&owner],
            None,
            Some(form("remove")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(lab.store.nas_list().await.unwrap().is_empty());
    let r = lab
        .req(
            "POST",
            "/network/nas/lobby%20ap",
            &[&owner],
            None,
            Some(form("remove")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Editors change a member's name, email, team and plan, and register devices for them;
/// viewers see but cannot change.
#[tokio::test]
async fn members_are_edited_and_given_devices_by_editors_only() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, viewer_pw) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    lab.store.add_team("Acme", 101, &actor()).await.unwrap();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Dee".into(),
                email: "dee@example.com".into(),
                plan: "flex".into(),
                ..Default::default()
            },
            chrono::Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    let path = format!("/members/{}", m.id);
    let page = lab.req("GET", &path, &[&owner], None, None).await;
    assert!(page.body.contains("id=\"doors\">main: "), "{}", page.body);
    assert!(page.body.contains("<option value=\"flex\" selected>"));
    let csrf = page.csrf();
    let vpage = lab.req("GET", &path, &[&viewer], None, None).await;
    assert!(!vpage.body.contains("save-member") && !vpage.body.contains("add-device"));
    let r = lab
        .req(
            "POST",
            &format!("{path}/edit"),
            &[&viewer],
            None,
            Some(format!(
                "csrf={}&name=X&email=x%40example.com",
                vpage.csrf()
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            &format!("{path}/edit"),
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&name=Dee+Dee&email=not-mail&team=&plan=flex"
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "POST",
            &format!("{path}/edit"),
            &[&owner],
            None,
            Some(format!(
                "csrf={csrf}&name=Dee+Dee&email=dee2%40example.com&team=Acme&plan=full-time"
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Now on full-time"), "{}", r.body);
    let after = lab.store.member(&m.id).await.unwrap();
    assert_eq!(after.name, "Dee Dee");
    assert_eq!(after.email, "dee2@example.com");
    assert!(after.team_id.is_some());
    let cat = lab.store.catalog().await.unwrap();
    assert_eq!(
        cat.plan(after.assignments.last().unwrap().plan_id)
            .unwrap()
            .name,
        "full-time"
    );
    // Devices.
    let r = lab
        .req(
            "POST",
            &format!("{path}/devices"),
            &[&owner],
            None,
            Some(format!("csrf={csrf}&mac=EE-00-00-00-00-01&name=printer")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("printer") && r.body.contains("ee:00:00:00:00:01"));
    let d = lab.store.devices_of(&m.id).await.unwrap();
    assert_eq!(d.len(), 1);
    let r = lab
        .req(
            "POST",
            &format!("{path}/devices"),
            &[&owner],
            None,
            Some(format!("csrf={csrf}&mac=printer")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "POST",
            &format!("{path}/devices/remove"),
            &[&viewer],
            None,
            Some(format!("csrf={}&mac=ee:00:00:00:00:01", vpage.csrf())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            &format!("{path}/devices/remove"),
            &[&owner],
            None,
            Some(format!("csrf={csrf}&mac=ee:00:00:00:00:01")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(lab.store.devices_of(&m.id).await.unwrap().is_empty());
}

/// The plans page shows door systems with their sync health and the plan → door maps;
/// owners add a map, managers cannot.
#[tokio::test]
async fn doors_on_the_plans_page() {
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let (_, manager_pw) = lab
        .store
        .add_admin("manager@example.com", Role::Manager, &actor())
        .await
        .unwrap();
    let manager = ready_operator(&lab, "manager@example.com", &manager_pw).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let r = lab.req("GET", "/plans", &[&owner], None, None).await;
    assert!(r.body.contains("No door system yet"));
    let b = lab
        .store
        .add_door_backend("kisi", "kisi", "https://api.kisi.io", Some("k"), &actor())
        .await
        .unwrap();
    lab.store
        .sync_failed(b.id, "m1", "HTTP 403", chrono::Utc::now(), true)
        .await
        .unwrap();
    let page = lab.req("GET", "/plans", &[&owner], None, None).await;
    assert!(page.body.contains("<td>kisi</td>") && page.body.contains("never"));
    assert!(
        page.body.contains("<strong class=\"late\">1</strong>"),
        "quarantined shown"
    );
    let csrf = page.csrf();
    let form = |csrf: &str, window: &str| {
        format!("csrf={csrf}&backend=kisi&plan=full-time&group=After-hours+door&window={window}")
    };
    let m = lab.req("GET", "/plans", &[&manager], None, None).await;
    assert!(!m.body.contains("add-door-map"));
    let r = lab
        .req(
            "POST",
            "/plans/doors",
            &[&manager],
            None,
            Some(form(&m.csrf(), "always")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .req(
            "POST",
            "/plans/doors",
            &[&owner],
            None,
            Some(form(&csrf, "nights")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = lab
        .req(
            "POST",
            "/plans/doors",
            &[&owner],
            None,
            Some(form(&csrf, "always")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("<td>After-hours door</td><td>always</td>"),
        "{}",
        r.body
    );
    let maps = lab.store.door_maps().await.unwrap();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].schedule.as_ref().unwrap().to_string(), "always");
    // Stopping a map: owners only.
    let stop =
        |csrf: &str| format!("csrf={csrf}&backend=kisi&plan=full-time&group=After-hours+door");
    let m = lab.req("GET", "/plans", &[&manager], None, None).await;
    assert!(!m.body.contains("/plans/doors/stop"));
    let r = lab
        .req(
            "POST",
            "/plans/doors/stop",
            &[&manager],
            None,
            Some(stop(&m.csrf())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let page = lab.req("GET", "/plans", &[&owner], None, None).await;
    assert!(page.body.contains("/plans/doors/stop"));
    let r = lab
        .req(
            "POST",
            "/plans/doors/stop",
            &[&owner],
            None,
            Some(stop(&page.csrf())),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("no longer open"), "{}", r.body);
    assert!(lab.store.door_maps().await.unwrap().is_empty());
}

/// Door events in: a signed Kisi unlock puts the member on "who is in" and in the audit log
/// (once, however often Kisi delivers it); a UniFi Access door held open raises an alert;
/// wrong or missing signatures, unknown backends and backends without an events secret
/// are refused.
#[tokio::test]
async fn door_events_feed_presence_audit_and_alerts() {
    use hmac::{Hmac, Mac};
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let api = frontdesk_portal::api::Api::new(lab.store.clone(), None).router();
    let post = |path: &str, headers: Vec<(&'static str, String)>, body: String| {
        let api = api.clone();
        let mut r = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.body(Body::from(body)).unwrap();
        async move {
            let resp = api.oneshot(r).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
            )
        }
    };
    let (ada, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                plan: "full-time".into(),
                ..Default::default()
            },
            chrono::Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    let kisi = lab
        .store
        .add_door_backend("kisi", "kisi", "https://api.kisi.io", Some("k"), &actor())
        .await
        .unwrap();
    let event = serde_json::json!({"id": 5501, "action": "unlock", "success": true, "object_name": "Front door", "actor_type": "User", "actor_id": 901, "actor_name": "Ada L."}).to_string();
    let (s, _) = post("/api/v1/webhooks/doors/kisi", vec![], event.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "events not enabled yet");
    let secret = "kisi-events-secret-0123456789";
    lab.store
        .set_door_events_secret("kisi", secret, &actor())
        .await
        .unwrap();
    lab.store
        .sync_ok(kisi.id, &ada.id, Some(r#"{"user_id":"901","grants":[]}"#))
        .await
        .unwrap();
    let sig = |key: &str, body: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let (s, _) = post("/api/v1/webhooks/doors/kisi", vec![], event.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "unsigned");
    let (s, _) = post(
        "/api/v1/webhooks/doors/kisi",
        vec![("x-signature", sig("wrong-secret", &event))],
        event.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "wrong secret");
    let (s, v) = post(
        "/api/v1/webhooks/doors/kisi",
        vec![("x-signature", sig(secret, &event))],
        event.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["recorded"], &v["kind"], &v["member"]),
        (
            &serde_json::json!(true),
            &serde_json::json!("unlock"),
            &serde_json::json!(ada.id)
        )
    );
    let (_, v) = post(
        "/api/v1/webhooks/doors/kisi",
        vec![("x-signature", sig(secret, &event))],
        event.clone(),
    )
    .await;
    assert_eq!(v["recorded"], false, "a redelivery is recorded once");
    let (s, _) = post(
        "/api/v1/webhooks/doors/nope",
        vec![("x-signature", sig(secret, &event))],
        event,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let page = lab.req("GET", "/presence", &[&owner], None, None).await;
    assert!(
        page.body.contains("Ada Lovelace") && page.body.contains("Front door "),
        "{}",
        page.body
    );
    let audit = lab.store.audit_log(20).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.action == "door.unlock").count(),
        1
    );

    // UniFi Access: Stripe-like signature with a timestamp.
    lab.store
        .add_door_backend(
            "unifi",
            "unifi-access",
            "https://192.0.2.5:12445",
            Some("t"),
            &actor(),
        )
        .await
        .unwrap();
    let usecret = "unifi-events-secret-0123456789";
    lab.store
        .set_door_events_secret("unifi", usecret, &actor())
        .await
        .unwrap();
    let held = serde_json::json!({"event": "access.door.held_open", "data": {"location": {"name": "Back door"}}}).to_string();
    let now = chrono::Utc::now().timestamp();
    let (s, _) = post(
        "/api/v1/webhooks/doors/unifi",
        vec![(
            "signature",
            frontdesk_portal::api::webhook::sign(usecret.as_bytes(), held.as_bytes(), now - 3600),
        )],
        held.clone(),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an hour-old signature is a replay"
    );
    let (s, v) = post(
        "/api/v1/webhooks/doors/unifi",
        vec![(
            "signature",
            frontdesk_portal::api::webhook::sign(usecret.as_bytes(), held.as_bytes(), now),
        )],
        held,
    )
    .await;
    assert_eq!(
        (s, &v["kind"]),
        (StatusCode::OK, &serde_json::json!("held_open")),
        "{v}"
    );
    let dash = lab.req("GET", "/", &[&owner], None, None).await;
    assert!(
        dash.body
            .contains("Back door was held open 1 time in the last 24 hours"),
        "{}",
        dash.body
    );
}

/// Wi-Fi controllers (radius-only mode) on the Network page with their health, and a
/// dashboard alert while the last call failed; a success clears it.
#[tokio::test]
async fn controller_health_on_network_page_and_dashboard() {
    use frontdesk_core::store::controllers::NewController;
    let (lab, owner_pw) = lab(ConsoleSettings::default()).await;
    let owner = ready_operator(&lab, "owner@example.com", &owner_pw).await;
    let r = lab.req("GET", "/network", &[&owner], None, None).await;
    assert!(r.body.contains("Wi-Fi controllers") && r.body.contains("frontdesk controller add"));
    lab.store
        .add_controller(
            &NewController {
                name: "office-wifi",
                kind: "unifi",
                url: "https://unifi.example:8443",
                site: Some("default"),
                username: Some("portal"),
                secret: Some("hunter2-password"),
            },
            &actor(),
        )
        .await
        .unwrap();
    lab.store
        .set_controller_health(
            "office-wifi",
            Some("UniFi controller \"office-wifi\" is unreachable: HTTP 500"),
        )
        .await
        .unwrap();
    let r = lab.req("GET", "/network", &[&owner], None, None).await;
    assert!(
        r.body.contains("office-wifi") && r.body.contains("HTTP 500"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("hunter2"), "the secret is never shown");
    let r = lab.req("GET", "/", &[&owner], None, None).await;
    assert!(
        r.body
            .contains("Wi-Fi controller office-wifi (unifi) failed at"),
        "{}",
        r.body
    );
    lab.store
        .set_controller_health("office-wifi", None)
        .await
        .unwrap();
    let app = Console::new(lab.store.clone(), ConsoleSettings::default()).router();
    let lab = Lab { app, ..lab };
    let r = lab.req("GET", "/", &[&owner], None, None).await;
    assert!(
        !r.body.contains("Wi-Fi controller office-wifi"),
        "cleared by a success"
    );
    let r = lab.req("GET", "/network", &[&owner], None, None).await;
    assert!(r.body.contains("<td>none</td>"), "{}", r.body);
}

/// Protective DNS exception requests on the Network page: listed with who asked and why;
/// an owner approves one for the requester's plan until a date (the member is mailed), denies
/// another; a viewer sees them but cannot decide; a request is decided once.
#[tokio::test]
async fn dns_exception_requests_are_decided_on_the_network_page() {
    use frontdesk_core::store::dns::Scope;
    let outbox = std::sync::Arc::new(Outbox::default());
    let (lab, one_time) = lab_full(ConsoleSettings::default(), None, Some(outbox.clone())).await;
    let today = chrono::Utc::now().date_naive();
    let (m, _) = lab
        .store
        .add_member(
            &NewMember {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                plan: "full-time".into(),
                ..Default::default()
            },
            today,
            &actor(),
        )
        .await
        .unwrap();
    let asked = lab
        .store
        .request_exception(
            "docs.vendor.example",
            Some(&m.id),
            "vendor <docs>",
            Some("malware"),
            &actor(),
        )
        .await
        .unwrap();
    let other = lab
        .store
        .request_exception(
            "games.example",
            None,
            "fun (from a visitor)",
            Some("strict"),
            &actor(),
        )
        .await
        .unwrap();
    let (_, viewer_once) = lab
        .store
        .add_admin("viewer@example.com", Role::Viewer, &actor())
        .await
        .unwrap();
    let owner = ready_operator(&lab, "owner@example.com", &one_time).await;
    let page = lab.req("GET", "/network", &[&owner], None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("docs.vendor.example") && page.body.contains("a visitor"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("vendor &#60;docs&#62;") && !page.body.contains("<docs>"),
        "escaped: {}",
        page.body
    );
    let until = (today + chrono::Duration::days(30)).to_string();
    let form = format!(
        "csrf={}&decision=approve&scope=plan&plan=full-time&until={until}",
        page.csrf()
    );
    let r = lab
        .req(
            "POST",
            &format!("/network/dns/{}", asked.id),
            &[&owner],
            None,
            Some(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("docs.vendor.example: approved"),
        "{}",
        r.body
    );
    let e = lab.store.exception(asked.id).await.unwrap();
    assert_eq!(
        (e.status.as_str(), e.scope.clone()),
        ("approved", Scope::Plan("full-time".into()))
    );
    assert_eq!(e.valid_until.map(|d| d.to_string()), Some(until));
    let mails = outbox.wait_for(1).await;
    assert_eq!(mails[0].to, "ada@example.com");
    assert!(
        mails[0]
            .body
            .contains("docs.vendor.example is open for you"),
        "{}",
        mails[0].body
    );
    // Decided once only.
    let page = lab.req("GET", "/network", &[&owner], None, None).await;
    let again = format!("csrf={}&decision=deny", page.csrf());
    let r = lab
        .req(
            "POST",
            &format!("/network/dns/{}", asked.id),
            &[&owner],
            None,
            Some(again),
        )
        .await;
    assert!(r.body.contains("already approved"), "{}", r.body);
    // A viewer cannot decide.
    let viewer = ready_operator(&lab, "viewer@example.com", &viewer_once).await;
    let page = lab.req("GET", "/network", &[&viewer], None, None).await;
    assert!(
        page.body.contains("games.example") && !page.body.contains("approve-dns-"),
        "{}",
        page.body
    );
    let form = format!("csrf={}&decision=approve&scope=everyone", page.csrf());
    let r = lab
        .req(
            "POST",
            &format!("/network/dns/{}", other.id),
            &[&viewer],
            None,
            Some(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        lab.store.exception(other.id).await.unwrap().status,
        "pending"
    );
    // The owner denies it.
    let page = lab.req("GET", "/network", &[&owner], None, None).await;
    let form = format!("csrf={}&decision=deny", page.csrf());
    lab.req(
        "POST",
        &format!("/network/dns/{}", other.id),
        &[&owner],
        None,
        Some(form),
    )
    .await;
    assert_eq!(
        lab.store.exception(other.id).await.unwrap().status,
        "denied"
    );
}
