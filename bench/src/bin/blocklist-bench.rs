//! Blocklist load and lookup with 1,000,000 domains (issue 13: < 2 s, < 100 MB).
//!
//! Generates a hosts-format list of `--domains` distinct names (random labels, a few TLDs, 1–3
//! labels deep, as real lists look), then measures: parsing + building the sorted arena, its
//! size and the process's resident memory before and after (the source text freed), and
//! lookups of names under listed domains and of names not listed. For comparison, the same
//! names in a `HashSet<String>` (the structure the issue rules out), same run.
//!
//! Usage: blocklist-bench [--domains 1000000]

use anyhow::{bail, Context, Result};
use frontdesk_dns::blocklist::DomainSet;
use rand::Rng;
use std::time::Instant;

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

fn label(rng: &mut impl Rng, len: std::ops::Range<usize>) -> String {
    let len = rng.gen_range(len);
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| A[rng.gen_range(0..A.len())] as char)
        .collect()
}

fn main() -> Result<()> {
    let mut n = 1_000_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--domains" => n = v.parse()?,
            _ => bail!("unknown flag {k}"),
        }
    }
    let mut rng = rand::thread_rng();
    let tlds = [
        "com", "net", "org", "io", "xyz", "info", "ru", "de", "co.uk", "top",
    ];
    let mut names = std::collections::HashSet::with_capacity(n);
    while names.len() < n {
        let depth = rng.gen_range(0..3);
        let mut name = format!(
            "{}.{}",
            label(&mut rng, 5..14),
            tlds[rng.gen_range(0..tlds.len())]
        );
        for _ in 0..depth {
            name = format!("{}.{name}", label(&mut rng, 2..8));
        }
        names.insert(name);
    }
    let names: Vec<String> = names.into_iter().collect();
    let mut text = String::with_capacity(n * 32);
    text.push_str("# generated hosts file\n");
    for name in &names {
        text.push_str("0.0.0.0 ");
        text.push_str(name);
        text.push('\n');
    }
    println!(
        "{n} domains, {:.1} MB of hosts file",
        text.len() as f64 / 1e6
    );
    let before = rss_mb();

    let t = Instant::now();
    let parsed = DomainSet::parse(&text);
    let load = t.elapsed();
    let set = parsed.block;
    assert_eq!(set.len(), n);
    drop(text);
    let after = rss_mb();
    println!(
        "parse + build: {load:?}; held {:.1} MB ({:.1} bytes a domain); resident {:.0} MB -> {:.0} MB with the list (text freed)",
        set.memory_bytes() as f64 / 1e6,
        set.memory_bytes() as f64 / n as f64,
        before,
        after
    );

    // Lookups: a name under a listed domain, and a name nobody lists.
    let probes: Vec<String> = (0..200_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("www.{}", names[rng.gen_range(0..names.len())])
            } else {
                format!("{}.example-not-listed.com", label(&mut rng, 8..9))
            }
        })
        .collect();
    let t = Instant::now();
    let hits = probes.iter().filter(|p| set.covering(p).is_some()).count();
    let took = t.elapsed();
    assert_eq!(hits, probes.len() / 2);
    println!(
        "lookups: {:.2} M/s on one core ({:.0} ns each; half under listed domains)",
        probes.len() as f64 / took.as_secs_f64() / 1e6,
        took.as_nanos() as f64 / probes.len() as f64
    );

    // The ruled-out structure, for comparison.
    let base = rss_mb();
    let t = Instant::now();
    let hs: std::collections::HashSet<String> = names.iter().cloned().collect();
    let hs_build = t.elapsed();
    let hs_mb = rss_mb() - base;
    let t = Instant::now();
    let hs_hits = probes
        .iter()
        .filter(|p| {
            let mut rest = p.as_str();
            loop {
                if hs.contains(rest) {
                    return true;
                }
                match rest.split_once('.') {
                    Some((_, r)) => rest = r,
                    None => return false,
                }
            }
        })
        .count();
    let hs_took = t.elapsed();
    assert_eq!(hs_hits, hits);
    println!(
        "HashSet<String> of the same names: built in {hs_build:?} (from owned strings), ~{hs_mb:.0} MB resident, lookups {:.2} M/s",
        probes.len() as f64 / hs_took.as_secs_f64() / 1e6
    );
    Ok(())
}
