//! The systemd unit in deploy/: `systemd-analyze verify` accepts it, and
//! `systemd-analyze security --offline` scores it 2.0 or better ("OK"), also with the
//! radius-only drop-in. No systemd needs to run: both read the unit file.

mod common;
use common::BIN;
use std::process::Command;

fn exposure(unit: &std::path::Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score: {text}"));
    eprintln!("{}: {line}", unit.display());
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    line.split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

#[test]
fn systemd_unit_verifies_and_scores_ok() {
    if !common::require_tool("systemd-analyze", "systemd") {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/deploy/frontdesk.service"))
        .unwrap()
        .replace("/usr/bin/frontdesk", BIN);
    let dir = std::env::temp_dir().join(format!("fd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frontdesk.service");
    std::fs::write(&path, &unit).unwrap();
    let v = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    // Only our unit's findings count: verify also loads other installed units and reports
    // theirs (e.g. Debian's freeradius.service "uses MemoryLimit=" once FreeRADIUS is installed
    // for the benchmark).
    let stderr = String::from_utf8_lossy(&v.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("/lib/systemd/")
                && !l.starts_with("/usr/lib/systemd/")
                && !l.starts_with("/etc/systemd/")
        })
        .collect();
    assert!(
        v.status.success() && ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    let gateway = exposure(&path);
    // The radius-only drop-in, applied as systemd would (a later [Service] section).
    let drop_in = std::fs::read_to_string(format!("{root}/deploy/radius-only.conf")).unwrap();
    let only = dir.join("frontdesk-radius-only.service");
    std::fs::write(&only, format!("{unit}\n{drop_in}")).unwrap();
    let radius_only = exposure(&only);
    assert!(radius_only <= gateway, "{radius_only} > {gateway}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Debian package (cargo-deb, from the binary this test run built): `dpkg -i` creates
/// the user, the state directory and the database, and prints how to go on; `frontdesk serve`
/// then runs as that user with the installed configuration; purge keeps the data. Installs
/// system-wide, so it runs only in CI (root) or with FRONTDESK_TEST_DPKG=1.
#[test]
fn debian_package_installs_and_serves() {
    let wanted = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("FRONTDESK_TEST_DPKG").is_ok_and(|v| v == "1");
    if !wanted {
        eprintln!(
            "SKIPPED: installs a package system-wide; runs in CI or with FRONTDESK_TEST_DPKG=1"
        );
        return;
    }
    if !common::require_root("debian_package_installs_and_serves")
        || !common::require_tool("cargo-deb", "cargo install cargo-deb")
        || !common::require_tool("dpkg", "dpkg")
    {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let deb = std::env::temp_dir().join(format!("frontdesk-test-{}.deb", std::process::id()));
    let built = Command::new("cargo")
        .current_dir(root)
        .args(["deb", "--no-build", "--profile", "dev", "-o"])
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "cargo deb: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let cleanup = || {
        let _ = Command::new("dpkg").args(["--purge", "frontdesk"]).output();
        let _ = std::fs::remove_dir_all("/var/lib/frontdesk");
        let _ = Command::new("userdel").arg("frontdesk").output();
    };
    cleanup();
    let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    let said = String::from_utf8_lossy(&install.stdout).to_string();
    assert!(
        install.status.success(),
        "dpkg -i: {said}{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(said.contains("Console: http://127.0.0.1:8080"), "{said}");
    assert!(said.contains("created the database"), "{said}");
    assert!(std::path::Path::new("/var/lib/frontdesk/frontdesk.db").exists());
    let id = Command::new("id").arg("frontdesk").output().unwrap();
    assert!(id.status.success(), "the service user exists");
    // The installed binary serves as that user with the installed configuration.
    let number = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "frontdesk"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let mut cmd = Command::new("/usr/bin/frontdesk");
    {
        use std::os::unix::process::CommandExt;
        cmd.uid(number("-u")).gid(number("-g"));
    }
    cmd.env("STATE_DIRECTORY", "/var/lib/frontdesk")
        .env("FRONTDESK_CONFIG", "/etc/frontdesk/frontdesk.toml")
        .arg("serve");
    common::listen_args(&mut cmd, "127.0.0.1:0");
    let server = common::Server::start(cmd);
    let up = server.wait_for(&["following changes"], std::time::Duration::from_secs(30));
    let log = server.drain();
    drop(server);
    assert!(up.is_some(), "serve as the package installed it: {log}");
    let purge = Command::new("dpkg")
        .args(["--purge", "frontdesk"])
        .output()
        .unwrap();
    assert!(purge.status.success());
    assert!(
        std::path::Path::new("/var/lib/frontdesk/frontdesk.db").exists(),
        "purge keeps the members' data"
    );
    assert!(!std::path::Path::new("/usr/bin/frontdesk").exists());
    cleanup();
    let _ = std::fs::remove_file(&deb);
}
