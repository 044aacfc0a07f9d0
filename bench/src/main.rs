//! `frontdesk-bench radius`: a RADIUS load generator. Sends signed PAP Access-Requests (with
//! Message-Authenticator) for users from a CSV file, keeps many requests outstanding, checks
//! every answer (Response Authenticator, Message-Authenticator, Access-Accept), and reports
//! requests/s and latency percentiles. With `--rate` it paces requests on a fixed schedule and
//! measures latency from the scheduled send time (no coordinated omission).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use frontdesk_radius::attr;
use frontdesk_radius::packet::{
    encode_request, encrypt_user_password, verify_response, Code, Packet,
};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[derive(Parser)]
#[command(name = "frontdesk-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load a RADIUS server with PAP logins.
    Radius {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:1812")]
        target: SocketAddr,
        #[arg(long, default_value = "testing123")]
        secret: String,
        /// CSV with a header; columns wifi_username (or username) and wifi_password (or password).
        #[arg(long)]
        users: std::path::PathBuf,
        /// How long to send.
        #[arg(long, default_value = "10s")]
        duration: humantime::Duration,
        /// Concurrent clients (sockets), each with one request outstanding.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        /// Fixed total rate in requests/s (default: as fast as answers come back).
        #[arg(long)]
        rate: Option<u64>,
        /// Per-request timeout.
        #[arg(long, default_value = "1s")]
        timeout: humantime::Duration,
        /// Label printed with the result.
        #[arg(long, default_value = "target")]
        label: String,
        /// Print the result as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    accepts: AtomicU64,
    rejects: AtomicU64,
    invalid: AtomicU64,
    timeouts: AtomicU64,
}

fn load_users(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r.headers()?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h));
    let (u, p) = match (
        col(&["wifi_username", "username"]),
        col(&["wifi_password", "password"]),
    ) {
        (Some(u), Some(p)) => (u, p),
        _ => bail!(
            "{}: needs columns wifi_username and wifi_password",
            path.display()
        ),
    };
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        out.push((rec[u].to_string(), rec[p].to_string()));
    }
    if out.is_empty() {
        bail!("{}: no users", path.display());
    }
    Ok(out)
}

struct Client {
    target: SocketAddr,
    secret: Vec<u8>,
    timeout: Duration,
}

impl Client {
    fn request(&self, id: u8, user: &str, password: &str) -> (Vec<u8>, [u8; 16]) {
        let auth: [u8; 16] = rand::thread_rng().gen();
        let mut p = Packet::new(Code::AccessRequest, id, auth);
        p.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
        p.add(attr::USER_NAME, user.as_bytes().to_vec());
        p.add(
            attr::USER_PASSWORD,
            encrypt_user_password(password.as_bytes(), &self.secret, &auth),
        );
        p.add(attr::NAS_IP_ADDRESS, vec![127, 0, 0, 1]);
        p.add_u32(attr::NAS_PORT, u32::from(id));
        (
            encode_request(&p, &self.secret).expect("small packet"),
            auth,
        )
    }
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    client: Arc<Client>,
    users: Arc<Vec<(String, String)>>,
    counters: Arc<Counters>,
    offset: usize,
    stride: usize,
    until: Instant,
    interval: Option<Duration>,
) -> Result<Vec<u32>> {
    let sock = UdpSocket::bind(if client.target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await?;
    sock.connect(client.target).await?;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut buf = vec![0u8; 4096];
    let mut i = offset;
    let mut id: u8 = (offset % 256) as u8;
    let mut scheduled = Instant::now();
    while Instant::now() < until {
        if let Some(iv) = interval {
            scheduled += iv;
            tokio::time::sleep_until(scheduled.into()).await;
        } else {
            scheduled = Instant::now();
        }
        let (user, password) = &users[i % users.len()];
        i += stride;
        id = id.wrapping_add(1);
        let (raw, auth) = client.request(id, user, password);
        sock.send(&raw).await?;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + client.timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => {
                    counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(n)) => {
                    let resp = &buf[..n];
                    if resp.len() < 20 || resp[1] != id {
                        continue; // a late answer to an earlier, timed-out request
                    }
                    latencies
                        .push(scheduled.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    if !verify_response(resp, &auth, &client.secret) {
                        counters.invalid.fetch_add(1, Ordering::Relaxed);
                    } else if resp[0] == 2 {
                        counters.accepts.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.rejects.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
        }
    }
    Ok(latencies)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let Cmd::Radius {
        target,
        secret,
        users,
        duration,
        concurrency,
        rate,
        timeout,
        label,
        json,
    } = Cli::parse().cmd;
    let users = Arc::new(load_users(&users)?);
    let client = Arc::new(Client {
        target,
        secret: secret.into_bytes(),
        timeout: *timeout,
    });
    let counters = Arc::new(Counters::default());
    let concurrency = concurrency.max(1);
    let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r.max(1) as f64));
    let started = Instant::now();
    let until = started + *duration;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        tasks.push(tokio::spawn(worker(
            client.clone(),
            users.clone(),
            counters.clone(),
            w,
            concurrency,
            until,
            interval,
        )));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let answered = latencies.len() as f64;
    let c = &counters;
    let result = serde_json::json!({
        "label": label,
        "seconds": elapsed,
        "sent": c.sent.load(Ordering::Relaxed),
        "accepts": c.accepts.load(Ordering::Relaxed),
        "rejects": c.rejects.load(Ordering::Relaxed),
        "invalid": c.invalid.load(Ordering::Relaxed),
        "timeouts": c.timeouts.load(Ordering::Relaxed),
        "answers_per_second": answered / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "p999_ms": percentile(&latencies, 0.999),
        "target_rate": rate,
        "concurrency": concurrency,
    });
    if json {
        println!("{result}");
    } else {
        println!(
            "{label}: {:.0} answers/s over {:.1} s; accepts {} rejects {} invalid {} timeouts {}; latency p50 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms",
            answered / elapsed,
            elapsed,
            result["accepts"],
            result["rejects"],
            result["invalid"],
            result["timeouts"],
            result["p50_ms"].as_f64().unwrap_or(0.0),
            result["p99_ms"].as_f64().unwrap_or(0.0),
            result["p999_ms"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}
