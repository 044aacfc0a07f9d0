//! Protective DNS end to end: `frontdesk serve --dns` on loopback, queried with `dig` (the real
//! peer), forwarding to an upstream this test runs (hickory-proto answering fixed records and
//! counting what reaches it). Guests (127.0.0.2 by `[dns] subnets`) and members (127.0.0.1)
//! get different lists.

mod common;
use common::{listen_args, require_tool, Db, Env, Server};
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An upstream that answers every A query with 192.0.2.7 (TTL 300), `big.test` with 60
/// addresses (too large for 512-byte UDP), and counts queries by name.
fn upstream() -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    upstream_on("127.0.0.1:0", [192, 0, 2, 7])
}

/// The same on `bind`, answering A queries with `first` (AAAA and others: no records).
fn upstream_on(bind: &str, first: [u8; 4]) -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let udp = UdpSocket::bind(bind).unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = std::net::TcpListener::bind(addr).unwrap();
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let answer = move |q: &[u8], counts: &Mutex<HashMap<String, usize>>| -> Option<Vec<u8>> {
        let req = Message::from_vec(q).ok()?;
        let query = req.queries().first()?.clone();
        let name = query.name().to_ascii().to_ascii_lowercase();
        *counts.lock().unwrap().entry(name.clone()).or_default() += 1;
        let mut m = Message::new();
        m.set_id(req.id())
            .set_message_type(MessageType::Response)
            .set_recursion_available(true)
            .add_query(query.clone());
        let n = match (name.as_str(), query.query_type()) {
            (_, hickory_proto::rr::RecordType::A) if name == "big.test." => 60,
            (_, hickory_proto::rr::RecordType::A) => 1,
            _ => 0,
        };
        for i in 0..n {
            m.add_answer(Record::from_rdata(
                query.name().clone(),
                300,
                RData::A(A(Ipv4Addr::new(
                    first[0],
                    first[1],
                    first[2],
                    first[3] + i as u8,
                ))),
            ));
        }
        let mut bytes = m.to_vec().ok()?;
        if bytes.len() > 512 && req.extensions().is_none() {
            // UDP without EDNS: truncated, as a real server does.
            let mut t = m.clone();
            t.take_answers();
            t.set_truncated(true);
            bytes = t.to_vec().ok()?;
        }
        Some(bytes)
    };
    {
        let counts = counts.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(a) = answer(&buf[..n], &counts) {
                    let _ = udp.send_to(&a, from);
                }
            }
        });
    }
    {
        let counts = counts.clone();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut s in tcp.incoming().map_while(Result::ok) {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).is_err() {
                    continue;
                }
                let req = Message::from_vec(&q).unwrap();
                let query = req.queries()[0].clone();
                *counts
                    .lock()
                    .unwrap()
                    .entry(format!(
                        "tcp:{}",
                        query.name().to_ascii().to_ascii_lowercase()
                    ))
                    .or_default() += 1;
                let mut m = Message::new();
                m.set_id(req.id())
                    .set_message_type(MessageType::Response)
                    .add_query(query.clone());
                for i in 0..60u8 {
                    m.add_answer(Record::from_rdata(
                        query.name().clone(),
                        300,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 7 + i))),
                    ));
                }
                let bytes = m.to_vec().unwrap();
                let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
                out.extend(bytes);
                let _ = s.write_all(&out);
            }
        });
    }
    let _ = answer;
    (addr, counts)
}

struct Dig {
    port: u16,
}

impl Dig {
    /// `dig` from `source` for `name`: (status, answers as "name ttl addr" lines).
    fn ask(&self, source: &str, name: &str, extra: &[&str]) -> (String, Vec<String>, String) {
        let out = Command::new("dig")
            .args([
                "-b",
                source,
                "-p",
                &self.port.to_string(),
                "@127.0.0.1",
                name,
                "A",
            ])
            .args(["+tries=1", "+time=3", "+noall", "+answer", "+comments"])
            .args(extra)
            .output()
            .expect("dig");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let status = text
            .split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("")
            .to_string();
        let answers = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 5)
            .map(|f| format!("{} {} {}", f[0], f[1], f[4]))
            .collect();
        (status, answers, text)
    }
}

fn ttl(answer: &str) -> u32 {
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_per_plan_cache_exceptions_and_malformed_queries() {
    if !require_tool("dig", "dnsutils") {
        return;
    }
    let (up, counts) = upstream();
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
    std::fs::write(
        env.path("malware.hosts"),
        "# test list\n0.0.0.0 malware.test\n",
    )
    .unwrap();
    std::fs::write(env.path("strict.txt"), "! strict\n||games.test^\n").unwrap();
    env.run(&[
        "dns",
        "blocklist",
        "add",
        "--name",
        "malware",
        "--source",
        "malware.hosts",
    ])
    .ok();
    env.run(&[
        "dns",
        "blocklist",
        "add",
        "--name",
        "strict",
        "--source",
        "strict.txt",
        "--plans",
        "guest",
    ])
    .ok();
    // A list whose file disappears after it was added: the resolver runs without it, and
    // `dns blocklist list` says why.
    std::fs::write(env.path("gone.txt"), "gone.test\n").unwrap();
    env.run(&[
        "dns",
        "blocklist",
        "add",
        "--name",
        "gone",
        "--source",
        "gone.txt",
    ])
    .ok();
    std::fs::remove_file(env.path("gone.txt")).unwrap();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(
        &cfg,
        "[dns]\nblock_v4 = \"10.99.0.1\"\nlog_blocked_only = [\"guest\"]\n[dns.subnets]\n\"127.0.0.1/32\" = \"full-time\"\n\"127.0.0.2/32\" = \"guest\"\n",
    )
    .unwrap();
    // `dns test` says what a plan gets, without a running resolver.
    let t = env
        .run(&["dns", "test", "www.games.test", "--plan", "guest"])
        .ok();
    assert!(t.stdout.contains("blocked by list strict"), "{}", t.stdout);
    let t = env
        .run(&["dns", "test", "www.games.test", "--plan", "full-time"])
        .ok();
    assert!(t.stdout.contains("resolves"), "{}", t.stdout);

    let mut cmd = env.cmd();
    cmd.arg("--config").arg(&cfg).arg("serve");
    listen_args(&mut cmd, "127.0.0.1:0");
    cmd.args(["--dns", "127.0.0.1:0", "--dns-upstream", &up.to_string()]);
    let server = Server::start(cmd);
    let portal_line = server
        .wait_for(&["captive portal listening"], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no portal: {}", server.drain()));
    let portal = portal_line[portal_line.find("portal=").unwrap() + 7..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let console_line = server
        .wait_for(&["operator console listening"], Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no console: {}", server.drain()));
    let console = console_line[console_line.find("addr=").unwrap() + 5..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let line = server
        .wait_for(&["protective DNS listening"], Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no DNS listener: {}", server.drain()));
    let port: u16 = line
        .split("local=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("port in {line}"));
    assert!(server
        .wait_for(&["following changes"], Duration::from_secs(10))
        .is_some());
    let dig = Dig { port };
    let lists = env.run(&["dns", "blocklist", "list", "--json"]).ok().json();
    let list = |n: &str| {
        lists
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(list("malware")["domains"], 1, "{lists}");
    assert!(list("malware")["load_error"].is_null(), "{lists}");
    assert!(
        list("gone")["load_error"]
            .as_str()
            .is_some_and(|e| e.contains("gone.txt")),
        "{lists}"
    );
    let text = env.run(&["dns", "blocklist", "list"]).ok().stdout;
    assert!(
        text.contains("PROBLEM") && text.contains("gone.txt"),
        "{text}"
    );

    // Allowed: resolved upstream, then cached with the TTL counting down.
    let (status, a, text) = dig.ask("127.0.0.1", "www.example.test", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert_eq!(a.len(), 1, "{text}");
    assert!(a[0].ends_with("192.0.2.7") && ttl(&a[0]) == 300, "{a:?}");
    std::thread::sleep(Duration::from_millis(2100));
    let (_, a2, _) = dig.ask("127.0.0.1", "www.example.test", &[]);
    assert!(
        ttl(&a2[0]) <= 298,
        "cached with the TTL counted down: {a2:?}"
    );
    assert_eq!(
        counts.lock().unwrap()["www.example.test."],
        1,
        "the second answer came from the cache"
    );

    // Blocked everywhere: the block page's address; subdomains too.
    for name in ["malware.test", "deep.sub.malware.test"] {
        let (status, a, text) = dig.ask("127.0.0.1", name, &[]);
        assert_eq!(status, "NOERROR", "{text}");
        assert!(
            a.len() == 1 && a[0].ends_with("10.99.0.1"),
            "{name}: {text}"
        );
    }
    assert!(
        !counts.lock().unwrap().contains_key("malware.test."),
        "never asked upstream"
    );
    // The strict list is the guests' (127.0.0.2), not the members' (127.0.0.1).
    let (_, a, text) = dig.ask("127.0.0.2", "games.test", &[]);
    assert!(a[0].ends_with("10.99.0.1"), "guest: {text}");
    let (_, a, text) = dig.ask("127.0.0.1", "games.test", &[]);
    assert!(a[0].ends_with("192.0.2.7"), "member: {text}");
    // The DoH canary: NXDOMAIN on a filtered network.
    let (status, _, text) = dig.ask("127.0.0.1", "use-application-dns.net", &[]);
    assert_eq!(status, "NXDOMAIN", "{text}");

    // An approved exception takes effect within a second.
    let t = Instant::now();
    env.run(&["dns", "allow", "games.test", "--plan", "guest"])
        .ok();
    loop {
        let (_, a, _) = dig.ask("127.0.0.2", "games.test", &[]);
        if a.first().is_some_and(|x| x.ends_with("192.0.2.7")) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "exception not in force after {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A list's `@@` exception and an allowlisted subdomain pass; others under it stay blocked.
    env.run(&["dns", "allow", "safe.malware.test"]).ok();
    std::thread::sleep(Duration::from_millis(900));
    let (_, a, _) = dig.ask("127.0.0.1", "safe.malware.test", &[]);
    assert!(a[0].ends_with("192.0.2.7"), "{a:?}");
    let (_, a, _) = dig.ask("127.0.0.1", "bad.malware.test", &[]);
    assert!(a[0].ends_with("10.99.0.1"), "{a:?}");

    // The block page: the browser's request for a blocked name reaches the portal (the block
    // address), which says which list blocked it and takes an exception request.
    env.run(&[
        "member",
        "add",
        "--name",
        "Ada",
        "--email",
        "ada@example.com",
        "--plan",
        "full-time",
    ])
    .ok();
    let (status, page) = http(&portal, "GET", "/some/page", "www.malware.test", "");
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("malware.test") && page.contains("malware"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!(
        "csrf={csrf}&host=www.malware.test&list=malware&email=ada%40example.com&reason=vendor+docs"
    );
    let (status, page) = http(&portal, "POST", "/dns/request", &portal, &form);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("went to the operators"), "{page}");
    let pending = env.run(&["dns", "requests", "--json"]).ok().json();
    assert_eq!(pending[0]["domain"], "www.malware.test", "{pending}");
    assert_eq!(pending[0]["scope"], "member", "{pending}");
    assert_eq!(pending[0]["reason"], "vendor docs", "{pending}");
    let id = pending[0]["id"].as_i64().unwrap().to_string();
    // Approved for the members' plan: resolves for them within a second.
    env.run(&["dns", "approve", &id, "--plan", "full-time"])
        .ok();
    let t = Instant::now();
    loop {
        let (_, a, _) = dig.ask("127.0.0.1", "www.malware.test", &[]);
        if a.first().is_some_and(|x| x.ends_with("192.0.2.7")) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "approval not in force"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = http(&portal, "GET", "/", "www.malware.test", "");
    assert_ne!(status, 403, "no block page once allowed");
    // A request for a name that is not blocked is the portal's business as before.
    let (status, _) = http(&portal, "GET", "/", "www.example.test", "");
    assert_ne!(status, 403);

    // A large answer: truncated over UDP, dig retries over TCP and gets all 60.
    let (status, a, text) = dig.ask("127.0.0.1", "big.test", &["+noedns"]);
    assert_eq!(status, "NOERROR", "{text}");
    assert_eq!(a.len(), 60, "{text}");

    // Malformed datagrams: FORMERR or nothing, and the server keeps answering.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut loop_q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    loop_q.extend([0xc0, 0x0c, 0, 1, 0, 1]);
    let mut huge = vec![
        0x12, 0x35, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    huge.extend([3, b'a', b'b', b'c', 0, 0, 1, 0, 1]);
    for bad in [vec![0x12], vec![0u8; 11], loop_q, huge, vec![0xff; 600]] {
        sock.send_to(&bad, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 1024];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert!(
                n >= 12 && buf[3] & 0x0f == 1,
                "FORMERR expected: {:?}",
                &buf[..n]
            );
        }
    }
    let (status, _, text) = dig.ask("127.0.0.1", "after.example.test", &[]);
    assert_eq!(status, "NOERROR", "still answering: {text}");

    // Metrics: queries by result, blocks by list, the cache.
    let (_, metrics) = http(&console, "GET", "/metrics", "localhost", "");
    for needle in [
        "frontdesk_dns_queries_total{result=\"cached\"}",
        "frontdesk_dns_blocked_total{list=\"malware\"}",
        "frontdesk_dns_blocked_total{list=\"strict\"}",
        "frontdesk_dns_cache_entries",
        "frontdesk_dns_log_lines_total{result=\"dropped\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} in {metrics}");
    }

    // The query log (written in batches within a second): every member query with what
    // became of it; for guests (log_blocked_only) only what was blocked.
    let t = Instant::now();
    let log = loop {
        let log = env
            .run(&["dns", "log", "--limit", "1000", "--json"])
            .ok()
            .json();
        let lines = log.as_array().unwrap().clone();
        if lines.iter().any(|l| l["name"] == "after.example.test.") {
            break lines;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "query log: {log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let find = |client: &str, name: &str, result: &str| {
        log.iter()
            .any(|l| l["client"] == client && l["name"] == name && l["result"] == result)
    };
    assert!(
        find("127.0.0.1", "www.example.test.", "forwarded"),
        "{log:?}"
    );
    assert!(find("127.0.0.1", "www.example.test.", "cached"), "{log:?}");
    assert!(find("127.0.0.1", "malware.test.", "blocked"), "{log:?}");
    assert!(
        find("127.0.0.1", "use-application-dns.net.", "canary"),
        "{log:?}"
    );
    assert!(find("127.0.0.2", "games.test.", "blocked"), "{log:?}");
    assert!(
        log.iter()
            .filter(|l| l["client"] == "127.0.0.2")
            .all(|l| l["result"] == "blocked" && l["plan"] == "guest"),
        "guests' queries logged only when blocked: {log:?}"
    );
    let blocked = log.iter().find(|l| l["name"] == "malware.test.").unwrap();
    assert_eq!(blocked["list"], "malware");
    assert_eq!(blocked["qtype"], 1);
    let text = env
        .run(&["dns", "log", "--blocked", "--client", "127.0.0.2"])
        .ok();
    assert!(
        text.stdout.contains("games.test.") && text.stdout.contains("strict"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("www.example.test"), "{}", text.stdout);
    drop(server);
}

/// A plain HTTP/1.1 request with a Host header: (status, body).
fn http(addr: &str, method: &str, path: &str, host: &str, form: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// The whole walk in headless Chromium (as root: everything inside a network namespace of its
/// own, the browser's resolver being Frontdesk on 10.77.0.1:53). Ada, online with a RADIUS
/// session that reported her address, opens a blocked site: the block page says which list;
/// she asks for an exception; a manager approves it for her on the console's Network page (she
/// gets a mail); the site then loads in her browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_page_request_console_approval_then_the_site_loads_in_chromium() {
    use common::browser::{body_text, click, fill, in_browser, shot, wait_text};
    use common::netns::Netns;
    use common::{require_root, BIN};
    if !require_root("protective DNS Chromium walk (network namespace, port 53)")
        || !require_tool("chromedriver", "chromium-driver")
        || !require_tool("radclient", "freeradius-utils")
    {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "DNS Lab", "--timezone", "UTC"])
        .ok();
    env.run(&[
        "member",
        "add",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
        "--plan",
        "full-time",
    ])
    .ok();
    env.run(&[
        "nas",
        "add",
        "--name",
        "ap",
        "--address",
        "127.0.0.1",
        "--secret",
        "testing123",
    ])
    .ok();
    let manager = env
        .run(&[
            "--json",
            "admin",
            "add",
            "--email",
            "desk@example.com",
            "--role",
            "manager",
        ])
        .ok()
        .json();
    let one_time = manager["one_time_password"]
        .as_str()
        .or_else(|| manager["password"].as_str())
        .expect("a one-time password")
        .to_string();
    std::fs::write(env.path("ads.txt"), "||vendor-docs.test^\n").unwrap();
    env.run(&[
        "dns",
        "blocklist",
        "add",
        "--name",
        "ads",
        "--source",
        "ads.txt",
    ])
    .ok();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[dns]\nblock_v4 = \"10.77.0.1\"\n").unwrap();

    let ns = Netns::new(&format!("fddns{}", std::process::id()));
    // Both addresses on the namespace's loopback (no dummy/veth needed; nothing can leave).
    ns.ip(&["addr", "add", "10.77.0.1/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "10.77.0.2/32", "dev", "lo"]);
    // The internet, as far as this namespace knows: an upstream resolver answering every name
    // with 10.77.0.2, and the vendor's site there.
    ns.run(|| {
        upstream_on("10.77.0.2:53", [10, 77, 0, 2]);
        let site = std::net::TcpListener::bind("10.77.0.2:80").unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut c in site.incoming().map_while(Result::ok) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = c.read(&mut [0u8; 4096]);
                let body = "<html><body><h1>Vendor docs</h1><p>Installation guide</p></body></html>";
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    });

    let mut cmd = ns.command(BIN);
    cmd.current_dir(env.dir.path())
        .env("STATE_DIRECTORY", env.dir.path())
        .arg("--config")
        .arg(&cfg)
        .arg("--database")
        .arg(&env.url)
        .args([
            "serve",
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:1813",
            "--http",
            "127.0.0.1:8080",
            "--portal",
            "10.77.0.1:80",
            "--dns",
            "10.77.0.1:53",
            "--dns-upstream",
            "10.77.0.2:53",
        ]);
    let server = Server::start(cmd);
    server
        .wait_for(&["protective DNS listening"], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no DNS listener: {}", server.drain()));
    server
        .wait_for(&["following changes"], Duration::from_secs(30))
        .expect("serve is up");
    // Ada's laptop is online: the access point's accounting reports its address.
    let mut rc = ns
        .command("radclient")
        .args(["-r", "2", "-t", "1", "127.0.0.1:1813", "acct", "testing123"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("radclient");
    std::io::Write::write_all(
        &mut rc.stdin.take().unwrap(),
        b"Acct-Status-Type=Start,User-Name=ada@example.com,Acct-Session-Id=ada-1,Calling-Station-Id=AA-00-00-00-00-01,Framed-IP-Address=10.77.0.1",
    )
    .unwrap();
    let out = rc.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Accounting-Response"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The resolver learns addresses from sessions every few seconds.
    std::thread::sleep(Duration::from_secs(6));

    in_browser(&ns, 9530, "10.77.0.1", false, |c| async move {
        use fantoccini::Locator::Id;
        c.goto("http://www.vendor-docs.test/install").await.unwrap();
        let text = body_text(&c).await;
        assert!(
            text.contains("www.vendor-docs.test is blocked here"),
            "{text}"
        );
        assert_eq!(
            c.find(Id("blocked-list"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "ads"
        );
        shot(&c, "dns-1-blocked").await;
        fill(&c, "email", "ada@example.com").await;
        fill(&c, "reason", "The installation guide for our printers").await;
        click(&c, "request-exception").await;
        wait_text(&c, "went to the operators").await;
        shot(&c, "dns-2-requested").await;
        c
    });
    let pending = env.run(&["dns", "requests", "--json"]).ok().json();
    assert_eq!(pending[0]["domain"], "www.vendor-docs.test", "{pending}");
    assert_eq!(pending[0]["scope"], "member", "{pending}");
    let id = pending[0]["id"].as_i64().unwrap();

    in_browser(&ns, 9531, "10.77.0.1", true, move |c| async move {
        use fantoccini::Locator::{Css, Id};
        c.goto("http://127.0.0.1:8080/login").await.unwrap();
        fill(&c, "email", "desk@example.com").await;
        fill(&c, "password", &one_time).await;
        click(&c, "login").await;
        if c.wait().for_element(Id("confirm")).await.is_err() {
            panic!("not logged in: {}", body_text(&c).await);
        }
        let new = "a long and private passphrase";
        for (field, value) in [
            ("current", one_time.as_str()),
            ("new", new),
            ("confirm", new),
        ] {
            fill(&c, field, value).await;
        }
        click(&c, "save").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.goto("http://127.0.0.1:8080/network").await.unwrap();
        let approve = c
            .wait()
            .for_element(Id(&format!("approve-dns-{id}")))
            .await
            .unwrap_or_else(|_| panic!("no request on the Network page"));
        let text = body_text(&c).await;
        assert!(
            text.contains("www.vendor-docs.test")
                && text.contains("The installation guide for our printers"),
            "{text}"
        );
        let form = c
            .find(Css(&format!("form[action='/network/dns/{id}']")))
            .await
            .unwrap();
        assert_eq!(
            form.find(Css("select[name=scope]"))
                .await
                .unwrap()
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some("member"),
            "the requester is the default"
        );
        let recent = c
            .find(Css("#dns-blocked"))
            .await
            .expect("recently blocked queries listed")
            .text()
            .await
            .unwrap();
        assert!(
            recent.contains("www.vendor-docs.test")
                && recent.contains("ads")
                && recent.contains("Ada Lovelace <ada@example.com>"),
            "{recent}"
        );
        shot(&c, "console-18-dns-request").await;
        approve.click().await.unwrap();
        wait_text(&c, "www.vendor-docs.test: approved").await;
        c
    });
    let mail = std::fs::read_dir(env.dir.path().join("outbox"))
        .expect("an outbox")
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("www.vendor-docs.test"))
        .expect("Ada got a mail about her request");
    assert!(mail.contains("ada@example.com"), "{mail}");

    // Within a second the resolver has the exception; a fresh browser loads the site.
    std::thread::sleep(Duration::from_secs(1));
    in_browser(&ns, 9532, "10.77.0.1", false, |c| async move {
        c.goto("http://www.vendor-docs.test/install").await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("Vendor docs"), "{text}");
        shot(&c, "dns-3-allowed").await;
        c
    });
    drop(server);
}

/// DNS over TLS to a real DoT server: unbound serving TLS on loopback with a certificate for
/// `dot.test` from a CA made here. `serve --dns-upstream tls://127.0.0.1:PORT#dot.test` with
/// `[dns] tls_ca` resolves through it; with a name the certificate does not carry, nothing
/// resolves (SERVFAIL), never a fallback to plain DNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_tls_upstream_is_unbound() {
    if !require_tool("dig", "dnsutils") || !require_tool("unbound", "unbound") {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["dot.test".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(env.path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(env.path("dot.pem"), leaf.pem()).unwrap();
    std::fs::write(env.path("dot.key"), key.serialize_pem()).unwrap();
    let (mut unbound, port) = unbound(
        &env,
        &format!(
            "  tls-service-key: \"{key}\"\n  tls-service-pem: \"{pem}\"\n  local-zone: \"dot.example.\" static\n  local-data: \"www.dot.example. 300 IN A 192.0.2.53\"\n",
            key = env.path("dot.key").display(),
            pem = env.path("dot.pem").display(),
        ),
        "",
    );
    let cfg = env.path("frontdesk.toml");
    std::fs::write(
        &cfg,
        format!("[dns]\ntls_ca = \"{}\"\n", env.path("ca.pem").display()),
    )
    .unwrap();
    let start = |name: &str| {
        let mut cmd = env.cmd();
        cmd.arg("--config").arg(&cfg).arg("serve");
        listen_args(&mut cmd, "127.0.0.1:0");
        cmd.args([
            "--dns",
            "127.0.0.1:0",
            "--dns-upstream",
            &format!("tls://127.0.0.1:{port}#{name}"),
        ]);
        let server = Server::start(cmd);
        let line = server
            .wait_for(&["protective DNS listening"], Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no DNS listener: {}", server.drain()));
        assert!(
            line.contains(&format!("tls://127.0.0.1:{port}#{name}")),
            "{line}"
        );
        let dns_port: u16 = line
            .split("local=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        (server, Dig { port: dns_port })
    };
    let (server, dig) = start("dot.test");
    let (status, a, text) = dig.ask("127.0.0.1", "www.dot.example", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(a.len() == 1 && a[0].ends_with("192.0.2.53"), "{text}");
    // Several names at once over the one connection.
    for i in 0..5 {
        let (status, _, text) = dig.ask("127.0.0.1", &format!("n{i}.dot.example"), &[]);
        assert_eq!(status, "NXDOMAIN", "{text}");
    }
    drop(server);
    let (server, dig) = start("wrong.test");
    let (status, a, text) = dig.ask("127.0.0.1", "www.dot.example", &["+time=5"]);
    assert_eq!(status, "SERVFAIL", "{text}");
    assert!(a.is_empty());
    let log = server.drain();
    assert!(
        log.contains("DNS-over-TLS upstream: no connection"),
        "{log}"
    );
    drop(server);
    let _ = unbound.kill();
    let _ = unbound.wait();
}

/// DNSSEC validation against real signed data: a root zone of our own, made and signed here
/// with BIND's `dnssec-keygen`/`dnssec-signzone` and served by unbound (with an unsigned
/// delegation `plain.` it also serves). `[dns] trust_anchor` is our root's key-signing key,
/// so the whole chain (trust anchor → DNSKEY set → RRSIGs, NSEC proofs) is checked the way
/// the real root's would be:
/// - signed answers get the AD bit; the signatures reach clients that set DO, only them;
/// - a record changed after signing is bogus: SERVFAIL, logged; with CD the client gets it
///   unchecked, and that does not leak into what other clients get;
/// - a record whose signature was stripped is bogus too (not "insecure");
/// - a signed NXDOMAIN is secure; names under the unsigned delegation resolve, without AD;
/// - `/metrics` counts the results.
///
/// Then the same resolver against an upstream that carries no DNSSEC (the test's fake):
/// `allow-downgrade` says so in the log and keeps resolving; `strict` refuses (SERVFAIL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnssec_validation_with_a_signed_root_served_by_unbound() {
    if !require_tool("dig", "dnsutils")
        || !require_tool("unbound", "unbound")
        || !require_tool("dnssec-signzone", "bind9-utils")
    {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
    let dir = env.dir.path().to_path_buf();
    std::fs::write(
        env.path("root.zone"),
        "$TTL 3600\n\
         .        IN SOA ns.root. admin.root. 1 3600 600 86400 300\n\
         .        IN NS ns.root.\n\
         ns.root. IN A 127.0.0.1\n\
         www.example. IN A 10.0.0.5\n\
         evil.example. IN A 10.0.0.6\n\
         stripped.example. IN A 10.0.0.8\n\
         alias.example. IN CNAME www.example.\n\
         plain.   IN NS ns.root.\n",
    )
    .unwrap();
    std::fs::write(
        env.path("plain.zone"),
        "$TTL 3600\n\
         plain. IN SOA ns.root. admin.root. 1 3600 600 86400 300\n\
         plain. IN NS ns.root.\n\
         www.plain. IN A 10.0.0.7\n",
    )
    .unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.current_dir(&dir).output().expect("bind9-utils");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ksk =
        run(Command::new("dnssec-keygen").args(["-q", "-a", "ECDSAP256SHA256", "-f", "KSK", "."]));
    run(Command::new("dnssec-keygen").args(["-q", "-a", "ECDSAP256SHA256", "."]));
    run(Command::new("dnssec-signzone").args([
        "-q",
        "-S",
        "-K",
        ".",
        "-o",
        ".",
        "-O",
        "full",
        "-f",
        "root.signed",
        "root.zone",
    ]));
    // After signing: evil's address changes (its RRSIG no longer matches), stripped loses
    // its RRSIG (what an attacker between us and the upstream would do).
    let signed = std::fs::read_to_string(env.path("root.signed")).unwrap();
    let tampered: String = signed
        .lines()
        .filter(|l| !(l.starts_with("stripped.example.") && l.contains("RRSIG")))
        .map(|l| {
            if l.starts_with("evil.example.") && l.trim_end().ends_with("10.0.0.6") {
                l.replace("10.0.0.6", "10.0.0.66")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(signed.lines().count(), tampered.lines().count());
    assert!(tampered.contains("10.0.0.66"));
    std::fs::write(env.path("root.signed"), tampered + "\n").unwrap();
    let anchor = std::fs::read_to_string(env.path(&format!("{ksk}.key"))).unwrap();
    assert!(anchor.contains("DNSKEY 257"), "{anchor}");
    std::fs::write(env.path("anchor.key"), &anchor).unwrap();

    let zone = |name: &str, file: &str| {
        format!(
            "auth-zone:\n  name: \"{name}\"\n  zonefile: \"{}\"\n  for-downstream: yes\n  for-upstream: yes\n  fallback-enabled: no\n",
            env.path(file).display()
        )
    };
    let (mut unbound, port) = unbound(
        &env,
        "",
        &format!(
            "{}{}",
            zone(".", "root.signed"),
            zone("plain.", "plain.zone")
        ),
    );

    let start = |mode: &str, upstream: &str, ready: &str| {
        let cfg = env.path(&format!("frontdesk-{mode}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[dns]\ndnssec = \"{mode}\"\ntrust_anchor = \"{}\"\n",
                env.path("anchor.key").display()
            ),
        )
        .unwrap();
        let mut cmd = env.cmd();
        cmd.arg("--config").arg(&cfg).arg("serve");
        listen_args(&mut cmd, "127.0.0.1:0");
        cmd.args(["--dns", "127.0.0.1:0", "--dns-upstream", upstream]);
        let server = Server::start(cmd);
        // The DNS listener, the console and (when asked) the DNSSEC verdict, in any order.
        let (mut dns_port, mut console, mut seen_ready) = (None, None, ready.is_empty());
        let addr = |line: &str, key: &str| -> Option<String> {
            line.split(key)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        };
        while dns_port.is_none() || console.is_none() || !seen_ready {
            let line = server
                .wait_for(&[""], Duration::from_secs(30))
                .unwrap_or_else(|| panic!("serve did not come up ({ready:?})"));
            if line.contains("protective DNS listening") {
                dns_port = addr(&line, "local=")
                    .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
            } else if line.contains("operator console listening") {
                console = addr(&line, "addr=");
            } else if !ready.is_empty() && line.contains(ready) {
                seen_ready = true;
            }
        }
        (
            server,
            Dig {
                port: dns_port.unwrap(),
            },
            console.unwrap(),
        )
    };
    let flags = |text: &str| -> Vec<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(";; flags: "))
            .and_then(|l| l.split(';').next())
            .map(|f| f.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let up = format!("127.0.0.1:{port}");
    let (server, dig, console) = start("allow-downgrade", &up, "answers are validated");

    // Signed: AD, and RRSIGs only for a DO client.
    let (status, a, text) = dig.ask("127.0.0.1", "www.example", &["+dnssec"]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(flags(&text).contains(&"ad".to_string()), "{text}");
    assert!(a.iter().any(|l| l.ends_with("10.0.0.5")), "{text}");
    assert!(text.contains("RRSIG"), "{text}");
    let (status, a, text) = dig.ask("127.0.0.1", "www.example", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(
        flags(&text).contains(&"ad".to_string()),
        "dig asks with AD: {text}"
    );
    assert!(!flags(&text).contains(&"aa".to_string()), "{text}");
    assert_eq!(a.len(), 1, "no RRSIG without DO: {text}");
    let (status, a, text) = dig.ask("127.0.0.1", "www.example", &["+noedns"]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(
        !text.contains("OPT PSEUDOSECTION"),
        "no OPT record without EDNS: {text}"
    );
    assert_eq!(a.len(), 1, "{text}");
    let (_, _, text) = dig.ask("127.0.0.1", "www.example", &["+noadflag"]);
    assert!(
        !flags(&text).contains(&"ad".to_string()),
        "no AD unless asked: {text}"
    );
    let (status, a, text) = dig.ask("127.0.0.1", "alias.example", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(flags(&text).contains(&"ad".to_string()), "{text}");
    assert!(a.iter().any(|l| l.ends_with("10.0.0.5")), "{text}");

    // Bogus: changed after signing, or signature stripped.
    for name in ["evil.example", "stripped.example"] {
        let (status, a, text) = dig.ask("127.0.0.1", name, &[]);
        assert_eq!(status, "SERVFAIL", "{name}: {text}");
        assert!(a.is_empty(), "{text}");
    }
    let log = server
        .wait_for(
            &["bogus answer", "stripped.example"],
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| server.drain());
    assert!(
        log.contains("bogus answer") && log.contains("why="),
        "{log}"
    );
    // CD: the client checks for itself and gets the data; others still get SERVFAIL.
    let (status, a, text) = dig.ask("127.0.0.1", "evil.example", &["+cd"]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(a.iter().any(|l| l.ends_with("10.0.0.66")), "{text}");
    let (status, _, text) = dig.ask("127.0.0.1", "evil.example", &[]);
    assert_eq!(
        status, "SERVFAIL",
        "a CD answer must not be cached for others: {text}"
    );

    // Proven non-existence; an unsigned delegation.
    let (status, _, text) = dig.ask("127.0.0.1", "nope.example", &[]);
    assert_eq!(status, "NXDOMAIN", "{text}");
    assert!(flags(&text).contains(&"ad".to_string()), "{text}");
    let (status, a, text) = dig.ask("127.0.0.1", "www.plain", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(a.iter().any(|l| l.ends_with("10.0.0.7")), "{text}");
    assert!(
        !flags(&text).contains(&"ad".to_string()),
        "insecure: no AD: {text}"
    );
    // Cached answers keep their verdict.
    let (status, _, text) = dig.ask("127.0.0.1", "www.example", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(flags(&text).contains(&"ad".to_string()), "{text}");

    let (_, body) = http(&console, "GET", "/metrics", "localhost", "");
    assert!(body.contains("frontdesk_dns_dnssec_validating 1"), "{body}");
    let count = |what: &str| -> u64 {
        body.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "frontdesk_dns_dnssec_answers_total{{result=\"{what}\"}} "
                ))
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count("bogus") >= 3 && count("secure") >= 3 && count("insecure") >= 1,
        "{body}"
    );
    drop(server);

    // An upstream that strips DNSSEC (the fake answers every A query, no signatures).
    let (fake, _) = upstream();
    let (server, dig, _) = start(
        "allow-downgrade",
        &fake.to_string(),
        "answers are NOT validated",
    );
    let (status, a, text) = dig.ask("127.0.0.1", "www.example", &[]);
    assert_eq!(status, "NOERROR", "{text}");
    assert!(a.iter().any(|l| l.ends_with("192.0.2.7")), "{text}");
    assert!(!flags(&text).contains(&"ad".to_string()), "{text}");
    drop(server);
    let (server, dig, _) = start("strict", &fake.to_string(), "");
    let (status, _, text) = dig.ask("127.0.0.1", "www.example", &[]);
    assert_eq!(
        status, "SERVFAIL",
        "strict refuses what it cannot validate: {text}"
    );
    drop(server);
    let _ = unbound.kill();
    let _ = unbound.wait();
}

/// unbound in the foreground on a free loopback port (plain DNS, and TLS on the same port when
/// `server_extra` names a key and certificate), iterator only, `server_extra` lines under
/// `server:`, then `tail` (e.g. `auth-zone:` blocks). Waits until it listens; the caller
/// kills it.
fn unbound(env: &Env, server_extra: &str, tail: &str) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls = if server_extra.contains("tls-service-key") {
        format!("  tls-port: {port}\n")
    } else {
        String::new()
    };
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n{tls}  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n{server_extra}{tail}",
        dir = env.dir.path().display(),
    );
    std::fs::write(env.path("unbound.conf"), conf).unwrap();
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(env.path("unbound.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unbound");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "unbound did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}
