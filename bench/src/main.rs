//! `frontdesk-bench radius`: a RADIUS load generator. Sends signed PAP Access-Requests (with
//! Message-Authenticator) for users from a CSV file from a few threads, each keeping many
//! requests outstanding on one socket, checks every answer (Response Authenticator,
//! Message-Authenticator, Access-Accept), and reports requests/s and latency percentiles. With
//! `--rate` it paces requests on a fixed schedule and measures latency from the scheduled send
//! time (no coordinated omission).

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

#[derive(Parser)]
#[command(name = "frontdesk-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A UDP echo server: answers every datagram with itself, one blocking thread. The floor
    /// of what any RADIUS server can reach on this machine (the generator counts its answers
    /// as invalid but times them), for the benchmark's latency comparison.
    Echo {
        #[arg(long, default_value = "127.0.0.1:18124")]
        listen: SocketAddr,
    },
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
        /// Requests kept outstanding in total (spread over the threads).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Sending threads, one socket each.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Fixed total rate in requests/s (default: as fast as answers come back).
        #[arg(long)]
        rate: Option<u64>,
        /// Per-request timeout.
        #[arg(long, default_value = "1s")]
        timeout: humantime::Duration,
        /// Send and receive from one busy-polling thread per socket instead of blocking
        /// sender/receiver pairs: no wake-up delays on the generator side, so fixed-rate
        /// latency is the server's (costs one full core; pin it with taskset).
        #[arg(long)]
        spin: bool,
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
    fn connect(&self) -> Result<std::net::UdpSocket> {
        let sock = std::net::UdpSocket::bind(if self.target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })?;
        sock.connect(self.target)?;
        Ok(sock)
    }

    /// Checks one answer (Response Authenticator, Message-Authenticator) and counts it.
    fn tally(&self, resp: &[u8], request_authenticator: &[u8; 16], counters: &Counters) {
        let counter = if !verify_response(resp, request_authenticator, &self.secret) {
            &counters.invalid
        } else if resp[0] == 2 {
            &counters.accepts
        } else {
            &counters.rejects
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

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

/// What one sending thread is asked to do.
struct Job {
    client: Arc<Client>,
    users: Arc<Vec<(String, String)>>,
    counters: Arc<Counters>,
    offset: usize,
    stride: usize,
    until: Instant,
    /// Outstanding requests this thread keeps (at most 255: one identifier each).
    window: usize,
    /// Fixed pacing for this thread; `None`: send as answers come back.
    interval: Option<Duration>,
    spin: bool,
}

type InFlight = std::sync::Mutex<Vec<Option<(Instant, [u8; 16])>>>;

/// One socket served by two threads: this one sends (paced with high-resolution sleeps, or
/// whenever the window has room), a companion blocks in `recv` and matches answers by
/// identifier. Latency is measured from the scheduled send time, so a slow server cannot hide
/// its queueing. (A single thread with a receive timeout cannot pace: Linux rounds socket
/// timeouts to scheduler ticks, which showed up as a 4 ms floor.)
fn run_thread(job: Job) -> Result<Vec<u32>> {
    if job.spin {
        return run_spinning(job);
    }
    let c = job.client.clone();
    let sock = c.connect()?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let sock = Arc::new(sock);
    let in_flight: Arc<InFlight> = Arc::new(std::sync::Mutex::new(vec![None; 256]));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = {
        let (sock, in_flight, done, counters, client) = (
            sock.clone(),
            in_flight.clone(),
            done.clone(),
            job.counters.clone(),
            c.clone(),
        );
        std::thread::spawn(move || -> Result<Vec<u32>> {
            let mut latencies = Vec::with_capacity(1 << 18);
            let mut buf = vec![0u8; 4096];
            while !done.load(Ordering::Relaxed) {
                let n = match sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                };
                if n < 20 {
                    continue;
                }
                let Some((scheduled, auth)) =
                    in_flight.lock().expect("in-flight lock")[buf[1] as usize].take()
                else {
                    continue; // late answer to a request already counted as timed out
                };
                latencies.push(scheduled.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                client.tally(&buf[..n], &auth, &counters);
            }
            Ok(latencies)
        })
    };
    let window = job.window.clamp(1, 255);
    let mut next_id = 0u8;
    let mut user = job.offset;
    let mut next_send = Instant::now();
    let mut last_sweep = Instant::now();
    while Instant::now() < job.until {
        let scheduled = match job.interval {
            Some(iv) => {
                let wait = next_send.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                let s = next_send;
                next_send += iv;
                s
            }
            None => Instant::now(),
        };
        let id = loop {
            let mut f = in_flight.lock().expect("in-flight lock");
            if last_sweep.elapsed() > Duration::from_millis(10) {
                last_sweep = Instant::now();
                for slot in f.iter_mut() {
                    if slot.is_some_and(|(at, _)| at.elapsed() > c.timeout) {
                        *slot = None;
                        job.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let outstanding = f.iter().filter(|x| x.is_some()).count();
            if outstanding < window {
                while f[next_id as usize].is_some() {
                    next_id = next_id.wrapping_add(1);
                }
                break next_id;
            }
            drop(f);
            std::thread::yield_now();
        };
        let (name, password) = &job.users[user % job.users.len()];
        user += job.stride;
        let (raw, auth) = c.request(id, name, password);
        in_flight.lock().expect("in-flight lock")[id as usize] = Some((scheduled, auth));
        sock.send(&raw)?;
        job.counters.sent.fetch_add(1, Ordering::Relaxed);
        next_id = next_id.wrapping_add(1);
    }
    // Let the last answers arrive, then count what is still missing as timed out.
    let deadline = Instant::now() + c.timeout;
    while Instant::now() < deadline
        && in_flight
            .lock()
            .expect("in-flight lock")
            .iter()
            .any(Option::is_some)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    done.store(true, Ordering::Relaxed);
    let latencies = receiver.join().expect("receiver thread")?;
    let missing = in_flight
        .lock()
        .expect("in-flight lock")
        .iter()
        .filter(|x| x.is_some())
        .count();
    job.counters
        .timeouts
        .fetch_add(missing as u64, Ordering::Relaxed);
    Ok(latencies)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

/// One thread, one non-blocking socket, never sleeps: sends when the schedule (or the window)
/// says so and reads answers in between.
fn run_spinning(job: Job) -> Result<Vec<u32>> {
    let c = job.client.clone();
    let sock = c.connect()?;
    sock.set_nonblocking(true)?;
    let mut in_flight: Vec<Option<(Instant, [u8; 16])>> = vec![None; 256];
    let mut outstanding = 0usize;
    let mut latencies = Vec::with_capacity(1 << 18);
    let mut buf = vec![0u8; 4096];
    let window = job.window.clamp(1, 255);
    let (mut next_id, mut user) = (0u8, job.offset);
    let mut next_send = Instant::now();
    let mut last_sweep = Instant::now();
    let mut sending = true;
    loop {
        let now = Instant::now();
        if sending && now >= job.until {
            sending = false;
        }
        if !sending && (outstanding == 0 || now >= job.until + c.timeout) {
            break;
        }
        let due = job.interval.is_none_or(|_| now >= next_send);
        if sending && due && outstanding < window {
            while in_flight[next_id as usize].is_some() {
                next_id = next_id.wrapping_add(1);
            }
            let scheduled = match job.interval {
                Some(iv) => {
                    let s = next_send;
                    next_send += iv;
                    s
                }
                None => now,
            };
            let (name, password) = &job.users[user % job.users.len()];
            user += job.stride;
            let (raw, auth) = c.request(next_id, name, password);
            in_flight[next_id as usize] = Some((scheduled, auth));
            outstanding += 1;
            sock.send(&raw)?;
            job.counters.sent.fetch_add(1, Ordering::Relaxed);
            next_id = next_id.wrapping_add(1);
        }
        loop {
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            };
            if n < 20 {
                continue;
            }
            let Some((scheduled, auth)) = in_flight[buf[1] as usize].take() else {
                continue;
            };
            outstanding -= 1;
            latencies.push(scheduled.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            c.tally(&buf[..n], &auth, &job.counters);
        }
        if last_sweep.elapsed() > Duration::from_millis(10) {
            last_sweep = Instant::now();
            for slot in in_flight.iter_mut() {
                if slot.is_some_and(|(at, _)| at.elapsed() > c.timeout) {
                    *slot = None;
                    outstanding -= 1;
                    job.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    for _ in in_flight.iter().flatten() {
        job.counters.timeouts.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}

fn echo(listen: SocketAddr) -> Result<()> {
    let sock = std::net::UdpSocket::bind(listen).with_context(|| format!("bind {listen}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        sock.send_to(&buf[..n], from)?;
    }
}

fn main() -> Result<()> {
    let cmd = Cli::parse().cmd;
    if let Cmd::Echo { listen } = cmd {
        return echo(listen);
    }
    let Cmd::Radius {
        target,
        secret,
        users,
        duration,
        concurrency,
        threads,
        rate,
        timeout,
        spin,
        label,
        json,
    } = cmd
    else {
        unreachable!("echo returned above")
    };
    let users = Arc::new(load_users(&users)?);
    let client = Arc::new(Client {
        target,
        secret: secret.into_bytes(),
        timeout: *timeout,
    });
    let counters = Arc::new(Counters::default());
    let threads = threads.max(1);
    let interval = rate.map(|r| Duration::from_secs_f64(threads as f64 / r.max(1) as f64));
    let started = Instant::now();
    let until = started + *duration;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let job = Job {
                client: client.clone(),
                users: users.clone(),
                counters: counters.clone(),
                offset: t,
                stride: threads,
                until,
                window: concurrency.div_ceil(threads),
                interval,
                spin,
            };
            std::thread::spawn(move || run_thread(job))
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("sender thread")?);
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
        "threads": threads,
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
