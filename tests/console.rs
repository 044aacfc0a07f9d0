//! The operator console in headless Chromium (as root: browser, chromedriver and `serve` run in
//! a network namespace of their own, so nothing leaves it): an owner logs in with the one-time
//! password, chooses a password, sets up two-factor, finds a member and suspends them; then
//! `explain` says `suspended`. Screenshots of every page, desktop size, go to docs/screenshots
//! with UPDATE_SCREENSHOTS=1.

mod common;

use common::browser::{body_text, in_browser, shot};
use common::netns::Netns;
use common::{require_root, require_tool, Db, Env, Server, BIN};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn owner_logs_in_with_two_factor_and_suspends_a_member() {
    if !require_root("console Chromium e2e (network namespace)")
        || !require_tool("chromedriver", "chromium-driver")
    {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.run(&[
        "init",
        "--site",
        "Console Lab",
        "--timezone",
        "Europe/Berlin",
    ])
    .ok();
    let owner = env
        .run(&[
            "--json",
            "admin",
            "add",
            "--email",
            "owner@example.com",
            "--role",
            "owner",
        ])
        .ok()
        .json();
    let one_time = owner["one_time_password"]
        .as_str()
        .or_else(|| owner["password"].as_str())
        .expect("a one-time password")
        .to_string();
    for (name, email, plan) in [
        ("Ada Lovelace", "ada@example.com", "full-time"),
        ("Grace Hopper", "grace@example.com", "flex"),
        ("Linus Day", "linus@example.com", "day-pass"),
    ] {
        env.run(&[
            "member", "add", "--name", name, "--email", email, "--plan", plan,
        ])
        .ok();
    }
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
    let issued = env
        .run(&[
            "--json",
            "passphrase",
            "issue",
            "--member",
            "grace@example.com",
            "--ssid",
            "Members-PSK",
        ])
        .ok()
        .json();
    let grace_psk_id = issued["id"].as_i64().unwrap();
    let grace_psk = issued["passphrase"].as_str().unwrap().to_string();
    let ns = Netns::new(&format!("fdcon{}", std::process::id()));
    let mut cmd = ns.command(BIN);
    cmd.current_dir(env.dir.path())
        .env("STATE_DIRECTORY", env.dir.path())
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
            "127.0.0.1:0",
        ]);
    let server = Server::start(cmd);
    server
        .wait_for(&["operator console listening"], Duration::from_secs(30))
        .expect("the console listens");
    server
        .wait_for(&["following changes"], Duration::from_secs(30))
        .expect("serve is up");
    // Two members online (accounting from the access point, inside the namespace).
    if require_tool("radclient", "freeradius-utils") {
        for (user, sid, mac) in [
            ("ada@example.com", "a-1", "AA-00-00-00-00-01"),
            ("grace@example.com", "g-1", "AA-00-00-00-00-02"),
        ] {
            let mut rc = ns
                .command("radclient")
                .args([
                    "-x",
                    "-r",
                    "2",
                    "-t",
                    "1",
                    "127.0.0.1:1813",
                    "acct",
                    "testing123",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("radclient");
            std::io::Write::write_all(
                &mut rc.stdin.take().unwrap(),
                format!("Acct-Status-Type=Start,User-Name={user},Acct-Session-Id={sid},Calling-Station-Id={mac}").as_bytes(),
            )
            .unwrap();
            let out = rc.wait_with_output().unwrap();
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("Accounting-Response"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    let outbox = env.dir.path().join("outbox");
    in_browser(&ns, 9520, "127.0.0.1", true, move |c| async move {
        use fantoccini::Locator::{Css, Id};
        c.goto("http://127.0.0.1:8080/").await.unwrap();
        assert_eq!(
            c.current_url().await.unwrap().as_str(),
            "http://127.0.0.1:8080/login"
        );
        shot(&c, "console-1-login").await;
        c.find(Id("email"))
            .await
            .unwrap()
            .send_keys("owner@example.com")
            .await
            .unwrap();
        c.find(Id("password"))
            .await
            .unwrap()
            .send_keys(&one_time)
            .await
            .unwrap();
        c.find(Id("login")).await.unwrap().click().await.unwrap();
        if c.wait().for_element(Id("confirm")).await.is_err() {
            panic!("not logged in: {}", body_text(&c).await);
        }
        assert!(body_text(&c).await.contains("one-time password"));
        shot(&c, "console-2-password").await;
        let new = "a long and private passphrase";
        for (field, value) in [
            ("current", one_time.as_str()),
            ("new", new),
            ("confirm", new),
        ] {
            c.find(Id(field))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        c.find(Id("save")).await.unwrap().click().await.unwrap();
        // Owners set up two-factor before anything else.
        let secret = c.wait().for_element(Id("secret")).await.unwrap();
        assert!(c.find(Css(".qr svg")).await.is_ok(), "QR code shown");
        shot(&c, "console-3-two-factor").await;
        let key = frontdesk_portal::totp::base32_decode(&secret.text().await.unwrap()).unwrap();
        let step = chrono::Utc::now().timestamp() / 30;
        let code = format!("{:06}", frontdesk_portal::totp::hotp(&key, step as u64, 6));
        c.find(Id("code"))
            .await
            .unwrap()
            .send_keys(&code)
            .await
            .unwrap();
        c.find(Id("enable")).await.unwrap().click().await.unwrap();
        if c.wait().for_element(Id("recovery")).await.is_err() {
            panic!("two-factor not enabled: {}", body_text(&c).await);
        }
        shot(&c, "console-4-recovery-codes").await;

        c.goto("http://127.0.0.1:8080/").await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("Wi-Fi sessions online"), "{text}");
        assert!(
            text.contains("full-time") && text.contains("flex"),
            "{text}"
        );
        shot(&c, "console-5-dashboard").await;
        c.goto("http://127.0.0.1:8080/sessions").await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("Online sessions"), "{text}");
        shot(&c, "console-9-sessions").await;
        c.goto("http://127.0.0.1:8080/members?q=grace")
            .await
            .unwrap();
        let text = body_text(&c).await;
        assert!(
            text.contains("Grace Hopper") && !text.contains("Ada Lovelace"),
            "{text}"
        );
        c.goto("http://127.0.0.1:8080/members").await.unwrap();
        shot(&c, "console-6-members").await;
        // A new member through the form, then their credentials on "Reveal".
        c.find(Id("add-member"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Id("name")).await.unwrap();
        for (field, value) in [("name", "Zoe Quinn"), ("email", "zoe@example.com")] {
            c.find(Id(field))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        shot(&c, "console-10-add-member").await;
        c.find(Id("add")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Id("reveal")).await.unwrap();
        assert!(body_text(&c).await.contains("Added."));
        shot(&c, "console-7-member").await;
        c.find(Id("reveal-password"))
            .await
            .unwrap()
            .send_keys(new)
            .await
            .unwrap();
        c.find(Id("reveal")).await.unwrap().click().await.unwrap();
        let shown = c.wait().for_element(Id("wifi-password")).await.unwrap();
        let password = shown.text().await.unwrap();
        assert!(password.len() >= 8, "{password}");
        assert!(c.find(Css(".qr svg")).await.is_ok(), "joining QR code");
        shot(&c, "console-11-credentials").await;
        c.find(fantoccini::Locator::LinkText("Back to the member"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // A private passphrase for her devices: issued on the member page, shown once with
        // the joining QR code, then listed (without the secret).
        c.wait().for_element(Id("issue-passphrase")).await.unwrap();
        for (field, value) in [("psk-ssid", "Members-PSK"), ("psk-devices", "2")] {
            c.find(Id(field))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        c.find(Id("issue-passphrase"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let secret = c
            .wait()
            .for_element(Id("psk-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(secret.len() >= 8, "{secret}");
        assert!(c.find(Css(".qr svg")).await.is_ok(), "WIFI: QR code");
        shot(&c, "console-17-passphrase").await;
        c.find(fantoccini::Locator::LinkText("Back to the member"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Id("suspend")).await.unwrap();
        let text = body_text(&c).await;
        assert!(
            text.contains("Members-PSK") && !text.contains(&secret),
            "{text}"
        );
        c.find(Id("suspend")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Id("resume")).await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("Now suspended"), "{text}");
        shot(&c, "console-8-suspended").await;
        c.goto("http://127.0.0.1:8080/explain?user=zoe%40example.com")
            .await
            .unwrap();
        let reason = c.wait().for_element(Id("reason")).await.unwrap();
        assert_eq!(reason.text().await.unwrap(), "suspended");
        shot(&c, "console-12-explain").await;
        c.goto("http://127.0.0.1:8080/network").await.unwrap();
        assert!(body_text(&c).await.contains("Auth log"));
        shot(&c, "console-13-network").await;
        c.goto("http://127.0.0.1:8080/tokens").await.unwrap();
        c.find(Id("token-name"))
            .await
            .unwrap()
            .send_keys("billing sync")
            .await
            .unwrap();
        c.find(Css("input[value='members:read']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.find(Id("create-token"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let token = c.wait().for_element(Id("new-token")).await.unwrap();
        assert!(token.text().await.unwrap().starts_with("fdk_"));
        shot(&c, "console-14-api-tokens").await;

        c.goto("http://127.0.0.1:8080/vouchers").await.unwrap();
        c.find(Id("make-vouchers"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Css(".voucher")).await.unwrap();
        assert_eq!(c.find_all(Css(".voucher")).await.unwrap().len(), 10);
        shot(&c, "console-15-voucher-cards").await;
        c.goto("http://127.0.0.1:8080/presence").await.unwrap();
        assert!(body_text(&c).await.contains("Who is in the space now"));
        shot(&c, "console-16-who-is-in").await;
        c.goto("http://127.0.0.1:8080/plans").await.unwrap();
        c.wait().for_element(Id("save-hours")).await.unwrap();
        assert!(c.find(Css("svg.week")).await.is_ok(), "week views");
        shot(&c, "console-17-plans-and-hours").await;

        // Phone size: a second, phone-sized browser with the same console session.
        let cookie = c.get_named_cookie("fd_console").await.unwrap();
        let profile = tempfile::tempdir().unwrap();
        let phone = common::browser::browser(9520, profile.path(), false).await;
        phone.goto("http://127.0.0.1:8080/login").await.unwrap();
        phone.add_cookie(cookie).await.unwrap();
        for (path, name) in [
            ("/", "phone-1-dashboard"),
            ("/members", "phone-2-members"),
            ("/members?q=zoe", "phone-3-search"),
            ("/sessions", "phone-4-sessions"),
            ("/explain?user=zoe%40example.com", "phone-5-explain"),
            ("/network", "phone-6-network"),
            ("/vouchers", "phone-7-vouchers"),
            ("/presence", "phone-8-who-is-in"),
            ("/plans", "phone-10-plans-and-hours"),
        ] {
            phone
                .goto(&format!("http://127.0.0.1:8080{path}"))
                .await
                .unwrap();
            let (width, overflow): (i64, bool) = {
                let v = phone
                    .execute(
                        "return [window.innerWidth, document.documentElement.scrollWidth > window.innerWidth + 1]",
                        vec![],
                    )
                    .await
                    .unwrap();
                (v[0].as_i64().unwrap_or(0), v[1].as_bool().unwrap_or(true))
            };
            assert!(width <= 400, "phone-sized: {width}");
            assert!(
                !body_text(&phone).await.contains("Password"),
                "{path}: logged in, not on the login page"
            );
            shot(&phone, name).await;
            // Wide tables scroll inside their card; the page never scrolls sideways.
            assert!(!overflow, "{path} is wider than a phone");
        }
        phone.close().await.unwrap();

        // A member signs in to /me with a link from the outbox, reveals and rotates their
        // Wi-Fi password; the phone-sized browser shows the same page.
        c.goto("http://127.0.0.1:8080/me").await.unwrap();
        c.wait().for_element(Id("send-link")).await.unwrap();
        shot(&c, "me-1-sign-in").await;
        c.find(Id("link-email"))
            .await
            .unwrap()
            .send_keys("grace@example.com")
            .await
            .unwrap();
        c.find(Id("send-link"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let notice = c.wait().for_element(Id("notice")).await.unwrap();
        assert!(notice
            .text()
            .await
            .unwrap()
            .contains("sign-in link is on its way"));
        let link = {
            let mut found = None;
            for _ in 0..100 {
                found = std::fs::read_dir(&outbox).ok().and_then(|d| {
                    d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                        .filter(|m| m.contains("To: grace@example.com"))
                        .find_map(|m| {
                            m.lines()
                                .find(|l| l.starts_with("http://127.0.0.1:8080/me/link/"))
                                .map(|l| l.trim().to_string())
                        })
                });
                if found.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            found.expect("a sign-in link in the outbox")
        };
        c.goto(&link).await.unwrap();
        c.wait().for_element(Id("use-link")).await.unwrap();
        c.find(Id("use-link")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Id("rotate")).await.unwrap();
        let text = body_text(&c).await;
        assert!(
            text.contains("Hello, Grace Hopper") && text.contains("flex"),
            "{text}"
        );
        assert!(c.find(Css("svg.week")).await.is_ok(), "the week's hours");
        shot(&c, "me-2-home").await;
        // Her private passphrase, with the code her TV's phone app scans.
        assert!(text.contains("My private Wi-Fi passphrase"), "{text}");
        c.find(Id(&format!("show-passphrase-{grace_psk_id}")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let shown = c
            .wait()
            .for_element(Id("psk-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(shown, grace_psk);
        assert!(c.find(Css(".qr svg")).await.is_ok(), "WIFI: QR code");
        shot(&c, "me-4-passphrase").await;
        c.goto("http://127.0.0.1:8080/me").await.unwrap();
        c.wait().for_element(Id("rotate")).await.unwrap();
        c.find(Id("reveal")).await.unwrap().click().await.unwrap();
        let old = c
            .wait()
            .for_element(Id("wifi-password"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        c.goto("http://127.0.0.1:8080/me").await.unwrap();
        c.wait().for_element(Id("rotate")).await.unwrap();
        c.find(Id("rotate")).await.unwrap().click().await.unwrap();
        let new = c
            .wait()
            .for_element(Id("wifi-password"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(new.len() >= 8 && new != old, "rotated: {old} -> {new}");
        assert!(body_text(&c).await.contains("old one no longer works"));
        shot(&c, "me-3-new-password").await;
        let member_cookie = c.get_named_cookie("fd_me").await.unwrap();
        let phone = common::browser::browser(9520, profile.path(), false).await;
        phone.goto("http://127.0.0.1:8080/me/login").await.unwrap();
        phone.add_cookie(member_cookie).await.unwrap();
        phone.goto("http://127.0.0.1:8080/me").await.unwrap();
        phone.wait().for_element(Id("rotate")).await.unwrap();
        shot(&phone, "phone-9-member-page").await;
        phone.close().await.unwrap();
        c
    });

    // The CLI sees what the console did.
    let e = env
        .run(&["--json", "explain", "--user", "zoe@example.com"])
        .ok()
        .json();
    assert_eq!(e["reason"], "suspended", "{e}");
    drop(server);
}
