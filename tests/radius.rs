//! RADIUS end to end: `frontdesk serve` on ephemeral loopback ports, driven by FreeRADIUS's
//! `radclient` (the real peer).

mod common;
use common::{require_tool, Db, Env, Server};
use frontdesk_radius::auth::mschap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "testing123";

struct Radius {
    env: Env,
    server: Server,
    auth: u16,
    acct: u16,
}

#[derive(Debug)]
struct Answer {
    code: Option<String>,
    out: String,
}

impl Answer {
    fn attr(&self, name: &str) -> Option<String> {
        self.out
            .lines()
            .filter(|l| l.starts_with('\t') || l.starts_with(' '))
            .map(str::trim)
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim_start()
                    .strip_prefix("= ")
                    .map(|v| v.trim_matches('"').to_string())
            })
    }
}

impl Radius {
    /// UTC site; members: ada (full-time), flo (flex, until today), sus (suspended), printer MAC.
    async fn start() -> Option<Radius> {
        Radius::start_at(None).await
    }

    /// With the wall clock of `serve` and the CLI shifted by `offset_ms` (debug builds).
    async fn start_at(offset_ms: Option<i64>) -> Option<Radius> {
        if !require_tool("radclient", "freeradius-utils") {
            return None;
        }
        let mut env = Env::new(Db::Sqlite).await.unwrap();
        env.clock_offset_ms = offset_ms;
        env.init_lab(SECRET);
        env.run(&[
            "plan",
            "add",
            "--name",
            "solo",
            "--vlan",
            "50",
            "--wifi",
            "always",
            "--devices",
            "1",
        ])
        .ok();
        Some(Radius {
            server: Radius::serve(&env),
            env,
            auth: 0,
            acct: 0,
        })
        .map(|mut r| {
            r.ports();
            r
        })
    }

    fn serve(env: &Env) -> Server {
        // Dual-stack where the host has IPv6, so the unknown-NAS check can send from ::1.
        env.serve(if ipv6_loopback() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
    }

    fn ports(&mut self) {
        (self.auth, self.acct) = self.server.radius_ports();
    }

    fn add_member(&self, email: &str, plan: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "member", "add", "--name", "Test", "--email", email, "--plan", plan, "--json",
        ];
        args.extend(extra);
        let j = self.env.run(&args).ok().json();
        (
            j["wifi_username"].as_str().unwrap().into(),
            j["wifi_password"].as_str().unwrap().into(),
        )
    }

    fn send(&self, host: &str, port: u16, kind: &str, secret: &str, attrs: &str) -> Answer {
        let mut child = Command::new("radclient")
            .args([
                "-x",
                "-r",
                "1",
                "-t",
                "1",
                &format!("{host}:{port}"),
                kind,
                secret,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(attrs.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let code = text.lines().find_map(|l| {
            l.strip_prefix("Received ")
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        });
        Answer { code, out: text }
    }

    fn auth(&self, attrs: &str) -> Answer {
        self.send(
            "127.0.0.1",
            self.auth,
            "auth",
            SECRET,
            &format!("{attrs},Message-Authenticator=0x00"),
        )
    }

    fn acct(&self, attrs: &str) -> Answer {
        self.send("127.0.0.1", self.acct, "acct", SECRET, attrs)
    }

    /// Re-registers the lab NAS with its Disconnect port on a socket of this test, which plays
    /// the NAS's dynamic-authorization server.
    fn nas_listening(&self) -> std::net::UdpSocket {
        let nas = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = nas.local_addr().unwrap().port().to_string();
        self.env.run(&["nas", "remove", "local"]).ok();
        self.env
            .run(&[
                "nas",
                "add",
                "--name",
                "local",
                "--address",
                "127.0.0.1",
                "--secret",
                SECRET,
                "--disconnect-port",
                &port,
            ])
            .ok();
        nas
    }

    /// Waits until `serve` has applied the latest change (CLI writes reach it via the feed).
    fn settle(&self) {
        std::thread::sleep(Duration::from_millis(700));
    }
}

/// The NAS acknowledges a Disconnect-Request (signed, with Message-Authenticator).
fn disconnect_ack(
    nas: &std::net::UdpSocket,
    req: &frontdesk_radius::packet::Packet,
    to: std::net::SocketAddr,
) {
    use frontdesk_radius::{attr, packet};
    let mut ack = packet::Packet::new(packet::Code::DisconnectAck, req.identifier, [0; 16]);
    ack.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    let ack = packet::encode_response(&ack, &req.authenticator, SECRET.as_bytes()).unwrap();
    nas.send_to(&ack, to).unwrap();
}

/// Whether this host has IPv6 loopback (the unknown-NAS check sends from ::1).
fn ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

fn pap(user: &str, password: &str) -> String {
    format!("User-Name={user},User-Password={password}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pap_chap_mschapv2_mab_and_rejects() {
    let Some(r) = Radius::start().await else {
        return;
    };
    let (ada, ada_pw) = r.add_member("ada@example.com", "full-time", &[]);
    let today = chrono::Utc::now().date_naive().to_string();
    let (flo, flo_pw) = r.add_member("flo@example.com", "full-time", &["--until", &today]);
    let (sus, sus_pw) = r.add_member("sus@example.com", "full-time", &[]);
    r.env.run(&["member", "suspend", "sus@example.com"]).ok();
    let (can, can_pw) = r.add_member("can@example.com", "full-time", &[]);
    r.env.run(&["member", "cancel", "can@example.com"]).ok();
    r.env
        .run(&["site", "hours", "--days", "daily", "--closed"])
        .ok();
    let (night, night_pw) = r.add_member("night@example.com", "flex", &[]);
    r.env
        .run(&[
            "device",
            "add",
            "--member",
            "ada@example.com",
            "--mac",
            "02:00:00:00:00:99",
            "--name",
            "printer",
        ])
        .ok();
    r.settle();

    // PAP accept with the VLAN attributes of the plan and an unbounded-plan Session-Timeout.
    let a = r.auth(&pap(&ada, &ada_pw));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    assert_eq!(
        a.attr("Tunnel-Type:0").as_deref(),
        Some("VLAN"),
        "{}",
        a.out
    );
    assert_eq!(a.attr("Tunnel-Medium-Type:0").as_deref(), Some("IEEE-802"));
    assert_eq!(a.attr("Tunnel-Private-Group-Id:0").as_deref(), Some("10"));
    assert_eq!(
        a.attr("Termination-Action").as_deref(),
        Some("RADIUS-Request")
    );
    let st: u32 = a.attr("Session-Timeout").unwrap().parse().unwrap();
    assert!(
        (38_880..=43_200).contains(&st),
        "12 h minus at most 10 % jitter: {st}"
    );
    assert!(a.attr("Class").is_some());
    // The Message-Authenticator comes first.
    let first_attr = a
        .out
        .lines()
        .skip_while(|l| !l.starts_with("Received"))
        .nth(1)
        .unwrap();
    assert!(
        first_attr.trim().starts_with("Message-Authenticator"),
        "{}",
        a.out
    );

    // Session-Timeout = seconds until valid_until (the plan ends at midnight UTC today).
    let f = r.auth(&pap(&flo, &flo_pw));
    assert_eq!(f.code.as_deref(), Some("Access-Accept"), "{}", f.out);
    let st: i64 = f.attr("Session-Timeout").unwrap().parse().unwrap();
    let midnight = (chrono::Utc::now().date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let expected = (midnight - chrono::Utc::now())
        .num_seconds()
        .clamp(60, 43_200);
    assert!(
        (st - expected).abs() <= 5,
        "Session-Timeout {st}, expected about {expected}"
    );

    // Rejects (and what explain then tells the operator).
    for (user, pw, why) in [
        (ada.as_str(), "wrong-password", "bad password"),
        ("nobody@example.com", "whatever1", "unknown user"),
        (sus.as_str(), sus_pw.as_str(), "suspended"),
        (can.as_str(), can_pw.as_str(), "cancelled"),
        (night.as_str(), night_pw.as_str(), "outside hours"),
    ] {
        let a = r.auth(&pap(user, pw));
        assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{why}: {}", a.out);
        assert!(
            a.attr("Reply-Message").is_none(),
            "no reason leaks by default"
        );
    }

    // The auth log is written in batches off the hot path: wait (bounded) for the last reject,
    // which is written after the others.
    for _ in 0..50 {
        let n = r
            .env
            .run(&["explain", "--user", &night, "--json"])
            .ok()
            .json();
        if n["recent_logins"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = r
        .env
        .run(&["explain", "--user", &sus, "--json"])
        .ok()
        .json();
    assert_eq!(e["recent_logins"][0]["reason"], "suspended", "{e}");
    assert_eq!(e["recent_logins"][0]["accepted"], false);
    let text = r.env.run(&["explain", "--user", &night]).ok().stdout;
    assert!(
        text.contains("recent RADIUS logins:") && text.contains("outside-hours"),
        "{text}"
    );

    // CHAP.
    let c = r.auth(&format!("User-Name={ada},CHAP-Password={ada_pw}"));
    assert_eq!(c.code.as_deref(), Some("Access-Accept"), "{}", c.out);
    let c = r.auth(&format!("User-Name={ada},CHAP-Password=nope-nope"));
    assert_eq!(c.code.as_deref(), Some("Access-Reject"));

    // MS-CHAPv2, computed here (radclient derives only MS-CHAPv1 from MS-CHAP-Password).
    let auth_challenge = [0x5bu8; 16];
    let peer_challenge = [0x21u8; 16];
    let nt = frontdesk_core::secrets::nt_hash(&ada_pw);
    let nt_resp = mschap::nt_response(&auth_challenge, &peer_challenge, ada.as_bytes(), &nt);
    let mut response = vec![7u8, 0];
    response.extend(peer_challenge);
    response.extend([0u8; 8]);
    response.extend(nt_resp);
    let m = r.auth(&format!(
        "User-Name={ada},MS-CHAP-Challenge=0x{},MS-CHAP2-Response=0x{}",
        hex::encode(auth_challenge),
        hex::encode(&response)
    ));
    assert_eq!(m.code.as_deref(), Some("Access-Accept"), "{}", m.out);
    let success = mschap::authenticator_response(
        &nt,
        &nt_resp,
        &peer_challenge,
        &auth_challenge,
        ada.as_bytes(),
    );
    let mut want = vec![7u8];
    want.extend(success.as_bytes());
    assert_eq!(
        m.attr("MS-CHAP2-Success").unwrap().to_lowercase(),
        format!("0x{}", hex::encode(want)),
        "{}",
        m.out
    );
    let (send, recv) = mschap::mppe_keys(&nt, &nt_resp);
    assert_eq!(
        m.attr("MS-MPPE-Send-Key").unwrap().to_lowercase(),
        format!("0x{}", hex::encode(send)),
        "{}",
        m.out
    );
    assert_eq!(
        m.attr("MS-MPPE-Recv-Key").unwrap().to_lowercase(),
        format!("0x{}", hex::encode(recv))
    );
    let mut bad = response.clone();
    bad[30] ^= 0xff;
    let m = r.auth(&format!(
        "User-Name={ada},MS-CHAP-Challenge=0x{},MS-CHAP2-Response=0x{}",
        hex::encode(auth_challenge),
        hex::encode(&bad)
    ));
    assert_eq!(m.code.as_deref(), Some("Access-Reject"));
    assert!(m.attr("MS-CHAP-Error").is_some(), "{}", m.out);

    // MAC authentication: bare lowercase with the MAC as password (Meraki/Cisco style), and
    // colon format with an empty password (MikroTik style).
    for attrs in [
        "User-Name=020000000099,User-Password=020000000099,Calling-Station-Id=02-00-00-00-00-99",
        "User-Name=02:00:00:00:00:99,User-Password=\"\"",
        "User-Name=02-00-00-00-00-99,CHAP-Password=02-00-00-00-00-99",
    ] {
        let a = r.auth(attrs);
        assert_eq!(
            a.code.as_deref(),
            Some("Access-Accept"),
            "{attrs}: {}",
            a.out
        );
        assert_eq!(a.attr("Tunnel-Private-Group-Id:0").as_deref(), Some("40"));
    }
    let a = r.auth("User-Name=020000000099,User-Password=not-the-mac");
    assert_eq!(a.code.as_deref(), Some("Access-Reject"));
    let a = r.auth("User-Name=020000000098,User-Password=020000000098");
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "unregistered MAC");

    // Status-Server on both ports.
    let s = r.send(
        "127.0.0.1",
        r.auth,
        "status",
        SECRET,
        "Message-Authenticator=0x00",
    );
    assert_eq!(s.code.as_deref(), Some("Access-Accept"), "{}", s.out);
    let s = r.send(
        "127.0.0.1",
        r.acct,
        "status",
        SECRET,
        "Message-Authenticator=0x00",
    );
    assert_eq!(s.code.as_deref(), Some("Accounting-Response"), "{}", s.out);

    // Silence: wrong secret, no Message-Authenticator from a NAS that must send it, unknown NAS.
    let w = r.send(
        "127.0.0.1",
        r.auth,
        "auth",
        "not-the-secret",
        &format!("{},Message-Authenticator=0x00", pap(&ada, &ada_pw)),
    );
    assert_eq!(w.code, None, "bad secret must get no answer: {}", w.out);
    let n = r.send("127.0.0.1", r.auth, "auth", SECRET, &pap(&ada, &ada_pw));
    assert_eq!(
        n.code, None,
        "no Message-Authenticator must get no answer: {}",
        n.out
    );
    if ipv6_loopback() {
        let u = r.send(
            "[::1]",
            r.auth,
            "auth",
            SECRET,
            &format!("{},Message-Authenticator=0x00", pap(&ada, &ada_pw)),
        );
        assert_eq!(u.code, None, "unknown NAS must get no answer: {}", u.out);
    } else {
        eprintln!("SKIPPED: unknown-NAS check from ::1 (no IPv6 loopback on this host)");
    }

    // `nas test` lists the SSIDs the NAS names in Called-Station-Id.
    let a = r.auth(&format!(
        "{},Called-Station-Id=\"AA-BB-CC-DD-EE-FF:Members Wi-Fi\"",
        pap(&ada, &ada_pw)
    ));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);

    // The operator sees why: counters per NAS and cause (merged each second, saved every 2 s).
    let mut list = serde_json::Value::Null;
    for _ in 0..80 {
        list = r.env.run(&["nas", "list", "--json"]).ok().json();
        let c = &list[0]["counters"];
        if c["no-message-authenticator"].as_i64() >= Some(1)
            && c["bad-authenticator"].as_i64() >= Some(1)
            && c["unsigned"].as_i64() >= Some(1)
            && c["ssid:Members Wi-Fi"].as_i64() >= Some(1)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let counters = &list[0]["counters"];
    assert!(
        counters["no-message-authenticator"].as_i64() >= Some(1),
        "{list}"
    );
    assert!(counters["bad-authenticator"].as_i64() >= Some(1), "{list}");
    let text = r.env.run(&["nas", "list"]).ok().stdout;
    assert!(
        text.contains("sent without Message-Authenticator (dropped)"),
        "{text}"
    );
    let test = r.env.run(&["nas", "test", "local", "--json"]).ok().json();
    assert!(test["ssids"]["Members Wi-Fi"].as_i64() >= Some(1), "{test}");
    let text = r.env.run(&["nas", "test", "local"]).ok().stdout;
    assert!(text.contains("Members Wi-Fi ("), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_sessions_and_device_limit() {
    let Some(r) = Radius::start().await else {
        return;
    };
    // The NAS receives Disconnect-Requests on a port of this test.
    let nas = r.nas_listening();
    let (solo, solo_pw) = r.add_member("solo@example.com", "solo", &[]);
    r.settle();
    let login = |mac: &str| {
        r.auth(&format!(
            "{},Calling-Station-Id={mac}",
            pap(&solo, &solo_pw)
        ))
    };
    assert_eq!(
        login("AA-00-00-00-00-01").code.as_deref(),
        Some("Access-Accept")
    );

    let start = format!(
        "Acct-Status-Type=Start,User-Name={solo},Acct-Session-Id=sess-1,Calling-Station-Id=AA-00-00-00-00-01,Framed-IP-Address=10.0.20.5,NAS-IP-Address=127.0.0.1"
    );
    let a = r.acct(&start);
    assert_eq!(a.code.as_deref(), Some("Accounting-Response"), "{}", a.out);
    // Stored before the response: visible right away.
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    assert_eq!(online.as_array().unwrap().len(), 1, "{online}");
    assert_eq!(online[0]["framed_ip"], "10.0.20.5");
    assert_eq!(online[0]["mac"], "aa:00:00:00:00:01");

    // Device limit 1: the same device roaming is not a new device...
    assert_eq!(
        login("AA-00-00-00-00-01").code.as_deref(),
        Some("Access-Accept")
    );
    // ...a second device is let in and the member's oldest session is ended (the default
    // `device_limit_action = "disconnect-oldest"`; "reject" is the handler unit's case).
    assert_eq!(
        login("AA-00-00-00-00-02").code.as_deref(),
        Some("Access-Accept")
    );
    nas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = nas
        .recv_from(&mut buf)
        .expect("a Disconnect-Request for the oldest session");
    let p = frontdesk_radius::packet::Packet::decode(&buf[..n]).unwrap();
    assert_eq!(
        p.get_string(frontdesk_radius::attr::ACCT_SESSION_ID)
            .as_deref(),
        Some("sess-1")
    );
    assert!(r
        .server
        .wait_for(
            &["device limit: ending the member's oldest session", "sess-1"],
            Duration::from_secs(5)
        )
        .is_some());

    // A retransmission (same id and authenticator) gets the cached answer: covered by the
    // duplicate cache unit; here Stop ends the session and frees the slot.
    let stop = format!("Acct-Status-Type=Stop,User-Name={solo},Acct-Session-Id=sess-1,Calling-Station-Id=AA-00-00-00-00-01,Acct-Input-Octets=1000,Acct-Output-Octets=2000,Acct-Session-Time=60");
    assert_eq!(r.acct(&stop).code.as_deref(), Some("Accounting-Response"));
    assert_eq!(
        r.env
            .run(&["sessions", "--online", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = r.env.run(&["sessions", "--json"]).ok().json();
    assert_eq!(all[0]["input_octets"], 1000);
    assert!(all[0]["stopped_at"].is_string());
    assert_eq!(
        login("AA-00-00-00-00-02").code.as_deref(),
        Some("Access-Accept")
    );

    // Accounting-On closes everything of that NAS.
    r.acct(&format!("Acct-Status-Type=Start,User-Name={solo},Acct-Session-Id=sess-2,Calling-Station-Id=AA-00-00-00-00-02"));
    assert_eq!(
        r.env
            .run(&["sessions", "--online", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    r.acct("Acct-Status-Type=Accounting-On,NAS-IP-Address=127.0.0.1,Acct-Session-Id=0");
    assert_eq!(
        r.env
            .run(&["sessions", "--online", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Accounting with the wrong secret is dropped.
    let bad = r.send("127.0.0.1", r.acct, "acct", "wrong-secret", &start);
    assert_eq!(bad.code, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_radius_server_without_restart() {
    let Some(r) = Radius::start().await else {
        return;
    };
    let (ada, pw) = r.add_member("ada@example.com", "full-time", &[]);
    r.settle();
    assert_eq!(
        r.auth(&pap(&ada, &pw)).code.as_deref(),
        Some("Access-Accept")
    );
    r.env.run(&["member", "suspend", "ada@example.com"]).ok();
    r.settle();
    assert_eq!(
        r.auth(&pap(&ada, &pw)).code.as_deref(),
        Some("Access-Reject")
    );
    r.env.run(&["member", "resume", "ada@example.com"]).ok();
    let j = r
        .env
        .run(&["member", "rotate-password", "ada@example.com", "--json"])
        .ok()
        .json();
    r.settle();
    assert_eq!(
        r.auth(&pap(&ada, &pw)).code.as_deref(),
        Some("Access-Reject"),
        "old password"
    );
    let new_pw = j["wifi_password"].as_str().unwrap();
    assert_eq!(
        r.auth(&pap(&ada, new_pw)).code.as_deref(),
        Some("Access-Accept")
    );
}

/// Cancelling a member ends their live session: the NAS gets a signed Disconnect-Request
/// naming it within about a second, and a new login is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_member_disconnects_their_session() {
    let Some(r) = Radius::start().await else {
        return;
    };
    // The NAS listens for Disconnect-Requests on a port of this test.
    let nas = r.nas_listening();
    let (user, pw) = r.add_member("leaving@example.com", "full-time", &[]);
    r.settle();
    let a = r.auth(&format!(
        "{},Calling-Station-Id=AA-00-00-00-00-09",
        pap(&user, &pw)
    ));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    let start = format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id=live-1,Calling-Station-Id=AA-00-00-00-00-09");
    assert_eq!(r.acct(&start).code.as_deref(), Some("Accounting-Response"));
    // `sessions --online` says until when each session may stay: the same as `explain`.
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    let explain = r
        .env
        .run(&["explain", "--user", &user, "--json"])
        .ok()
        .json();
    assert_eq!(online[0]["allowed"], true, "{online}");
    assert_eq!(online[0]["valid_until"], explain["valid_until"], "{online}");
    let text = r.env.run(&["sessions", "--online"]).ok().stdout;
    assert!(
        text.contains("GOES OFFLINE") && text.contains("no end"),
        "{text}"
    );

    let t = std::time::Instant::now();
    r.env.run(&["member", "cancel", "leaving@example.com"]).ok();
    nas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = nas.recv_from(&mut buf).expect("a Disconnect-Request");
    let elapsed = t.elapsed();
    let raw = &buf[..n];
    assert!(
        elapsed < Duration::from_millis(2500),
        "Disconnect-Request {elapsed:?} after the cancel command started"
    );
    use frontdesk_radius::{attr, packet};
    assert!(packet::verify_digest_request_authenticator(
        raw,
        SECRET.as_bytes()
    ));
    assert_eq!(
        packet::verify_request_message_authenticator(raw, SECRET.as_bytes()),
        Some(true)
    );
    let p = packet::Packet::decode(raw).unwrap();
    assert_eq!(p.code, packet::Code::DisconnectRequest);
    assert_eq!(
        p.get_string(attr::USER_NAME).as_deref(),
        Some(user.as_str())
    );
    assert_eq!(
        p.get_string(attr::ACCT_SESSION_ID).as_deref(),
        Some("live-1")
    );
    // The NAS acknowledges; the server logs the session as ended.
    disconnect_ack(&nas, &p, from);
    assert!(r
        .server
        .wait_for(&["access ended", "live-1"], Duration::from_secs(5))
        .is_some());
    // And a new login is refused.
    let a = r.auth(&format!(
        "{},Calling-Station-Id=AA-00-00-00-00-09",
        pap(&user, &pw)
    ));
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);
    let audit = r.env.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("session.disconnect"), "{audit}");

    // A plan change to another VLAN: the NAS echoes our Class (which names the VLAN given) in
    // accounting; moving the member ends the session so the device re-joins in the new VLAN.
    let (mover, mover_pw) = r.add_member("mover@example.com", "solo", &[]);
    r.settle();
    let a = r.auth(&format!(
        "{},Calling-Station-Id=AA-00-00-00-00-0E",
        pap(&mover, &mover_pw)
    ));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    let class = a.attr("Class").expect("a Class in the Access-Accept");
    let start = format!("Acct-Status-Type=Start,User-Name={mover},Acct-Session-Id=move-1,Calling-Station-Id=AA-00-00-00-00-0E,Class={class}");
    assert_eq!(r.acct(&start).code.as_deref(), Some("Accounting-Response"));
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    let moving = online
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["acct_session_id"] == "move-1")
        .expect("the session online");
    assert_eq!(moving["vlan"], 50, "{online}");
    r.env
        .run(&["member", "set-plan", "mover@example.com", "full-time"])
        .ok();
    let (n, from) = nas
        .recv_from(&mut buf)
        .expect("a Disconnect-Request for the VLAN move");
    let p = packet::Packet::decode(&buf[..n]).unwrap();
    assert_eq!(
        p.get_string(attr::ACCT_SESSION_ID).as_deref(),
        Some("move-1")
    );
    disconnect_ack(&nas, &p, from);
    assert!(r
        .server
        .wait_for(&["access ended", "move-1"], Duration::from_secs(5))
        .is_some());
    let audit = r.env.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("vlan-change 50->10"), "{audit}");
}

/// The NAS side of the closing-time test: Disconnect-Requests as they arrive, with the
/// (shifted) wall time of their arrival.
fn receive_disconnects(
    nas: &std::net::UdpSocket,
    offset_ms: i64,
    until: std::time::Instant,
) -> Vec<(
    i64,
    frontdesk_radius::packet::Packet,
    Vec<u8>,
    std::net::SocketAddr,
)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // Past the deadline, what is already queued is still read (a slow machine may come
        // back here late).
        let left = until
            .checked_duration_since(std::time::Instant::now())
            .unwrap_or_default();
        nas.set_read_timeout(Some(left.max(Duration::from_millis(20))))
            .unwrap();
        let Ok((n, from)) = nas.recv_from(&mut buf) else {
            break;
        };
        let at = chrono::Utc::now().timestamp_millis() + offset_ms;
        let raw = buf[..n].to_vec();
        let p = frontdesk_radius::packet::Packet::decode(&raw).unwrap();
        got.push((at, p, raw, from));
    }
    got
}

/// Closing time, live: members whose plan window ends while they are online are sent a
/// Disconnect-Request within a second of the end (the NAS acknowledges one and ignores the
/// other: retried, shown as pending, then failed), a 24/7 member is left alone, and a re-auth
/// after the end is rejected as outside-hours. `serve` runs on a clock shifted to a few seconds
/// before a minute boundary (debug-build test clock), so the window can end during the test.
#[tokio::test(flavor = "multi_thread")]
async fn closing_time_disconnects_within_a_second() {
    let real_ms = chrono::Utc::now().timestamp_millis();
    let end_ms = (real_ms / 60_000 + 2) * 60_000;
    // serve starts 15 s (shifted) before the window ends: time to log in and start accounting.
    let offset = end_ms - 15_000 - real_ms;
    let Some(r) = Radius::start_at(Some(offset)).await else {
        return;
    };
    let end = chrono::DateTime::from_timestamp_millis(end_ms).unwrap();
    let start = end - chrono::Duration::hours(2);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| {
        let s = t.format("%H:%M").to_string();
        if s == "00:00" && t == end {
            "24:00".to_string()
        } else {
            s
        }
    };
    let window = format!("daily {}-{}", hhmm(start), hhmm(end));
    r.env
        .run(&[
            "plan", "add", "--name", "evening", "--vlan", "60", "--wifi", &window,
        ])
        .ok();
    let nas = r.nas_listening();
    let (a, a_pw) = r.add_member("evening-a@example.com", "evening", &[]);
    let (b, _) = r.add_member("evening-b@example.com", "evening", &[]);
    let (c, _) = r.add_member("allday@example.com", "full-time", &[]);
    r.settle();
    let acc = r.auth(&format!(
        "{},Calling-Station-Id=AA-00-00-00-00-0A",
        pap(&a, &a_pw)
    ));
    assert_eq!(acc.code.as_deref(), Some("Access-Accept"), "{}", acc.out);
    // Less than the NAS's minimum Session-Timeout is left: accepted with the minimum (60 s);
    // the scheduler's Disconnect is what ends the session on time.
    assert_eq!(
        acc.attr("Session-Timeout").as_deref(),
        Some("60"),
        "{}",
        acc.out
    );
    for (user, sid, mac) in [
        (&a, "eve-1", "0A"),
        (&b, "eve-2", "0B"),
        (&c, "all-3", "0C"),
    ] {
        let start = format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id={sid},Calling-Station-Id=AA-00-00-00-00-{mac}");
        assert_eq!(r.acct(&start).code.as_deref(), Some("Accounting-Response"));
    }
    let shifted_now = chrono::Utc::now().timestamp_millis() + offset;
    assert!(
        shifted_now < end_ms - 2_000,
        "setup took too long: {} ms left before the window end",
        end_ms - shifted_now
    );

    // Receive everything until 2.5 s after the end; acknowledge eve-1 at once.
    let deadline =
        std::time::Instant::now() + Duration::from_millis((end_ms - shifted_now + 2_500) as u64);
    let got = receive_disconnects(&nas, offset, deadline);
    use frontdesk_radius::{attr, packet};
    let sid = |p: &packet::Packet| p.get_string(attr::ACCT_SESSION_ID).unwrap_or_default();
    assert!(
        got.iter().all(|(_, p, _, _)| sid(p) != "all-3"),
        "the 24/7 member is left alone"
    );
    let first = |s: &str| {
        got.iter()
            .find(|(_, p, _, _)| sid(p) == s)
            .unwrap_or_else(|| panic!("no Disconnect-Request for {s}"))
    };
    for s in ["eve-1", "eve-2"] {
        let (at, p, raw, _) = first(s);
        let late = at - end_ms;
        assert!(
            (0..1_000).contains(&late),
            "Disconnect-Request for {s} {late} ms after the window end"
        );
        assert_eq!(p.code, packet::Code::DisconnectRequest);
        assert!(packet::verify_digest_request_authenticator(
            raw,
            SECRET.as_bytes()
        ));
        assert_eq!(
            packet::verify_request_message_authenticator(raw, SECRET.as_bytes()),
            Some(true)
        );
        eprintln!("Disconnect-Request for {s}: {late} ms after the window end");
    }
    let (_, p, _, from) = first("eve-1");
    disconnect_ack(&nas, p, *from);
    // eve-2 is not answered: retransmitted, and shown as pending meanwhile.
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    let row = |j: &serde_json::Value, s: &str| {
        j.as_array()
            .unwrap()
            .iter()
            .find(|x| x["acct_session_id"] == s)
            .cloned()
    };
    assert_eq!(
        row(&online, "eve-2").unwrap()["disconnect"],
        "pending",
        "{online}"
    );
    assert_eq!(
        row(&online, "all-3").unwrap()["disconnect"],
        serde_json::Value::Null
    );
    assert!(r
        .server
        .wait_for(&["session disconnected", &a], Duration::from_secs(5))
        .is_some());
    // The NAS ends the session: its accounting Stop arrives.
    let stop = format!("Acct-Status-Type=Stop,User-Name={a},Acct-Session-Id=eve-1,Calling-Station-Id=AA-00-00-00-00-0A,Acct-Terminate-Cause=Admin-Reset");
    assert_eq!(r.acct(&stop).code.as_deref(), Some("Accounting-Response"));
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    assert!(row(&online, "eve-1").is_none(), "{online}");
    // The re-auth is refused: outside the plan's hours.
    let again = r.auth(&format!(
        "{},Calling-Station-Id=AA-00-00-00-00-0A",
        pap(&a, &a_pw)
    ));
    assert_eq!(
        again.code.as_deref(),
        Some("Access-Reject"),
        "{}",
        again.out
    );
    assert!(r
        .server
        .wait_for(&["outside-hours", &a], Duration::from_secs(5))
        .is_some());
    // eve-2: two more transmissions (1 s, then 2 s later), then reported as failed.
    let more = receive_disconnects(
        &nas,
        offset,
        std::time::Instant::now()
            + Duration::from_millis(
                (end_ms + 6_000 - chrono::Utc::now().timestamp_millis() - offset).max(0) as u64,
            ),
    );
    let sent = got
        .iter()
        .chain(&more)
        .filter(|(_, p, _, _)| sid(p) == "eve-2")
        .count();
    assert_eq!(
        sent, 3,
        "eve-2: the first Disconnect-Request and two retransmissions"
    );
    assert!(
        r.server
            .wait_for(&["could not end access", "eve-2"], Duration::from_secs(10))
            .is_some(),
        "{}",
        r.server.drain()
    );
    let online = r.env.run(&["sessions", "--online", "--json"]).ok().json();
    let failed = row(&online, "eve-2").unwrap();
    assert!(
        failed["disconnect"]
            .as_str()
            .unwrap()
            .starts_with("failed: "),
        "{failed}"
    );
    let text = r.env.run(&["sessions", "--online"]).ok().stdout;
    assert!(text.contains("disconnect failed"), "{text}");
    let audit = r.env.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("reason=outside-hours"), "{audit}");
}

/// `/metrics` after RADIUS traffic, read with a Prometheus text parser: decisions by method,
/// result and reason, the latency histogram, dropped packets by cause, queue depths, and the
/// process counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_decisions_latency_and_drops() {
    use std::io::Read;
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab(SECRET);
    let server = env.serve("127.0.0.1:0");
    let port = |line: &str, key: &str| -> String {
        line[line.find(key).expect("address in log") + key.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let line = server
        .wait_for(&["RADIUS listening"], Duration::from_secs(20))
        .expect("RADIUS up");
    let auth: u16 = port(&line, "auth=")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let console = port(
        &server
            .wait_for(&["operator console listening"], Duration::from_secs(20))
            .expect("console up"),
        "addr=",
    );
    server
        .wait_for(&["following changes"], Duration::from_secs(20))
        .expect("serving");
    let r = Radius {
        env,
        server,
        auth,
        acct: 0,
    };
    let (user, pw) = r.add_member("ada@example.com", "full-time", &[]);
    r.settle();
    assert_eq!(
        r.auth(&pap(&user, &pw)).code.as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        r.auth(&pap(&user, "wrong-password")).code.as_deref(),
        Some("Access-Reject")
    );
    // A request signed with another secret: dropped, counted by cause.
    r.send(
        "127.0.0.1",
        auth,
        "auth",
        "not-the-secret",
        &format!("{},Message-Authenticator=0x00", pap(&user, &pw)),
    );
    // Workers merge their counters about once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let mut s = std::net::TcpStream::connect(&console).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {console}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "frontdesk_radius_auth_total",
            &[("method", "pap"), ("result", "accept")]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(
            "frontdesk_radius_auth_total",
            &[("method", "pap"), ("result", "reject")]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(
            "frontdesk_radius_auth_latency_seconds",
            &[("method", "pap")]
        ),
        Some(2.0),
        "two decisions in the histogram: {body}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "frontdesk_radius_events_total"
                && s.labels
                    .get("event")
                    .is_some_and(|e| e.contains("authenticator"))),
        "the forged request counted by cause: {body}"
    );
    assert!(value("frontdesk_radius_queue_depth", &[("queue", "accounting")]).is_some());
    assert!(value("frontdesk_door_sync_runs_total", &[]).is_some());
    assert_eq!(
        value("frontdesk_firewall_elements", &[("set", "portal_clients")]),
        Some(0.0)
    );
    assert!(
        value("frontdesk_online_sessions", &[]).is_none(),
        "no accounting yet, so no VLAN series"
    );
    assert!(value("frontdesk_console_logins_total", &[]).is_some());
}

/// `serve` killed with SIGKILL in the middle of an accounting burst, then started again: every
/// Accounting-Request that got an Accounting-Response is in the database (a response is sent
/// only after the record is committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_accounting_load_loses_no_acknowledged_record() {
    use frontdesk_radius::packet::{encode_request, verify_response, Code, Packet};
    use std::collections::{BTreeSet, HashMap};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(mut r) = Radius::start().await else {
        return;
    };
    let (user, _) = r.add_member("acct@example.com", "full-time", &[]);
    r.settle();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", r.acct)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Identifier → (session id, request authenticator) of the request in flight under it.
    type InFlight = HashMap<u8, (String, [u8; 16])>;
    let pending: Arc<Mutex<InFlight>> = Arc::default();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (sock, pending, acked, stop) = (
            sock.try_clone().unwrap(),
            pending.clone(),
            acked.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                let Ok(n) = sock.recv(&mut buf) else { continue };
                let Ok(p) = Packet::decode(&buf[..n]) else {
                    continue;
                };
                let mut pending = pending.lock().unwrap();
                let entry = pending.get(&p.identifier).cloned();
                // Counted only if it answers exactly the request under that identifier; the
                // identifier is then free for the sender again.
                if let Some((session, auth)) = entry {
                    if p.code == Code::AccountingResponse
                        && verify_response(&buf[..n], &auth, SECRET.as_bytes())
                    {
                        pending.remove(&p.identifier);
                        acked.lock().unwrap().insert(session);
                    }
                }
            }
        })
    };
    let mut sent = 0usize;
    let mut killed = false;
    for i in 0..20_000usize {
        let id = (i % 256) as u8;
        let session = format!("k9-{i}");
        let mut req = Packet::new(Code::AccountingRequest, id, [0; 16]);
        req.add_u32(40, 1); // Acct-Status-Type = Start
        req.add(1, user.as_bytes().to_vec());
        req.add(44, session.as_bytes().to_vec());
        req.add(4, vec![127, 0, 0, 1]);
        req.add(
            31,
            format!("AA-00-00-00-{:02X}-{:02X}", i / 256 % 256, i % 256).into_bytes(),
        );
        let raw = encode_request(&req, SECRET.as_bytes()).unwrap();
        let auth: [u8; 16] = raw[4..20].try_into().unwrap();
        // An identifier is reused only once its request was answered (or after 1 s): on a
        // loaded machine a slow answer must not be mistaken for a lost one.
        let waited = std::time::Instant::now();
        while pending.lock().unwrap().contains_key(&id)
            && waited.elapsed() < Duration::from_secs(1)
            && !killed
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        pending.lock().unwrap().insert(id, (session, auth));
        let _ = sock.send(&raw);
        sent += 1;
        // At most one window of identifiers in flight: wait a little every 64.
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_millis(15));
        }
        if !killed && acked.lock().unwrap().len() >= 500 {
            r.server.child.kill().unwrap();
            let _ = r.server.child.wait();
            killed = true;
        }
        if killed && i % 256 == 255 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    receiver.join().unwrap();
    assert!(killed, "the burst ended before 500 answers ({sent} sent)");
    let acked = acked.lock().unwrap().clone();
    // Start again (recovers the database), then look.
    r.server = Radius::serve(&r.env);
    r.ports();
    let sessions = r
        .env
        .run(&["sessions", "--json", "--limit", "100000"])
        .ok()
        .json();
    let stored: BTreeSet<String> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["acct_session_id"].as_str().map(String::from))
        .collect();
    let missing: Vec<&String> = acked.difference(&stored).collect();
    eprintln!(
        "{sent} sent, {} acknowledged before SIGKILL, {} stored",
        acked.len(),
        stored.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// A TCP proxy between `serve` and PostgreSQL that can be cut: every connection dropped and
/// new ones closed at once, as when the database host goes away.
struct CutProxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CutProxy {
    async fn start(upstream: String) -> CutProxy {
        use std::sync::atomic::Ordering;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> =
            Default::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        CutProxy { port, up, conns }
    }

    /// Puts a proxy between the test's commands and PostgreSQL: `env.url` goes through it.
    async fn between(env: &mut Env) -> CutProxy {
        // postgres://user@HOST:PORT/db?… → the proxy's port.
        let at = env.url.find('@').unwrap() + 1;
        let end = at + env.url[at..].find('/').unwrap();
        let proxy = CutProxy::start(env.url[at..end].to_string()).await;
        env.url = format!(
            "{}127.0.0.1:{}{}",
            &env.url[..at],
            proxy.port,
            &env.url[end..]
        );
        proxy
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The Acct-Session-Ids starting with `prefix` once the database holds `want` of them (after an
/// outage), each asserted to be there exactly once.
fn stored_once(env: &Env, prefix: &str, want: usize) -> Vec<String> {
    let t = std::time::Instant::now();
    let stored = loop {
        let out = env.run(&["sessions", "--json", "--limit", "1000"]);
        if out.code == 0 {
            let ids: Vec<String> = out
                .json()
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["acct_session_id"].as_str().map(String::from))
                .filter(|s| s.starts_with(prefix))
                .collect();
            if ids.len() >= want || t.elapsed() > Duration::from_secs(20) {
                break ids;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the database did not come back"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "exactly once: {stored:?}");
    stored
}

/// PostgreSQL cut off while `serve` runs: RADIUS keeps authenticating from memory,
/// accounting is acknowledged from the on-disk spool, and once the database answers again
/// every acknowledged record is in it, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_spools_accounting_and_keeps_authenticating() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let Some(mut env) = Env::new(Db::Postgres).await else {
        return;
    };
    let proxy = CutProxy::between(&mut env).await;
    env.init_lab(SECRET);
    let server = Radius::serve(&env);
    let mut r = Radius {
        env,
        server,
        auth: 0,
        acct: 0,
    };
    r.ports();
    let (user, pw) = r.add_member("out@example.com", "full-time", &[]);
    r.settle();
    assert_eq!(
        r.auth(&pap(&user, &pw)).code.as_deref(),
        Some("Access-Accept")
    );
    proxy.cut();
    let start = |i: usize| {
        format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id=out-{i},NAS-IP-Address=127.0.0.1")
    };
    // The first write waits for the database (up to 3 s) before it is spooled; radclient
    // may give up on it first, so its answer is not required.
    let _ = r.acct(&start(0));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        r.auth(&pap(&user, &pw)).code.as_deref(),
        Some("Access-Accept"),
        "authentication goes on without the database"
    );
    for i in 1..=20 {
        let a = r.acct(&start(i));
        assert_eq!(
            a.code.as_deref(),
            Some("Accounting-Response"),
            "acknowledged from the spool: {}",
            a.out
        );
    }
    proxy.restore();
    let stored = stored_once(&r.env, "out-", 21);
    assert_eq!(stored.len(), 21, "every acknowledged record: {stored:?}");
    assert!(
        r.server
            .wait_for(&["accounting spooled to disk"], Duration::from_secs(5))
            .is_some(),
        "the outage went through the spool"
    );
    assert!(r
        .server
        .wait_for(&["accounting spool written"], Duration::from_secs(5))
        .is_some());
    r.env.cleanup().await;
}

/// Two appliances (sites) share one PostgreSQL: each serves its own site's calendar, a
/// member added on one is authenticated by the other within a second (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_share_one_postgresql() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let Some(env) = Env::new(Db::Postgres).await else {
        return;
    };
    env.init_lab(SECRET);
    env.run(&[
        "site",
        "add",
        "--name",
        "Annex",
        "--timezone",
        "Europe/Berlin",
    ])
    .ok();
    let annex = |cmd: &mut Command| {
        cmd.env("FRONTDESK_SITE", "Annex");
    };
    let mut show = env.cmd();
    annex(&mut show);
    let out = show.args(["--json", "site", "show"]).output().unwrap();
    let site: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&site["site"], &site["timezone"]),
        (
            &serde_json::json!("Annex"),
            &serde_json::json!("Europe/Berlin")
        ),
        "{site}"
    );
    let lab = env.serve("127.0.0.1:0");
    lab.radius_ports();
    let mut cmd = env.cmd();
    annex(&mut cmd);
    cmd.arg("serve");
    common::listen_args(&mut cmd, "127.0.0.1:0");
    let b = Server::start(cmd);
    let line = b
        .wait_for(&["RADIUS listening"], Duration::from_secs(20))
        .expect("site B up");
    let key = "auth=";
    let auth: u16 = line[line.find(key).unwrap() + key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(b
        .wait_for(&["following changes"], Duration::from_secs(20))
        .is_some());
    let r = Radius {
        env,
        server: b,
        auth,
        acct: 0,
    };
    // Added through site Lab's side; site Annex authenticates it within a second.
    let (user, pw) = r.add_member("both@example.com", "full-time", &[]);
    let added = std::time::Instant::now();
    loop {
        let a = r.auth(&pap(&user, &pw));
        if a.code.as_deref() == Some("Access-Accept") {
            break;
        }
        assert!(
            added.elapsed() < Duration::from_secs(1),
            "site Annex did not know the member a second after it was added: {}",
            a.out
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "added at site Lab → accepted at site Annex in {:?}",
        added.elapsed()
    );
    drop(lab);
    r.env.cleanup().await;
}

/// The multi-site outage of the appliance issue: two sites on one PostgreSQL through a proxy
/// that the test cuts. Both keep authenticating and spool accounting; site B is then
/// restarted while the database is still gone and starts RADIUS from its offline cache; when
/// the database returns, every acknowledged accounting record of both sites is in it exactly
/// once and site B finishes starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_ride_out_an_outage_and_start_from_the_offline_cache() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let Some(mut env) = Env::new(Db::Postgres).await else {
        return;
    };
    let proxy = CutProxy::between(&mut env).await;
    env.init_lab(SECRET);
    env.run(&["site", "add", "--name", "Annex", "--timezone", "UTC"])
        .ok();
    // Site B is another appliance: its own state directory (spool, cache), the same key.
    let annex_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        env.path("frontdesk.key"),
        annex_dir.path().join("frontdesk.key"),
    )
    .unwrap();
    let annex = |env: &Env| {
        let mut cmd = env.cmd();
        cmd.env("FRONTDESK_SITE", "Annex")
            .env("STATE_DIRECTORY", annex_dir.path())
            .arg("serve");
        common::listen_args(&mut cmd, "127.0.0.1:0");
        Server::start(cmd)
    };
    let server = Radius::serve(&env);
    let mut r = Radius {
        env,
        server,
        auth: 0,
        acct: 0,
    };
    r.ports();
    let mut b = annex(&r.env);
    let (mut b_auth, mut b_acct) = b.radius_ports();
    let (user, pw) = r.add_member("outage@example.com", "full-time", &[]);
    let auth_at = |port: u16| {
        r.send(
            "127.0.0.1",
            port,
            "auth",
            SECRET,
            &format!("{},Message-Authenticator=0x00", pap(&user, &pw)),
        )
        .code
    };
    let added = std::time::Instant::now();
    while auth_at(r.auth).as_deref() != Some("Access-Accept")
        || auth_at(b_auth).as_deref() != Some("Access-Accept")
    {
        assert!(
            added.elapsed() < Duration::from_secs(2),
            "both sites know the new member"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Site B's cache is rewritten after the change (at most every 2 s).
    let cache = annex_dir.path().join("entitlements.cache");
    let written = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let t = std::time::Instant::now();
    while written(&cache).is_none_or(|m| m < std::time::SystemTime::now() - added.elapsed()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "site B wrote its offline cache after the change"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(
        mode & 0o077,
        0,
        "the cache holds password equivalents: 0600"
    );

    proxy.cut();
    let start = |site: &str, i: usize| {
        format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id={site}-{i},NAS-IP-Address=127.0.0.1")
    };
    let acct_at = |port: u16, attrs: &str| r.send("127.0.0.1", port, "acct", SECRET, attrs).code;
    // The first write on each site waits for the database (3 s) before spooling.
    let _ = acct_at(r.acct, &start("lab", 0));
    let _ = acct_at(b_acct, &start("annex", 0));
    std::thread::sleep(Duration::from_secs(4));
    for (site, auth, acct) in [("lab", r.auth, r.acct), ("annex", b_auth, b_acct)] {
        assert_eq!(
            auth_at(auth).as_deref(),
            Some("Access-Accept"),
            "site {site} authenticates without the database"
        );
        for i in 1..=5 {
            assert_eq!(
                acct_at(acct, &start(site, i)).as_deref(),
                Some("Accounting-Response"),
                "site {site} acknowledges accounting from its spool"
            );
        }
    }

    // Site B restarts during the outage: RADIUS comes up from the offline cache.
    drop(b);
    b = annex(&r.env);
    (b_auth, b_acct) = b.radius_listening();
    assert!(
        b.wait_for(&["offline cache"], Duration::from_secs(5))
            .is_some(),
        "site B says it started from the offline cache"
    );
    assert_eq!(
        auth_at(b_auth).as_deref(),
        Some("Access-Accept"),
        "a cold start without the database still authenticates"
    );
    let wrong = r
        .send(
            "127.0.0.1",
            b_auth,
            "auth",
            SECRET,
            &format!(
                "{},Message-Authenticator=0x00",
                pap(&user, "not-the-password")
            ),
        )
        .code;
    assert_eq!(wrong.as_deref(), Some("Access-Reject"));
    // `systemctl reload` while it waits for the database does not stop it.
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(b.child.id().to_string())
        .status();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        auth_at(b_auth).as_deref(),
        Some("Access-Accept"),
        "still up after SIGHUP"
    );
    let _ = acct_at(b_acct, &start("annex-cold", 0));
    std::thread::sleep(Duration::from_secs(4));
    for i in 1..=5 {
        assert_eq!(
            acct_at(b_acct, &start("annex-cold", i)).as_deref(),
            Some("Accounting-Response")
        );
    }

    proxy.restore();
    assert!(
        b.wait_for(&["following changes"], Duration::from_secs(20))
            .is_some(),
        "site B finishes starting once the database answers"
    );
    let stored = stored_once(&r.env, "", 18);
    for site in ["lab", "annex", "annex-cold"] {
        for i in 1..=5 {
            let id = format!("{site}-{i}");
            assert!(
                stored.contains(&id),
                "acknowledged {id} is stored: {stored:?}"
            );
        }
    }
    eprintln!(
        "{} accounting records after the outage: {stored:?}",
        stored.len()
    );
    // A change after the outage reaches the restarted site B.
    let (user2, pw2) = r.add_member("after@example.com", "full-time", &[]);
    let t = std::time::Instant::now();
    while r
        .send(
            "127.0.0.1",
            b_auth,
            "auth",
            SECRET,
            &format!("{},Message-Authenticator=0x00", pap(&user2, &pw2)),
        )
        .code
        .as_deref()
        != Some("Access-Accept")
    {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "site B follows changes again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b);
    r.env.cleanup().await;
}

/// SIGHUP applies the `[radius]` tunables from the next request on (Session-Timeout cap,
/// Reply-Message on rejects) and no request is dropped while it happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_radius_settings_without_dropping_requests() {
    if !require_tool("radclient", "freeradius-utils") {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab(SECRET);
    let cfg = env.path("frontdesk.toml");
    std::fs::write(&cfg, "[radius]\nmax_session = \"2h\"\n").unwrap();
    let mut cmd = env.cmd();
    cmd.arg("--config").arg(&cfg).arg("serve");
    common::listen_args(&mut cmd, "127.0.0.1:0");
    let server = Server::start(cmd);
    let mut r = Radius {
        env,
        server,
        auth: 0,
        acct: 0,
    };
    r.ports();
    let (user, pw) = r.add_member("hup@example.com", "full-time", &[]);
    r.settle();
    let a = r.auth(&pap(&user, &pw));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    // The cap, less up to 10 % jitter.
    let timeout = |a: &Answer| -> u32 { a.attr("Session-Timeout").unwrap().parse().unwrap() };
    assert!((6480..=7200).contains(&timeout(&a)), "{}", a.out);
    let no = r.auth(&pap(&user, "wrong-password"));
    assert_eq!(no.code.as_deref(), Some("Access-Reject"));
    assert_eq!(no.attr("Reply-Message"), None, "no reason by default");

    std::fs::write(
        &cfg,
        "[radius]\nmax_session = \"1h\"\nreject_reply_message = true\n",
    )
    .unwrap();
    // Logins go on while the configuration is reloaded three times.
    let pid = r.server.child.id().to_string();
    let hups = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            let _ = Command::new("kill").arg("-HUP").arg(&pid).status();
        }
    });
    let answered = (0..40)
        .map(|_| r.auth(&pap(&user, &pw)).code)
        .filter(|c| c.as_deref() == Some("Access-Accept"))
        .count();
    hups.join().unwrap();
    assert_eq!(answered, 40, "every login during the reloads was answered");
    assert!(r
        .server
        .wait_for(
            &["SIGHUP: [radius] settings applied"],
            Duration::from_secs(5)
        )
        .is_some());
    let a = r.auth(&pap(&user, &pw));
    assert!((3240..=3600).contains(&timeout(&a)), "{}", a.out);
    let no = r.auth(&pap(&user, "wrong-password"));
    assert!(no.attr("Reply-Message").is_some(), "{}", no.out);
    r.env.cleanup().await;
}

/// Identity PSK end to end with radclient: MAC-bound mode hands a bound device its passphrase
/// in Tunnel-Password (radclient decrypts it with the shared secret); unbound mode finds the
/// passphrase from a real 4-way-handshake message 2 sent as Ruckus DPSK attributes (radclient
/// encodes the TLV from its own dictionary) and answers with the PMK; revoking the passphrase
/// ends the device's session with a Disconnect-Request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_passphrases_reach_the_access_point_and_revocation_disconnects() {
    let Some(r) = Radius::start().await else {
        return;
    };
    let nas = r.nas_listening();
    r.add_member("psk@example.com", "full-time", &[]);
    let issued = r
        .env
        .run(&[
            "passphrase",
            "issue",
            "--member",
            "psk@example.com",
            "--ssid",
            "Members-PSK",
            "--devices",
            "3",
            "--json",
        ])
        .ok()
        .json();
    let id = issued["id"].as_i64().unwrap().to_string();
    let secret = issued["passphrase"].as_str().unwrap().to_string();
    r.env
        .run(&["passphrase", "bind", &id, "02:00:00:00:00:42"])
        .ok();
    r.settle();

    // MAC-bound: the AP asks with the MAC, the answer carries the passphrase and the VLAN.
    let mab = "User-Name=020000000042,User-Password=020000000042,\
               Calling-Station-Id=02-00-00-00-00-42,Called-Station-Id=\"AA-BB-CC-DD-EE-FF:Members-PSK\"";
    let a = r.auth(mab);
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    assert_eq!(
        a.attr("Tunnel-Password:0").as_deref(),
        Some(secret.as_str()),
        "{}",
        a.out
    );
    assert_eq!(
        a.attr("Tunnel-Private-Group-Id:0").as_deref(),
        Some("10"),
        "{}",
        a.out
    );
    // An unknown device on that SSID without a join passphrase: refused.
    let a = r.auth(
        "User-Name=020000000043,User-Password=020000000043,\
         Called-Station-Id=\"AA-BB-CC-DD-EE-FF:Members-PSK\"",
    );
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);

    // Unbound: a station that never joined proves the passphrase in message 2.
    let ap = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
    let station = [0x3c, 0x22, 0xfb, 0x00, 0x00, 0x44];
    let pmk = frontdesk_core::secrets::wpa_pmk(&secret, "Members-PSK");
    let (anonce, snonce) = ([0x5a; 32], [0x6b; 32]);
    let frame = frontdesk_radius::psk::station::message2(&pmk, ap, station, &anonce, &snonce);
    let dpsk = |frame: &[u8]| {
        format!(
            "User-Name=3c22fb000044,Calling-Station-Id=3C-22-FB-00-00-44,\
             Called-Station-Id=\"AA-BB-CC-DD-EE-FF:Members-PSK\",Ruckus-SSID=\"Members-PSK\",\
             Ruckus-BSSID=0xaabbccddeeff,Ruckus-DPSK-Cipher=4,Ruckus-DPSK-Anonce=0x{},\
             Ruckus-DPSK-EAPOL-Key-Frame=0x{}",
            hex(&anonce),
            hex(frame)
        )
    };
    let a = r.auth(&dpsk(&frame));
    assert_eq!(a.code.as_deref(), Some("Access-Accept"), "{}", a.out);
    assert_eq!(
        a.attr("MS-MPPE-Recv-Key").as_deref(),
        Some(format!("0x{}", hex(&pmk)).as_str()),
        "{}",
        a.out
    );
    // The same handshake replayed under a new RADIUS identifier: refused.
    let a = r.auth(&dpsk(&frame));
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);
    // A wrong passphrase and a malformed frame: refused, and the server keeps answering.
    let wrong = frontdesk_core::secrets::wpa_pmk("not-the-passphrase", "Members-PSK");
    let bad = frontdesk_radius::psk::station::message2(&wrong, ap, station, &[0x5c; 32], &snonce);
    std::thread::sleep(Duration::from_millis(2100)); // one full scan per station per 2 s
    let a = r.auth(&dpsk(&bad));
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);
    let a = r.auth(&dpsk(&frame[..60]));
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);
    // The station is now known with that passphrase.
    r.settle();
    let shown = r
        .env
        .run(&["passphrase", "show", &id, "--json"])
        .ok()
        .json();
    let macs: Vec<&str> = shown["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mac"].as_str().unwrap())
        .collect();
    assert!(
        macs.contains(&"3c:22:fb:00:00:44") && macs.contains(&"02:00:00:00:00:42"),
        "{shown}"
    );

    // Revocation: the bound device's session is ended, and it is refused from then on.
    let start = "Acct-Status-Type=Start,User-Name=020000000042,Acct-Session-Id=psk-1,\
                 Calling-Station-Id=02-00-00-00-00-42";
    assert_eq!(r.acct(start).code.as_deref(), Some("Accounting-Response"));
    let t = std::time::Instant::now();
    r.env.run(&["passphrase", "revoke", &id]).ok();
    nas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = nas.recv_from(&mut buf).expect("a Disconnect-Request");
    let p = frontdesk_radius::packet::Packet::decode(&buf[..n]).unwrap();
    assert_eq!(
        p.get_string(frontdesk_radius::attr::ACCT_SESSION_ID)
            .as_deref(),
        Some("psk-1")
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    disconnect_ack(&nas, &p, from);
    let a = r.auth(mab);
    assert_eq!(a.code.as_deref(), Some("Access-Reject"), "{}", a.out);
    let audit = r.env.run(&["audit", "--json"]).ok().stdout;
    assert!(
        audit.contains("passphrase.revoke") && !audit.contains(&secret),
        "{audit}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
