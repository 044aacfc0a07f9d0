//! The JSON API against a real `serve` on loopback: schemathesis (PyPI) generates requests from
//! the served OpenAPI document, with a token holding every scope, and runs all of its checks
//! (no 5xx, responses match the schema, documented status codes and content types, auth
//! enforced, negative data rejected). The handlers' own tests are in portal/tests/api.rs.

mod common;

use common::{require_tool, Db, Env};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_or_schema_violation() {
    if !require_tool("schemathesis", "schemathesis (pip install schemathesis)") {
        return;
    }
    let env = Env::new(Db::Sqlite).await.unwrap();
    env.init_lab("testing123");
    for (name, email, plan) in [
        ("Ada Lovelace", "ada@example.com", "full-time"),
        ("Grace Hopper", "grace@example.com", "flex"),
    ] {
        env.run(&[
            "member", "add", "--name", name, "--email", email, "--plan", plan,
        ])
        .ok();
    }
    let token = env
        .run(&[
            "--json",
            "token",
            "create",
            "--name",
            "schemathesis",
            "--scopes",
            "all",
        ])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    env.run(&["webhook", "secret"]).ok();
    let server = env.serve("127.0.0.1:0");
    let line = server
        .wait_for(&["operator console listening"], Duration::from_secs(30))
        .expect("the console listens");
    let addr = line
        .split("addr=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the console's address in its log line")
        .to_string();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schemathesis.toml");
    let out = std::process::Command::new("schemathesis")
        .args(["--config-file", config, "--no-color", "run"])
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "60", "--seed", "1"])
        .args(["--request-timeout", "10", "--max-failures", "20"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(env.dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: String = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{summary}\n{}\nserve log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.drain()
    );
    assert!(summary.contains("passed"), "schemathesis ran no test cases");
    drop(server);
    env.cleanup().await;
}
