//! `serve` as a separate process: the demo, and changes made by another process reaching it.

mod common;
use common::{listen_args, Db, Env, Server, BIN};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

async fn cli_change_reaches_serve_within_a_second(env: &Env) {
    env.run(&["init", "--site", "Berlin", "--timezone", "Europe/Berlin"])
        .ok();
    // Ephemeral loopback addresses: nothing binds them yet, but they must parse.
    let server = env.serve("127.0.0.1:0");
    assert!(
        server
            .wait_for(&["following changes"], Duration::from_secs(20))
            .is_some(),
        "serve did not start"
    );
    let t0 = Instant::now();
    let added = env
        .run(&[
            "member",
            "add",
            "--name",
            "Ada",
            "--email",
            "ada@example.com",
            "--plan",
            "flex",
            "--json",
        ])
        .ok()
        .json();
    let id = added["id"].as_str().unwrap();
    let line = server
        .wait_for(
            &["change applied", "kind=member", id],
            Duration::from_secs(5),
        )
        .expect("serve saw the change");
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_secs(1) + Duration::from_millis(500),
        "took {elapsed:?}: {line}"
    );
}
both_databases!(change_feed, cli_change_reaches_serve_within_a_second);

#[test]
fn demo_prints_credentials_and_serves_a_throwaway_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_remove("FRONTDESK_DATABASE_URL")
        .args(["--json", "serve", "--demo"]);
    listen_args(&mut cmd, "127.0.0.1:0");
    let mut server = Server::start(cmd);
    let console = server
        .wait_for(&["operator console listening"], Duration::from_secs(20))
        .expect("the console listens");
    let addr = console
        .split("addr=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("address in the log")
        .to_string();
    assert!(server
        .wait_for(&["following changes"], Duration::from_secs(20))
        .is_some());
    // The console answers with its login page.
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut tcp,
        b"GET /login HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut page = String::new();
    std::io::Read::read_to_string(&mut tcp, &mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Frontdesk console"), "{page}");
    let mut out = String::new();
    let mut stdout = server.child.stdout.take().unwrap();
    // The JSON summary is complete before serve starts following changes.
    let mut buf = [0u8; 65536];
    let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
    out.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).expect("demo summary is JSON");
    assert_eq!(v["nas"]["secret"], "testing123");
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    assert!(members
        .iter()
        .all(|m| m["wifi_password"].as_str().is_some_and(|p| p.len() == 14)));
    let db = v["database"].as_str().unwrap().to_string();
    let path = db.strip_prefix("sqlite:").unwrap().to_string();
    assert!(std::path::Path::new(&path).exists());
    // The demo database works with the CLI while serve runs (now: full-time is 24/7, and the
    // demo's memberships start today, so a fixed instant would fail on later days).
    let r = Command::new(BIN)
        .args([
            "--database",
            &db,
            "--json",
            "explain",
            "--user",
            "ada@example.com",
        ])
        .output()
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        (e["allowed"].clone(), e["vlan"].clone()),
        (true.into(), 10.into())
    );
    // Nothing was written to the working directory; the throwaway database goes on exit.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    unsafe_term(&server.child);
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
    assert!(
        !std::path::Path::new(&path).exists(),
        "demo database removed on exit"
    );
}

fn unsafe_term(child: &Child) {
    // SIGTERM, as systemd sends it.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Without a certificate configured, the console on a network address speaks HTTPS with a
/// certificate from Frontdesk's CA (curl verifies it against `cert show --ca-pem`), never plain
/// HTTP; the same certificate is reused on restart. In a network namespace, as root.
#[test]
fn console_on_a_network_address_defaults_to_https_from_our_ca() {
    if !common::require_root("console default HTTPS (network namespace)")
        || !common::require_tool("curl", "curl")
    {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::new(Db::Sqlite)).unwrap();
    env.init_lab("testing123");
    let ca = env.run(&["cert", "show", "--ca-pem"]).ok();
    std::fs::write(env.path("ca.pem"), &ca.stdout).unwrap();
    let ns = common::netns::Netns::new(&format!("fdtls{}", std::process::id()));
    ns.ip(&["addr", "add", "10.231.0.1/32", "dev", "lo"]);
    let start = || {
        let mut cmd = ns.command(BIN);
        cmd.current_dir(env.dir.path())
            .env("STATE_DIRECTORY", env.dir.path())
            .args(["--database", &env.url, "serve"])
            .args([
                "--radius-auth",
                "127.0.0.1:0",
                "--radius-acct",
                "127.0.0.1:0",
            ])
            .args(["--http", "10.231.0.1:8443", "--portal", "127.0.0.1:0"]);
        let server = Server::start(cmd);
        let line = server
            .wait_for(&["operator console listening"], Duration::from_secs(30))
            .unwrap_or_else(|| panic!("console did not start: {}", server.drain()));
        assert!(line.contains("HTTPS"), "{line}");
        server
    };
    let curl = |url: &str| {
        ns.command("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg("--cacert")
            .arg(env.path("ca.pem"))
            .arg(url)
            .output()
            .unwrap()
    };
    let server = start();
    let out = curl("https://10.231.0.1:8443/login");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = curl("http://10.231.0.1:8443/login");
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        "200",
        "no plain HTTP"
    );
    drop(server);
    // Restart: the stored certificate is reused, not reissued.
    let server = start();
    assert_eq!(
        String::from_utf8_lossy(&curl("https://10.231.0.1:8443/login").stdout),
        "200"
    );
    drop(server);
    rt.block_on(env.cleanup());
}

/// `serve` under systemd (Type=notify): READY=1 on `$NOTIFY_SOCKET` once it listens and
/// follows changes, STOPPING=1 on SIGTERM; `/healthz` and `/readyz` answer without a login.
#[test]
fn serve_notifies_systemd_and_answers_health_checks() {
    use std::io::{Read, Write};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::new(Db::Sqlite)).unwrap();
    env.init_lab("testing123-secret");
    let path = env.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[radius]\nmax_session = \"12h\"\n").unwrap();
    let mut cmd = env.cmd();
    cmd.arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env("NOTIFY_SOCKET", &path);
    listen_args(&mut cmd, "127.0.0.1:0");
    let server = Server::start(cmd);
    let line = server
        .wait_for(&["operator console listening"], Duration::from_secs(30))
        .expect("console up");
    let addr = line[line.find("addr=").unwrap() + 5..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.starts_with("READY=1"), "{msg}");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let h = get("/healthz");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    let r = get("/readyz");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("ready\n"),
        "{r}"
    );
    // SIGHUP (`systemctl reload`) reads the file again and names what needs a restart; it
    // does not stop serving.
    std::fs::write(&cfg, "[radius]\nmax_session = \"8h\"\n").unwrap();
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status();
    let n = sock.recv(&mut buf).expect("reloading");
    assert_eq!(&buf[..n], b"RELOADING=1");
    let n = sock.recv(&mut buf).expect("ready again");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(server
        .wait_for(&["SIGHUP", "radius"], Duration::from_secs(10))
        .is_some());
    assert!(get("/readyz").starts_with("HTTP/1.1 200"));
    unsafe_term(&server.child);
    let n = sock.recv(&mut buf).expect("a stopping notification");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(
        server
            .wait_for(&["stopped"], Duration::from_secs(10))
            .is_some(),
        "a clean stop after the queues are written"
    );
}

/// Nightly backups: at start, when the newest backup is older than a day, `serve` writes one
/// (a sealed SQLite copy with the key) and keeps only the newest `keep`.
#[test]
fn serve_backs_up_when_none_is_recent_and_keeps_the_newest() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::new(Db::Sqlite)).unwrap();
    env.init_lab("testing123-secret");
    let dir = env.path("bk");
    std::fs::create_dir_all(&dir).unwrap();
    for day in 1..=3 {
        let p = dir.join(format!("frontdesk-2020-01-0{day}T033000Z.fdbackup"));
        std::fs::write(&p, b"old").unwrap();
        let _ = Command::new("touch")
            .arg("-d")
            .arg(format!("2020-01-0{day}"))
            .arg(&p)
            .status();
    }
    let cfg = env.path("frontdesk.toml");
    std::fs::write(
        &cfg,
        format!("[backup]\ndir = \"{}\"\nkeep = 2\n", dir.display()),
    )
    .unwrap();
    let mut cmd = env.cmd();
    cmd.arg("--config").arg(&cfg).arg("serve");
    listen_args(&mut cmd, "127.0.0.1:0");
    let server = Server::start(cmd);
    let line = server.wait_for(&["backup written"], Duration::from_secs(30));
    assert!(line.is_some(), "{}", server.drain());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[0], "frontdesk-2020-01-03T033000Z.fdbackup");
    let bytes = std::fs::read(dir.join(&names[1])).unwrap();
    let contents = frontdesk_core::backup::open(&bytes, None).expect("a backup");
    assert!(contents.database.starts_with(b"SQLite format 3\0"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join(&names[1]))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private: {mode:o}");
}
