//! 802.1X end to end: `frontdesk serve` on loopback, driven by `eapol_test` (wpa_supplicant's
//! RADIUS test client, the real peer). Every success must also show "MPPE keys OK: 1
//! mismatch: 0": eapol_test compares the MS-MPPE keys in the Access-Accept with the MSK it
//! derived itself.

mod common;
use common::{require_tool, Db, Env, Server};
use frontdesk_radius::attr;
use frontdesk_radius::packet::{encode_request, Code, Packet};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "testing123";

struct Lab {
    env: Env,
    server: Server,
    auth: u16,
    ca: std::path::PathBuf,
}

impl Lab {
    /// UTC site, NAS 127.0.0.1, a team "Acme" on VLAN 77.
    async fn start() -> Option<Lab> {
        if !require_tool("eapol_test", "eapoltest") {
            return None;
        }
        let env = Env::new(Db::Sqlite).await.unwrap();
        env.init_lab(SECRET);
        env.run(&["team", "add", "--name", "Acme", "--vlan", "77"])
            .ok();
        let pem = env.run(&["cert", "show", "--ca-pem"]).ok();
        let ca = env.path("ca.pem");
        std::fs::write(&ca, pem.stdout.as_bytes()).unwrap();
        // PEAP and TTLS offer TLS 1.3 (RFC 9427) besides 1.2; peers choose.
        let cfg = env.path("frontdesk.toml");
        std::fs::write(&cfg, "[eap]\npeap_tls13 = true\nttls_tls13 = true\n").unwrap();
        let mut cmd = env.cmd();
        cmd.arg("--config").arg(&cfg).arg("serve");
        common::listen_args(&mut cmd, "127.0.0.1:0");
        let server = Server::start(cmd);
        let (auth, _) = server.radius_ports();
        Some(Lab {
            env,
            server,
            auth,
            ca,
        })
    }

    fn member(&self, email: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "member",
            "add",
            "--name",
            "T",
            "--email",
            email,
            "--plan",
            "full-time",
            "--json",
        ];
        args.extend(extra);
        let j = self.env.run(&args).ok().json();
        std::thread::sleep(Duration::from_millis(700)); // serve picks the change up
        j["wifi_password"].as_str().unwrap().to_string()
    }

    /// Runs eapol_test with this network block body; (succeeded, output).
    fn eapol(&self, name: &str, network: &str, extra: &[&str]) -> (bool, String) {
        let conf = self.env.path(&format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "network={{\n key_mgmt=WPA-EAP\n ca_cert=\"{}\"\n domain_match=\"radius.frontdesk.lan\"\n{network}\n}}\n",
                self.ca.display()
            ),
        )
        .unwrap();
        let out = Command::new("eapol_test")
            .args([
                "-c",
                conf.to_str().unwrap(),
                "-a",
                "127.0.0.1",
                "-p",
                &self.auth.to_string(),
                "-s",
                SECRET,
                "-r",
                "0",
                "-t",
                "10",
            ])
            .args(extra)
            .output()
            .expect("eapol_test");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let ok = out.status.success() && text.lines().last() == Some("SUCCESS");
        (ok, text)
    }

    fn expect_success(&self, name: &str, network: &str, extra: &[&str]) -> String {
        let (ok, out) = self.eapol(name, network, extra);
        let tail: Vec<&str> = out.lines().rev().take(40).collect();
        assert!(
            ok,
            "{name}: eapol_test failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        assert!(
            out.contains("MPPE keys OK: 1  mismatch: 0"),
            "{name}: MPPE keys not verified"
        );
        out
    }
}

fn peap(user: &str, password: &str) -> String {
    format!(" eap=PEAP\n identity=\"{user}\"\n anonymous_identity=\"anonymous\"\n password=\"{password}\"\n phase2=\"auth=MSCHAPV2\"")
}

fn ttls(user: &str, password: &str, inner: &str) -> String {
    format!(" eap=TTLS\n identity=\"{user}\"\n anonymous_identity=\"anonymous@lab\"\n password=\"{password}\"\n phase2=\"auth={inner}\"")
}

/// The VLAN eapol_test printed for the Access-Accept (Tunnel-Private-Group-Id, attribute 81).
fn vlan(out: &str) -> Option<String> {
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.contains("Attribute 81 (Tunnel-Private-Group-Id)") {
            let v = lines.next()?.trim().strip_prefix("Value: ")?.to_string();
            return String::from_utf8(hex::decode(v).ok()?).ok();
        }
    }
    None
}

#[tokio::test]
async fn peap_and_ttls_logins_succeed_with_verified_keys_and_the_inner_identity_decides() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let pw = lab.member("ada@example.com", &[]);
    let out = lab.expect_success("peap", &peap("ada@example.com", &pw), &[]);
    assert_eq!(vlan(&out).as_deref(), Some("10"), "full-time VLAN");
    lab.expect_success("ttls-pap", &ttls("ada@example.com", &pw, "PAP"), &[]);
    lab.expect_success(
        "ttls-mschapv2",
        &ttls("ada@example.com", &pw, "MSCHAPV2"),
        &[],
    );

    // Outer identity anonymous, inner identity a team member: the team VLAN.
    let tim = lab.member("tim@acme.example", &["--team", "Acme"]);
    let out = lab.expect_success("peap-team", &peap("tim@acme.example", &tim), &[]);
    assert_eq!(
        vlan(&out).as_deref(),
        Some("77"),
        "team VLAN from the inner identity"
    );

    // TLS 1.3 inside PEAP and TTLS (RFC 9427 keys: eapol_test checks the MPPE keys).
    let tls13 = "\n phase1=\"tls_disable_tlsv1_3=0 tls_disable_tlsv1_2=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_0=1\"";
    for (name, net) in [
        ("peap-tls13", peap("ada@example.com", &pw)),
        ("ttls-pap-tls13", ttls("ada@example.com", &pw, "PAP")),
        (
            "ttls-mschapv2-tls13",
            ttls("ada@example.com", &pw, "MSCHAPV2"),
        ),
    ] {
        let out = lab.expect_success(name, &format!("{net}{tls13}"), &[]);
        assert!(
            out.contains("Using TLS version TLSv1.3"),
            "{name}: not TLS 1.3"
        );
    }

    // Small fragments both ways: the peer's (fragment_size) and ours (Framed-MTU 300).
    lab.expect_success(
        "peap-fragments",
        &format!("{}\n fragment_size=200", peap("ada@example.com", &pw)),
        &["-N12:d:300"],
    );

    let log = lab
        .env
        .run(&["explain", "--user", "ada@example.com", "--json"])
        .ok()
        .json();
    let methods: Vec<String> = log["recent_logins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["method"].as_str().unwrap_or("").to_string())
        .collect();
    for m in ["peap-mschapv2", "ttls-pap", "ttls-mschapv2"] {
        assert!(
            methods.iter().any(|x| x == m),
            "{m} in the auth log: {methods:?}"
        );
    }
}

#[tokio::test]
async fn wrong_password_suspended_member_and_unknown_user_fail() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let pw = lab.member("ada@example.com", &[]);
    for (name, net) in [
        ("peap-wrong", peap("ada@example.com", "not-the-password")),
        (
            "ttls-pap-wrong",
            ttls("ada@example.com", "not-the-password", "PAP"),
        ),
        (
            "ttls-mschap-wrong",
            ttls("ada@example.com", "not-the-password", "MSCHAPV2"),
        ),
        ("peap-unknown", peap("nobody@example.com", &pw)),
    ] {
        let (ok, out) = lab.eapol(name, &net, &[]);
        assert!(!ok, "{name} must fail");
        assert!(
            out.contains("Access-Reject") || out.contains("code=3"),
            "{name}: rejected"
        );
    }
    // Right password, but the member is suspended: decide() has the last word.
    let grace = lab.member("grace@example.com", &[]);
    lab.expect_success("peap-before", &peap("grace@example.com", &grace), &[]);
    lab.env
        .run(&["member", "suspend", "grace@example.com"])
        .ok();
    std::thread::sleep(Duration::from_millis(700));
    let (ok, _) = lab.eapol("peap-suspended", &peap("grace@example.com", &grace), &[]);
    assert!(!ok, "a suspended member's PEAP login must fail");
}

/// Sends one signed Access-Request carrying `eap` (and `state`); the answer's code, if any.
fn raw_eap(sock: &std::net::UdpSocket, id: u8, eap: &[u8], state: Option<&[u8]>) -> Option<u8> {
    let mut p = Packet::new(Code::AccessRequest, id, rand::random());
    p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
    p.add(attr::USER_NAME, b"flood".to_vec());
    p.add(attr::EAP_MESSAGE, eap.to_vec());
    if let Some(s) = state {
        p.add(attr::STATE, s.to_vec());
    }
    sock.send(&encode_request(&p, SECRET.as_bytes()).unwrap())
        .unwrap();
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf).ok().map(|_| buf[0])
}

#[tokio::test]
async fn garbled_eap_unknown_state_and_a_flood_of_half_open_conversations() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let pw = lab.member("ada@example.com", &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", lab.auth)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let identity = [2u8, 7, 0, 10, 1, b'f', b'l', b'o', b'o', b'd'];
    // Garbled: length beyond the data, too short, a Request instead of a Response.
    for (i, bad) in [&[2u8, 7, 0, 99, 1][..], &[2, 7][..], &[1, 7, 0, 5, 1][..]]
        .iter()
        .enumerate()
    {
        assert_eq!(
            raw_eap(&sock, i as u8, bad, None),
            Some(3),
            "garbled EAP → Access-Reject"
        );
    }
    // A State we never issued (or a replayed one) is rejected, not resumed.
    assert_eq!(raw_eap(&sock, 10, &identity, Some(&[9u8; 16])), Some(3));
    // 10,000 half-open conversations: each gets its Challenge, memory stays bounded (the
    // table keeps at most 4,096), and a real login still succeeds afterwards.
    // Batches of 50 in flight, so neither side's socket buffer overflows.
    let mut buf = [0u8; 4096];
    let mut challenges = 0;
    for batch in 0..200u32 {
        for i in 0..50u32 {
            let mut p = Packet::new(Code::AccessRequest, (batch * 50 + i) as u8, rand::random());
            p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
            p.add(attr::EAP_MESSAGE, identity.to_vec());
            sock.send(&encode_request(&p, SECRET.as_bytes()).unwrap())
                .unwrap();
        }
        for _ in 0..50 {
            match sock.recv(&mut buf) {
                Ok(n) => challenges += usize::from(n > 0 && buf[0] == 11),
                Err(_) => break,
            }
        }
    }
    let nas = lab.env.run(&["nas", "list"]).stdout;
    assert!(
        challenges > 9_000,
        "flood answered with challenges: {challenges}\n{nas}"
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", lab.server.child.id())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kb < 150 * 1024, "RSS after the flood: {rss_kb} kB");
    lab.expect_success("peap-after-flood", &peap("ada@example.com", &pw), &[]);
}

#[tokio::test]
async fn eap_tls_with_an_issued_certificate_over_tls_1_2_and_1_3_until_the_member_is_cancelled() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    lab.member("ada@example.com", &[]);
    let pw_file = lab.env.path("p12-password");
    std::fs::write(&pw_file, "correct horse\n").unwrap();
    let p12 = lab.env.path("ada.p12");
    let issued = lab
        .env
        .run(&[
            "cert",
            "issue",
            "--member",
            "ada@example.com",
            "--out",
            p12.to_str().unwrap(),
            "--password-file",
            pw_file.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(issued["identity"], "ada@example.com");
    assert!(
        issued["password"].is_null(),
        "a given password is not echoed"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p12).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let tls = |versions: &str| {
        format!(
            " eap=TLS\n identity=\"ada@example.com\"\n private_key=\"{}\"\n private_key_passwd=\"correct horse\"\n phase1=\"{versions}\"",
            p12.display()
        )
    };
    let v12 = tls("tls_disable_tlsv1_3=1");
    let v13 = tls(
        "tls_disable_tlsv1_3=0 tls_disable_tlsv1_2=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_0=1",
    );
    let out = lab.expect_success("eap-tls-1.2", &v12, &[]);
    assert!(out.contains("Using TLS version TLSv1.2"));
    assert_eq!(vlan(&out).as_deref(), Some("10"));
    let out = lab.expect_success("eap-tls-1.3", &v13, &[]);
    assert!(out.contains("Using TLS version TLSv1.3"));
    let audit = lab.env.run(&["audit", "--json"]).ok().stdout;
    assert!(
        audit.contains("cert.issue"),
        "issued certificates are audited: {audit}"
    );

    // Cancelling the member makes the certificate useless at once, over either version.
    lab.env.run(&["member", "cancel", "ada@example.com"]).ok();
    std::thread::sleep(Duration::from_millis(700));
    for (name, net) in [
        ("eap-tls-cancelled-1.2", &v12),
        ("eap-tls-cancelled-1.3", &v13),
    ] {
        let (ok, _) = lab.eapol(name, net, &[]);
        assert!(!ok, "{name}: a cancelled member's certificate must fail");
    }
    // An existing file is never replaced.
    let again = lab.env.run(&[
        "cert",
        "issue",
        "--member",
        "ada@example.com",
        "--out",
        p12.to_str().unwrap(),
    ]);
    assert_ne!(again.code, 0);
}

#[tokio::test]
async fn apple_profiles_carry_the_ca_the_network_and_for_eap_tls_the_identity() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    if !require_tool("python3", "python3") {
        return;
    }
    lab.member("ada@example.com", &[]);
    // Read back with Python's plistlib: well-formed, and the payloads iOS needs.
    let read = |file: &std::path::Path| -> serde_json::Value {
        let script = [
            "import json, plistlib, sys",
            "def conv(o):",
            "    if isinstance(o, bytes): return {'bytes': len(o)}",
            "    if isinstance(o, dict): return {k: conv(v) for k, v in o.items()}",
            "    if isinstance(o, list): return [conv(v) for v in o]",
            "    return o",
            "print(json.dumps(conv(plistlib.load(open(sys.argv[1], 'rb')))))",
        ]
        .join("\n");
        let out = Command::new("python3")
            .args(["-c", &script, file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Writes a profile; the command's JSON, the profile as read back, and its payload types.
    let profile = |name: &str, ssid: &str, extra: &[&str]| {
        let file = lab.env.path(name);
        let mut args = vec![
            "cert",
            "profile",
            "--member",
            "ada@example.com",
            "--ssid",
            ssid,
        ];
        args.extend(extra);
        args.extend(["--out", file.to_str().unwrap(), "--json"]);
        let r = lab.env.run(&args).ok().json();
        let p = read(&file);
        let types: Vec<String> = p["PayloadContent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["PayloadType"].as_str().unwrap().to_string())
            .collect();
        (r, p, types, file)
    };
    let (r, p, types, _) = profile("peap.mobileconfig", "Cowork & Co", &[]);
    assert!(r["password"].is_null(), "a PEAP profile holds no secret");
    assert_eq!(p["PayloadType"], "Configuration");
    let payloads = p["PayloadContent"].as_array().unwrap();
    assert_eq!(types, ["com.apple.security.root", "com.apple.wifi.managed"]);
    let ca_uuid = payloads[0]["PayloadUUID"].clone();
    assert!(
        payloads[0]["PayloadContent"]["bytes"].as_u64().unwrap() > 300,
        "CA DER"
    );
    let wifi = &payloads[1];
    assert_eq!(wifi["SSID_STR"], "Cowork & Co");
    let eap = &wifi["EAPClientConfiguration"];
    assert_eq!(eap["AcceptEAPTypes"], serde_json::json!([25]));
    assert_eq!(eap["UserName"], "ada@example.com");
    assert_eq!(
        eap["TLSTrustedServerNames"],
        serde_json::json!(["radius.frontdesk.lan"])
    );
    assert_eq!(
        eap["PayloadCertificateAnchorUUID"],
        serde_json::json!([ca_uuid])
    );

    let (r, p, types, tls) = profile("tls.mobileconfig", "Cowork", &["--eap", "tls"]);
    assert!(
        !r["password"].as_str().unwrap().is_empty(),
        "the PKCS#12 password is printed"
    );
    let payloads = p["PayloadContent"].as_array().unwrap();
    assert_eq!(
        types,
        [
            "com.apple.security.root",
            "com.apple.security.pkcs12",
            "com.apple.wifi.managed"
        ]
    );
    assert_eq!(
        payloads[2]["EAPClientConfiguration"]["AcceptEAPTypes"],
        serde_json::json!([13])
    );
    assert_eq!(
        payloads[2]["PayloadCertificateUUID"],
        payloads[1]["PayloadUUID"]
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&tls).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // An existing file is not replaced.
    let again = lab.env.run(&[
        "cert",
        "profile",
        "--member",
        "ada@example.com",
        "--ssid",
        "X",
        "--out",
        tls.to_str().unwrap(),
    ]);
    assert_ne!(again.code, 0);
}
