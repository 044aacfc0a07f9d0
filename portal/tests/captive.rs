//! The captive portal against a real SQLite store, with a recording authorizer and a locator
//! that maps addresses to MACs (the gateway and Chromium end-to-end tests use the real ones).

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use chrono::{DateTime, Utc};
use frontdesk_core::mac::MacAddr;
use frontdesk_core::model::Plan;
use frontdesk_core::ports::{ActError, ClientAuthorizer, ClientLocator, ClientRef, Mail, Mailer};
use frontdesk_core::store::{Actor, OpenMode, Store};
use frontdesk_core::WindowSpec;
use frontdesk_portal::{Conn, Portal, PortalSettings};
use http_body_util::BodyExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(MacAddr, Option<DateTime<Utc>>)>>,
    fail: bool,
}

#[async_trait]
impl ClientAuthorizer for Recorder {
    async fn authorize(&self, c: &ClientRef, until: Option<DateTime<Utc>>) -> Result<(), ActError> {
        if self.fail {
            return Err(ActError::Other("nft exploded".into()));
        }
        self.calls.lock().unwrap().push((c.mac, until));
        Ok(())
    }
    async fn revoke(&self, _: &ClientRef) -> Result<(), ActError> {
        Ok(())
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<Mail>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: Mail) -> Result<(), ActError> {
        self.0.lock().unwrap().push(mail);
        Ok(())
    }
}

/// 10.30.0.N is MAC 02:00:00:00:00:N; anything else is not on the guest network.
struct Lan;

#[async_trait]
impl ClientLocator for Lan {
    async fn locate(&self, ip: IpAddr) -> Option<ClientRef> {
        match ip {
            IpAddr::V4(v4) if v4.octets()[..3] == [10, 30, 0] => Some(ClientRef {
                mac: MacAddr([2, 0, 0, 0, 0, v4.octets()[3]]),
                ip: Some(ip),
                location: Some("vlan30".into()),
            }),
            _ => None,
        }
    }
}

struct Lab {
    /// Requests arrive over HTTPS.
    tls: bool,
    store: Store,
    rec: Arc<Recorder>,
    outbox: Arc<Outbox>,
    app: axum::Router,
    _catalog: tokio::sync::watch::Sender<Arc<frontdesk_core::decide::Catalog>>,
    _dir: tempfile::TempDir,
}

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        source: "test".into(),
    }
}

/// A site whose guest plan is `guest_plan`: "lobby" is open around the clock (tests run at
/// any hour); "guest" keeps opening hours.
async fn lab(fail: bool, guest_plan: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("p.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await.unwrap();
    store
        .init_site("Portal Lab", "Europe/Berlin", &actor())
        .await
        .unwrap();
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "test-key")
        .await
        .unwrap();
    let guest = store.plan("guest").await.unwrap();
    store
        .add_plan(
            &Plan {
                name: "lobby".into(),
                wifi: WindowSpec::Always,
                ..guest
            },
            &actor(),
        )
        .await
        .unwrap();
    lab_on(store, dir, fail, guest_plan).await
}

async fn lab_on(store: Store, dir: tempfile::TempDir, fail: bool, guest_plan: &str) -> Lab {
    let catalog = Arc::new(store.catalog().await.unwrap());
    let (tx, rx) = tokio::sync::watch::channel(catalog);
    let rec = Arc::new(Recorder {
        fail,
        ..Default::default()
    });
    let outbox = Arc::new(Outbox::default());
    let portal = Portal::new(
        store.clone(),
        rx,
        rec.clone(),
        Arc::new(Lan),
        outbox.clone(),
        PortalSettings {
            guest_plan: guest_plan.into(),
            max_failures_per_mac: 3,
            ..Default::default()
        },
        [9; 32],
    );
    Lab {
        tls: false,
        store,
        rec,
        outbox,
        app: portal.router(),
        _catalog: tx,
        _dir: dir,
    }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Lab {
    async fn req(
        &self,
        from: &str,
        method: &str,
        path: &str,
        host: &str,
        form: Option<String>,
    ) -> Resp {
        let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host);
        if form.is_some() {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut r = r.body(Body::from(form.unwrap_or_default())).unwrap();
        r.extensions_mut().insert(ConnectInfo(Conn {
            peer,
            local: "10.30.0.1:8081".parse().unwrap(),
            tls: self.tls,
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

    async fn get(&self, from: &str, path: &str) -> Resp {
        self.req(from, "GET", path, "10.30.0.1:8081", None).await
    }

    async fn post(&self, from: &str, path: &str, form: &str) -> Resp {
        self.req(from, "POST", path, "10.30.0.1:8081", Some(form.to_string()))
            .await
    }

    /// Welcome page → accept → the login form's token.
    async fn login_token(&self, from: &str) -> String {
        let w = self.get(from, "/").await;
        assert_eq!(w.status, StatusCode::OK, "{}", w.body);
        assert!(w.body.contains("Acceptable use"));
        let l = self
            .post(from, "/accept", &format!("csrf={}", token(&w.body)))
            .await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.body);
        assert!(l.body.contains("Voucher code"));
        token(&l.body)
    }

    async fn voucher(&self, devices: u32, valid_secs: i64) -> String {
        self.store
            .create_vouchers(1, valid_secs, devices, "lobby", None, &actor())
            .await
            .unwrap()
            .remove(0)
            .code
    }
}

fn token(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

fn location(r: &Resp) -> &str {
    r.headers.get(header::LOCATION).unwrap().to_str().unwrap()
}

const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";

#[tokio::test]
async fn voucher_login_end_to_end() {
    let lab = lab(false, "lobby").await;
    let code = lab.voucher(1, 3600).await;
    // Before login every probe sends the OS to the portal.
    for probe in [
        "/hotspot-detect.html",
        "/generate_204",
        "/connecttest.txt",
        "/success.txt",
    ] {
        let r = lab.get("10.30.0.5", probe).await;
        assert_eq!(r.status, StatusCode::FOUND, "{probe}");
        assert_eq!(location(&r), "http://10.30.0.1:8081/");
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    }
    let api = lab.get("10.30.0.5", "/.well-known/captive-portal").await;
    assert_eq!(
        api.headers[header::CONTENT_TYPE],
        "application/captive+json"
    );
    let j: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(j["captive"], true);
    assert_eq!(j["user-portal-url"], "http://10.30.0.1:8081/");
    // Any other site's page is redirected to the portal, on a connection that then closes.
    let r = lab
        .req("10.30.0.5", "GET", "/news?x=1", "example.org", None)
        .await;
    assert_eq!(location(&r), "http://10.30.0.1:8081/");
    assert_eq!(r.headers[header::CONNECTION], "close");
    // Even the front page of another site (the portal's own paths answer only under its host).
    let r = lab.req("10.30.0.5", "GET", "/", "example.org", None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(location(&r), "http://10.30.0.1:8081/");

    let tok = lab.login_token("10.30.0.5").await;
    // Typed on a phone: lower case, no dash, spaces around.
    let typed = format!("+{}+", code.to_lowercase().replace('-', ""));
    let r = lab
        .post("10.30.0.5", "/login", &format!("csrf={tok}&code={typed}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), "/status");
    let calls = lab.rec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, MacAddr([2, 0, 0, 0, 0, 5]));
    let secs = (calls[0].1.unwrap() - Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&secs), "{secs}");

    let s = lab.get("10.30.0.5", "/status").await;
    assert!(s.body.contains("You're online"), "{}", s.body);
    assert_eq!(
        lab.get("10.30.0.5", "/hotspot-detect.html").await.body,
        APPLE_SUCCESS
    );
    assert_eq!(
        lab.get("10.30.0.5", "/generate_204").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        lab.get("10.30.0.5", "/connecttest.txt").await.body,
        "Microsoft Connect Test"
    );
    assert_eq!(lab.get("10.30.0.5", "/success.txt").await.body, "success\n");
    let j: serde_json::Value = serde_json::from_str(
        &lab.get("10.30.0.5", "/.well-known/captive-portal")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(j["captive"], false);
    assert!(j["seconds-remaining"].as_i64().unwrap() > 3500);
    // Online, a stale redirected connection is sent back to where it was going.
    let r = lab
        .req("10.30.0.5", "GET", "/a?b=c", "example.org", None)
        .await;
    assert_eq!(location(&r), "http://example.org/a?b=c");
    // The client is recorded with its end (re-authorized after a restart).
    let live = lab.store.portal_clients(Utc::now()).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].network.as_deref(), Some("vlan30"));

    // A single-device voucher does not let a second device in.
    let tok = lab.login_token("10.30.0.6").await;
    let r = lab
        .post("10.30.0.6", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Device limit reached"));
    assert_eq!(lab.rec.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_page_and_no_authorization() {
    let lab = lab(false, "lobby").await;
    let from = "10.30.0.7";
    // Missing and forged tokens.
    for form in ["code=ABCDE-FGHJK", "csrf=&code=x", "csrf=123.abcd&code=x"] {
        let r = lab.post(from, "/login", form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}");
        assert!(r.body.contains("This page has expired"));
    }
    // Another client's token.
    let other = lab.login_token("10.30.0.8").await;
    let r = lab
        .post(from, "/login", &format!("csrf={other}&code=x"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let tok = lab.login_token(from).await;
    // HTML in a field comes back escaped.
    let r = lab
        .post(
            from,
            "/login",
            &format!("csrf={tok}&code=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(r.body.contains("script&#62;") || r.body.contains("script&gt;"));
    // Oversized body: a page, not a crash or a parse.
    let big = format!("csrf={tok}&code={}", "A".repeat(20_000));
    let r = lab.post(from, "/login", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("too much"));
    // Oversized field within the body limit.
    let r = lab
        .post(
            from,
            "/login",
            &format!("csrf={tok}&code={}", "B".repeat(500)),
        )
        .await;
    assert!(r.body.contains("not a voucher code"));
    // Expired voucher (validity counts from first use, long past).
    let code = lab.voucher(2, 60).await;
    lab.store
        .redeem_voucher(
            &code,
            MacAddr([2, 0, 0, 0, 0, 99]),
            Utc::now() - chrono::Duration::hours(2),
            &actor(),
        )
        .await
        .unwrap();
    let r = lab
        .post(from, "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert!(r.body.contains("This voucher has expired"), "{}", r.body);
    // A client the locator does not know (not on the guest network).
    let tok = lab.login_token("192.0.2.1").await;
    let r = lab
        .post("192.0.2.1", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert!(
        r.body.contains("We can&#39;t see your device")
            || r.body.contains("We can't see your device"),
        "{}",
        r.body
    );
    assert!(lab.rec.calls.lock().unwrap().is_empty());
    assert!(lab
        .store
        .portal_clients(Utc::now())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn guessing_is_rate_limited_per_device() {
    let lab = lab(false, "lobby").await;
    let code = lab.voucher(1, 3600).await;
    let tok = lab.login_token("10.30.0.9").await;
    for i in 0..3 {
        let r = lab
            .post(
                "10.30.0.9",
                "/login",
                &format!("csrf={tok}&code=WRONG-{i:05}"),
            )
            .await;
        assert!(r.body.contains("not valid"), "{}", r.body);
    }
    // Now even the right code has to wait.
    let r = lab
        .post("10.30.0.9", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Too many attempts"));
    // Another device is not affected.
    let tok = lab.login_token("10.30.0.10").await;
    let r = lab
        .post("10.30.0.10", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failed_authorization_records_nothing() {
    let lab = lab(true, "lobby").await;
    let code = lab.voucher(1, 3600).await;
    let tok = lab.login_token("10.30.0.11").await;
    let r = lab
        .post("10.30.0.11", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("We could not connect you"));
    assert!(lab
        .store
        .portal_clients(Utc::now())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn closed_site_shows_when_it_opens_and_keeps_the_voucher_unused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("p.db").display());
    let store = Store::open(&url, OpenMode::Create).await.unwrap();
    store
        .init_site("Portal Lab", "Europe/Berlin", &actor())
        .await
        .unwrap();
    // Closed today and for the next three days, whatever the hour the test runs.
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    store
        .add_closure(
            today,
            today + chrono::Duration::days(3),
            "Holidays",
            true,
            &actor(),
        )
        .await
        .unwrap();
    let lab = lab_on(store, dir, false, "guest").await;
    let r = lab.get("10.30.0.12", "/").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Closed now"), "{}", r.body);
    assert!(r.body.contains("Guest Wi-Fi opens"), "{}", r.body);
    let code = lab
        .store
        .create_vouchers(1, 3600, 1, "guest", None, &actor())
        .await
        .unwrap()
        .remove(0)
        .code;
    // A login form opened before closing time still submits: the voucher is not started.
    let tok = frontdesk_portal::csrf::Tokens::new([9; 32]).issue(
        "login",
        "10.30.0.12".parse().unwrap(),
        Utc::now().timestamp(),
    );
    let r = lab
        .post("10.30.0.12", "/login", &format!("csrf={tok}&code={code}"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Closed now"), "{}", r.body);
    assert!(lab
        .store
        .voucher(&code)
        .await
        .unwrap()
        .unwrap()
        .first_used_at
        .is_none());
    assert!(lab.rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sponsored_guest_waits_and_is_let_in_by_the_member() {
    let lab = lab(false, "lobby").await;
    let (m, _) = lab
        .store
        .add_member(
            &frontdesk_core::store::NewMember {
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                plan: "full-time".into(),
                ..Default::default()
            },
            Utc::now().date_naive(),
            &actor(),
        )
        .await
        .unwrap();
    let tok = lab.login_token("10.30.0.20").await;
    let r = lab
        .post(
            "10.30.0.20",
            "/sponsor",
            &format!("csrf={tok}&email=ADA%40example.com&name=Grace%0D%0ABcc%3A+x%40evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let wait = location(&r).to_string();
    assert!(wait.starts_with("/sponsor/wait/"));
    let w = lab.get("10.30.0.20", &wait).await;
    assert!(w.body.contains("Waiting for your host"));
    assert!(
        w.body.contains("http-equiv=\"refresh\""),
        "the page refreshes itself"
    );
    // One mail, to the member, with a one-line subject and the approval link.
    let mail = lab.outbox.0.lock().unwrap().pop().expect("a mail");
    assert_eq!(mail.to, m.email);
    assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
    assert!(
        mail.subject.contains("Grace Bcc: x@evil.example"),
        "{}",
        mail.subject
    );
    let link = mail
        .body
        .lines()
        .find(|l| l.contains("/sponsor/approve/"))
        .unwrap()
        .trim()
        .to_string();
    let path = &link[link.find("/sponsor/approve/").unwrap()..];
    // Opening the link (a mail scanner does) changes nothing.
    let page = lab.get("10.10.0.5", path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("asks to use the guest Wi-Fi"));
    assert!(lab.rec.calls.lock().unwrap().is_empty());
    // The approve form is bound to the member's device; a forged one is refused.
    let r = lab
        .post("10.10.0.5", path, "csrf=1.00&decision=approve")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = lab
        .post(
            "10.10.0.5",
            path,
            &format!("csrf={}&decision=approve", token(&page.body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("is online until"), "{}", r.body);
    let calls = lab.rec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, MacAddr([2, 0, 0, 0, 0, 20]));
    // The guest's waiting page now sends them to their status.
    let w = lab.get("10.30.0.20", &wait).await;
    assert_eq!(location(&w), "/status");
    let s = lab.get("10.30.0.20", "/status").await;
    assert!(s.body.contains("You're online"));
    let pc = lab
        .store
        .portal_client(MacAddr([2, 0, 0, 0, 0, 20]), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pc.subject, m.id);
    // The link works once.
    let again = lab.get("10.10.0.5", path).await;
    assert_eq!(again.status, StatusCode::GONE);

    // An address that is no member looks the same to the guest, and sends no mail.
    let tok = lab.login_token("10.30.0.21").await;
    let r = lab
        .post(
            "10.30.0.21",
            "/sponsor",
            &format!("csrf={tok}&email=nobody%40example.com&name=Eve"),
        )
        .await;
    let w = lab.get("10.30.0.21", location(&r)).await;
    assert!(w.body.contains("Waiting for your host"));
    assert!(lab.outbox.0.lock().unwrap().is_empty());
    // A device asking again and again is stopped.
    for _ in 0..2 {
        lab.post(
            "10.30.0.21",
            "/sponsor",
            &format!("csrf={tok}&email=ada%40example.com&name=Eve"),
        )
        .await;
    }
    let r = lab
        .post(
            "10.30.0.21",
            "/sponsor",
            &format!("csrf={tok}&email=ada%40example.com&name=Eve"),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // Declining is final too.
    let mail = lab.outbox.0.lock().unwrap().pop().unwrap();
    let link = mail
        .body
        .lines()
        .find(|l| l.contains("/sponsor/approve/"))
        .unwrap()
        .trim()
        .to_string();
    let path = link[link.find("/sponsor/approve/").unwrap()..].to_string();
    let page = lab.get("10.10.0.5", &path).await;
    let r = lab
        .post(
            "10.10.0.5",
            &path,
            &format!("csrf={}&decision=decline", token(&page.body)),
        )
        .await;
    assert!(r.body.contains("Declined"));
    assert_eq!(lab.rec.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn members_sign_in_only_over_https() {
    let mut lab = lab(false, "lobby").await;
    let (m, password) = lab
        .store
        .add_member(
            &frontdesk_core::store::NewMember {
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                plan: "full-time".into(),
                ..Default::default()
            },
            Utc::now().date_naive() - chrono::Duration::days(1),
            &actor(),
        )
        .await
        .unwrap();
    // Over plain HTTP the form is not offered, and a posted password is refused unread.
    let tok = lab.login_token("10.30.0.30").await;
    let page = lab.post("10.30.0.30", "/accept", "csrf=x").await;
    assert!(!page.body.contains("Wi-Fi password"));
    let form = format!(
        "csrf={tok}&username={}&password={password}",
        m.wifi_username
    );
    let r = lab.post("10.30.0.30", "/member", &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("secure"));
    assert!(lab.rec.calls.lock().unwrap().is_empty());

    lab.tls = true;
    let w = lab.get("10.30.0.30", "/").await;
    let l = lab
        .post("10.30.0.30", "/accept", &format!("csrf={}", token(&w.body)))
        .await;
    assert!(l.body.contains("Wi-Fi password"), "{}", l.body);
    let tok = token(&l.body);
    let wrong = format!("csrf={tok}&username={}&password=nope", m.wifi_username);
    let r = lab.post("10.30.0.30", "/member", &wrong).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Wrong Wi-Fi username or password"));
    let unknown = format!("csrf={tok}&username=nobody&password=nope");
    let r = lab.post("10.30.0.30", "/member", &unknown).await;
    assert!(r.body.contains("Wrong Wi-Fi username or password"));
    let form = format!(
        "csrf={tok}&username={}&password={}",
        m.wifi_username,
        password.replace('-', "%2D")
    );
    let r = lab.post("10.30.0.30", "/member", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let calls = lab.rec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    // A 24/7 plan has no end today: the portal caps the session at a day.
    let secs = (calls[0].1.unwrap() - Utc::now()).num_seconds();
    assert!((86_000..=86_400).contains(&secs), "{secs}");
    let pc = lab
        .store
        .portal_client(MacAddr([2, 0, 0, 0, 0, 30]), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pc.subject, m.id);
    // Guessing is limited like vouchers (3 failures per device in this lab).
    let tok = lab.login_token("10.30.0.31").await;
    for _ in 0..3 {
        let wrong = format!("csrf={tok}&username={}&password=guess", m.wifi_username);
        lab.post("10.30.0.31", "/member", &wrong).await;
    }
    let right = format!(
        "csrf={tok}&username={}&password={}",
        m.wifi_username,
        password.replace('-', "%2D")
    );
    let r = lab.post("10.30.0.31", "/member", &right).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}
