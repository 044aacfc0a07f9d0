//! Gateway benchmark (as root, in network namespaces it creates and deletes):
//!
//! 1. Portal submit → first packet forwarded, and de-authorize → traffic stops, for N clients
//!    one after the other (each a new MAC on the guest link, each a real voucher login through
//!    `frontdesk serve`'s portal). The client sends a UDP datagram every 100 µs to a receiver
//!    in the "internet" namespace, which timestamps arrivals (CLOCK_MONOTONIC is shared by all
//!    namespaces), so both latencies are measured where the traffic is, not where it is asked.
//! 2. Authorizing 10,000 clients at once through the coalescing authorizer, against the way
//!    shell-script portals do it (one `nft add element` process per client).
//!
//! Usage: frontdesk-gateway-bench --frontdesk target/release/frontdesk [--clients 1000]
//!        [--bulk 10000] [--naive 10000]

use anyhow::{bail, Context, Result};
use frontdesk_bench::netns::{http, link, Netns};
use frontdesk_core::mac::MacAddr;
use frontdesk_core::ports::{ClientAuthorizer, ClientRef};
use frontdesk_firewall::clients::NftAuthorizer;
use frontdesk_firewall::conntrack::Conntrack;
use frontdesk_firewall::Nft;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
mode = "gateway"
[portal]
listen = "[::]:8081"
guest_plan = "lobby"
[gateway]
wan_interface = "wan0"
portal_networks = ["guest"]
[gateway.interfaces]
guest = "g0"
"#;

struct Args {
    frontdesk: PathBuf,
    clients: usize,
    bulk: usize,
    naive: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        frontdesk: PathBuf::from("target/release/frontdesk"),
        clients: 1000,
        bulk: 10_000,
        naive: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--frontdesk" => a.frontdesk = v.into(),
            "--clients" => a.clients = v.parse()?,
            "--bulk" => a.bulk = v.parse()?,
            "--naive" => a.naive = v.parse()?,
            _ => bail!("unknown argument {k}"),
        }
    }
    Ok(a)
}

fn mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0xfd, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x01])
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

/// Arrival times per client index, recorded by the receiver in the internet namespace.
#[derive(Default)]
struct Arrivals {
    first: Vec<Option<Instant>>,
    last: Vec<Option<Instant>>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn report(name: &str, v: &mut [f64]) {
    println!(
        "{name:44} n={:5}  median {:8.3} ms  p99 {:8.3} ms  max {:8.3} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.99),
        pct(v, 1.0)
    );
}

fn main() -> Result<()> {
    let a = args()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces, nftables)");
    }
    let frontdesk = std::fs::canonicalize(&a.frontdesk).with_context(|| {
        format!(
            "{} (build it: cargo build --release)",
            a.frontdesk.display()
        )
    })?;
    let dir = tempfile_dir()?;
    let cfg = dir.join("frontdesk.toml");
    std::fs::write(&cfg, CONFIG)?;
    let db = format!("sqlite:{}", dir.join("fd.db").display());
    let cli = |args: &[&str]| -> Result<String> {
        let out = Command::new(&frontdesk)
            .env("STATE_DIRECTORY", &dir)
            .arg("--config")
            .arg(&cfg)
            .arg("--database")
            .arg(&db)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "frontdesk {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    cli(&["init", "--site", "Bench", "--timezone", "UTC"])?;
    cli(&[
        "plan", "add", "--name", "lobby", "--vlan", "30", "--wifi", "always",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&cli(&[
        "--json",
        "voucher",
        "create",
        "--plan",
        "lobby",
        "--valid",
        "8h",
        "--devices",
        &a.clients.max(1).to_string(),
    ])?)?;
    let code = v[0]["code"].as_str().unwrap().to_string();

    let p = std::process::id();
    let router = Netns::new(&format!("fdb{p}r"));
    let internet = Netns::new(&format!("fdb{p}w"));
    let guest = Netns::new(&format!("fdb{p}g"));
    router.sysctl("net.ipv4.ip_forward=1");
    link(
        &router,
        "wan0",
        &["198.51.100.1/24"],
        &internet,
        "eth0",
        &["198.51.100.2/24"],
    );
    link(
        &router,
        "g0",
        &["10.30.0.1/24"],
        &guest,
        "eth0",
        &["10.30.0.2/24"],
    );
    guest.ip(&["route", "add", "default", "via", "10.30.0.1"]);

    let arrivals = Arc::new(Mutex::new(Arrivals {
        first: vec![None; a.clients],
        last: vec![None; a.clients],
    }));
    {
        let arrivals = arrivals.clone();
        internet.spawn(move || {
            let s = UdpSocket::bind("0.0.0.0:9000").unwrap();
            let mut buf = [0u8; 64];
            while let Ok(n) = s.recv(&mut buf) {
                let now = Instant::now();
                if n >= 4 {
                    let i = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    let mut a = arrivals.lock().unwrap();
                    if i < a.first.len() {
                        a.first[i].get_or_insert(now);
                        a.last[i] = Some(now);
                    }
                }
            }
        });
    }

    let mut serve = router
        .command(frontdesk.to_str().unwrap())
        .env("STATE_DIRECTORY", &dir)
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(&cfg)
        .arg("--database")
        .arg(&db)
        .args([
            "serve",
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:0",
        ])
        .args(["--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let up = guest.run(|| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect_timeout(
                &sa("10.30.0.1:8081"),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    if !up {
        let _ = serve.kill();
        bail!("the portal did not come up");
    }

    // The de-authorizing side: the same authorizer `serve` uses, run in the router namespace.
    let (tx, rx) = std::sync::mpsc::channel::<(MacAddr, std::sync::mpsc::Sender<Duration>)>();
    router.spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let auth = NftAuthorizer::start(Nft::default(), Conntrack::default());
            while let Ok((mac, done)) = rx.recv() {
                let t = Instant::now();
                let c = ClientRef {
                    mac,
                    ip: Some("10.30.0.2".parse().unwrap()),
                    location: None,
                };
                auth.revoke(&c).await.unwrap();
                let _ = done.send(t.elapsed());
            }
        })
    });

    let (mut login_ms, mut first_ms, mut stop_ms, mut revoke_call_ms) =
        (vec![], vec![], vec![], vec![]);
    println!("portal logins: {} clients, one after the other", a.clients);
    for i in 0..a.clients {
        guest.ip(&["link", "set", "eth0", "address", &mac(i).to_string()]);
        router.ip(&["neigh", "flush", "dev", "g0"]);
        let code = code.clone();
        // Welcome and accept pages first (not timed), then the timed voucher submit.
        let form = guest.run(move || {
            let host = "10.30.0.1:8081";
            let (_, _, body) = http(sa("10.30.0.1:8081"), "GET", "/", host, None);
            let f = format!("csrf={}", csrf(&body));
            let (_, _, body) = http(sa("10.30.0.1:8081"), "POST", "/accept", host, Some(&f));
            format!("csrf={}&code={code}", csrf(&body))
        });
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            guest.spawn(move || {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                let msg = (i as u32).to_be_bytes();
                while !stop.load(Ordering::Relaxed) {
                    let _ = s.send_to(&msg, "198.51.100.2:9000");
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        let (t0, t_resp) = guest.run(move || {
            let t0 = Instant::now();
            let (s, _, body) = http(
                sa("10.30.0.1:8081"),
                "POST",
                "/login",
                "10.30.0.1:8081",
                Some(&form),
            );
            assert_eq!(s, 303, "login {i}: {body}");
            (t0, Instant::now())
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let first = loop {
            if let Some(f) = arrivals.lock().unwrap().first[i] {
                break f;
            }
            if Instant::now() > deadline {
                bail!("client {i}: no packet forwarded 3 s after login");
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        login_ms.push((t_resp - t0).as_secs_f64() * 1e3);
        first_ms.push(first.saturating_duration_since(t0).as_secs_f64() * 1e3);
        // Let traffic flow a little, then de-authorize.
        std::thread::sleep(Duration::from_millis(5));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let t1 = Instant::now();
        tx.send((mac(i), done_tx))?;
        let call = done_rx.recv()?;
        std::thread::sleep(Duration::from_millis(30));
        stop.store(true, Ordering::Relaxed);
        let _ = sender.join();
        let last = arrivals.lock().unwrap().last[i].unwrap();
        stop_ms.push(last.saturating_duration_since(t1).as_secs_f64() * 1e3);
        revoke_call_ms.push(call.as_secs_f64() * 1e3);
        if (i + 1) % 100 == 0 {
            eprintln!("  {} / {}", i + 1, a.clients);
        }
    }
    let _ = serve.kill();
    let _ = serve.wait();
    report("login POST → answer", &mut login_ms);
    report("login POST → first packet forwarded", &mut first_ms);
    report("de-authorize → last packet forwarded", &mut stop_ms);
    report("de-authorize call (nft + conntrack)", &mut revoke_call_ms);

    // Bulk: 10,000 clients at once through the coalescing authorizer.
    let bulk = a.bulk;
    let naive = a.naive;
    let apply_table = Command::new(&frontdesk)
        .env("STATE_DIRECTORY", &dir)
        .arg("--config")
        .arg(&cfg)
        .arg("--database")
        .arg(&db)
        .args(["firewall", "show"])
        .output()?
        .stdout;
    let (bulk_t, naive_t) = router.run(move || -> Result<(Duration, Duration)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let nft = Nft::default();
            nft.run(std::str::from_utf8(&apply_table)?).await?;
            let auth = NftAuthorizer::start(nft.clone(), Conntrack::default());
            let until = chrono::Utc::now() + chrono::Duration::hours(1);
            let t = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for i in 0..bulk {
                let auth = auth.clone();
                set.spawn(async move {
                    let c = ClientRef {
                        mac: mac(100_000 + i),
                        ip: None,
                        location: None,
                    };
                    auth.authorize(&c, Some(until)).await
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            let bulk_t = t.elapsed();
            let listed = nft
                .exec(&["list", "set", "inet", "frontdesk", "authorized"], None)
                .await?;
            let n = listed.matches("02:fd:").count();
            anyhow::ensure!(n >= bulk, "only {n} of {bulk} elements in the set");
            // One process per client, as shell-script portals do.
            let t = Instant::now();
            for i in 0..naive {
                let m = mac(200_000 + i);
                nft.exec(
                    &[
                        "add",
                        "element",
                        "inet",
                        "frontdesk",
                        "authorized",
                        &format!("{{ {m} timeout 3600s }}"),
                    ],
                    None,
                )
                .await?;
            }
            let naive_t = t.elapsed();
            // Closing time: `bulk` clients all authorized until one instant; how long after it
            // are their elements gone from the set (the kernel drops them at their timeout)?
            nft.exec(&["flush", "set", "inet", "frontdesk", "authorized"], None)
                .await?;
            let closing = chrono::Utc::now() + chrono::Duration::seconds(6);
            let mut set = tokio::task::JoinSet::new();
            for i in 0..bulk {
                let auth = auth.clone();
                set.spawn(async move {
                    let c = ClientRef {
                        mac: mac(300_000 + i),
                        ip: None,
                        location: None,
                    };
                    auth.authorize(&c, Some(closing)).await
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            let listed = nft
                .exec(&["list", "set", "inet", "frontdesk", "authorized"], None)
                .await?;
            anyhow::ensure!(listed.matches("02:fd:").count() >= bulk, "closing clients not all in the set");
            // Watch the first, middle and last client inserted (`nft get element` is a lookup,
            // a few ms; listing 10,000 elements would take longer than what is measured).
            let watched = [0, bulk / 2, bulk.saturating_sub(1)].map(|i| mac(300_000 + i).to_string());
            let mut gone_at = [None::<i64>; 3];
            while gone_at.iter().any(Option::is_none) {
                let now = chrono::Utc::now();
                anyhow::ensure!(now < closing + chrono::Duration::seconds(10), "elements still there 10 s after closing");
                for (k, m) in watched.iter().enumerate() {
                    if gone_at[k].is_some() {
                        continue;
                    }
                    let there = nft
                        .exec(&["get", "element", "inet", "frontdesk", "authorized", &format!("{{ {m} }}")], None)
                        .await
                        .is_ok();
                    if !there {
                        gone_at[k] = Some((chrono::Utc::now() - closing).num_milliseconds());
                    }
                }
            }
            let gone_after = gone_at.iter().flatten().max().copied().unwrap_or_default();
            anyhow::ensure!(
                nft.exec(&["list", "set", "inet", "frontdesk", "authorized"], None).await?.matches("02:fd:").count() == 0,
                "some elements outlived the watched ones"
            );
            println!("closing time: {bulk} authorized clients' elements gone {gone_after} ms after the closing instant (first/middle/last inserted: {gone_at:?} ms)");
            Ok((bulk_t, naive_t))
        })
    })?;
    println!(
        "authorize {bulk} clients at once (coalesced batches): {:.0} ms total",
        bulk_t.as_secs_f64() * 1e3
    );
    println!(
        "authorize {naive} clients one `nft add element` each:  {:.0} ms total ({:.2} ms per client)",
        naive_t.as_secs_f64() * 1e3,
        naive_t.as_secs_f64() * 1e3 / naive.max(1) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("frontdesk-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
