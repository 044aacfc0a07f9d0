//! Gateway mode end to end, as root, in network namespaces this test creates and deletes:
//! a router namespace running `frontdesk serve` (mode = "gateway") with veth links to a guest,
//! a member, two team and an IoT client namespace, and an "internet" namespace with servers.
//!
//! ```text
//!             internet (198.51.100.2, 2001:db8:ff::2): HTTP :80, echo :7, printer :9100
//!                 │ wan0
//!   ┌─────────── router: frontdesk serve, table inet frontdesk ───────────┐
//!   g0 guest (portal)  m0 full-time  ta0 team:a  tb0 team:b  i0 iot
//!   10.30.0.0/24       10.10.0.0/24  10.65.0.0/24 10.66.0.0/24 10.40.0.0/24
//!   fd30::/64          fd10::/64     fd65::/64    fd66::/64    fd40::/64
//! ```

mod common;

use common::browser::{body_text, in_browser, shot};
use common::netns::{connects, header, http, link, serve_tcp, serve_udp_echo, udp_burst, Netns};
use common::{require_root, require_tool, Env, Server, BIN};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
mode = "gateway"

[portal]
listen = "[::]:8081"
guest_plan = "lobby"

[gateway]
wan_interface = "wan0"
portal_networks = ["guest"]
iot_networks = ["iot"]
iot_allow = ["198.51.100.2 tcp 9100"]

[gateway.interfaces]
guest = "g0"
full-time = "m0"
"team:a" = "ta0"
"team:b" = "tb0"
iot = "i0"
"#;

/// A guest portal network, a business-hours member network and a 24/7 one.
const CONFIG_HOURS: &str = r#"
mode = "gateway"

[portal]
listen = "[::]:8081"
guest_plan = "lobby"

[gateway]
wan_interface = "wan0"
portal_networks = ["guest"]

[gateway.interfaces]
guest = "g0"
day = "d0"
full-time = "m0"
"#;

/// A router namespace with the internet on `wan0` and one client namespace per entry
/// (suffix, router interface, IPv4 /24 prefix, IPv6 /64 prefix); all deleted on drop.
struct Lab {
    router: Netns,
    internet: Netns,
    clients: Vec<Netns>,
}

fn lab(clients: &[(&str, &str, &str, &str)]) -> Lab {
    // Unique per process and per lab: tests of one binary may run in parallel threads.
    static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::process::id();
    let ns = |n: &str| Netns::new(&format!("fd{p}-{k}{n}"));
    let lab = Lab {
        router: ns("r"),
        internet: ns("w"),
        clients: clients.iter().map(|c| ns(c.0)).collect(),
    };
    let r = &lab.router;
    r.sysctl("net.ipv4.ip_forward=1");
    r.sysctl("net.ipv6.conf.all.forwarding=1");
    link(
        r,
        "wan0",
        &["198.51.100.1/24", "2001:db8:ff::1/64"],
        &lab.internet,
        "eth0",
        &["198.51.100.2/24", "2001:db8:ff::2/64"],
    );
    // IPv6 is routed, not translated: the internet knows the way back.
    lab.internet
        .ip(&["-6", "route", "add", "fd00::/8", "via", "2001:db8:ff::1"]);
    for (client, (_, rif, v4, v6)) in lab.clients.iter().zip(clients) {
        link(
            r,
            rif,
            &[&format!("{v4}.1/24"), &format!("{v6}::1/64")],
            client,
            "eth0",
            &[&format!("{v4}.2/24"), &format!("{v6}::2/64")],
        );
        client.ip(&["route", "add", "default", "via", &format!("{v4}.1")]);
        client.ip(&["-6", "route", "add", "default", "via", &format!("{v6}::1")]);
    }
    lab.internet.run(|| {
        serve_tcp(80, Some(HELLO));
        serve_tcp(7, None);
        serve_tcp(9100, Some("printer"));
        serve_tcp(443, Some("tls"));
        serve_udp_echo(53);
    });
    lab
}

/// A database with an always-open guest plan "lobby", the config file, and `serve` running in
/// the router namespace with its captive portal up.
struct Appliance {
    env: Env,
    cfg: std::path::PathBuf,
    server: Option<Server>,
}

impl Appliance {
    async fn new(config: &str) -> Appliance {
        Appliance::new_at(config, None).await
    }

    /// With `serve` and the CLI on a wall clock shifted by `offset_ms` (debug builds).
    async fn new_at(config: &str, offset_ms: Option<i64>) -> Appliance {
        let mut env = Env::new(common::Db::Sqlite).await.unwrap();
        env.clock_offset_ms = offset_ms;
        let cfg = env.path("frontdesk.toml");
        std::fs::write(&cfg, config).unwrap();
        let a = Appliance {
            env,
            cfg,
            server: None,
        };
        a.cli(&[
            "init",
            "--site",
            "Gateway Lab",
            "--timezone",
            "Europe/Berlin",
        ]);
        // A guest plan open around the clock: the tests run at any hour.
        a.cli(&[
            "plan", "add", "--name", "lobby", "--vlan", "30", "--wifi", "always",
        ]);
        a
    }

    fn cli(&self, args: &[&str]) -> common::Run {
        let mut c = self.env.cmd();
        c.arg("--config").arg(&self.cfg).args(args);
        common::Run::from(c.output().unwrap()).ok()
    }

    fn voucher(&self, valid: &str, devices: &str) -> String {
        self.cli(&[
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
        .json()[0]["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn start(&mut self, router: &Netns) {
        let mut cmd = router.command(BIN);
        if let Some(ms) = self.env.clock_offset_ms {
            cmd.env("FRONTDESK_TEST_CLOCK_OFFSET_MS", ms.to_string());
        }
        cmd.current_dir(self.env.dir.path())
            .env("STATE_DIRECTORY", self.env.dir.path())
            .arg("--config")
            .arg(&self.cfg)
            .arg("--database")
            .arg(&self.env.url)
            .args([
                "serve",
                "--radius-auth",
                "127.0.0.1:0",
                "--radius-acct",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ]);
        let server = Server::start(cmd);
        server
            .wait_for(&["captive portal listening"], Duration::from_secs(30))
            .expect("serve started the captive portal");
        self.server = Some(server);
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const SHORT: Duration = Duration::from_millis(400);
const HELLO: &str = "hello from the internet";

/// `from` cannot open `to` (dropped or rejected).
#[track_caller]
fn blocked(ns: &Netns, to: &str, what: &str) {
    let to = sa(to);
    let r = ns.run(move || connects(to, SHORT));
    assert!(r.is_err(), "{what}: {to} reachable, must be blocked");
}

#[track_caller]
fn reachable(ns: &Netns, to: &str, what: &str) {
    let to = sa(to);
    let r = ns.run(move || connects(to, Duration::from_secs(2)));
    assert_eq!(r, Ok(()), "{what}: {to} must be reachable");
}

fn csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

/// Welcome → accept → voucher, as a browser without cookies would; returns the instant the
/// login's answer arrived.
fn portal_login(guest: &Netns, code: &str) -> Instant {
    let code = code.to_string();
    guest.run(move || {
        let portal = sa("10.30.0.1:8081");
        let host = "10.30.0.1:8081";
        let (s, _, body) = http(portal, "GET", "/", host, None);
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("Acceptable use"));
        let form = format!("csrf={}", csrf(&body));
        let (s, _, body) = http(portal, "POST", "/accept", host, Some(&form));
        assert_eq!(s, 200, "{body}");
        let form = format!("csrf={}&code={code}", csrf(&body));
        let (s, h, body) = http(portal, "POST", "/login", host, Some(&form));
        let at = Instant::now();
        assert_eq!(s, 303, "{body}");
        assert_eq!(header(&h, "location"), Some("/status"));
        at
    })
}

/// Closing time in gateway mode: a guest let in on a plan that ends at closing, and a tier
/// network with `[gateway.hours]`, both lose the internet at the closing instant; the 24/7
/// network keeps it. `serve` runs on a clock shifted to shortly before a minute boundary.
#[tokio::test(flavor = "multi_thread")]
async fn closing_time_cuts_guests_and_networks() {
    if !require_root("gateway closing-time e2e (network namespaces)")
        || !require_tool("nft", "nftables")
        || !require_tool("conntrack", "conntrack")
    {
        return;
    }
    let real_ms = chrono::Utc::now().timestamp_millis();
    let end_ms = (real_ms / 60_000 + 2) * 60_000;
    let offset = end_ms - 25_000 - real_ms;
    let shifted = move || chrono::Utc::now().timestamp_millis() + offset;
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let end = chrono::DateTime::from_timestamp_millis(end_ms)
        .unwrap()
        .with_timezone(&tz);
    let hhmm = |t: chrono::DateTime<chrono_tz::Tz>| match t.format("%H:%M").to_string() {
        s if s == "00:00" => "24:00".to_string(),
        s => s,
    };
    let window = format!(
        "daily {}-{}",
        (end - chrono::Duration::hours(2)).format("%H:%M"),
        hhmm(end)
    );
    let config = format!("{CONFIG_HOURS}\n[gateway.hours]\nday = \"{window}\"\n");
    let mut app = Appliance::new_at(&config, Some(offset)).await;
    app.cli(&[
        "plan", "add", "--name", "evening", "--vlan", "30", "--wifi", &window,
    ]);
    let code = app
        .cli(&[
            "--json", "voucher", "create", "--plan", "evening", "--valid", "8h",
        ])
        .json()[0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let lab = lab(&[
        ("g", "g0", "10.30.0", "fd30"),
        ("d", "d0", "10.20.0", "fd20"),
        ("m", "m0", "10.10.0", "fd10"),
    ]);
    let [guest, day, member] = &lab.clients[..] else {
        unreachable!()
    };
    app.start(&lab.router);
    portal_login(guest, &code);
    reachable(guest, "198.51.100.2:80", "guest before closing");
    reachable(
        day,
        "198.51.100.2:80",
        "business-hours network before closing",
    );
    reachable(member, "198.51.100.2:80", "24/7 network");
    let status = app.cli(&["--json", "firewall", "show"]).json();
    assert_eq!(status["authorized"], 1, "{status}");
    assert!(shifted() < end_ms - 3_000, "setup took too long");

    // Probe both networks every 50 ms around closing; note when each stops getting through.
    let probe = |ns: &Netns| {
        ns.spawn(move || {
            let deadline = end_ms + 3_000;
            loop {
                let now = chrono::Utc::now().timestamp_millis() + offset;
                // Port 7: HTTP from a portal network is redirected to the portal when let go.
                if connects(sa("198.51.100.2:7"), Duration::from_millis(50)).is_err()
                    && now >= end_ms - 1_000
                {
                    return Some(now);
                }
                if now > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (g, d) = (probe(guest), probe(day));
    let guest_cut = g.join().unwrap().unwrap_or_else(|| {
        panic!(
            "guest still online 3 s after closing; serve said:\n{}",
            app.server.as_ref().unwrap().drain()
        )
    });
    let day_cut = d
        .join()
        .unwrap()
        .expect("business-hours network still on 3 s after closing");
    for (what, at) in [("guest", guest_cut), ("business-hours network", day_cut)] {
        let late = at - end_ms;
        eprintln!("{what}: cut {late} ms after closing");
        assert!(
            (-100..1_000).contains(&late),
            "{what} cut {late} ms after closing (must be within 1 s, not before)"
        );
    }
    reachable(member, "198.51.100.2:80", "24/7 network after closing");
    let server = app.server.as_ref().unwrap();
    assert!(server
        .wait_for(&["network switched off", "d0"], Duration::from_secs(5))
        .is_some());
    let audit = app.cli(&["audit", "--json"]).stdout;
    assert!(audit.contains("network.close"), "{audit}");
    assert!(audit.contains("portal.expire"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_isolation_portal_and_expiry() {
    if !require_root("gateway e2e (network namespaces)")
        || !require_tool("nft", "nftables")
        || !require_tool("conntrack", "conntrack")
    {
        return;
    }
    let mut app = Appliance::new(CONFIG).await;
    let short = app.voucher("6s", "1");
    let lab = lab(&[
        ("g", "g0", "10.30.0", "fd30"),
        ("m", "m0", "10.10.0", "fd10"),
        ("a", "ta0", "10.65.0", "fd65"),
        ("b", "tb0", "10.66.0", "fd66"),
        ("i", "i0", "10.40.0", "fd40"),
    ]);
    let [guest, member, team_a, team_b, iot] = &lab.clients[..] else {
        unreachable!()
    };
    for ns in [member, team_b, guest] {
        ns.run(|| serve_tcp(22, Some("ssh")));
    }
    app.start(&lab.router);

    // Before login: HTTP to any site lands on the portal, over IPv4 and IPv6.
    let (s, h, _) = guest.run(|| http(sa("198.51.100.2:80"), "GET", "/news", "example.org", None));
    assert_eq!(s, 302);
    assert_eq!(header(&h, "location"), Some("http://10.30.0.1:8081/"));
    let (s, h, _) = guest.run(|| http(sa("[2001:db8:ff::2]:80"), "GET", "/", "example.org", None));
    assert_eq!(s, 302);
    assert_eq!(header(&h, "location"), Some("http://[fd30::1]:8081/"));
    // HTTPS is refused at once (TCP reset), everything else dropped.
    let t = Instant::now();
    let r = guest.run(|| connects(sa("198.51.100.2:443"), Duration::from_secs(3)));
    assert_eq!(r, Err(ErrorKind::ConnectionRefused));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "443 rejected, not dropped"
    );
    blocked(guest, "198.51.100.2:7", "guest before login");
    blocked(guest, "[2001:db8:ff::2]:7", "guest before login (IPv6)");
    // The router's own services are not for guests: only DHCP, DNS, ICMP and the portal.
    blocked(guest, "10.30.0.1:22", "guest to the appliance");

    // Members and teams reach the internet, not each other; IoT only its allow-list.
    reachable(member, "198.51.100.2:80", "member to the internet");
    reachable(
        member,
        "[2001:db8:ff::2]:80",
        "member to the internet (IPv6)",
    );
    reachable(team_a, "198.51.100.2:7", "team A to the internet");
    blocked(member, "10.30.0.2:22", "member to guest");
    blocked(guest, "10.10.0.2:22", "guest to member");
    blocked(team_a, "10.66.0.2:22", "team A to team B");
    blocked(team_a, "[fd66::2]:22", "team A to team B (IPv6)");
    blocked(iot, "10.10.0.2:22", "iot to member");
    blocked(iot, "[fd10::2]:22", "iot to member (IPv6)");
    blocked(iot, "198.51.100.2:80", "iot to the internet");
    reachable(iot, "198.51.100.2:9100", "iot to its allowed printer");
    blocked(
        &lab.internet,
        "10.10.0.2:22",
        "internet into a member network",
    );
    blocked(
        &lab.internet,
        "[fd10::2]:22",
        "internet into a member network (IPv6)",
    );

    // Pre-login DNS goes only to the appliance, rate-limited per device (20/s, burst 40): a
    // stand-in resolver on the router answers what the limit lets through.
    lab.router.run(|| serve_udp_echo(53));
    let dns = guest.run(|| udp_burst(sa("10.30.0.1:53"), 200, Duration::from_millis(500)));
    assert!(
        (20..=80).contains(&dns),
        "pre-login DNS burst of 200: {dns} answered, the limit lets ~40 through"
    );
    let elsewhere = guest.run(|| udp_burst(sa("198.51.100.2:53"), 5, Duration::from_millis(300)));
    assert_eq!(
        elsewhere, 0,
        "pre-login DNS to another resolver must be dropped"
    );

    // Voucher login; the first packet is forwarded right after the portal's answer.
    let answered = portal_login(guest, &short);
    let first = guest.run(move || {
        while connects(sa("198.51.100.2:80"), Duration::from_millis(5)).is_err() {
            assert!(answered.elapsed() < Duration::from_secs(2), "never let out");
        }
        answered.elapsed()
    });
    assert!(
        first < Duration::from_millis(50),
        "first forwarded connection {first:?} after the portal's answer"
    );
    // Logged in, DNS is not limited any more.
    std::thread::sleep(Duration::from_millis(1100));
    let dns = guest.run(|| udp_burst(sa("10.30.0.1:53"), 200, Duration::from_millis(500)));
    assert_eq!(dns, 200, "DNS of an authorized guest is not rate-limited");
    let elsewhere = guest.run(|| udp_burst(sa("198.51.100.2:53"), 5, Duration::from_millis(300)));
    assert_eq!(elsewhere, 5, "an authorized guest may use any resolver");
    let (s, _, body) = guest.run(|| http(sa("198.51.100.2:80"), "GET", "/", "example.org", None));
    assert_eq!((s, body.as_str()), (200, HELLO));
    let (s, _, body) =
        guest.run(|| http(sa("[2001:db8:ff::2]:80"), "GET", "/", "example.org", None));
    assert_eq!(
        (s, body.as_str()),
        (200, HELLO),
        "IPv6 after login (keyed by MAC)"
    );
    // Authorized guests are still isolated from members.
    blocked(guest, "10.10.0.2:22", "authorized guest to member");
    let shown = app.cli(&["firewall", "show"]).stdout;
    assert!(shown.contains("table inet frontdesk"));
    assert!(
        shown.contains(" timeout "),
        "authorized client rendered: {shown}"
    );

    // An established connection, working now, is cut when the voucher ends; new ones fail.
    let echo = guest.run(|| {
        let mut c =
            TcpStream::connect_timeout(&sa("198.51.100.2:7"), Duration::from_secs(2)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(b"ping\n").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping\n");
        c
    });
    let ends = answered + Duration::from_secs(6);
    std::thread::sleep(
        ends.saturating_duration_since(Instant::now()) + Duration::from_millis(1500),
    );
    let cut = guest.run(move || {
        let mut c = echo;
        c.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let wrote = c.write_all(b"again\n");
        let mut buf = [0u8; 6];
        wrote.is_err() || c.read_exact(&mut buf).is_err()
    });
    assert!(
        cut,
        "the established connection still works after the voucher ended"
    );
    blocked(guest, "198.51.100.2:7", "guest after the voucher ended");
    let (s, _, _) = guest.run(|| http(sa("198.51.100.2:80"), "GET", "/", "example.org", None));
    assert_eq!(s, 302, "back to the portal after the voucher ended");
    // The router flushed the guest's conntrack entries.
    let ct = lab
        .router
        .command("conntrack")
        .args(["-L", "-s", "10.30.0.2", "-p", "tcp", "--dport", "7"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&ct.stdout);
    assert!(
        !listed.contains("ESTABLISHED"),
        "conntrack still holds the guest's flow: {listed}"
    );

    // Cancelling a member blocks their device on every tier network within a second or two.
    let link = member
        .command("cat")
        .arg("/sys/class/net/eth0/address")
        .output()
        .unwrap();
    let mac = String::from_utf8_lossy(&link.stdout).trim().to_string();
    let id = app
        .cli(&[
            "--json",
            "member",
            "add",
            "--name",
            "Ada",
            "--email",
            "ada@example.com",
            "--plan",
            "full-time",
        ])
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.cli(&[
        "device", "add", "--member", &id, "--mac", &mac, "--plan", "iot",
    ]);
    reachable(member, "198.51.100.2:80", "member before cancellation");
    app.cli(&["member", "cancel", &id]);
    let t = Instant::now();
    while member
        .run(|| connects(sa("198.51.100.2:80"), SHORT))
        .is_ok()
    {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "a cancelled member's device still gets through"
        );
    }
    blocked(member, "[2001:db8:ff::2]:80", "cancelled member (IPv6)");
    drop(app);
}

const BROWSER_CONFIG: &str = r#"
mode = "gateway"

[portal]
listen = "[::]:8081"
guest_plan = "lobby"

[gateway]
wan_interface = "wan0"
portal_networks = ["guest", "day-pass", "cafe"]

[gateway.interfaces]
guest = "g0"
day-pass = "g1"
cafe = "g2"
"#;

/// chromedriver (and the Chromium it starts) inside a namespace, killed on drop.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_guest_logs_in_through_the_portal() {
    if !require_root("Chromium portal e2e (network namespaces)")
        || !require_tool("nft", "nftables")
        || !require_tool("chromedriver", "chromium-driver")
        || !require_tool("chromium", "chromium")
    {
        return;
    }
    let mut app = Appliance::new(BROWSER_CONFIG).await;
    let code = app.voucher("8h", "1");
    app.cli(&[
        "member",
        "add",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
        "--plan",
        "full-time",
    ]);
    let lab = lab(&[
        ("g", "g0", "10.30.0", "fd30"),
        ("v", "g1", "10.31.0", "fd31"),
        ("s", "g2", "10.32.0", "fd32"),
    ]);
    app.start(&lab.router);
    let (guest, visitor, invited) = (&lab.clients[0], &lab.clients[1], &lab.clients[2]);

    // The guest: any http page → portal → accept → wrong code → right code → online → internet.
    let code2 = code.clone();
    in_browser(guest, 9515, "10.30.0.1", false, move |c| async move {
        use fantoccini::Locator::{Css, Id};
        c.goto("http://198.51.100.2/").await.unwrap();
        assert_eq!(
            c.current_url().await.unwrap().as_str(),
            "http://10.30.0.1:8081/"
        );
        assert!(body_text(&c).await.contains("Acceptable use"));
        shot(&c, "portal-1-welcome").await;
        c.find(Id("accept")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Id("code")).await.unwrap();
        assert!(body_text(&c).await.contains("Voucher code"));
        shot(&c, "portal-2-voucher").await;
        let field = c.find(Id("code")).await.unwrap();
        field.send_keys("<b>WRONG</b>-CODE").await.unwrap();
        c.find(Id("login")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Css("[role=alert]")).await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("That code is not valid"), "{text}");
        assert!(
            c.find(Css("b")).await.is_err(),
            "HTML typed into the form was not escaped"
        );
        shot(&c, "portal-3-wrong-code").await;
        let field = c.find(Id("code")).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(&code2.to_lowercase()).await.unwrap();
        c.find(Id("login")).await.unwrap().click().await.unwrap();
        c.wait()
            .for_url(&"http://10.30.0.1:8081/status".parse().unwrap())
            .await
            .unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("You're online"), "{text}");
        shot(&c, "portal-4-online").await;
        c.goto("http://198.51.100.2/").await.unwrap();
        assert_eq!(body_text(&c).await, HELLO);
        c.goto("http://10.30.0.1:8081/aup").await.unwrap();
        shot(&c, "portal-5-acceptable-use").await;
        c
    });

    // A sponsored guest: asks, waits on a page that refreshes itself, and is online as soon as
    // the member approves from the link in the mail (read from the outbox).
    let outbox = app.env.dir.path().join("outbox");
    in_browser(invited, 9517, "10.30.0.1", false, move |c| async move {
        use fantoccini::Locator::Id;
        c.goto("http://198.51.100.2/").await.unwrap();
        c.find(Id("accept")).await.unwrap().click().await.unwrap();
        c.wait()
            .for_element(Id("email"))
            .await
            .unwrap()
            .send_keys("ada@example.com")
            .await
            .unwrap();
        c.find(Id("name"))
            .await
            .unwrap()
            .send_keys("Grace Hopper")
            .await
            .unwrap();
        c.find(Id("ask")).await.unwrap().click().await.unwrap();
        c.wait()
            .for_element(fantoccini::Locator::XPath("//h1[contains(., 'Waiting')]"))
            .await
            .unwrap();
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/sponsor/wait/"));
        shot(&c, "portal-8-sponsor-waiting").await;
        let mail = std::fs::read_dir(&outbox)
            .expect("an outbox")
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .find(|m| m.contains("To: ada@example.com"))
            .expect("the sponsor mail");
        let link = mail
            .lines()
            .find(|l| l.contains("/sponsor/approve/"))
            .unwrap()
            .trim();
        let path = link[link.find("/sponsor/approve/").unwrap()..].to_string();
        let portal = sa("10.32.0.1:8081");
        let (s, _, page) = http(portal, "GET", &path, "10.32.0.1:8081", None);
        assert_eq!(s, 200, "{page}");
        assert!(
            page.contains("Grace Hopper asks to use the guest Wi-Fi"),
            "{page}"
        );
        let form = format!("csrf={}&decision=approve", csrf(&page));
        let (s, _, page) = http(portal, "POST", &path, "10.32.0.1:8081", Some(&form));
        assert_eq!(s, 200, "{page}");
        // No navigation by the test: the waiting page refreshes itself into "You're online".
        let t = Instant::now();
        loop {
            let text = body_text(&c).await;
            if text.contains("You're online") {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "still waiting: {text}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        shot(&c, "portal-9-sponsor-approved").await;
        c.goto("http://198.51.100.2/").await.unwrap();
        assert_eq!(body_text(&c).await, HELLO);
        c
    });

    // A restart re-applies the table with the authorized guest and its remaining time: nobody
    // is logged out.
    app.server = None;
    app.start(&lab.router);
    reachable(guest, "198.51.100.2:7", "guest after a restart of serve");
    let shown = app.cli(&["firewall", "show"]).stdout;
    assert!(shown.contains("timeout"), "{shown}");

    // A second device with the same single-device voucher, then the site closes.
    let code2 = code.clone();
    let closed_from = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let close_site = {
        let from = closed_from.to_string();
        let to = (closed_from + chrono::Duration::days(3)).to_string();
        let mut c = app.env.cmd();
        c.arg("--config").arg(&app.cfg).args([
            "site", "closure", "add", "--from", &from, "--to", &to, "--all", "--reason", "Holidays",
        ]);
        c
    };
    let close_site = std::sync::Mutex::new(Some(close_site));
    in_browser(visitor, 9516, "10.30.0.1", false, move |c| async move {
        use fantoccini::Locator::{Css, Id};
        c.goto("http://198.51.100.2/").await.unwrap();
        assert_eq!(
            c.current_url().await.unwrap().as_str(),
            "http://10.31.0.1:8081/"
        );
        c.find(Id("accept")).await.unwrap().click().await.unwrap();
        let field = c.wait().for_element(Id("code")).await.unwrap();
        field.send_keys(&code2).await.unwrap();
        c.find(Id("login")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Css("[role=alert]")).await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("Device limit reached"), "{text}");
        shot(&c, "portal-6-device-limit").await;
        // Closing the site (another process, through the database) reaches the portal.
        let mut cmd = close_site.lock().unwrap().take().unwrap();
        assert!(cmd.output().unwrap().status.success());
        let t = Instant::now();
        loop {
            c.goto("http://10.31.0.1:8081/").await.unwrap();
            let text = body_text(&c).await;
            if text.contains("Closed now") {
                assert!(text.contains("Guest Wi-Fi opens"), "{text}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "closure not seen: {text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        shot(&c, "portal-7-closed").await;
        c
    });

    // An all-day closure from today ends the guests who are online (the scheduler re-decides
    // them when the calendar changes), audited.
    blocked(guest, "198.51.100.2:7", "guest after an all-day closure");
    let audit = app.cli(&["audit", "--json"]).stdout;
    assert!(
        audit.contains("portal.revoke") && audit.contains("reason=site-closed"),
        "{audit}"
    );
    drop(app);
}

/// The portal finds a client's MAC even when the kernel has no neighbour entry yet: it asks the
/// kernel to resolve it (ARP on IPv4, neighbour solicitation on IPv6).
#[test]
fn neighbour_lookup_resolves_unknown_clients() {
    if !require_root("neighbour lookup (network namespaces)") {
        return;
    }
    let k = std::process::id();
    let a = Netns::new(&format!("fd{k}-na"));
    let b = Netns::new(&format!("fd{k}-nb"));
    link(
        &a,
        "eth0",
        &["10.77.0.1/24", "fd77::1/64"],
        &b,
        "eth0",
        &["10.77.0.2/24", "fd77::2/64"],
    );
    let mac_b = b
        .command("cat")
        .arg("/sys/class/net/eth0/address")
        .output()
        .unwrap();
    let mac_b: frontdesk_core::MacAddr = String::from_utf8_lossy(&mac_b.stdout)
        .trim()
        .parse()
        .unwrap();
    for ip in ["10.77.0.2", "fd77::2"] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let found = a.run(move || {
            assert!(
                frontdesk_firewall::neigh::dump()
                    .unwrap()
                    .iter()
                    .all(|n| n.ip != ip),
                "no entry before the lookup"
            );
            let n = frontdesk_firewall::neigh::lookup(ip, Duration::from_secs(2), |_| true)
                .unwrap()
                .unwrap_or_else(|| panic!("{ip} not resolved"));
            // Interface names belong to the namespace: asked from inside it.
            (n.mac, frontdesk_firewall::neigh::ifname(n.ifindex))
        });
        assert_eq!(found.0, mac_b, "{ip}");
        assert_eq!(found.1.as_deref(), Some("eth0"), "{ip}");
    }
}
