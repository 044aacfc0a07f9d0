//! The rendered ruleset: golden files (UPDATE_GOLDEN=1 rewrites them) and, as root, `nft -c`
//! accepting them in a throwaway network namespace.

use frontdesk_core::mac::MacAddr;
use frontdesk_firewall::ruleset::{self, Allow, Gateway, Network, Role, State};
use std::path::PathBuf;

fn lab() -> Gateway {
    let net = |name: &str, iface: &str, role| Network {
        name: name.into(),
        iface: iface.into(),
        role,
    };
    Gateway {
        wan: "eth0".into(),
        networks: vec![
            net("guest", "vlan30", Role::Portal),
            net("day-pass", "vlan31", Role::Portal),
            net("flex", "vlan20", Role::Members),
            net("full-time", "vlan10", Role::Members),
            net("team:acme", "vlan101", Role::Members),
            net("team:globex", "vlan102", Role::Members),
            net("iot", "vlan40", Role::Iot),
        ],
        portal_port: 8081,
        portal_tls_port: Some(8443),
        dns_port: 53,
        dns_rate: 20,
        iot_allow: vec![
            "192.168.1.10 tcp 631".parse::<Allow>().unwrap(),
            "203.0.113.0/24 udp 123".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ],
        masquerade: true,
    }
}

fn state() -> State {
    let mac = |s: &str| s.parse::<MacAddr>().unwrap();
    State {
        authorized: vec![
            (mac("02:00:00:00:00:02"), 600),
            (mac("02:00:00:00:00:01"), 3600),
            (mac("02:00:00:00:00:03"), 0),
        ],
        blocked: vec![mac("02:00:00:00:0b:01")],
        closed: vec!["vlan20".into()],
    }
}

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    if want != text {
        let at = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the rendering at line {} (UPDATE_GOLDEN=1 rewrites it after review):\n{}",
            path.display(),
            at + 1,
            text
        );
    }
}

#[test]
fn full_lab_ruleset() {
    let gw = lab();
    gw.validate().unwrap();
    golden("lab.nft", &ruleset::render(&gw, &state()));
}

#[test]
fn empty_state_and_no_portal_network() {
    let mut gw = lab();
    gw.networks.retain(|n| n.role == Role::Members);
    gw.iot_allow.clear();
    gw.portal_tls_port = None;
    gw.masquerade = false;
    golden("members-only.nft", &ruleset::render(&gw, &State::default()));
}

#[test]
fn rendering_is_deterministic_whatever_the_order() {
    let gw = lab();
    let mut s = state();
    let a = ruleset::render(&gw, &s);
    s.authorized.reverse();
    s.blocked.push(s.blocked[0]);
    assert_eq!(a, ruleset::render(&gw, &s));
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let mut gw = lab();
    gw.networks[1].iface = "vlan30".into();
    assert!(gw
        .validate()
        .unwrap_err()
        .contains("vlan30 is given to two tiers"));
    let mut gw = lab();
    gw.networks[0].iface = "vlan30\"; flush ruleset".into();
    assert!(gw
        .validate()
        .unwrap_err()
        .contains("gateway.interfaces.guest"));
    let mut gw = lab();
    gw.networks[2].iface = "eth0".into();
    assert!(gw.validate().unwrap_err().contains("WAN"));
    for bad in [
        "",
        "10.0.0.1 tcp",
        "10.0.0.1/33",
        "10.0.0.1 icmp 1",
        "x tcp 1",
        "10.0.0.1 tcp 0",
        "1.2.3.4 tcp 1 2",
    ] {
        assert!(bad.parse::<Allow>().is_err(), "{bad:?} accepted");
    }
}

/// `nft -c` checks syntax and kernel support without changing anything; run in a new network
/// namespace so the interface names need not exist here.
#[test]
fn nft_accepts_the_rendering() {
    if !is_root() {
        eprintln!(
            "SKIPPED nft_accepts_the_rendering: needs root (nft talks to the kernel); runs in CI"
        );
        return;
    }
    let Some(nft) = frontdesk_firewall::apply::find_program("nft") else {
        panic!("nft is not installed (apt-get install nftables)");
    };
    for text in [
        ruleset::render(&lab(), &state()),
        ruleset::render(&lab(), &State::default()),
    ] {
        let out = std::process::Command::new("unshare")
            .args(["--net", "--"])
            .arg(&nft)
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "nft -c refused:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
