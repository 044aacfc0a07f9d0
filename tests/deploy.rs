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
    assert!(
        v.status.success() && v.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&v.stderr)
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
