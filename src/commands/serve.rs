//! `serve`: opens the database, keeps the in-memory catalog fresh from the change feed, and
//! (as later issues land) runs RADIUS, the console, the portal, the scheduler and door sync.

use super::{site_today, Ctx};
use crate::cli::ServeArgs;
use crate::config::{LogFormat, Mode};
use crate::output::json;
use anyhow::{bail, Context, Result};
use frontdesk_core::model::{parse_cidr, Role, Vendor};
use frontdesk_core::ports::ChangeFeed;
use frontdesk_core::ports::{ClientAuthorizer, ClientRef, Disconnector};
use frontdesk_core::scheduler::{Alarm, Scheduler};
use frontdesk_core::store::{self, Actor, NewMember, NewNas, Store};
use frontdesk_firewall::clients::NftAuthorizer;
use frontdesk_firewall::conntrack::Conntrack;
use frontdesk_firewall::neigh::NeighbourLocator;
use frontdesk_firewall::Nft;
use frontdesk_portal::{Portal, PortalSettings};
use frontdesk_radius::directory::Directory;
use frontdesk_radius::eap::{pki, EapServer, EapSettings};
use frontdesk_radius::handler::HandlerConfig;
use frontdesk_radius::server::Listeners;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{info, warn};

type LogFilter =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// `[log] level`, with hickory-proto's DNSSEC validator quietened to errors unless the level
/// names it: it warns about every DS answer from an unsigned zone ("does not contain NSEC"),
/// which is the normal case for most names; our own lines say what matters (bogus answers).
fn level_filter(level: &str) -> tracing_subscriber::EnvFilter {
    if level.contains("hickory") {
        tracing_subscriber::EnvFilter::new(level)
    } else {
        tracing_subscriber::EnvFilter::new(format!("{level},hickory_proto=error"))
    }
}

/// Logging to stderr (text or JSON); the level filter can be replaced on SIGHUP.
fn init_logging(ctx: &Ctx) -> Option<LogFilter> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| level_filter(&ctx.config.log.level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    let done = match ctx.config.log.format {
        LogFormat::Json => registry.with(fmt.json()).try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
    done.ok().map(|()| handle)
}

/// SIGHUP: reads the configuration file again. The log level applies at once (unless
/// RUST_LOG is set); other sections are compared and named if they changed, since they are
/// read at start. A file that no longer parses changes nothing.
/// The `[radius]` settings that apply without a restart.
struct RadiusTunables {
    max_session: u32,
    reject_reply_message: bool,
    disconnect_oldest: bool,
    nas_rate_limit: u32,
}

fn radius_tunables(c: &crate::config::RadiusConfig) -> Result<RadiusTunables> {
    let max_session = humantime::parse_duration(&c.max_session)
        .with_context(|| format!("radius.max_session {:?}: use e.g. \"12h\"", c.max_session))?
        .as_secs()
        .clamp(60, u64::from(u32::MAX)) as u32;
    Ok(RadiusTunables {
        max_session,
        reject_reply_message: c.reject_reply_message,
        disconnect_oldest: matches!(
            c.device_limit_action,
            crate::config::DeviceLimitAction::DisconnectOldest
        ),
        nas_rate_limit: c.nas_rate_limit,
    })
}

fn reload_config(ctx: &Ctx, log: Option<&LogFilter>, radius: &frontdesk_radius::server::Shared) {
    crate::systemd::notify("RELOADING=1");
    let Some(path) = &ctx.config_path else {
        info!("SIGHUP: no configuration file (--config / FRONTDESK_CONFIG); nothing to reload");
        crate::systemd::notify("READY=1");
        return;
    };
    match crate::config::Config::load(path) {
        Err(e) => warn!(error = %e, "SIGHUP: configuration not reloaded"),
        Ok(new) => {
            if std::env::var_os("RUST_LOG").is_none() {
                if let Some(h) = log {
                    match h.reload(level_filter(&new.log.level)) {
                        Ok(()) => info!(level = %new.log.level, "SIGHUP: log level applied"),
                        Err(e) => warn!(error = %e, "SIGHUP: log level not applied"),
                    }
                }
            }
            // Session-Timeout cap, reject reasons, device-limit action, NAS rate limit: from
            // the next request on.
            match radius_tunables(&new.radius) {
                Ok(t) => {
                    radius.reconfigure(
                        t.max_session,
                        t.reject_reply_message,
                        t.disconnect_oldest,
                        t.nas_rate_limit,
                    );
                    info!(
                        max_session = t.max_session,
                        reject_reply_message = t.reject_reply_message,
                        device_limit_action = ?new.radius.device_limit_action,
                        nas_rate_limit = t.nas_rate_limit,
                        "SIGHUP: [radius] settings applied"
                    );
                }
                Err(e) => warn!(error = %format!("{e:#}"), "SIGHUP: [radius] settings not applied"),
            }
            let old = &ctx.config;
            let mut restart = Vec::new();
            for (name, a, b) in [
                ("mode", format!("{:?}", old.mode), format!("{:?}", new.mode)),
                (
                    "database",
                    format!("{:?}", old.database),
                    format!("{:?}", new.database),
                ),
                (
                    "radius.auth_listen",
                    old.radius.auth_listen.clone(),
                    new.radius.auth_listen.clone(),
                ),
                (
                    "radius.acct_listen",
                    old.radius.acct_listen.clone(),
                    new.radius.acct_listen.clone(),
                ),
                ("eap", format!("{:?}", old.eap), format!("{:?}", new.eap)),
                ("http", format!("{:?}", old.http), format!("{:?}", new.http)),
                (
                    "portal",
                    format!("{:?}", old.portal),
                    format!("{:?}", new.portal),
                ),
                (
                    "gateway",
                    format!("{:?}", old.gateway),
                    format!("{:?}", new.gateway),
                ),
                ("dns", format!("{:?}", old.dns), format!("{:?}", new.dns)),
                ("mail", format!("{:?}", old.mail), format!("{:?}", new.mail)),
                (
                    "backup",
                    format!("{:?}", old.backup),
                    format!("{:?}", new.backup),
                ),
                (
                    "log.format",
                    format!("{:?}", old.log.format),
                    format!("{:?}", new.log.format),
                ),
            ] {
                if a != b {
                    restart.push(name);
                }
            }
            if restart.is_empty() {
                info!("SIGHUP: configuration reloaded");
            } else {
                warn!(sections = %restart.join(", "), "SIGHUP: these changed and apply at the next restart (systemctl restart frontdesk)");
            }
        }
    }
    crate::systemd::notify("READY=1");
}

fn listen_addr(flag: &Option<String>, configured: &str, what: &str) -> Result<SocketAddr> {
    let text = flag.as_deref().unwrap_or(configured);
    text.parse().with_context(|| {
        format!("malformed {what} listen address {text:?}: use e.g. [::]:1812 or 127.0.0.1:8080")
    })
}

pub async fn serve(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let log_filter = init_logging(ctx);
    let radius_auth = listen_addr(
        &args.radius_auth,
        &ctx.config.radius.auth_listen,
        "RADIUS auth",
    )?;
    let radius_acct = listen_addr(
        &args.radius_acct,
        &ctx.config.radius.acct_listen,
        "RADIUS accounting",
    )?;
    let http = listen_addr(&args.http, &ctx.config.http.listen, "console")?;
    let portal = listen_addr(&args.portal, &ctx.config.portal.listen, "portal")?;

    // --demo without an explicit database gets a throwaway one in a temporary directory.
    let (demo_ctx, _demo_dir);
    let ctx = if args.demo && !ctx.db_explicit {
        let dir = tempfile::Builder::new()
            .prefix("frontdesk-demo-")
            .tempdir()?;
        demo_ctx = Ctx {
            config: ctx.config.clone(),
            db_url: format!("sqlite:{}", dir.path().join("frontdesk.db").display()),
            json: ctx.json,
            db_explicit: true,
            config_path: ctx.config_path.clone(),
        };
        _demo_dir = Some(dir);
        &demo_ctx
    } else {
        _demo_dir = None;
        ctx
    };
    let start = if args.demo {
        Start::Live(seed_demo(ctx).await?)
    } else {
        open_or_cache(ctx).await?
    };

    // The RADIUS index is the one full load of members; the startup summary comes from it.
    // With a shared PostgreSQL every load also refreshes the offline cache.
    let (store, pki, directory, mut cache, offline_since) = match start {
        Start::Live(store) => {
            let (pki, created) = super::cert::load_or_create(ctx, &store).await?;
            if created {
                info!(server_name = %pki.server_name, "created a private CA and EAP server certificate");
            }
            let cache = cache_writer(ctx, &store)?.map(|w| (w, pki.clone()));
            let directory = load_directory(&store, cache.as_ref()).await?;
            (store, pki, directory, cache, None)
        }
        Start::Offline(store, snapshot) => {
            let pki = snapshot
                .pki()
                .cloned()
                .context("the offline cache holds no EAP certificate")?;
            let directory = snapshot.directory()?;
            (store, pki, directory, None, Some(snapshot.written_at))
        }
    };
    let catalog = directory.catalog();
    info!(
        site = %catalog.site.name,
        timezone = catalog.site.tz().name(),
        database = %store::redact_url(store.url()),
        members = directory.member_count(),
        active = directory.active_member_count(),
        plans = catalog.plans.len(),
        nas = directory.nas_clients().len(),
        "{}",
        if offline_since.is_some() { "entitlements from the offline cache" } else { "database open" }
    );
    let (catalog_tx, catalog_rx) =
        tokio::sync::watch::channel(std::sync::Arc::new(catalog.clone()));
    let listeners = Listeners::bind(radius_auth, radius_acct).with_context(|| format!("cannot listen for RADIUS on {radius_auth} / {radius_acct} (port in use, or binding below 1024 needs CAP_NET_BIND_SERVICE)"))?;
    let tunables = radius_tunables(&ctx.config.radius)?;
    let eap_cfg = &ctx.config.eap;
    let tunnel = pki::tunnel_config(&pki, false)
        .context("EAP certificate or key unusable ([eap] cert_file / key_file)")?;
    // EAP-TLS trusts client certificates from Frontdesk's own CA only.
    let eap_tls = if pki.ca_key.is_empty() {
        None
    } else {
        Some(pki::eap_tls_config(&pki).context("EAP-TLS configuration")?)
    };
    info!(
        server_name = %pki.server_name,
        ca_sha256 = %pki::fingerprint(&pki.ca_cert).unwrap_or_default(),
        eap_tls = eap_tls.is_some(),
        "802.1X ready: PEAP-MSCHAPv2, TTLS-PAP, TTLS-MSCHAPv2{}",
        if eap_tls.is_some() { ", EAP-TLS" } else { "" }
    );
    let mut eap = EapServer::new(
        tunnel,
        eap_tls,
        EapSettings {
            fragment_size: usize::from(eap_cfg.fragment_size),
            server_name: pki.server_name.clone(),
            ..EapSettings::default()
        },
    );
    if eap_cfg.peap_tls13 || eap_cfg.ttls_tls13 {
        let tunnel13 = pki::tunnel_config(&pki, true).context("EAP TLS 1.3 configuration")?;
        eap = eap.with_tls13(tunnel13, eap_cfg.peap_tls13, eap_cfg.ttls_tls13);
        info!(
            peap = eap_cfg.peap_tls13,
            ttls = eap_cfg.ttls_tls13,
            "PEAP/TTLS offer TLS 1.3 (RFC 9427)"
        );
    }
    let handler_config = HandlerConfig {
        max_session: tunables.max_session,
        reject_reply_message: tunables.reject_reply_message,
        eap: Some(std::sync::Arc::new(eap)),
        disconnect_oldest: tunables.disconnect_oldest,
    };
    let radius = frontdesk_radius::server::start(
        store.clone(),
        directory,
        handler_config,
        tunables.nas_rate_limit,
        listeners,
        Some(ctx.config.state_dir().join("accounting.spool")),
    )
    .await?;
    frontdesk_radius::directory::release_free_memory();

    // A stray SIGHUP (`systemctl reload`, a closed terminal) must not stop RADIUS, also while
    // it waits for the database below (signals then are handled once it is up).
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("SIGHUP handler")?;
    // Started from the offline cache: RADIUS answers while everything else waits for the
    // database (the console, portal, scheduler and door sync all need it).
    let store = match offline_since {
        None => store,
        Some(written) => {
            crate::systemd::notify(
                "READY=1\nSTATUS=RADIUS from the offline cache; waiting for the database",
            );
            warn!(
                cache_written = %written,
                "database unreachable: RADIUS authenticates from the offline cache and accounting is spooled to disk; the console, portal, scheduler and door sync start when the database answers"
            );
            let Some(live) = wait_for_database(ctx).await else {
                crate::systemd::notify("STOPPING=1");
                drain(&radius).await;
                store.close().await;
                info!("stopped");
                return Ok(());
            };
            cache = cache_writer(ctx, &live)?.map(|w| (w, pki.clone()));
            match load_directory(&live, cache.as_ref()).await {
                Ok(fresh) => {
                    info!(
                        members = fresh.member_count(),
                        "database reachable again: entitlements reloaded"
                    );
                    let _ = catalog_tx.send(Arc::new(fresh.catalog().clone()));
                    radius.replace_directory(fresh);
                }
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "database reachable again but the reload failed; the change feed will retry")
                }
            }
            live
        }
    };

    let mut gateway = match ctx.config.mode {
        Mode::Gateway => Some(
            start_gateway(
                ctx,
                &store,
                portal,
                catalog_rx.clone(),
                radius.alarm.clone(),
            )
            .await?,
        ),
        Mode::RadiusOnly => None,
    };
    // Radius-only: the portal is the controller's external portal, and guests are let out
    // (and at closing time taken back) through the controller's API.
    let controllers = match ctx.config.mode {
        Mode::Gateway => None,
        Mode::RadiusOnly => {
            let c = Arc::new(frontdesk_sync::controllers::ControllerAuthorizer::new(
                store.clone(),
            ));
            c.reload().await;
            if c.is_empty() {
                info!("radius-only mode: no Wi-Fi controller configured yet (frontdesk controller add); the external portal answers but cannot let guests out");
            }
            start_portal(
                ctx,
                &store,
                portal,
                catalog_rx.clone(),
                c.clone(),
                Arc::new(NoLocator),
                "controller external portal",
            )
            .await?;
            Some(c)
        }
    };

    // Live enforcement: a member suspended, cancelled or moved to a plan without Wi-Fi now is
    // disconnected within a second of the change, whoever made it; the scheduler ends what
    // time ends (closing, plan and voucher ends) and re-plans on catalog changes.
    let nas_lookup: frontdesk_radius::disconnect::NasLookup = {
        let shared = radius.clone();
        Arc::new(move |id| {
            shared
                .directory
                .read()
                .ok()?
                .nas_clients()
                .iter()
                .find(|n| n.id == id)
                .cloned()
        })
    };
    let disconnector: Arc<dyn Disconnector> =
        Arc::new(frontdesk_radius::disconnect::RadiusDisconnector::new(
            nas_lookup.clone(),
            frontdesk_radius::disconnect::DisconnectSettings::default(),
        ));
    // NASes whose profile ends sessions through the controller (UniFi, Omada) get a kick
    // there when one is configured; RADIUS otherwise.
    let disconnector: Arc<dyn Disconnector> = match &controllers {
        Some(c) => Arc::new(ControllerFirst {
            radius: disconnector,
            controllers: c.clone(),
            nas: nas_lookup,
        }),
        None => disconnector,
    };
    // Set once every listener is bound and changes are followed: /readyz and sd_notify.
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let metrics: frontdesk_portal::health::Extra = {
        let radius = radius.clone();
        Arc::new(move |out: &mut String| {
            crate::metrics::radius(&radius, out);
            crate::metrics::dns(out);
        })
    };
    start_console(
        ctx,
        &store,
        http,
        disconnector.clone(),
        ready.clone(),
        metrics,
    )
    .await?;
    let mut scheduler = Scheduler::new(
        store.clone(),
        Arc::new(frontdesk_radius::server::SessionLookup(radius.clone())),
        disconnector.clone(),
        radius.alarm.clone(),
    );
    if let Some(c) = &controllers {
        scheduler.authorizer = Some(c.clone());
    }
    if let Some(g) = &gateway {
        scheduler.authorizer = Some(g.authorizer.clone());
        scheduler.networks = super::firewall::scheduled_networks(&ctx.config)?;
        scheduler.switch = Some(Arc::new(frontdesk_firewall::clients::NftSwitch(
            g.nft.clone(),
        )));
        for n in &scheduler.networks {
            info!(network = %n.iface, hours = %n.hours, "network switched off outside its hours");
        }
    }
    if let Some(mut evictions) = radius.take_evictions() {
        let (store, disconnector) = (store.clone(), disconnector.clone());
        tokio::spawn(async move {
            while let Some((nas_id, sid)) = evictions.recv().await {
                end_oldest_session(&store, disconnector.as_ref(), nas_id, &sid).await;
            }
        });
    }
    let (replan_tx, replan_rx) = tokio::sync::watch::channel(());
    tokio::spawn(scheduler.run(replan_rx));

    let doors = start_door_sync(&store);
    if args.demo {
        info!("demo: no nightly backups");
    } else {
        super::backup::start_nightly(ctx, store.clone())?;
    }
    let dns = super::dns::start(ctx, &store, args.dns.as_deref(), &args.dns_upstream).await?;
    let mut feed = store.follow_changes().await?;
    info!(seq = feed.last_seq(), "following changes");
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    crate::systemd::notify("READY=1\nSTATUS=serving");
    loop {
        tokio::select! {
            batch = feed.next_batch() => {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(error = %e, "change feed read failed; retrying in 1 s");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                for c in &batch {
                    info!(seq = c.seq, kind = %c.kind, object = %c.object, "change applied");
                }
                if let Some(c) = controllers.as_ref().filter(|_| batch.iter().any(|c| c.kind == "controller")) {
                    c.reload().await;
                }
                // Blocklists and exceptions (and plans, which lists name) reach the resolver.
                if let Some(d) = dns.as_ref().filter(|_| batch.iter().any(|c| matches!(c.kind.as_str(), "dns" | "plan"))) {
                    super::dns::reload(ctx, &store, d).await;
                }
                // Operator accounts, API tokens and controllers change nobody's access.
                if batch.iter().all(|c| matches!(c.kind.as_str(), "admin" | "api_token" | "member_login" | "controller" | "dns")) {
                    continue;
                }
                // Members changed one by one (suspend, cancel, set-plan): their sessions and
                // portal devices, at once. Anything else (hours, closures, plans, imports,
                // devices, vouchers) may move everyone: the scheduler re-decides all.
                let members: std::collections::BTreeSet<String> = batch
                    .iter()
                    .filter(|c| c.kind == "member")
                    .map(|c| c.object.clone())
                    .collect();
                // Doors first (a door system is a slow, rate-limited API): the changed members
                // now, everyone after a plan, map, backend, hours or import change.
                if batch.iter().any(|c| !matches!(c.kind.as_str(), "member" | "device" | "voucher" | "passphrase" | "controller" | "dns")) {
                    let _ = doors.send(None);
                } else if !members.is_empty() {
                    let _ = doors.send(Some(members.iter().cloned().collect()));
                }
                if let Some(g) = gateway.as_mut() {
                    g.refresh_blocked(&store).await;
                }
                match load_directory(&store, cache.as_ref()).await {
                    Ok(fresh) => {
                        tracing::debug!(members = fresh.member_count(), "RADIUS directory refreshed");
                        let _ = catalog_tx.send(Arc::new(fresh.catalog().clone()));
                        radius.replace_directory(fresh);
                        frontdesk_radius::directory::release_free_memory();
                    }
                    Err(e) => warn!(error = %e, "directory refresh failed; keeping the previous one"),
                }
                if !members.is_empty() {
                    let (store, disconnector) = (store.clone(), disconnector.clone());
                    let authorizer = gateway.as_ref().map(|g| g.authorizer.clone()).or_else(|| {
                        controllers.clone().map(|c| c as Arc<dyn ClientAuthorizer>)
                    });
                    tokio::spawn(async move {
                        enforce_member_changes(&store, &members, disconnector.as_ref(), authorizer.as_deref()).await
                    });
                }
                if batch.iter().any(|c| c.kind != "member") {
                    let _ = replan_tx.send(());
                }
            }
            _ = hangup.recv() => reload_config(ctx, log_filter.as_ref(), &radius),
            _ = shutdown_signal() => {
                info!("shutting down");
                ready.store(false, std::sync::atomic::Ordering::SeqCst);
                crate::systemd::notify("STOPPING=1");
                break;
            }
        }
    }
    drain(&radius).await;
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Accounting and auth-log records already queued are written before the database closes
/// (at most 5 s): a clean stop loses nothing that was acknowledged or logged.
async fn drain(radius: &frontdesk_radius::server::Shared) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while radius.queue_depths() != (0, 0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (acct, log) = radius.queue_depths();
    if (acct, log) != (0, 0) {
        warn!(
            accounting = acct,
            auth_log = log,
            "stopping with records still queued"
        );
    }
}

/// How `serve` begins: with the database, or (shared PostgreSQL unreachable) from the
/// offline cache with a store that connects when the database answers.
enum Start {
    Live(Store),
    Offline(Store, Box<crate::offline::Snapshot>),
}

async fn open_or_cache(ctx: &Ctx) -> Result<Start> {
    let path = crate::offline::path(&ctx.config.state_dir());
    // With a cache to fall back on, RADIUS should not wait long for a database that is gone
    // (after a power cut the access points come back fast); without one, waiting is all
    // there is.
    let cached = ctx.backend() == store::Backend::Postgres && path.exists();
    let opened = if cached {
        match ctx.open_within(std::time::Duration::from_secs(3)).await {
            // Reachable: open again with the usual patience for later waits.
            Ok(quick) => {
                quick.close().await;
                ctx.open().await
            }
            Err(e) => Err(e),
        }
    } else {
        ctx.open().await
    };
    let e = match opened {
        Ok(store) => return Ok(Start::Live(store)),
        Err(e) => e,
    };
    let unreachable = e
        .downcast_ref::<store::StoreError>()
        .is_some_and(Store::is_unreachable);
    if !unreachable || ctx.backend() != store::Backend::Postgres {
        return Err(e);
    }
    if !path.exists() {
        return Err(e.context(format!(
            "the database is unreachable and there is no offline cache ({}) to start from: it is written by `serve` once it has reached the database",
            path.display()
        )));
    }
    warn!(error = %format!("{e:#}"), cache = %path.display(), "database unreachable at start; using the offline cache");
    let key = frontdesk_core::secrets::SecretKey::load(&ctx.key_path())?;
    let snapshot = crate::offline::read(&path, &key)
        .context("the database is unreachable and the offline cache cannot be used")?;
    let site = ctx.site();
    if site
        .as_deref()
        .is_some_and(|s| s.trim() != snapshot.site_name())
    {
        bail!(
            "the database is unreachable and the offline cache is for site {:?}, not {:?}",
            snapshot.site_name(),
            site.unwrap_or_default()
        );
    }
    let store = Store::offline(&ctx.db_url, key, site.as_deref())?;
    Ok(Start::Offline(store, Box::new(snapshot)))
}

/// Tries the database every 2 s until it opens; `None` when asked to stop first.
async fn wait_for_database(ctx: &Ctx) -> Option<Store> {
    let mut tries = 0u32;
    loop {
        tokio::select! {
            _ = shutdown_signal() => {
                info!("shutting down");
                return None;
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
        match ctx.open().await {
            Ok(store) => return Some(store),
            Err(e) => {
                tries += 1;
                // Once a minute is enough at 2 a.m.
                if tries % 30 == 1 {
                    warn!(error = %format!("{e:#}"), "database still unreachable");
                }
            }
        }
    }
}

type Cache = (crate::offline::Writer, frontdesk_radius::eap::pki::Pki);

/// The offline cache writer when the database is a shared PostgreSQL (a SQLite file is
/// already on this box: no cache).
fn cache_writer(ctx: &Ctx, store: &Store) -> Result<Option<crate::offline::Writer>> {
    if store.backend() != store::Backend::Postgres {
        return Ok(None);
    }
    let key = frontdesk_core::secrets::SecretKey::load(&ctx.key_path())?;
    Ok(Some(crate::offline::Writer::start(
        crate::offline::path(&ctx.config.state_dir()),
        key,
        std::time::Duration::from_secs(2),
    )))
}

/// The RADIUS index from the database, and with PostgreSQL a fresh offline cache.
async fn load_directory(store: &Store, cache: Option<&Cache>) -> Result<Directory> {
    match cache {
        None => Ok(Directory::load(store).await?),
        Some((writer, pki)) => {
            let snap = crate::offline::Snapshot::load(store).await?.with_pki(pki);
            // Vouchers are not cached: without the database the portal cannot redeem them
            // either.
            let directory = snap.directory()?.with_stored_vouchers(store).await?;
            writer.save(snap);
            Ok(directory)
        }
    }
}

/// The console's default certificate (sealed in the database, reissued when the listen address
/// changes or it has under 30 days left): signed by Frontdesk's CA, for this host's name and
/// the listen address.
async fn default_console_tls(
    ctx: &Ctx,
    store: &Store,
    addr: SocketAddr,
) -> Result<Arc<frontdesk_portal::tls::ServerConfig>> {
    const KEY: &str = "console_tls";
    // /proc/sys is hidden under the unit's ProcSubset=pid: /etc/hostname then.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "frontdesk".into());
    let dns = vec![host.clone(), format!("{host}.local"), "localhost".into()];
    let ips: Vec<std::net::IpAddr> = if addr.ip().is_unspecified() {
        vec![]
    } else {
        vec![addr.ip()]
    };
    let want = format!("{dns:?} {ips:?}");
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        names: String,
        cert: String,
        key: String,
        not_after: i64,
    }
    let now = frontdesk_core::clock::now().timestamp();
    let stored: Option<Stored> = store
        .sealed_meta(KEY)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .filter(|s: &Stored| s.names == want && s.not_after - now > 30 * 86_400);
    let (cert, key, fresh) = match stored {
        Some(s) => (s.cert, s.key, false),
        None => {
            let (pki, _) = super::cert::load_or_create(ctx, store).await?;
            let c = frontdesk_radius::eap::pki::issue_web_server(Some(&pki), &dns, &ips)?;
            let s = Stored {
                names: want,
                cert: c.cert_pem.clone(),
                key: c.key_pem.clone(),
                not_after: now + 397 * 86_400,
            };
            store
                .set_sealed_meta(KEY, &serde_json::to_string(&s)?)
                .await?;
            (c.cert_pem, c.key_pem, true)
        }
    };
    let fp = frontdesk_radius::eap::pki::fingerprint(&cert).unwrap_or_default();
    info!(
        fresh,
        names = %dns.join(","),
        sha256 = %fp,
        "console: HTTPS with a certificate from Frontdesk's CA (trust the CA from `frontdesk cert show`, or set [http] tls_cert_file / tls_key_file)"
    );
    frontdesk_portal::tls::server_config_pem(
        cert.as_bytes(),
        "console certificate",
        key.as_bytes(),
        "console key",
    )
    .map_err(anyhow::Error::msg)
}

/// The operator console on `[http] listen` (HTTPS with `[http] tls_cert_file` / `tls_key_file`).
async fn start_console(
    ctx: &Ctx,
    store: &Store,
    addr: SocketAddr,
    disconnector: Arc<dyn Disconnector>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    metrics: frontdesk_portal::health::Extra,
) -> Result<()> {
    let tls = match (
        &ctx.config.http.tls_cert_file,
        &ctx.config.http.tls_key_file,
    ) {
        (Some(cert), Some(key)) => Some(frontdesk_portal::tls::server_config(cert, key).map_err(
            |e| anyhow::anyhow!("console TLS ([http] tls_cert_file / tls_key_file): {e}"),
        )?),
        // On a network address, never plain HTTP by accident: a certificate from our CA.
        (None, None) if ctx.config.http.serves_https(&addr) => {
            Some(default_console_tls(ctx, store, addr).await?)
        }
        (None, None) => None,
        _ => bail!("[http]: set both tls_cert_file and tls_key_file, or neither"),
    };
    let public_url = match &ctx.config.http.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let url = format!("{scheme}://{addr}");
            if addr.ip().is_unspecified() {
                warn!(%url, "[http] public_url is not set and the console listens on every address: member sign-in links will not work until it is set");
            }
            url
        }
    };
    let app = frontdesk_portal::console::Console::new(
        store.clone(),
        frontdesk_portal::console::ConsoleSettings {
            tls: tls.is_some(),
            public_url,
            guest_plan: ctx.config.portal.guest_plan.clone(),
            ..Default::default()
        },
    )
    .with_disconnector(disconnector.clone())
    .with_mailer(mailer(ctx)?)
    .router()
    .merge(frontdesk_portal::api::Api::new(store.clone(), Some(disconnector)).router())
    .merge(frontdesk_portal::health::router(
        store.clone(),
        ready,
        metrics,
    ));
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the console on {addr} (--http)"))?;
    let local = tcp.local_addr().unwrap_or(addr);
    match tls {
        Some(tls) => {
            let listener = frontdesk_portal::tls::TlsListener::new(tcp, tls)?;
            info!(addr = %local, "operator console listening (HTTPS)");
            tokio::spawn(async move {
                if let Err(e) =
                    frontdesk_portal::tls::serve(listener, app, std::future::pending()).await
                {
                    warn!(error = %e, "console stopped");
                }
            });
        }
        None => {
            if !local.ip().is_loopback() {
                warn!(addr = %local, "the console is served over plain HTTP on a network address ([http] plain_http = true): make sure a TLS proxy is in front");
            }
            info!(addr = %local, "operator console listening");
            tokio::spawn(async move {
                if let Err(e) = frontdesk_portal::serve(tcp, app, std::future::pending()).await {
                    warn!(error = %e, "console stopped");
                }
            });
        }
    }
    Ok(())
}

/// Device limit (`[radius] device_limit_action = "disconnect-oldest"`): ends the session a
/// new device replaced; audited on the member as `session.disconnect reason=device-limit`.
async fn end_oldest_session(
    store: &Store,
    disconnector: &dyn Disconnector,
    nas_id: i64,
    sid: &str,
) {
    let session = match store.session_by_key(nas_id, sid).await {
        Ok(Some(s)) if s.stopped_at.is_none() => s,
        Ok(_) => return,
        Err(e) => {
            warn!(error = %e, session = %sid, "device limit: cannot read the session to end");
            return;
        }
    };
    let end = frontdesk_core::enforce::SessionEnd {
        session,
        reason: frontdesk_core::Reason::DeviceLimit,
        note: None,
    };
    match frontdesk_core::enforce::end_sessions(
        store,
        disconnector,
        vec![end],
        "device-limit",
        frontdesk_core::clock::now(),
    )
    .await
    {
        Ok(done) => {
            for o in done {
                match &o.result {
                    Ok(()) => {
                        info!(subject = %o.subject, what = %o.what, "device limit: oldest session ended")
                    }
                    Err(e) => {
                        warn!(subject = %o.subject, what = %o.what, error = %e, "device limit: could not end the oldest session")
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, "device limit: ending the oldest session failed"),
    }
}

async fn enforce_member_changes(
    store: &Store,
    members: &std::collections::BTreeSet<String>,
    disconnector: &dyn Disconnector,
    authorizer: Option<&dyn ClientAuthorizer>,
) {
    // The catalog from the database, so enforcement does not wait on the RADIUS index.
    let catalog = match store.catalog().await {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "enforcing member changes: cannot read the catalog");
            return;
        }
    };
    let now = frontdesk_core::clock::now();
    match frontdesk_core::enforce::enforce_members(
        store,
        &catalog,
        members,
        disconnector,
        authorizer,
        now,
    )
    .await
    {
        Ok(done) => {
            for o in done {
                match &o.result {
                    Ok(()) => {
                        info!(subject = %o.subject, what = %o.what, reason = %o.reason, "access ended")
                    }
                    Err(e) => {
                        warn!(subject = %o.subject, what = %o.what, reason = %o.reason, error = %e, "could not end access")
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, "enforcing member changes failed"),
    }
}

/// Gateway mode: the ruleset applied (restored portal clients keep their remaining time), the
/// authorized-clients worker, and the captive portal listener.
struct Gateway {
    nft: Nft,
    blocked: Vec<frontdesk_core::MacAddr>,
    authorizer: Arc<dyn ClientAuthorizer>,
}

/// Sets the scheduler's alarm to every portal client's end, so a guest let in shortly before
/// closing is audited and re-decided when their time is up.
struct AlarmingAuthorizer {
    inner: NftAuthorizer,
    alarm: Arc<Alarm>,
}

#[async_trait::async_trait]
impl ClientAuthorizer for AlarmingAuthorizer {
    async fn authorize(
        &self,
        client: &ClientRef,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), frontdesk_core::ports::ActError> {
        self.inner.authorize(client, until).await?;
        if let Some(t) = until {
            self.alarm.at(t);
        }
        Ok(())
    }

    async fn revoke(&self, client: &ClientRef) -> Result<(), frontdesk_core::ports::ActError> {
        self.inner.revoke(client).await
    }
}

/// The captive portal's listeners (HTTP, and HTTPS when a certificate is configured): the
/// same pages in both modes, with the mode's authorizer and client locator.
async fn start_portal(
    ctx: &Ctx,
    store: &Store,
    portal: SocketAddr,
    catalog: tokio::sync::watch::Receiver<std::sync::Arc<frontdesk_core::decide::Catalog>>,
    authorizer: Arc<dyn ClientAuthorizer>,
    locator: Arc<dyn frontdesk_core::ports::ClientLocator>,
    networks: &str,
) -> Result<()> {
    let mut settings = PortalSettings {
        public_url: ctx.config.portal.public_url.clone(),
        guest_plan: ctx.config.portal.guest_plan.clone(),
        ..PortalSettings::default()
    };
    let https = match (
        &ctx.config.portal.tls_cert_file,
        &ctx.config.portal.tls_key_file,
    ) {
        (Some(cert), Some(key)) => {
            let tls = frontdesk_portal::tls::server_config(cert, key)
                .map_err(|e| anyhow::anyhow!("portal TLS: {e}"))?;
            let addr = listen_addr(&None, &ctx.config.portal.tls_listen, "portal HTTPS")?;
            Some((tls, addr))
        }
        _ => None,
    };
    settings.https_url = ctx
        .config
        .portal
        .public_url
        .clone()
        .filter(|u| https.is_some() && u.starts_with("https://"));
    if https.is_some() && settings.https_url.is_none() {
        warn!("portal HTTPS is on, but [portal] public_url is not an https:// URL: guests are not pointed to member sign-in");
    }
    if let Some(path) = &ctx.config.portal.aup_file {
        settings.aup = std::fs::read_to_string(path)
            .with_context(|| format!("portal.aup_file: cannot read {}", path.display()))?;
    }
    let mailer = mailer(ctx)?;
    let app = Portal::new(
        store.clone(),
        catalog,
        authorizer,
        locator,
        mailer,
        settings,
        random_key()?,
    )
    .with_dns_blocks(super::dns::blocks())
    .router();
    let listener = tokio::net::TcpListener::bind(portal)
        .await
        .with_context(|| format!("cannot listen for the captive portal on {portal}"))?;
    let portal = listener.local_addr().unwrap_or(portal);
    info!(%portal, networks = %networks, "captive portal listening");
    if let Some((tls, addr)) = https {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for the captive portal (HTTPS) on {addr}"))?;
        let listener = frontdesk_portal::tls::TlsListener::new(tcp, tls)?;
        info!(%addr, "captive portal listening (HTTPS)");
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) =
                frontdesk_portal::tls::serve(listener, app, std::future::pending()).await
            {
                warn!(error = %e, "captive portal (HTTPS) stopped");
            }
        });
    }
    tokio::spawn(async move {
        if let Err(e) = frontdesk_portal::serve(listener, app, std::future::pending()).await {
            warn!(error = %e, "captive portal stopped");
        }
    });
    Ok(())
}

/// Ends RADIUS sessions of NASes whose vendor profile says "through the controller" (UniFi,
/// Omada: Disconnect-Request support varies by firmware) with the controller's kick, and
/// falls back to a RADIUS Disconnect-Request when there is no such controller or it cannot.
struct ControllerFirst {
    radius: Arc<dyn Disconnector>,
    controllers: Arc<frontdesk_sync::controllers::ControllerAuthorizer>,
    nas: frontdesk_radius::disconnect::NasLookup,
}

#[async_trait::async_trait]
impl Disconnector for ControllerFirst {
    async fn disconnect(
        &self,
        session: &frontdesk_core::ports::SessionRef,
        reason: frontdesk_core::decide::Reason,
    ) -> Result<(), frontdesk_core::ports::ActError> {
        if let (Some(nas), Some(mac)) = ((self.nas)(session.nas_id), session.calling_station_id) {
            if frontdesk_radius::nas::profile(nas.vendor).coa
                == frontdesk_radius::nas::CoaPath::ControllerApi
            {
                match self.controllers.kick(nas.vendor.as_str(), mac).await {
                    Some(Ok(())) => return Ok(()),
                    Some(Err(e)) => {
                        warn!(nas = %nas.name, %mac, error = %e, "controller kick failed; trying a RADIUS Disconnect-Request")
                    }
                    None => {}
                }
            }
        }
        self.radius.disconnect(session, reason).await
    }
}

/// Radius-only mode: nothing on the guests' network is ours, so only a controller's redirect
/// says which device is asking.
struct NoLocator;

#[async_trait::async_trait]
impl frontdesk_core::ports::ClientLocator for NoLocator {
    async fn locate(&self, _ip: std::net::IpAddr) -> Option<ClientRef> {
        None
    }
}

async fn start_gateway(
    ctx: &Ctx,
    store: &Store,
    portal: SocketAddr,
    catalog: tokio::sync::watch::Receiver<std::sync::Arc<frontdesk_core::decide::Catalog>>,
    alarm: Arc<Alarm>,
) -> Result<Gateway> {
    let gw = super::firewall::gateway(&ctx.config, &portal.to_string())?;
    let state = super::firewall::state(store).await?;
    let nft = Nft::default();
    nft.run(&frontdesk_firewall::render(&gw, &state))
        .await
        .context("gateway mode: applying the nftables ruleset failed (needs root or CAP_NET_ADMIN and the nftables package)")?;
    info!(
        networks = %gw.networks.iter().map(|n| format!("{}={} ({})", n.name, n.iface, n.role.as_str())).collect::<Vec<_>>().join(", "),
        wan = %gw.wan,
        authorized = state.authorized.len(),
        blocked = state.blocked.len(),
        "firewall applied (table inet frontdesk)"
    );
    let conntrack = Conntrack::default();
    if !conntrack.available() {
        warn!("conntrack is not installed: de-authorized guests' open connections end when their next packet is dropped, not at once (apt install conntrack)");
    }
    let authorizer: Arc<dyn ClientAuthorizer> = Arc::new(AlarmingAuthorizer {
        inner: NftAuthorizer::start(nft.clone(), conntrack),
        alarm,
    });
    // Restored clients: their elements are in the table already; this registers their end so
    // their connections are flushed when it comes.
    for c in store.portal_clients(frontdesk_core::clock::now()).await? {
        if let Err(e) = authorizer
            .authorize(&c.client_ref(), Some(c.valid_until))
            .await
        {
            warn!(mac = %c.mac, error = %e, "could not restore a portal client");
        }
    }
    let portal_ifaces: Vec<String> = gw
        .networks
        .iter()
        .filter(|n| n.role == frontdesk_firewall::Role::Portal)
        .map(|n| n.iface.clone())
        .collect();
    start_portal(
        ctx,
        store,
        portal,
        catalog,
        authorizer.clone(),
        Arc::new(NeighbourLocator::new(portal_ifaces.clone())),
        &portal_ifaces.join(", "),
    )
    .await?;
    Ok(Gateway {
        nft,
        blocked: state.blocked,
        authorizer,
    })
}

impl Gateway {
    /// Suspensions and cancellations take effect on every tier network within a second,
    /// through element changes (no reload).
    async fn refresh_blocked(&mut self, store: &Store) {
        let now = match store.blocked_macs(frontdesk_core::clock::now()).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot read blocked MACs");
                return;
            }
        };
        let mut batch = String::new();
        for m in now.iter().filter(|m| !self.blocked.contains(m)) {
            frontdesk_firewall::ruleset::block_batch(&mut batch, *m, true);
        }
        for m in self.blocked.iter().filter(|m| !now.contains(m)) {
            frontdesk_firewall::ruleset::block_batch(&mut batch, *m, false);
        }
        if batch.is_empty() {
            return;
        }
        match self.nft.run(&batch).await {
            Ok(()) => {
                info!(blocked = now.len(), "firewall: blocked MACs updated");
                self.blocked = now;
            }
            Err(e) => warn!(error = %e, "firewall: updating blocked MACs failed"),
        }
    }
}

/// SMTP when `[mail] smtp_host` is set, else the outbox directory in the state directory.
fn mailer(ctx: &Ctx) -> Result<std::sync::Arc<dyn frontdesk_core::ports::Mailer>> {
    let mail = &ctx.config.mail;
    let from = mail
        .from
        .clone()
        .unwrap_or_else(|| "Frontdesk <frontdesk@localhost>".into());
    let Some(host) = mail.smtp_host.clone() else {
        let outbox = ctx.config.state_dir().join("outbox");
        info!(outbox = %outbox.display(), "no [mail] smtp_host: sponsor mails are written to the outbox");
        return Ok(std::sync::Arc::new(
            frontdesk_portal::mail::OutboxMailer::new(outbox, from),
        ));
    };
    let password = match (&mail.password, &mail.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("mail.password_file: cannot read {}", f.display()))?
                .trim_end()
                .to_string(),
        ),
        (None, None) => None,
    };
    if !mail.starttls && mail.smtp_port != 465 {
        warn!(%host, "[mail] starttls = false: mail to the SMTP server travels unencrypted");
    }
    let smtp = frontdesk_portal::mail::SmtpMailer::new(frontdesk_portal::mail::SmtpSettings {
        host: host.clone(),
        port: mail.smtp_port,
        username: mail.username.clone(),
        password,
        from,
        starttls: mail.starttls,
    })
    .map_err(|e| anyhow::anyhow!("[mail]: {e}"))?;
    info!(%host, port = mail.smtp_port, "mail goes out by SMTP");
    Ok(std::sync::Arc::new(smtp))
}

fn random_key() -> Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading /dev/urandom")?;
    Ok(key)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A demo site: plans, a team, members of every tier, a printer, vouchers, and a NAS for
/// localhost with secret `testing123`. Prints the credentials.
async fn seed_demo(ctx: &Ctx) -> Result<Store> {
    if let Some(path) = store::sqlite_path(&ctx.db_url) {
        if path.exists() {
            bail!("serve --demo creates a new database, but {} already exists; remove it or omit --database", path.display());
        }
    }
    let store = ctx.create().await?;
    let actor = Actor {
        name: "demo".into(),
        source: "cli".into(),
    };
    store
        .init_site("Demo Coworking", "Europe/Berlin", &actor)
        .await?;
    store.add_team("Acme", 101, &actor).await?;
    let today = site_today(&store).await?;
    let people = [
        ("Ada Lovelace", "ada@example.com", "full-time", None),
        ("Grace Hopper", "grace@example.com", "flex", None),
        ("Linus Day", "linus@example.com", "day-pass", None),
        ("Tim Acme", "tim@acme.example", "team", Some("Acme")),
    ];
    let mut creds = Vec::new();
    for (name, email, plan, team) in people {
        let (m, password) = store
            .add_member(
                &NewMember {
                    name: name.into(),
                    email: email.into(),
                    plan: plan.into(),
                    team: team.map(String::from),
                    ..Default::default()
                },
                today,
                &actor,
            )
            .await?;
        creds.push(json!({"name": name, "plan": plan, "wifi_username": m.wifi_username, "wifi_password": password}));
    }
    store
        .add_device(
            Some("ada@example.com"),
            "02:00:00:00:00:01".parse()?,
            "iot",
            "Ada's printer",
            &actor,
        )
        .await?;
    for (name, cidr) in [("localhost-v4", "127.0.0.1"), ("localhost-v6", "::1")] {
        store
            .add_nas(
                &NewNas {
                    name: name.into(),
                    address: parse_cidr(cidr).map_err(anyhow::Error::msg)?,
                    secret: "testing123".into(),
                    vendor: Vendor::Generic,
                    disconnect_port: None,
                    coa_port: None,
                    require_message_authenticator: false,
                },
                &actor,
            )
            .await?;
    }
    let vouchers = store
        .create_vouchers(2, 8 * 3600, 1, "guest", Some("ada@example.com"), &actor)
        .await?;
    let (_, admin_pw) = store
        .add_admin("admin@example.com", Role::Owner, &actor)
        .await?;
    let summary = json!({
        "database": store::redact_url(&ctx.db_url),
        "nas": {"address": "127.0.0.1 and ::1", "secret": "testing123"},
        "members": creds,
        "device": "02:00:00:00:00:01 (Ada's printer, iot)",
        "vouchers": vouchers.iter().map(|v| v.code.clone()).collect::<Vec<_>>(),
        "admin": {"email": "admin@example.com", "one_time_password": admin_pw},
    });
    if ctx.json {
        json(&summary);
    } else {
        println!(
            "Demo database: {} (deleted on exit)",
            store::redact_url(&ctx.db_url)
        );
        println!("NAS: 127.0.0.1 and ::1, secret testing123 (Message-Authenticator not required)");
        println!("Members (Wi-Fi username / password):");
        for c in &creds {
            println!(
                "  {:10} {:22} {}",
                c["plan"].as_str().unwrap_or(""),
                c["wifi_username"].as_str().unwrap_or(""),
                c["wifi_password"].as_str().unwrap_or("")
            );
        }
        println!("Device: 02:00:00:00:00:01 (printer, iot plan)");
        println!(
            "Guest vouchers (8 h from first use): {}",
            summary["vouchers"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
        println!("Console operator: admin@example.com / {admin_pw}");
        println!(
            "Try: frontdesk --database {} explain --user ada@example.com",
            ctx.db_url
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(store)
}

/// How often every member is reconciled with every door backend (heals drift and removes
/// orphans); member changes are reconciled at once in between.
const DOOR_FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The door sync: a full reconcile at start and every 10 minutes, and one for the changed
/// members whenever the change feed brings some (`Some(ids)`; `None` asks for a full run).
/// Member runs do not wait for a full run in progress.
fn start_door_sync(store: &Store) -> tokio::sync::mpsc::UnboundedSender<Option<Vec<String>>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<Vec<String>>>();
    let store = store.clone();
    let full_running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = tx.send(None);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DOOR_FULL_EVERY);
        tick.tick().await;
        loop {
            let job = tokio::select! {
                j = rx.recv() => match j { Some(j) => j, None => return },
                _ = tick.tick() => None,
            };
            let backends = match store.door_backends().await {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "door sync: cannot read backends");
                    continue;
                }
            };
            let full = job.is_none();
            if full && full_running.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // One full run at a time; the next tick or change catches up.
                continue;
            }
            let store = store.clone();
            let flag = full_running.clone();
            tokio::spawn(async move {
                let ids = job.unwrap_or_default();
                for b in &backends {
                    match super::doors::run_one(&store, b, &ids, false).await {
                        Ok(r) if r.changed > 0 || r.failed > 0 => {
                            info!(backend = %b.name, members = r.members, changed = r.changed, writes = r.writes, failed = r.failed, "door sync")
                        }
                        Ok(_) => {}
                        Err(e) => warn!(error = %e, "door sync failed"),
                    }
                }
                if full {
                    flag.store(false, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    tx
}
