//! `dns blocklist add|list|remove`, `dns requests|allow|approve|test`, and the loader `serve`
//! uses to build the resolver's filter from the database and the lists' sources.

use super::{parse_date_arg, Ctx};
use crate::cli::{BlocklistCommand, DnsCommand};
use crate::output::{json, kv, table};
use anyhow::{bail, Context, Result};
use frontdesk_core::store::dns::Scope;
use frontdesk_core::store::{Actor, Store};
use frontdesk_dns::blocklist::DomainSet;
use frontdesk_dns::policy::{Client, Exceptions, Filter, List, Verdict};
use frontdesk_dns::resolver::Outcome;
use frontdesk_dns::server::Seen;
use serde_json::json;
use std::collections::HashMap;

/// What loading one list came to.
pub struct Loaded {
    pub name: String,
    pub domains: usize,
    pub skipped: usize,
    pub error: Option<String>,
}

/// Reads a list's source: a file, or an http(s) URL (fetched now).
async fn read_source(source: &str) -> Result<String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let r = client.get(source).send().await?.error_for_status()?;
        Ok(r.text().await?)
    } else {
        tokio::fs::read_to_string(source)
            .await
            .with_context(|| format!("reading {source}"))
    }
}

/// The resolver's filter: every list from its source (parsed off the async threads), the
/// approved exceptions still in force.
pub async fn load_filter(
    store: &Store,
    default_plan: Option<String>,
    unfiltered: Vec<String>,
) -> Result<(Filter, Vec<Loaded>)> {
    let mut lists = Vec::new();
    let mut report = Vec::new();
    for b in store.blocklists().await? {
        match read_source(&b.source).await {
            Ok(text) => {
                let parsed = tokio::task::spawn_blocking(move || DomainSet::parse(&text)).await?;
                if let Err(e) = store
                    .record_blocklist_load(&b.name, Some(parsed.block.len()), None)
                    .await
                {
                    tracing::debug!(error = %e, list = %b.name, "DNS: list load not recorded");
                }
                report.push(Loaded {
                    name: b.name.clone(),
                    domains: parsed.block.len(),
                    skipped: parsed.skipped,
                    error: None,
                });
                lists.push(List {
                    name: b.name,
                    block: parsed.block,
                    allow: parsed.allow,
                    plans: b.plans,
                });
            }
            Err(e) => {
                let error = format!("{e:#}");
                let _ = store
                    .record_blocklist_load(&b.name, None, Some(&error))
                    .await;
                report.push(Loaded {
                    name: b.name,
                    domains: 0,
                    skipped: 0,
                    error: Some(error),
                })
            }
        }
    }
    let catalog = store.catalog().await?;
    let today = catalog.site.date_at(frontdesk_core::clock::now());
    let mut everyone = Vec::new();
    let mut plans: HashMap<String, Vec<String>> = HashMap::new();
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for e in store.exceptions(Some("approved")).await? {
        if e.valid_until.is_some_and(|d| d < today) {
            continue;
        }
        match e.scope {
            Scope::Everyone => everyone.push(e.domain),
            Scope::Plan(p) => plans.entry(p).or_default().push(e.domain),
            Scope::Member(m) => members.entry(m).or_default().push(e.domain),
        }
    }
    let set = |v: Vec<String>| DomainSet::from_names(v);
    let exceptions = Exceptions {
        everyone: set(everyone),
        plans: plans.into_iter().map(|(k, v)| (k, set(v))).collect(),
        members: members.into_iter().map(|(k, v)| (k, set(v))).collect(),
    };
    let default_plan =
        default_plan.or_else(|| catalog.plan_by_name("guest").map(|p| p.name.clone()));
    Ok((
        Filter::new(lists, exceptions, default_plan, unfiltered),
        report,
    ))
}

fn plans_arg(s: &str) -> Vec<String> {
    if s.trim() == "all" {
        Vec::new()
    } else {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

pub async fn dns(ctx: &Ctx, cmd: DnsCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        DnsCommand::Blocklist(BlocklistCommand::Add {
            name,
            source,
            plans,
        }) => {
            // Read it now: a typo in the path is reported here, not at 2 a.m. in the log.
            let text = read_source(&source).await?;
            let parsed = DomainSet::parse(&text);
            if parsed.block.is_empty() {
                bail!("{source}: no domains found (hosts, one-domain-per-line and ||domain^ formats are read)");
            }
            let source = if source.contains("://") {
                source
            } else {
                std::fs::canonicalize(&source)?.display().to_string()
            };
            let b = store
                .add_blocklist(&name, &source, &plans_arg(&plans), actor)
                .await?;
            store
                .record_blocklist_load(&b.name, Some(parsed.block.len()), None)
                .await?;
            if ctx.json {
                json(
                    &json!({"name": b.name, "source": b.source, "plans": b.plans,
                    "domains": parsed.block.len(), "skipped": parsed.skipped}),
                );
            } else {
                kv(&[
                    ("name", b.name.clone()),
                    ("source", b.source.clone()),
                    (
                        "plans",
                        if b.plans.is_empty() {
                            "all".into()
                        } else {
                            b.plans.join(",")
                        },
                    ),
                    ("domains", parsed.block.len().to_string()),
                    ("rules left out", parsed.skipped.to_string()),
                ]);
            }
        }
        DnsCommand::Blocklist(BlocklistCommand::List) => {
            // As the last load found them (the resolver re-reads lists daily and on changes):
            // no list is downloaded or parsed here.
            let lists = store.blocklists().await?;
            if ctx.json {
                json(&lists);
            } else {
                let tz = store.catalog().await?.site.tz();
                table(
                    &["NAME", "PLANS", "DOMAINS", "LOADED", "PROBLEM", "SOURCE"],
                    &lists
                        .iter()
                        .map(|b| {
                            vec![
                                b.name.clone(),
                                if b.plans.is_empty() {
                                    "all".into()
                                } else {
                                    b.plans.join(",")
                                },
                                b.domains.map_or("-".into(), |n| n.to_string()),
                                b.loaded_at.map_or("not yet".into(), |t| {
                                    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
                                }),
                                b.load_error.clone().unwrap_or_default(),
                                b.source.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        DnsCommand::Blocklist(BlocklistCommand::Remove { name }) => {
            store.remove_blocklist(&name, actor).await?;
            if !ctx.json {
                println!("blocklist {name} removed");
            }
        }
        DnsCommand::Requests { all } => {
            let list = store
                .exceptions(if all { None } else { Some("pending") })
                .await?;
            if ctx.json {
                json(&list);
            } else {
                table(
                    &["ID", "DOMAIN", "FOR", "STATUS", "UNTIL", "LIST", "REASON"],
                    &list
                        .iter()
                        .map(|e| {
                            vec![
                                e.id.to_string(),
                                e.domain.clone(),
                                match &e.scope {
                                    Scope::Everyone => "everyone".into(),
                                    Scope::Plan(p) => format!("plan {p}"),
                                    Scope::Member(m) => format!("member {m}"),
                                },
                                e.status.clone(),
                                e.valid_until.map_or("-".into(), |d| d.to_string()),
                                e.list.clone().unwrap_or_default(),
                                e.reason.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        DnsCommand::Allow {
            domain,
            plan,
            member,
            until,
        } => {
            let scope = match (plan, member) {
                (Some(p), _) => Scope::Plan(p),
                (None, Some(m)) => Scope::Member(store.member(&m).await?.id),
                (None, None) => Scope::Everyone,
            };
            let until = until.as_deref().map(parse_date_arg).transpose()?;
            let e = store.allow_domain(&domain, &scope, until, actor).await?;
            if ctx.json {
                json(&e);
            } else {
                println!(
                    "{} allowed (exception #{}); resolvers pick it up within a second",
                    e.domain, e.id
                );
            }
        }
        DnsCommand::Approve {
            id,
            plan,
            everyone,
            until,
            deny,
        } => {
            let decision = if deny {
                None
            } else {
                let e = store.exception(id).await?;
                let scope = match (plan, everyone) {
                    (Some(p), _) => Scope::Plan(p),
                    (None, true) => Scope::Everyone,
                    (None, false) => e.scope,
                };
                Some((scope, until.as_deref().map(parse_date_arg).transpose()?))
            };
            let e = store.decide_exception(id, decision, actor).await?;
            if ctx.json {
                json(&e);
            } else {
                println!("exception #{} for {}: {}", e.id, e.domain, e.status);
            }
        }
        DnsCommand::Log {
            member,
            client,
            blocked,
            limit,
        } => {
            let member = match member {
                Some(m) => Some(store.member(&m).await?),
                None => None,
            };
            let lines = store
                .dns_log(&frontdesk_core::store::dns::QueryLogFilter {
                    client,
                    member: member.as_ref().map(|m| m.id.clone()),
                    blocked_only: blocked,
                    limit: limit.clamp(1, 100_000),
                })
                .await?;
            if ctx.json {
                json(&lines);
            } else {
                let tz = store.catalog().await?.site.tz();
                table(
                    &[
                        "TIME", "CLIENT", "PLAN", "MEMBER", "NAME", "TYPE", "RESULT", "LIST",
                    ],
                    &lines
                        .iter()
                        .map(|l| {
                            vec![
                                l.at.with_timezone(&tz)
                                    .format("%Y-%m-%d %H:%M:%S")
                                    .to_string(),
                                l.client.clone(),
                                l.plan.clone().unwrap_or_else(|| "-".into()),
                                l.member.clone().unwrap_or_else(|| "-".into()),
                                l.name.clone(),
                                frontdesk_dns::wire::type_name(l.qtype),
                                l.result.clone(),
                                l.list.clone().unwrap_or_default(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        DnsCommand::Test { name, plan } => {
            let (filter, report) =
                load_filter(&store, ctx.config.dns.default_policy.clone(), Vec::new()).await?;
            for l in report.iter().filter(|l| l.error.is_some()) {
                eprintln!(
                    "warning: blocklist {}: {}",
                    l.name,
                    l.error.as_deref().unwrap_or("")
                );
            }
            let verdict = filter.check(
                Client {
                    plan: plan.as_deref(),
                    member: None,
                },
                &name,
            );
            let (result, list, domain) = match &verdict {
                Verdict::Pass => ("resolves", None, None),
                Verdict::Canary => ("nxdomain (DoH canary: the network filters DNS)", None, None),
                Verdict::Block { list, domain } => {
                    ("blocked", Some(list.to_string()), Some(domain.clone()))
                }
            };
            if ctx.json {
                json(
                    &json!({"name": name, "plan": plan, "result": result.split(' ').next(),
                    "list": list, "listed": domain}),
                );
            } else {
                match (list, domain) {
                    (Some(l), Some(d)) => println!("{name}: blocked by list {l} (listed: {d})"),
                    _ => println!("{name}: {result}"),
                }
            }
        }
    }
    Ok(())
}

/// Client address → (plan, member): RADIUS sessions that reported the address
/// (Framed-IP-Address) first, then the configured subnets (one per tier's VLAN).
pub struct Clients {
    subnets: Vec<(ipnet::IpNet, String)>,
    sessions: std::sync::RwLock<HashMap<std::net::IpAddr, (Option<String>, String)>>,
}

impl frontdesk_dns::server::ClientMap for Clients {
    fn client(&self, ip: std::net::IpAddr) -> (Option<String>, Option<String>) {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(std::net::IpAddr::V6(v6)),
            v4 => v4,
        };
        if let Some((plan, member)) = self.sessions.read().expect("clients lock").get(&ip) {
            return (plan.clone(), Some(member.clone()));
        }
        let plan = self
            .subnets
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, p)| p.clone());
        (plan, None)
    }
}

impl Clients {
    /// Re-reads the online sessions' addresses and their members' plans.
    async fn refresh(&self, store: &Store) -> Result<()> {
        let now = frontdesk_core::clock::now();
        let sessions = store
            .sessions(Some(now - frontdesk_core::enforce::ONLINE_HORIZON), 100_000)
            .await?;
        let catalog = store.catalog().await?;
        let today = catalog.site.date_at(now);
        let mut map = HashMap::new();
        let mut plans: HashMap<String, Option<String>> = HashMap::new();
        for s in sessions {
            let (Some(ip), Some(member)) = (
                s.framed_ip.as_deref().and_then(|i| i.parse().ok()),
                s.member_id.clone(),
            ) else {
                continue;
            };
            if !plans.contains_key(&member) {
                let plan = match store.member(&member).await {
                    Ok(m) => m
                        .assignment_on(today)
                        .or(m.assignments.last())
                        .and_then(|a| catalog.plan(a.plan_id))
                        .map(|p| p.name.clone()),
                    Err(_) => None,
                };
                plans.insert(member.clone(), plan);
            }
            map.insert(ip, (plans[&member].clone(), member));
        }
        *self.sessions.write().expect("clients lock") = map;
        Ok(())
    }
}

/// The portal's view of what the resolver blocks (its block page): set once the resolver
/// runs; answers "not blocked" until then or without protective DNS.
#[derive(Default)]
pub struct Blocks(
    std::sync::OnceLock<(
        std::sync::Arc<frontdesk_dns::resolver::Resolver>,
        std::sync::Arc<Clients>,
    )>,
);

impl frontdesk_core::ports::DnsBlocks for Blocks {
    fn blocked(&self, client: std::net::IpAddr, host: &str) -> Option<(String, String)> {
        use frontdesk_dns::server::ClientMap;
        let (resolver, clients) = self.0.get()?;
        let (plan, member) = clients.client(client);
        let filter = resolver.filter();
        match filter.check(
            Client {
                plan: plan.as_deref(),
                member: member.as_deref(),
            },
            host,
        ) {
            Verdict::Block { list, domain } => Some((list.to_string(), domain)),
            _ => None,
        }
    }
}

impl Blocks {
    /// The running resolver (metrics read its counters).
    pub fn resolver(&self) -> Option<std::sync::Arc<frontdesk_dns::resolver::Resolver>> {
        self.0.get().map(|(r, _)| r.clone())
    }
}

/// One per process: `serve` hands it to the portal before the resolver starts.
pub fn blocks() -> std::sync::Arc<Blocks> {
    static BLOCKS: std::sync::OnceLock<std::sync::Arc<Blocks>> = std::sync::OnceLock::new();
    BLOCKS.get_or_init(Default::default).clone()
}

static VALIDATOR: std::sync::OnceLock<std::sync::Arc<frontdesk_dns::dnssec::Validator>> =
    std::sync::OnceLock::new();

/// The DNSSEC validator, when protective DNS runs with validation (for /metrics).
pub fn validator() -> Option<std::sync::Arc<frontdesk_dns::dnssec::Validator>> {
    VALIDATOR.get().cloned()
}

/// The running resolver, for reloads.
pub struct Running {
    pub resolver: std::sync::Arc<frontdesk_dns::resolver::Resolver>,
}

/// An upstream: `ADDR[:PORT]` (plain DNS, port 53) or `tls://ADDR[:PORT][#NAME]` (DNS over
/// TLS, port 853; the certificate must carry NAME, else the address). `tls_ca`: a PEM file
/// of CAs for DoT upstreams (default: the system's roots).
pub fn parse_upstream(u: &str, tls_ca: Option<&str>) -> Result<frontdesk_dns::server::Upstream> {
    let addr = |a: &str, port: u16| {
        a.parse::<std::net::SocketAddr>()
            .or_else(|_| {
                a.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .map(|ip| (ip, port).into())
            })
            .with_context(|| format!("upstream {u:?}: an IP address, optionally with port"))
    };
    match u.strip_prefix("tls://") {
        None => Ok(frontdesk_dns::server::Upstream::plain(addr(u, 53)?)),
        Some(rest) => {
            let (a, name) = rest.split_once('#').unwrap_or((rest, ""));
            let sa = addr(a, 853)?;
            let name = if name.is_empty() {
                sa.ip().to_string()
            } else {
                name.to_string()
            };
            let pem = tls_ca
                .map(|p| std::fs::read(p).with_context(|| format!("[dns] tls_ca {p}")))
                .transpose()?;
            let roots = frontdesk_dns::dot::roots(pem.as_deref()).map_err(anyhow::Error::msg)?;
            let dot = frontdesk_dns::dot::DotUpstream::new(sa, &name, roots)
                .map_err(|e| anyhow::anyhow!("upstream {u:?}: {e}"))?;
            Ok(frontdesk_dns::server::Upstream::Tls(std::sync::Arc::new(
                dot,
            )))
        }
    }
}

/// Starts protective DNS when `--dns` or `[dns] listen` is given.
pub async fn start(
    ctx: &Ctx,
    store: &Store,
    listen: Option<&str>,
    upstreams: &[String],
) -> Result<Option<Running>> {
    let cfg = &ctx.config.dns;
    let Some(listen) = listen.or(cfg.listen.as_deref()) else {
        return Ok(None);
    };
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--dns {listen:?}: an address with port, e.g. 10.0.30.1:53"))?;
    let ups: Vec<String> = if upstreams.is_empty() {
        cfg.upstreams.clone()
    } else {
        upstreams.to_vec()
    };
    if ups.is_empty() {
        bail!("protective DNS needs an upstream resolver: --dns-upstream ADDR or [dns] upstreams");
    }
    let ups = ups
        .iter()
        .map(|u| parse_upstream(u, cfg.tls_ca.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let subnets = cfg
        .subnets
        .iter()
        .map(|(net, plan)| {
            Ok((
                net.parse::<ipnet::IpNet>()
                    .with_context(|| format!("[dns] subnets: {net:?} is not a CIDR"))?,
                plan.clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let (filter, report) =
        load_filter(store, cfg.default_policy.clone(), cfg.unfiltered.clone()).await?;
    log_report(&report);
    let resolver = std::sync::Arc::new(frontdesk_dns::resolver::Resolver::new(
        frontdesk_dns::resolver::Config {
            block_v4: cfg.block_v4,
            block_v6: cfg.block_v6,
            nxdomain: cfg.nxdomain,
            ..Default::default()
        },
        filter,
    ));
    let clients = std::sync::Arc::new(Clients {
        subnets,
        sessions: Default::default(),
    });
    {
        let (clients, store) = (clients.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = clients.refresh(&store).await {
                    tracing::debug!(error = %e, "DNS: client addresses not refreshed");
                }
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
    }
    let _ = blocks().0.set((resolver.clone(), clients.clone()));
    {
        // Lists change at their source (a downloaded list is updated daily upstream).
        let (cfg, store, resolver) = (cfg.clone(), store.clone(), resolver.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                reload_with(&cfg, &store, &resolver).await;
            }
        });
    }
    let mode: frontdesk_dns::dnssec::Mode = cfg
        .dnssec
        .parse()
        .map_err(|e: String| anyhow::anyhow!("[dns] {e}"))?;
    let anchors = match &cfg.trust_anchor {
        None => frontdesk_dns::dnssec::Anchors::root(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("[dns] trust_anchor {path}"))?;
            frontdesk_dns::dnssec::Anchors::parse(&text)
                .map_err(|e| anyhow::anyhow!("[dns] trust_anchor {path}: {e}"))?
        }
    };
    let mut server = frontdesk_dns::server::Server::new(resolver.clone(), ups, clients)
        .with_dnssec(mode, anchors);
    if let Some(v) = &server.validator {
        let _ = VALIDATOR.set(v.clone());
    }
    let log = crate::dnslog::QueryLog::start(cfg, store.clone());
    server.observer = Some(std::sync::Arc::new(move |seen: Seen<'_>| {
        let plan = seen.plan.unwrap_or("-");
        // Per-query lines are debug only: the query log (with its privacy settings) and the
        // metrics carry them; an INFO line per blocked query would put every client's blocked
        // names in the journal whatever `[dns] log` says, at flood rates.
        if let Outcome::Blocked { list, domain } = seen.outcome {
            tracing::debug!(client = %seen.client, name = %seen.asked.name, %list, listed = %domain, plan, "DNS blocked");
        } else {
            tracing::debug!(client = %seen.client, name = %seen.asked.name, outcome = ?seen.outcome, plan, "DNS query");
        }
        if let Some(log) = &log {
            log.observe(&seen);
        }
    }));
    frontdesk_dns::server::listen(std::sync::Arc::new(server), addr).await?;
    Ok(Some(Running { resolver }))
}

fn log_report(report: &[Loaded]) {
    for l in report {
        match &l.error {
            None => {
                tracing::info!(list = %l.name, domains = l.domains, left_out = l.skipped, "DNS blocklist loaded")
            }
            Some(e) => {
                tracing::warn!(list = %l.name, error = %e, "DNS blocklist not loaded; resolving without it")
            }
        }
    }
}

/// Rebuilds the filter (lists, exceptions) and swaps it in; resolution never stops.
pub async fn reload(ctx: &Ctx, store: &Store, running: &Running) {
    reload_with(&ctx.config.dns, store, &running.resolver).await
}

async fn reload_with(
    cfg: &crate::config::DnsConfig,
    store: &Store,
    resolver: &frontdesk_dns::resolver::Resolver,
) {
    match load_filter(store, cfg.default_policy.clone(), cfg.unfiltered.clone()).await {
        Ok((filter, report)) => {
            log_report(&report);
            resolver.set_filter(filter);
        }
        Err(e) => tracing::warn!(error = %e, "DNS: filter not reloaded; keeping the previous one"),
    }
}

/// How often lists are read again from their sources (URL lists are downloaded then).
const REFRESH: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
