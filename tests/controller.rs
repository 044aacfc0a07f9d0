//! Radius-only mode with the space's own UniFi controller (issue 11): the controller's
//! external-portal redirect, a voucher on Frontdesk's portal pages, `authorize-guest` for the
//! right MAC, site and minutes, the revoke at closing time, re-login after the controller's
//! session expired, and a controller outage shown plainly. Peers: a fake UniFi Network
//! controller (bench/src/fake_unifi_network.rs) and curl as the guest's browser.

mod common;
use common::browser::{body_text, in_browser, shot};
use common::netns::Netns;
use common::{listen_args, require_root, require_tool, Db, Env, Server, BIN};
use frontdesk_bench::fake_unifi_network::{self, UniFiNetwork, USER};
use frontdesk_bench::faults::Fault;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SITE: &str = "x7k2p9";
const GUEST: &str = "aa:bb:cc:dd:ee:01";

/// A guest's browser: curl with a cookie jar, following redirects.
struct Browser {
    jar: std::path::PathBuf,
    base: String,
}

impl Browser {
    /// (HTTP status, body) of a request; `form` makes it a POST.
    fn go(&self, url: &str, form: Option<&[(&str, &str)]>) -> (u16, String) {
        self.request(url, form, true)
    }

    /// Like `go` without following redirects: (status, Location).
    fn peek(&self, url: &str, form: Option<&[(&str, &str)]>) -> (u16, String) {
        let (status, _) = self.request(url, form, false);
        let location =
            std::fs::read_to_string(self.jar.with_extension("location")).unwrap_or_default();
        (status, location.trim().to_string())
    }

    fn request(&self, url: &str, form: Option<&[(&str, &str)]>, follow: bool) -> (u16, String) {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut c = Command::new("curl");
        c.args(["-s", "-w", "\n%{http_code}", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar);
        if follow {
            c.arg("-L");
        } else {
            // Where a redirect points, without going there (never leave loopback).
            c.arg("-D").arg(self.jar.with_extension("headers"));
        }
        for (k, v) in form.unwrap_or_default() {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = c.arg(&url).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !follow {
            let headers =
                std::fs::read_to_string(self.jar.with_extension("headers")).unwrap_or_default();
            let location = headers
                .lines()
                .find_map(|l| {
                    l.strip_prefix("location: ")
                        .or_else(|| l.strip_prefix("Location: "))
                })
                .unwrap_or_default();
            std::fs::write(self.jar.with_extension("location"), location).unwrap();
        }
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

/// `controller add` for the fake UniFi controller at `url`, site [`SITE`].
fn add_unifi(env: &Env, url: &str) {
    let secret = env.path("unifi.secret");
    std::fs::write(&secret, USER.1).unwrap();
    env.run(&[
        "controller",
        "add",
        "--name",
        "office-wifi",
        "--kind",
        "unifi",
        "--url",
        url,
        "--site",
        SITE,
        "--username",
        USER.0,
        "--secret-file",
        secret.to_str().unwrap(),
    ])
    .ok();
}

/// A voucher for the `lobby` plan.
fn lobby_voucher(env: &Env, valid: &str, devices: &str) -> String {
    env.run(&[
        "--json",
        "voucher",
        "create",
        "--plan",
        "lobby",
        "--valid",
        valid,
        "--devices",
        devices,
    ])
    .ok()
    .json()[0]["code"]
        .as_str()
        .unwrap()
        .to_string()
}

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Milliseconds from now to today's `hh:mm:ss` UTC (what `FRONTDESK_TEST_CLOCK_OFFSET_MS`
/// takes to make it that time).
fn offset_to(h: u32, m: u32, s: u32) -> i64 {
    let now = chrono::Utc::now();
    let target = now.date_naive().and_hms_opt(h, m, s).unwrap().and_utc();
    (target - now).num_milliseconds()
}

fn serve(env: &Env, cfg: &std::path::Path) -> (Server, String) {
    let mut cmd = env.cmd();
    cmd.arg("--config").arg(cfg).arg("serve");
    listen_args(&mut cmd, "127.0.0.1:0");
    let server = Server::start(cmd);
    let line = server
        .wait_for(&["captive portal listening"], Duration::from_secs(30))
        .expect("portal up");
    let addr = line[line.find("portal=").unwrap() + 7..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(server
        .wait_for(&["following changes"], Duration::from_secs(20))
        .is_some());
    (server, format!("http://{addr}"))
}

fn walk_in(b: &Browser, code: &str) -> (u16, String) {
    let (status, welcome) = b.go(
        &format!("/guest/s/{SITE}/?ap=f0:9f:c2:00:00:01&id={GUEST}&t=1764000000&url=http%3A%2F%2Fexample.com%2Fnews&ssid=Guests"),
        None,
    );
    assert_eq!(status, 200, "{welcome}");
    assert!(welcome.contains("Welcome"), "{welcome}");
    let (_, login) = b.go("/accept", Some(&[("csrf", &csrf(&welcome))]));
    b.go("/login", Some(&[("csrf", &csrf(&login)), ("code", code)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unifi_external_portal_authorizes_revokes_and_survives_the_controller() {
    if !require_tool("curl", "curl") {
        return;
    }
    let fake: fake_unifi_network::Shared = Arc::new(Mutex::new(UniFiNetwork::default()));
    fake.lock()
        .unwrap()
        .stations
        .push((SITE.into(), GUEST.into()));
    let url = fake_unifi_network::start(fake.clone()).await;
    let mut env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab("testing123-secret");
    // Guests until noon (UTC site): the test's clock is put before it.
    env.run(&[
        "plan",
        "add",
        "--name",
        "lobby",
        "--vlan",
        "30",
        "--wifi",
        "mon-sun 06:00-12:00",
    ])
    .ok();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[portal]\nguest_plan = \"lobby\"\n").unwrap();
    add_unifi(&env, &url);
    let t = env.run(&["controller", "test", "office-wifi"]).ok();
    assert!(
        t.stdout.contains("OK") && t.stdout.contains("UniFi OS") && t.stdout.contains("1 clients"),
        "{}",
        t.stdout
    );
    let code = lobby_voucher(&env, "8h", "1");

    // 10:30: the guest arrives; access until noon is 90 minutes.
    env.clock_offset_ms = Some(offset_to(10, 30, 0));
    let (server, base) = serve(&env, &cfg);
    let b = Browser {
        jar: env.path("cookies.txt"),
        base: base.clone(),
    };
    // Bad redirects get a clear page, not a crash.
    for bad in [
        format!("/guest/s/{SITE}/?id=not-a-mac"),
        format!("/guest/s/{SITE}/?ap=f0:9f:c2:00:00:01"),
        format!("/guest/s/..%2Fx/?id={GUEST}"),
        format!("/guest/s/{SITE}/?id={GUEST}&url={}", "a".repeat(5000)),
    ] {
        let (status, body) = b.go(&bad, None);
        assert_eq!(status, 400, "{base}{bad}: {body}");
        assert!(body.contains("This link does not work"), "{body}");
    }
    let (status, page) = walk_in(&b, &code);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("You&#39;re online") || page.contains("You're online"),
        "{page}"
    );
    assert!(
        page.contains("href=\"http://example.com/news\""),
        "the original URL as a link: {page}"
    );
    {
        let k = fake.lock().unwrap();
        assert_eq!(
            k.sent("authorize-guest"),
            [(SITE.to_string(), GUEST.to_string(), Some(90))],
            "authorized on the redirect's site until closing"
        );
    }
    // A javascript: URL is never offered.
    let b2 = Browser {
        jar: env.path("cookies2.txt"),
        base: base.clone(),
    };
    let (_, welcome) = b2.go(
        &format!("/guest/s/{SITE}/?id={GUEST}&url=javascript%3Aalert(1)"),
        None,
    );
    assert!(!welcome.contains("javascript:"), "{welcome}");
    drop(server);

    // The controller forgot its sessions (restart, timeout); at 11:59:50 Frontdesk starts
    // again and at noon takes the guest back: log in again, unauthorize, kick.
    fake.lock().unwrap().expire_sessions();
    let logins_before = fake.lock().unwrap().logins;
    env.clock_offset_ms = Some(offset_to(11, 59, 50));
    let (server, _) = serve(&env, &cfg);
    let t = std::time::Instant::now();
    loop {
        let k = fake.lock().unwrap();
        if !k.sent("kick-sta").is_empty() {
            assert_eq!(
                k.sent("unauthorize-guest"),
                [(SITE.to_string(), GUEST.to_string(), None)]
            );
            assert!(k.logins > logins_before, "logged in again after expiry");
            assert!(k.stations.is_empty(), "kicked off the air");
            break;
        }
        drop(k);
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the revoke at closing time reached the controller"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("revoked at closing time after {:?}", t.elapsed());
    drop(server);

    // The controller is down (answers 500): the guest gets a clear page, the console's
    // controller list shows the error, and Frontdesk keeps serving.
    env.clock_offset_ms = Some(offset_to(10, 45, 0));
    let code2 = lobby_voucher(&env, "8h", "1");
    let (server, base) = serve(&env, &cfg);
    fake.lock().unwrap().expire_sessions();
    fake.lock().unwrap().faults = vec![Fault::Status(500); 4];
    let b3 = Browser {
        jar: env.path("cookies3.txt"),
        base,
    };
    let (status, page) = walk_in(&b3, &code2);
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("We could not connect you"), "{page}");
    let list = env.run(&["controller", "list"]).ok();
    assert!(list.stdout.contains("HTTP 500"), "{}", list.stdout);
    let (status, _) = b3.go("/", None);
    assert_eq!(status, 200, "still serving");
    drop(server);
    env.cleanup().await;
}

/// The classic self-hosted controller (`/api/login`, `unifises` + `csrf_token` cookies) and
/// clear refusals: a wrong password, an unsupported kind, plain http to another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_test_speaks_to_the_classic_controller_and_explains_refusals() {
    let fake: fake_unifi_network::Shared = Arc::new(Mutex::new(UniFiNetwork {
        classic: true,
        ..UniFiNetwork::default()
    }));
    let url = fake_unifi_network::start(fake.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab("testing123-secret");
    let add = |name: &str, url: &str, password: &str| {
        let secret = env.path(&format!("{name}.secret"));
        std::fs::write(&secret, password).unwrap();
        env.run(&[
            "controller",
            "add",
            "--name",
            name,
            "--kind",
            "unifi",
            "--url",
            url,
            "--site",
            "default",
            "--username",
            USER.0,
            "--secret-file",
            secret.to_str().unwrap(),
        ])
    };
    add("classic", &url, USER.1).ok();
    let t = env.run(&["controller", "test", "classic"]).ok();
    assert!(t.stdout.contains("classic controller"), "{}", t.stdout);
    add("wrong", &url, "not-the-password").ok();
    let t = env.run(&["controller", "test", "wrong"]);
    assert_ne!(t.code, 0);
    assert!(
        t.stderr.contains("FAILED") && t.stderr.contains("username and password"),
        "{}",
        t.stderr
    );
    let plain = add("plain", "http://192.0.2.10:8443", USER.1);
    assert_ne!(plain.code, 0);
    assert!(plain.stderr.contains("https://"), "{}", plain.stderr);
    let list = env.run(&["--json", "controller", "list"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["classic", "wrong"], "the refused one is not kept");
    assert!(
        !list.to_string().contains("portal-password"),
        "secrets never listed"
    );
    env.cleanup().await;
}

/// Omada's external portal (EAP redirect parameters → `extPortal/auth` with the hotspot
/// operator's session and CSRF token, `time` in microseconds until closing; re-login and
/// `unauth` at closing) and Meraki's click-through (the browser is sent to Meraki's grant URL
/// with `duration`; any other grant host is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omada_and_meraki_external_portals() {
    if !require_tool("curl", "curl") {
        return;
    }
    use frontdesk_bench::fake_omada::{self, Omada, OPERATOR};
    let fake: fake_omada::Shared = Arc::new(Mutex::new(Omada::default()));
    let url = fake_omada::start(fake.clone()).await;
    let mut env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab("testing123-secret");
    env.run(&[
        "plan",
        "add",
        "--name",
        "lobby",
        "--vlan",
        "30",
        "--wifi",
        "mon-sun 06:00-12:00",
    ])
    .ok();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[portal]\nguest_plan = \"lobby\"\n").unwrap();
    let secret = env.path("omada.secret");
    std::fs::write(&secret, OPERATOR.1).unwrap();
    env.run(&[
        "controller",
        "add",
        "--name",
        "omada",
        "--kind",
        "omada",
        "--url",
        &url,
        "--username",
        OPERATOR.0,
        "--secret-file",
        secret.to_str().unwrap(),
    ])
    .ok();
    let t = env.run(&["controller", "test", "omada"]).ok();
    assert!(
        t.stdout.contains("OK") && t.stdout.contains(fake_omada::ID),
        "{}",
        t.stdout
    );
    let voucher = || lobby_voucher(&env, "8h", "1");
    let (code, code2, code3) = (voucher(), voucher(), voucher());

    env.clock_offset_ms = Some(offset_to(10, 30, 0));
    let (server, base) = serve(&env, &cfg);
    let b = Browser {
        jar: env.path("omada-cookies.txt"),
        base: base.clone(),
    };
    let (status, welcome) = b.go(
        "/omada?clientMac=AA-BB-CC-DD-EE-02&apMac=F0-9F-C2-00-00-02&ssidName=Guest%20WiFi&radioId=1&site=Default&t=1764000000&redirectUrl=http%3A%2F%2Fexample.com%2F",
        None,
    );
    assert_eq!(status, 200, "{welcome}");
    let (_, login) = b.go("/accept", Some(&[("csrf", &csrf(&welcome))]));
    let (status, page) = b.go("/login", Some(&[("csrf", &csrf(&login)), ("code", &code)]));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("online"), "{page}");
    {
        let k = fake.lock().unwrap();
        assert_eq!(k.auths.len(), 1);
        let a = &k.auths[0];
        assert_eq!(
            (
                &a["clientMac"],
                &a["apMac"],
                &a["ssidName"],
                &a["radioId"],
                &a["site"],
                &a["authType"]
            ),
            (
                &serde_json::json!("AA-BB-CC-DD-EE-02"),
                &serde_json::json!("F0-9F-C2-00-00-02"),
                &serde_json::json!("Guest WiFi"),
                &serde_json::json!(1),
                &serde_json::json!("Default"),
                &serde_json::json!(4)
            ),
        );
        let micros = a["time"].as_i64().unwrap();
        assert!(
            (5_340_000_000..=5_400_000_000).contains(&micros),
            "until noon: {micros}"
        );
    }
    // Bad Omada redirects.
    for bad in [
        "/omada?clientMac=zz&apMac=F0-9F-C2-00-00-02&ssidName=G&radioId=1&site=Default",
        "/omada?clientMac=AA-BB-CC-DD-EE-02&ssidName=G&radioId=1&site=Default",
        "/omada?clientMac=AA-BB-CC-DD-EE-02&apMac=F0-9F-C2-00-00-02&ssidName=G&radioId=9&site=Default",
    ] {
        assert_eq!(b.go(bad, None).0, 400, "{bad}");
    }

    // Meraki: the last step sends the browser to Meraki's grant URL (not followed here).
    let m = Browser {
        jar: env.path("meraki-cookies.txt"),
        base: base.clone(),
    };
    let evil = m.go(
        "/meraki?base_grant_url=https%3A%2F%2Fevil.example%2Fgrant&client_mac=aa:bb:cc:dd:ee:03",
        None,
    );
    assert_eq!(evil.0, 400, "only Meraki's splash servers");
    let (status, welcome) = m.go(
        "/meraki?base_grant_url=https%3A%2F%2Fn143.network-auth.com%2Fsplash%2Fgrant&user_continue_url=http%3A%2F%2Fexample.com%2F&node_mac=88:15:44:00:00:01&client_ip=10.0.0.5&client_mac=aa:bb:cc:dd:ee:03",
        None,
    );
    assert_eq!(status, 200, "{welcome}");
    let (_, login) = m.go("/accept", Some(&[("csrf", &csrf(&welcome))]));
    let (status, to) = m.peek("/login", Some(&[("csrf", &csrf(&login)), ("code", &code2)]));
    assert_eq!((status, to.as_str()), (303, "/status"));
    let (status, grant) = m.peek("/status", None);
    assert_eq!(status, 303);
    assert!(
        grant.starts_with("https://n143.network-auth.com/splash/grant?continue_url=http%3A%2F%2Fexample.com%2F&duration=")
            && grant[grant.rfind('=').unwrap() + 1..].parse::<i64>().unwrap() > 5000,
        "{grant}"
    );

    // A controller that hangs: the guest gets a clear page after the 10 s timeout, and
    // Frontdesk keeps serving.
    fake.lock().unwrap().aimed.push((
        format!("POST /{}/api/v2/hotspot/extPortal/auth", fake_omada::ID),
        Fault::Slow,
    ));
    let s = Browser {
        jar: env.path("slow-cookies.txt"),
        base: base.clone(),
    };
    let (_, welcome) = s.go(
        "/omada?clientMac=AA-BB-CC-DD-EE-04&apMac=F0-9F-C2-00-00-02&ssidName=Guests&radioId=0&site=Default",
        None,
    );
    let (_, login) = s.go("/accept", Some(&[("csrf", &csrf(&welcome))]));
    let asked = std::time::Instant::now();
    let (status, page) = s.go("/login", Some(&[("csrf", &csrf(&login)), ("code", &code3)]));
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("We could not connect you"), "{page}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(s.go("/", None).0, 200, "still serving");
    drop(server);

    // Closing time: re-login after the session expired, then unauth.
    fake.lock().unwrap().sessions.clear();
    let logins = fake.lock().unwrap().logins;
    env.clock_offset_ms = Some(offset_to(11, 59, 50));
    let (server, _) = serve(&env, &cfg);
    let t = std::time::Instant::now();
    while fake.lock().unwrap().unauths.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "unauth at closing time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    {
        let k = fake.lock().unwrap();
        assert_eq!(
            k.unauths,
            [("Default".to_string(), "AA-BB-CC-DD-EE-02".to_string())]
        );
        assert!(k.logins > logins, "logged in again");
    }
    drop(server);
    env.cleanup().await;
}

/// Chromium walks the UniFi-style redirect → welcome → voucher → "you're online" with the
/// original URL offered as a link. Browser, `serve` and the fake controller run in a network
/// namespace of their own (nothing leaves it).
#[tokio::test(flavor = "multi_thread")]
async fn chromium_walks_the_unifi_redirect_to_online() {
    if !require_root("controller portal Chromium e2e (network namespace)")
        || !require_tool("chromedriver", "chromium-driver")
    {
        return;
    }
    let ns = Netns::new(&format!("fdctl{}", std::process::id()));
    ns.ip(&["link", "set", "lo", "up"]);
    let fake: fake_unifi_network::Shared = Arc::new(Mutex::new(UniFiNetwork::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fake = fake.clone();
        // The fake controller lives in the namespace for the rest of the test process.
        ns.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tx.send(fake_unifi_network::start(fake).await).unwrap();
                std::future::pending::<()>().await
            })
        });
    }
    let url = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab("testing123-secret");
    env.run(&[
        "plan", "add", "--name", "lobby", "--vlan", "30", "--wifi", "always",
    ])
    .ok();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[portal]\nguest_plan = \"lobby\"\n").unwrap();
    add_unifi(&env, &url);
    let code = lobby_voucher(&env, "2h", "1");
    let mut cmd = ns.command(BIN);
    cmd.current_dir(env.dir.path())
        .env("STATE_DIRECTORY", env.dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--database", &env.url, "serve"])
        .args([
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--portal",
            "127.0.0.1:8081",
        ]);
    let server = Server::start(cmd);
    assert!(server
        .wait_for(&["following changes"], Duration::from_secs(30))
        .is_some());
    in_browser(&ns, 9521, "127.0.0.1", false, move |c| async move {
        use fantoccini::Locator::Id;
        c.goto(&format!(
            "http://127.0.0.1:8081/guest/s/{SITE}/?ap=f0:9f:c2:00:00:01&id={GUEST}&t=1764000000&url=http%3A%2F%2Fexample.com%2Fnews&ssid=Guests"
        ))
        .await
        .unwrap();
        assert!(body_text(&c).await.contains("Welcome"));
        shot(&c, "controller-1-unifi-welcome").await;
        c.find(Id("accept")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Id("code")).await.unwrap();
        let field = c.find(Id("code")).await.unwrap();
        field.send_keys(&code).await.unwrap();
        shot(&c, "controller-2-voucher").await;
        c.find(Id("login")).await.unwrap().click().await.unwrap();
        c.wait()
            .for_element(fantoccini::Locator::LinkText(
                "Continue to http://example.com/news",
            ))
            .await
            .unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("online"), "{text}");
        assert!(
            text.contains("Continue to http://example.com/news"),
            "{text}"
        );
        shot(&c, "controller-3-online").await;
        c
    });
    let k = fake.lock().unwrap();
    let sent = k.sent("authorize-guest");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].0.as_str(), sent[0].1.as_str()), (SITE, GUEST));
    assert!(
        (119..=120).contains(&sent[0].2.unwrap()),
        "two hours: {sent:?}"
    );
    drop(k);
    drop(server);
}

fn radclient(port: u16, kind: &str, attrs: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("radclient")
        .args([
            "-x",
            "-r",
            "2",
            "-t",
            "2",
            &format!("127.0.0.1:{port}"),
            kind,
            "testing123",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("radclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attrs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A UniFi access point cannot be relied on to answer Disconnect-Requests (VENDORS.md): a
/// cancelled member's 802.1X/PAP session is ended with the controller's `kick-sta`, within
/// seconds of `member cancel`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_members_session_on_a_unifi_ap_is_kicked_through_the_controller() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let mac = "aa:bb:cc:dd:ee:05";
    let fake: fake_unifi_network::Shared = Arc::new(Mutex::new(UniFiNetwork::default()));
    fake.lock()
        .unwrap()
        .stations
        .push((SITE.into(), mac.into()));
    let url = fake_unifi_network::start(fake.clone()).await;
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
    env.run(&[
        "nas",
        "add",
        "--name",
        "ap-1",
        "--address",
        "127.0.0.1",
        "--secret",
        "testing123",
        "--vendor",
        "unifi",
    ])
    .ok();
    add_unifi(&env, &url);
    let m = env
        .run(&[
            "member",
            "add",
            "--name",
            "Ada",
            "--email",
            "ada@example.com",
            "--plan",
            "full-time",
            "--json",
        ])
        .ok()
        .json();
    let (user, pw) = (
        m["wifi_username"].as_str().unwrap().to_string(),
        m["wifi_password"].as_str().unwrap().to_string(),
    );
    let server = env.serve("127.0.0.1:0");
    let (auth, acct) = server.radius_ports();
    let a = radclient(
        auth,
        "auth",
        &format!("User-Name={user},User-Password={pw},Calling-Station-Id=AA-BB-CC-DD-EE-05,NAS-Identifier=f09fc2000001,Message-Authenticator=0x00"),
    );
    assert!(a.contains("Access-Accept"), "{a}");
    // The controller's own RADIUS hotspot: CHAP, Called-Station-Id `apmac:ssid`, the
    // controller's NAS-Identifier.
    let a = radclient(
        auth,
        "auth",
        &format!("User-Name={user},CHAP-Password={pw},Called-Station-Id=F0-9F-C2-00-00-01:Guests,NAS-Identifier=unifi-controller,Calling-Station-Id=AA-BB-CC-DD-EE-06,Message-Authenticator=0x00"),
    );
    assert!(a.contains("Access-Accept"), "{a}");
    let a = radclient(
        acct,
        "acct",
        &format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id=k1,Calling-Station-Id=AA-BB-CC-DD-EE-05,NAS-Identifier=f09fc2000001,NAS-IP-Address=127.0.0.1"),
    );
    assert!(a.contains("Accounting-Response"), "{a}");
    let cancelled = std::time::Instant::now();
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    while fake.lock().unwrap().sent("kick-sta").is_empty() {
        assert!(
            cancelled.elapsed() < Duration::from_secs(5),
            "kick-sta reached the controller"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("cancel → kick-sta in {:?}", cancelled.elapsed());
    {
        let k = fake.lock().unwrap();
        assert_eq!(
            k.sent("kick-sta")[0].0,
            SITE,
            "on the controller's configured site"
        );
        assert!(k.stations.is_empty());
    }
    drop(server);
    env.cleanup().await;
}

/// The controller's own RADIUS hotspot with vouchers: the guest types the code (PAP or CHAP);
/// the guest plan's VLAN and a Session-Timeout to the voucher's end; the device limit counts
/// across logins; the use reaches the database (first use, device).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vouchers_log_in_through_the_controllers_radius_hotspot() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
    env.run(&[
        "nas",
        "add",
        "--name",
        "controller",
        "--address",
        "127.0.0.1",
        "--secret",
        "testing123",
        "--vendor",
        "unifi",
    ])
    .ok();
    env.run(&[
        "plan", "add", "--name", "lobby", "--vlan", "30", "--wifi", "always",
    ])
    .ok();
    let voucher = || lobby_voucher(&env, "2h", "1");
    let (code, code2) = (voucher(), voucher());
    let server = env.serve("127.0.0.1:0");
    let (auth, _) = server.radius_ports();
    let login = |user: &str, cred: &str, mac: &str| {
        radclient(
            auth,
            "auth",
            &format!("User-Name={user},{cred},Called-Station-Id=F0-9F-C2-00-00-01:Guests,NAS-Identifier=unifi-controller,Calling-Station-Id={mac},Message-Authenticator=0x00"),
        )
    };
    let lower = code.to_lowercase();
    let a = login(
        &lower,
        &format!("User-Password={lower}"),
        "AA-BB-CC-DD-EE-07",
    );
    assert!(a.contains("Access-Accept"), "{a}");
    assert!(a.contains("Tunnel-Private-Group-Id:0 = \"30\""), "{a}");
    let timeout: u32 = a
        .lines()
        .find_map(|l| l.trim().strip_prefix("Session-Timeout = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (7100..=7200).contains(&timeout),
        "until the voucher ends: {a}"
    );
    let a = login(&code, &format!("User-Password={code}"), "AA-BB-CC-DD-EE-07");
    assert!(a.contains("Access-Accept"), "the same device again: {a}");
    let a = login(&code, &format!("User-Password={code}"), "AA-BB-CC-DD-EE-08");
    assert!(
        a.contains("Access-Reject"),
        "a second device on a one-device voucher: {a}"
    );
    let a = login(&code2, "User-Password=WRONG-CODE1", "AA-BB-CC-DD-EE-09");
    assert!(a.contains("Access-Reject"), "{a}");
    let a = login(
        &code2,
        &format!("CHAP-Password={code2}"),
        "AA-BB-CC-DD-EE-09",
    );
    assert!(a.contains("Access-Accept"), "CHAP: {a}");
    // The use is in the database: first use and the device.
    let t = std::time::Instant::now();
    loop {
        let list = env.run(&["--json", "voucher", "list"]).ok().json();
        let v = list
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["code"] == code.as_str())
            .unwrap()
            .clone();
        if !v["first_used_at"].is_null() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "first use recorded: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    env.cleanup().await;
}
