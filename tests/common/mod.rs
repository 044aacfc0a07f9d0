//! Helpers for cross-process tests: run the real `frontdesk` binary against a temporary SQLite
//! file or a fresh PostgreSQL schema.
#![allow(dead_code)]

pub mod browser;
pub mod netns;

use frontdesk_core::store::{OpenMode, Store};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_frontdesk");
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub url: String,
    pg: Option<(String, String)>,
    /// Shifts the wall clock of every `frontdesk` this env runs (debug builds only).
    pub clock_offset_ms: Option<i64>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed: {}\n{}",
            self.stderr, self.stdout
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

impl Env {
    /// None when PostgreSQL is explicitly skipped outside CI (printed loudly).
    pub async fn new(db: Db) -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        match db {
            Db::Sqlite => Some(Env {
                url: format!("sqlite:{}", dir.path().join("fd.db").display()),
                dir,
                pg: None,
                clock_offset_ms: None,
            }),
            Db::Postgres => {
                if std::env::var("FRONTDESK_SKIP_POSTGRES").is_ok_and(|v| v == "1")
                    && std::env::var("CI").is_err()
                {
                    eprintln!("SKIPPED: PostgreSQL CLI test (FRONTDESK_SKIP_POSTGRES=1)");
                    return None;
                }
                sqlx::any::install_default_drivers();
                let base =
                    std::env::var("FRONTDESK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG.into());
                let schema = format!("fd_cli_{}", uuid::Uuid::now_v7().simple());
                let admin = sqlx::AnyPool::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(Env {
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                    dir,
                    pg: Some((base, schema)),
                    clock_offset_ms: None,
                })
            }
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env("STATE_DIRECTORY", self.dir.path())
            .env_remove("FRONTDESK_DATABASE_URL")
            .env_remove("FRONTDESK_CONFIG")
            .env_remove("FRONTDESK_TEST_CLOCK_OFFSET_MS")
            .arg("--database")
            .arg(&self.url);
        if let Some(ms) = self.clock_offset_ms {
            c.env("FRONTDESK_TEST_CLOCK_OFFSET_MS", ms.to_string());
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd()
            .args(args)
            .output()
            .expect("run frontdesk")
            .into()
    }

    /// A UTC site "Lab" and one NAS, 127.0.0.1 with `secret`: what the RADIUS suites start from.
    pub fn init_lab(&self, secret: &str) {
        self.run(&["init", "--site", "Lab", "--timezone", "UTC"])
            .ok();
        self.run(&[
            "nas",
            "add",
            "--name",
            "local",
            "--address",
            "127.0.0.1",
            "--secret",
            secret,
        ])
        .ok();
    }

    /// `serve` with RADIUS on `radius` (both ports; port 0 = ephemeral), console and portal on
    /// ephemeral loopback ports.
    pub fn serve(&self, radius: &str) -> Server {
        let mut cmd = self.cmd();
        cmd.arg("serve");
        listen_args(&mut cmd, radius);
        Server::start(cmd)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn dump(&self) -> String {
        let s = Store::open(&self.url, OpenMode::Existing).await.unwrap();
        let d = s.logical_dump().await.unwrap();
        s.close().await;
        d
    }

    pub async fn cleanup(self) {
        if let Some((base, schema)) = &self.pg {
            let admin = sqlx::AnyPool::connect(base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

/// Defines `$name::sqlite` and `$name::postgres` running `$body(&Env)`.
#[macro_export]
macro_rules! both_databases {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env = Env::new(Db::Sqlite).await.unwrap();
                $body(&env).await;
                env.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(env) = Env::new(Db::Postgres).await {
                    $body(&env).await;
                    env.cleanup().await;
                }
            }
        }
    };
}

/// For tests that need root (network namespaces, nftables): true when they can run. Outside CI
/// a non-root run prints `SKIPPED: <reason>` and the test returns; in CI (which runs as root)
/// not being root is a failure, never a silent pass.
pub fn require_root(test: &str) -> bool {
    // SAFETY-free check: /proc/self/status "Uid:" real uid.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        });
    if uid.as_deref() == Some("0") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root, and CI=true: CI must run as root");
    }
    eprintln!("SKIPPED: {test} needs root (network namespace / nftables); run as root or in CI");
    false
}

/// A running `serve`, its stderr lines delivered on a channel; killed on drop.
/// `serve`'s listener flags: RADIUS auth and accounting on `radius`, console and portal on
/// ephemeral loopback ports.
pub fn listen_args(cmd: &mut Command, radius: &str) {
    cmd.args([
        "--radius-auth",
        radius,
        "--radius-acct",
        radius,
        "--http",
        "127.0.0.1:0",
        "--portal",
        "127.0.0.1:0",
    ]);
}

pub struct Server {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines }
    }

    /// Waits until RADIUS listens and the change feed is followed; the (auth, acct) ports.
    pub fn radius_ports(&self) -> (u16, u16) {
        let ports = self.radius_listening();
        assert!(self
            .wait_for(&["following changes"], Duration::from_secs(10))
            .is_some());
        ports
    }

    /// The RADIUS auth and accounting ports once bound (the rest of `serve` may still wait).
    pub fn radius_listening(&self) -> (u16, u16) {
        let line = self
            .wait_for(&["RADIUS listening"], Duration::from_secs(20))
            .expect("RADIUS server started");
        let port = |key: &str| -> u16 {
            let rest = &line[line.find(key).expect("port in log") + key.len()..];
            let addr = rest.split_whitespace().next().unwrap();
            addr.rsplit(':').next().unwrap().parse().unwrap()
        };
        (port("auth="), port("acct="))
    }

    /// Every stderr line that arrived until now (for failure messages).
    pub fn drain(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for a stderr line containing every needle.
    pub fn wait_for(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For tests that need a real peer program: true when it is installed. Outside CI a missing
/// tool prints `SKIPPED: <reason>`; in CI (which installs it) a missing tool fails the test.
pub fn require_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is not installed, and CI=true: .ci/run must install {package}");
    }
    eprintln!("SKIPPED: needs {tool} (Debian package {package})");
    false
}
