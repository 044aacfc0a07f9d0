//! The CLI contract (SPEC §7) through the real binary, on SQLite and PostgreSQL.

mod common;
use common::{Db, Env};

/// `explain --json` for a user at an instant.
fn explain(env: &Env, user: &str, at: &str) -> serde_json::Value {
    env.run(&["explain", "--user", user, "--at", at, "--json"])
        .ok()
        .json()
}

async fn setup(env: &Env) -> serde_json::Value {
    env.run(&["init", "--site", "Berlin", "--timezone", "Europe/Berlin"])
        .ok();
    env.run(&[
        "member",
        "add",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
        "--plan",
        "flex",
        // Fixed start, so the fixed instants below stay inside the membership on any day.
        "--from",
        "2026-11-01",
        "--json",
    ])
    .ok()
    .json()
}

/// 10:00 site time (Berlin) on today's date or the next weekday: CSV imports start "today", so
/// a fixed date would fall before the membership once that day has passed.
fn next_weekday_10am_berlin() -> String {
    use chrono::{Datelike, Weekday};
    let mut day = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap();
    }
    format!("{day}T10:00")
}

async fn init_add_explain(env: &Env) {
    let added = setup(env).await;
    for field in ["id", "wifi_username", "wifi_password"] {
        assert!(
            added[field].is_string(),
            "member add --json lacks {field}: {added}"
        );
    }
    assert_eq!(added["wifi_username"], "ada@example.com");
    assert_eq!(added["wifi_password"].as_str().unwrap().len(), 14);

    // 10:00 Berlin on a Friday: allowed until 19:00 local (18:00Z).
    let at10 = explain(env, "ada@example.com", "2026-11-27T10:00:00+01:00");
    assert_eq!(at10["allowed"], true);
    assert_eq!(at10["reason"], "ok");
    assert_eq!(at10["vlan"], 20);
    assert_eq!(at10["valid_until"], "2026-11-27T18:00:00Z");
    // 23:00 local: outside hours, no VLAN, no valid_until.
    let at23 = explain(env, "ADA@example.com", "2026-11-27T23:00");
    assert_eq!(at23["allowed"], false);
    assert_eq!(at23["reason"], "outside-hours");
    assert_eq!(at23["vlan"], serde_json::Value::Null);
    assert_eq!(at23["valid_until"], serde_json::Value::Null);
    // Text output shows local time and UTC.
    let text = env
        .run(&[
            "explain",
            "--user",
            added["id"].as_str().unwrap(),
            "--at",
            "2026-11-27T10:00",
        ])
        .ok();
    assert!(text.stdout.contains("allowed:     yes"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("2026-11-27 19:00:00 CET (2026-11-27T18:00:00Z)"),
        "{}",
        text.stdout
    );

    // Resolution by Wi-Fi username, MAC and voucher code.
    env.run(&[
        "device",
        "add",
        "--member",
        "ada@example.com",
        "--mac",
        "AA-BB-CC-00-00-01",
        "--name",
        "printer",
    ])
    .ok();
    let dev = explain(env, "aabb.cc00.0001", "2026-11-28T03:00");
    assert_eq!(
        (dev["allowed"].clone(), dev["vlan"].clone()),
        (true.into(), 40.into())
    );
    let v = env
        .run(&["voucher", "create", "--valid", "2h", "--json"])
        .ok()
        .json();
    let code = v[0]["code"].as_str().unwrap().to_lowercase();
    let vj = explain(env, &code, "2026-11-27T18:30");
    assert_eq!(vj["valid_until"], "2026-11-27T18:00:00Z");
    assert_eq!(vj["vlan"], 30);

    // Suspension shows immediately.
    env.run(&["member", "suspend", "ada@example.com"]).ok();
    let s = explain(env, "ada@example.com", "2026-11-27T10:00");
    assert_eq!(s["reason"], "suspended");
    env.run(&["member", "resume", "ada@example.com"]).ok();
    env.run(&["member", "cancel", "ada@example.com"]).ok();
    let c = explain(env, "aa:bb:cc:00:00:01", "2026-11-28T03:00");
    assert_eq!(
        c["reason"], "cancelled",
        "a cancelled member's printer goes too"
    );
}
both_databases!(explain, init_add_explain);

/// Each bad input: exit 1, one line on stderr naming the problem, database unchanged.
async fn bad_input(env: &Env) {
    setup(env).await;
    env.run(&["team", "add", "--name", "Acme", "--vlan", "101"])
        .ok();
    std::fs::write(
        env.path("bad.csv"),
        "name,email,plan\nA,a@example.com,flex\nB,b@example.com,gold\n",
    )
    .unwrap();
    std::fs::write(
        env.path("badcol.csv"),
        "name,email,plan,colour\nA,a@example.com,flex,red\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "b@example.com",
                "--plan",
                "gold",
            ],
            "plan \"gold\"",
        ),
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "b@@example",
                "--plan",
                "flex",
            ],
            "malformed email",
        ),
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "ADA@example.com",
                "--plan",
                "flex",
            ],
            "already exists",
        ),
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "b@example.com",
                "--plan",
                "flex",
                "--until",
                "31.01.2027",
            ],
            "malformed date",
        ),
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "b@example.com",
                "--plan",
                "flex",
                "--team",
                "Nope",
            ],
            "team \"Nope\"",
        ),
        (
            vec![
                "member",
                "add",
                "--name",
                "B",
                "--email",
                "b@example.com",
                "--plan",
                "flex",
                "--from",
                "2027-02-01",
                "--until",
                "2027-01-01",
            ],
            "before valid from",
        ),
        (
            vec!["device", "add", "--mac", "aa:bb:cc:dd:ee", "--name", "x"],
            "malformed MAC",
        ),
        (
            vec![
                "nas",
                "add",
                "--name",
                "ap",
                "--address",
                "10.0.0.0/33",
                "--secret",
                "testing123",
            ],
            "malformed address or CIDR",
        ),
        (
            vec![
                "nas",
                "add",
                "--name",
                "ap",
                "--address",
                "10.0.0.1",
                "--secret",
                "testing123",
                "--vendor",
                "acme",
            ],
            "unknown vendor",
        ),
        (
            vec![
                "nas",
                "add",
                "--name",
                "ap",
                "--address",
                "10.0.0.1",
                "--secret",
                "short",
            ],
            "too short",
        ),
        (
            vec!["team", "add", "--name", "Big", "--vlan", "5000"],
            "out of range",
        ),
        (
            vec!["team", "add", "--name", "Acme", "--vlan", "102"],
            "already exists",
        ),
        (
            vec![
                "plan",
                "add",
                "--name",
                "night",
                "--vlan",
                "50",
                "--wifi",
                "mon 25:00-26:00",
            ],
            "malformed time",
        ),
        (
            vec![
                "site", "hours", "--days", "funday", "--open", "08:00", "--close", "19:00",
            ],
            "unknown day",
        ),
        (
            vec![
                "site",
                "closure",
                "add",
                "--from",
                "2026-12-24",
                "--to",
                "2026-12-20",
            ],
            "before it starts",
        ),
        (
            vec!["explain", "--user", "ada@example.com", "--at", "tomorrow"],
            "--at: malformed time",
        ),
        (
            vec!["explain", "--user", "nobody@example.com"],
            "no member, device or voucher",
        ),
        (vec!["member", "suspend", "nobody@example.com"], "not found"),
        (vec!["voucher", "create", "--valid", "forever"], "--valid"),
        (
            vec!["member", "import", "--csv", "bad.csv"],
            "line 3: unknown plan",
        ),
        (
            vec!["member", "import", "--csv", "badcol.csv"],
            "unknown column \"colour\"",
        ),
        (
            vec!["admin", "add", "--email", "boss", "--role", "owner"],
            "malformed email",
        ),
        (
            vec![
                "admin",
                "add",
                "--email",
                "boss@example.com",
                "--role",
                "king",
            ],
            "unknown role",
        ),
        (
            vec!["init", "--site", "Again", "--timezone", "Europe/Berlin"],
            "already initialised",
        ),
        (
            vec!["init", "--site", "Again", "--timezone", "Mars/Olympus"],
            "unknown time zone",
        ),
    ];
    let before = env.dump().await;
    for (args, expected) in &cases {
        let r = env.run(args);
        assert_eq!(
            r.code, 1,
            "{args:?} should fail with 1, got {}: {}{}",
            r.code, r.stdout, r.stderr
        );
        assert_eq!(
            r.stderr.lines().count(),
            1,
            "{args:?}: one line on stderr, got {:?}",
            r.stderr
        );
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {:?}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?} printed {:?}", r.stdout);
        // --json keeps errors as one plain line on stderr too.
        let mut with_json = args.clone();
        with_json.push("--json");
        let rj = env.run(&with_json);
        assert_eq!(
            (rj.code, rj.stderr.lines().count()),
            (1, 1),
            "{with_json:?}: {}",
            rj.stderr
        );
    }
    assert_eq!(
        env.dump().await,
        before,
        "a failed command changed the database"
    );
    // Usage errors exit 2.
    assert_eq!(env.run(&["member", "add", "--name", "x"]).code, 2);
}
both_databases!(bad_inputs, bad_input);

#[tokio::test]
async fn commands_on_a_missing_database_fail_and_create_nothing() {
    let env = Env::new(Db::Sqlite).await.unwrap();
    for args in [
        vec!["member", "list"],
        vec!["explain", "--user", "x"],
        vec!["nas", "list"],
        vec!["backup", "b.fdb"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stderr.contains("does not exist") && r.stderr.contains("frontdesk init"),
            "{}",
            r.stderr
        );
    }
    // A failed init (bad zone) leaves nothing behind either.
    assert_eq!(
        env.run(&["init", "--site", "X", "--timezone", "Nowhere/City"])
            .code,
        1
    );
    let left: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files created: {left:?}");
}

#[tokio::test]
async fn config_file_typos_are_rejected_with_their_path() {
    let env = Env::new(Db::Sqlite).await.unwrap();
    std::fs::write(env.path("f.toml"), "[radius]\nmax_sesion = \"2h\"\n").unwrap();
    let r = env.run(&[
        "--config",
        env.path("f.toml").to_str().unwrap(),
        "member",
        "list",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("unknown key radius.max_sesion"),
        "{}",
        r.stderr
    );
}

async fn import_export(env: &Env) {
    setup(env).await;
    env.run(&["team", "add", "--name", "Acme", "--vlan", "101"])
        .ok();
    let mut csv = String::from("name,email,plan,team,valid_until,wifi_username,wifi_password\n");
    for i in 0..300 {
        let team = if i % 3 == 0 { "Acme" } else { "" };
        csv.push_str(&format!(
            "Member {i},m{i}@example.com,full-time,{team},2027-06-30,,\n"
        ));
    }
    csv.push_str("Given,given@example.com,flex,,,given-user,given-password-1\n");
    std::fs::write(env.path("in.csv"), &csv).unwrap();
    let s = env
        .run(&["member", "import", "--csv", "in.csv", "--json"])
        .ok()
        .json();
    assert_eq!(s["created"], 301);
    let again = env
        .run(&["member", "import", "--csv", "in.csv", "--json"])
        .ok()
        .json();
    assert_eq!(
        (again["created"].clone(), again["unchanged"].clone()),
        (0.into(), 301.into())
    );
    let listed = env
        .run(&["member", "list", "--team", "Acme", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 100);
    let g = explain(env, "given-user", &next_weekday_10am_berlin());
    assert_eq!(g["allowed"], true);

    env.run(&["member", "export", "--csv", "out.csv", "--with-secrets"])
        .ok();
    let out = std::fs::read_to_string(env.path("out.csv")).unwrap();
    assert!(out.starts_with("name,email,plan,team,valid_until,wifi_username,wifi_password\n"));
    assert!(
        out.contains("Given,given@example.com,flex,,,given-user,given-password-1\n"),
        "{out}"
    );
    assert!(out.contains("Member 3,m3@example.com,full-time,Acme,2027-06-30,m3@example.com,"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(env.path("out.csv"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    env.run(&["member", "export", "--csv", "plain.csv"]).ok();
    assert!(!std::fs::read_to_string(env.path("plain.csv"))
        .unwrap()
        .contains("given-password-1"));
}
both_databases!(csv, import_export);

#[tokio::test]
async fn backup_restores_on_a_new_machine_with_logins_working() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(Db::Sqlite).await.unwrap();
    let added = setup(&env).await;
    std::fs::write(env.path("pass"), "correct horse battery\n").unwrap();
    env.run(&["backup", "b.fdb", "--passphrase-file", "pass"])
        .ok();
    let b = env.path("b.fdb");
    assert_eq!(
        std::fs::metadata(&b).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(env.run(&["backup", "b.fdb"]).stderr.contains("--force"));

    // "New machine": another directory, no key file.
    let other = Env::new(Db::Sqlite).await.unwrap();
    let b = b.to_str().unwrap();
    let r = other.run(&["restore", b]);
    assert!(
        r.stderr.contains("encrypted: give --passphrase-file"),
        "{}",
        r.stderr
    );
    std::fs::write(other.path("wrong"), "nope").unwrap();
    assert!(other
        .run(&["restore", b, "--passphrase-file", "wrong"])
        .stderr
        .contains("wrong passphrase"));
    std::fs::write(other.path("pass"), "correct horse battery").unwrap();
    let r = other
        .run(&["restore", b, "--passphrase-file", "pass", "--json"])
        .ok()
        .json();
    assert_eq!(r["members"], 1);
    other
        .run(&["member", "export", "--csv", "x.csv", "--with-secrets"])
        .ok();
    let x = std::fs::read_to_string(other.path("x.csv")).unwrap();
    assert!(
        x.contains(added["wifi_password"].as_str().unwrap()),
        "password recoverable after restore"
    );
    let e = other
        .run(&[
            "explain",
            "--user",
            "ada@example.com",
            "--at",
            "2026-11-27T10:00",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(e["allowed"], true);
    // Restoring over an existing database needs --force.
    assert!(other
        .run(&["restore", b, "--passphrase-file", "pass"])
        .stderr
        .contains("--force"));
    // A plain backup restores without a passphrase.
    env.run(&["backup", "plain.fdb"]).ok();
    let third = Env::new(Db::Sqlite).await.unwrap();
    third
        .run(&["restore", env.path("plain.fdb").to_str().unwrap()])
        .ok();
}

#[tokio::test]
async fn postgres_backup_points_to_pg_dump() {
    let Some(env) = Env::new(Db::Postgres).await else {
        return;
    };
    setup(&env).await;
    let r = env.run(&["backup", "b.fdb"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("pg_dump"), "{}", r.stderr);
    env.cleanup().await;
}

/// `passphrase issue|list|revoke`: the secret is printed once with the `WIFI:` string for a
/// QR code, never listed; revoked ones only with `--all`.
async fn passphrases(env: &Env) {
    env.run(&["init", "--site", "Lab", "--timezone", "UTC"])
        .ok();
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
    env.run(&["team", "add", "--name", "Acme", "--vlan", "101"])
        .ok();
    let p = env
        .run(&[
            "--json",
            "passphrase",
            "issue",
            "--member",
            "ada@example.com",
            "--ssid",
            "Devices",
            "--devices",
            "3",
        ])
        .ok()
        .json();
    let secret = p["passphrase"].as_str().unwrap().to_string();
    assert_eq!(p["wifi_qr"], format!("WIFI:T:WPA;S:Devices;P:{secret};;"));
    let t = env
        .run(&[
            "passphrase",
            "issue",
            "--team",
            "acme",
            "--ssid",
            "Devices",
            "--until",
            "2030-01-31",
        ])
        .ok();
    assert!(t.stdout.contains("WIFI:T:WPA;S:Devices;P:"), "{}", t.stdout);
    let list = env.run(&["passphrase", "list"]).ok();
    assert!(
        list.stdout.contains("ada@example.com") && list.stdout.contains("Acme"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(&secret), "never listed");
    let json = env.run(&["--json", "passphrase", "list"]).ok().stdout;
    assert!(!json.contains(&secret), "never listed: {json}");
    let id = p["id"].as_i64().unwrap().to_string();
    env.run(&["passphrase", "revoke", &id]).ok();
    assert_eq!(
        env.run(&["--json", "passphrase", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.run(&["--json", "passphrase", "list", "--all"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let again = env.run(&["passphrase", "revoke", &id]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already revoked"), "{}", again.stderr);
    let bad = env.run(&[
        "passphrase",
        "issue",
        "--team",
        "nobody",
        "--ssid",
        "Devices",
    ]);
    assert!(bad.stderr.contains("no team"), "{}", bad.stderr);
    assert_eq!(
        env.run(&["passphrase", "issue", "--ssid", "Devices"]).code,
        2,
        "--member or --team is required"
    );
}
both_databases!(passphrase_cli, passphrases);
