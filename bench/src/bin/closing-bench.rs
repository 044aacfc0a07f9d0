//! Closing-time benchmark (no root needed; loopback only):
//!
//! `frontdesk serve` (release build, SQLite) has N online sessions spread over M NAS clients,
//! all members on a plan whose window ends at the next minute boundary at least 40 s ahead.
//! Each fake NAS listens on its own loopback address (127.0.0.11, .12, …), checks every
//! Disconnect-Request's authenticators and Message-Authenticator, answers Disconnect-ACK at
//! once, and timestamps arrivals. Reported: when the requests arrived relative to the closing
//! instant, and when `serve` had every acknowledgement recorded (its sweep log).
//!
//! Then the alternative a FreeRADIUS site would script — cron at closing time running
//! `radclient` against each NAS with one request per session — on the same fake NASes.
//!
//! Usage: closing-bench --frontdesk target/release/frontdesk [--sessions 10000] [--nas 20]

use anyhow::{bail, Context, Result};
use frontdesk_radius::attr;
use frontdesk_radius::packet::{self, Code, Packet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "closing-bench-secret";
const DISCONNECT_PORT: u16 = 37990;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn nas_ip(i: usize) -> String {
    format!("127.0.0.{}", 11 + i)
}

struct Args {
    frontdesk: PathBuf,
    sessions: usize,
    nas: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        frontdesk: PathBuf::from("target/release/frontdesk"),
        sessions: 10_000,
        nas: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--frontdesk" => a.frontdesk = v.into(),
            "--sessions" => a.sessions = v.parse()?,
            "--nas" => a.nas = v.parse()?,
            _ => bail!("unknown flag {k}"),
        }
    }
    if a.nas == 0 || a.nas > 200 {
        bail!("--nas: 1..200");
    }
    Ok(a)
}

fn cli(bin: &Path, db: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .arg("--database")
        .arg(db)
        .args(args)
        .env_remove("FRONTDESK_CONFIG")
        .output()
        .context("running frontdesk")?;
    if !out.status.success() {
        bail!(
            "frontdesk {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One fake NAS: answers every valid Disconnect-Request with an ACK; records arrival times.
fn fake_nas(
    sock: UdpSocket,
    arrivals: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let mut bad = 0;
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let at = now_ms();
            let raw = &buf[..n];
            let ok = packet::verify_digest_request_authenticator(raw, SECRET.as_bytes())
                && packet::verify_request_message_authenticator(raw, SECRET.as_bytes())
                    != Some(false);
            let Ok(p) = Packet::decode(raw) else {
                bad += 1;
                continue;
            };
            if !ok || p.code != Code::DisconnectRequest {
                bad += 1;
                continue;
            }
            arrivals.lock().expect("lock").push(at);
            let mut ack = Packet::new(Code::DisconnectAck, p.identifier, [0; 16]);
            ack.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
            if let Ok(bytes) = packet::encode_response(&ack, &p.authenticator, SECRET.as_bytes()) {
                let _ = sock.send_to(&bytes, from);
            }
        }
        bad
    })
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let a = args()?;
    let dir = tempfile_dir()?;
    let db = format!("sqlite:{}", dir.join("fd.db").display());
    let bin = a.frontdesk.as_path();

    // Closing: the next minute boundary at least 40 s from now (setup takes ~15 s).
    let end_ms = ((now_ms() + 40_000) / 60_000 + 1) * 60_000;
    let end = chrono::DateTime::from_timestamp_millis(end_ms).expect("time");
    let start = end - chrono::Duration::hours(3);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| match t.format("%H:%M").to_string() {
        s if s == "00:00" && t == end => "24:00".to_string(),
        s => s,
    };
    let window = format!("daily {}-{}", hhmm(start), hhmm(end));
    cli(bin, &db, &["init", "--site", "Bench", "--timezone", "UTC"])?;
    cli(
        bin,
        &db,
        &[
            "plan", "add", "--name", "evening", "--vlan", "40", "--wifi", &window,
        ],
    )?;
    let csv = dir.join("members.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(f, "name,email,plan")?;
        for i in 0..a.sessions {
            writeln!(f, "Member {i},m{i}@bench.example,evening")?;
        }
    }
    cli(
        bin,
        &db,
        &["member", "import", "--csv", &csv.display().to_string()],
    )?;
    let port = DISCONNECT_PORT.to_string();
    for i in 0..a.nas {
        cli(
            bin,
            &db,
            &[
                "nas",
                "add",
                "--name",
                &format!("ap{i}"),
                "--address",
                &nas_ip(i),
                "--secret",
                SECRET,
                "--disconnect-port",
                &port,
            ],
        )?;
    }

    let mut serve = Command::new(bin)
        .arg("--database")
        .arg(&db)
        .args([
            "serve",
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--portal",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .env_remove("FRONTDESK_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting frontdesk serve")?;
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = serve.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, timeout: Duration| -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .with_context(|| format!("serve never logged {needle:?}"))?;
            let line = lines.recv_timeout(left)?;
            if line.contains(needle) {
                return Ok(line);
            }
        }
    };
    let listening = wait_for("RADIUS listening", Duration::from_secs(60))?;
    let acct_port: u16 = listening
        .split("acct=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .context("accounting port in the log")?;
    wait_for("following changes", Duration::from_secs(30))?;

    // The fake NASes, then one Accounting-Start per session from its NAS's address.
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = Arc::new(Mutex::new(Vec::with_capacity(a.sessions)));
    let mut nas_threads = Vec::new();
    for i in 0..a.nas {
        let sock = UdpSocket::bind(format!("{}:{DISCONNECT_PORT}", nas_ip(i)))
            .with_context(|| format!("binding the fake NAS {}", nas_ip(i)))?;
        nas_threads.push(fake_nas(sock, arrivals.clone(), stop.clone()));
    }
    let acct: SocketAddr = format!("127.0.0.1:{acct_port}").parse()?;
    let t = Instant::now();
    let per_nas = a.sessions.div_ceil(a.nas);
    let mut senders = Vec::new();
    for i in 0..a.nas {
        let range = (i * per_nas)..((i + 1) * per_nas).min(a.sessions);
        senders.push(std::thread::spawn(move || -> Result<()> {
            let sock = UdpSocket::bind(format!("{}:0", nas_ip(i)))?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 4096];
            for (k, m) in range.enumerate() {
                let mut p = Packet::new(Code::AccountingRequest, (k % 256) as u8, [0; 16]);
                p.add_u32(attr::ACCT_STATUS_TYPE, attr::acct_status::START);
                p.add(attr::USER_NAME, format!("m{m}@bench.example").into_bytes());
                p.add(attr::ACCT_SESSION_ID, format!("s{m}").into_bytes());
                p.add(
                    attr::CALLING_STATION_ID,
                    format!(
                        "02-00-00-{:02X}-{:02X}-{:02X}",
                        (m >> 16) & 0xff,
                        (m >> 8) & 0xff,
                        m & 0xff
                    )
                    .into_bytes(),
                );
                let bytes = packet::encode_request(&p, SECRET.as_bytes())?;
                // One at a time per NAS: the server answers after the record is stored.
                let mut tries = 0;
                loop {
                    sock.send_to(&bytes, acct)?;
                    match sock.recv_from(&mut buf) {
                        Ok(_) => break,
                        Err(_) if tries < 5 => tries += 1,
                        Err(e) => bail!("no Accounting-Response: {e}"),
                    }
                }
            }
            Ok(())
        }));
    }
    for s in senders {
        s.join().expect("sender thread")?;
    }
    println!(
        "{} sessions started on {} NAS in {:.1} s; closing at {} ({} s from now)",
        a.sessions,
        a.nas,
        t.elapsed().as_secs_f64(),
        end.format("%H:%M:%S UTC"),
        (end_ms - now_ms()) / 1000
    );
    if now_ms() > end_ms - 2_000 {
        bail!("setup took longer than the time left before closing; run again");
    }

    // Closing: the sweep that ends them logs when it finished.
    let sweep = loop {
        let line = wait_for("scheduler sweep", Duration::from_secs(120))?;
        if line.contains(&format!("ended={}", a.sessions)) || now_ms() > end_ms + 30_000 {
            break line;
        }
    };
    let logged_done = now_ms();
    std::thread::sleep(Duration::from_millis(300));
    let mut got = arrivals.lock().expect("lock").clone();
    got.sort_unstable();
    let rel: Vec<i64> = got.iter().map(|t| t - end_ms).collect();
    let took: i64 = sweep
        .split("took_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let failed = sweep.contains("could not end access");
    println!(
        "frontdesk: {} Disconnect-Requests received and acknowledged (of {})",
        rel.len(),
        a.sessions
    );
    println!(
        "  arrival after closing: first {} ms, median {} ms, p99 {} ms, last {} ms",
        rel.first().copied().unwrap_or(-1),
        percentile(&rel, 0.5),
        percentile(&rel, 0.99),
        rel.last().copied().unwrap_or(-1)
    );
    println!(
        "  sweep (decide all, send, collect every ACK, record states and audit): {took} ms; logged {} ms after closing{}",
        logged_done - end_ms,
        if failed { " (some failed)" } else { "" }
    );
    let _ = serve.kill();
    let _ = serve.wait();

    // The scripted alternative: radclient per NAS, all NASes in parallel.
    if Command::new("radclient").arg("-h").output().is_err() {
        println!(
            "radclient not installed: scripted comparison skipped (apt install freeradius-utils)"
        );
    } else {
        arrivals.lock().expect("lock").clear();
        let t = Instant::now();
        let mut procs = Vec::new();
        for i in 0..a.nas {
            let file = dir.join(format!("nas{i}.txt"));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
            for m in (i * per_nas)..((i + 1) * per_nas).min(a.sessions) {
                writeln!(
                    f,
                    "User-Name = \"m{m}@bench.example\", Acct-Session-Id = \"s{m}\", Message-Authenticator = 0x00\n"
                )?;
            }
            drop(f);
            procs.push(
                Command::new("radclient")
                    .args(["-q", "-p", "256", "-r", "3", "-t", "1", "-f"])
                    .arg(&file)
                    .arg(format!("{}:{DISCONNECT_PORT}", nas_ip(i)))
                    .args(["disconnect", SECRET])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()?,
            );
        }
        for p in procs {
            let out = p.wait_with_output()?;
            if !out.status.success() {
                println!("radclient: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        let elapsed = t.elapsed();
        println!(
            "radclient script (one process per NAS, 256 in flight each): {} of {} acknowledged in {} ms",
            arrivals.lock().expect("lock").len(),
            a.sessions,
            elapsed.as_millis()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let bad: usize = nas_threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    if bad > 0 {
        println!("{bad} requests failed the NAS's checks");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("frontdesk-closing-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
