//! One file per verb group; `run` dispatches.

mod api;
mod backup;
pub mod cert;
mod controllers;
pub(crate) mod dns;
pub(crate) mod doors;
mod explain;
pub mod firewall;
mod members;
mod passphrases;
mod profile;
mod records;
mod serve;
mod site;

use crate::cli::{Cli, Command};
use crate::config::Config;
use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use frontdesk_core::secrets::SecretKey;
use frontdesk_core::store::{self, Actor, Backend, OpenMode, Store};
use std::path::PathBuf;

/// What every command needs: configuration, where the database and key are, output mode.
pub struct Ctx {
    pub config: Config,
    pub db_url: String,
    pub json: bool,
    /// The database was named (flag, environment or config), not defaulted.
    pub db_explicit: bool,
    /// The configuration file, if any (`serve` reads it again on SIGHUP).
    pub config_path: Option<PathBuf>,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Result<Ctx> {
        let config = match &cli.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        // --database > FRONTDESK_DATABASE_URL (both via clap) > config > default (SPEC §7).
        let configured = match &cli.database {
            Some(u) => Some(u.clone()),
            None => config.database_url()?,
        };
        let db_explicit = configured.is_some();
        let db_url = configured.unwrap_or_else(|| {
            format!(
                "sqlite:{}",
                config.state_dir().join("frontdesk.db").display()
            )
        });
        store::backend_of(&db_url)?;
        Ok(Ctx {
            config,
            db_url,
            json: cli.json,
            db_explicit,
            config_path: cli.config.clone(),
        })
    }

    /// The secrets key file: configured, else beside the SQLite file, else in the state dir.
    pub fn key_path(&self) -> PathBuf {
        if let Some(p) = &self.config.secrets.key_file {
            return p.clone();
        }
        match store::sqlite_path(&self.db_url) {
            Some(db) => {
                let mut s = db.into_os_string();
                s.push(".key");
                PathBuf::from(s)
            }
            None => self.config.state_dir().join("frontdesk.key"),
        }
    }

    /// The site this appliance serves (FRONTDESK_SITE, else `site` in the configuration).
    pub fn site(&self) -> Option<String> {
        std::env::var("FRONTDESK_SITE")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.config.site.clone())
    }

    /// Opens an existing, initialised database with its key loaded.
    pub async fn open(&self) -> Result<Store> {
        self.open_within(std::time::Duration::from_secs(10)).await
    }

    /// `open`, waiting at most `timeout` for an unreachable database.
    pub async fn open_within(&self, timeout: std::time::Duration) -> Result<Store> {
        let mut store = Store::open_within(&self.db_url, OpenMode::Existing, timeout).await?;
        if let Some(site) = self.site() {
            store.select_site(&site);
        }
        let path = self.key_path();
        let key = SecretKey::load(&path).with_context(|| {
            "the secrets key is needed (set [secrets] key_file or restore the key file created by `frontdesk init`)"
                .to_string()
        })?;
        store.unlock(key, &path.display().to_string()).await?;
        Ok(store)
    }

    /// Creates (or adopts) the database and its key: `init` and `serve --demo` only.
    pub async fn create(&self) -> Result<Store> {
        let mut store = Store::open(&self.db_url, OpenMode::Create).await?;
        let path = self.key_path();
        let key = if store.has_secrets_key().await? || path.exists() {
            // The key belongs to the database: never make a new one for a database that has
            // secrets; a second site on a shared database is given the existing file.
            SecretKey::load(&path)?
        } else {
            let k = SecretKey::generate();
            k.write_new(&path)?;
            k
        };
        store.unlock(key, &path.display().to_string()).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        store::backend_of(&self.db_url).expect("validated in new")
    }
}

/// Today's local date at the site.
pub async fn site_today(store: &Store) -> Result<NaiveDate> {
    Ok(store.site().await?.date_at(frontdesk_core::clock::now()))
}

pub fn parse_date_arg(s: &str) -> Result<NaiveDate> {
    frontdesk_core::model::parse_date(s).map_err(anyhow::Error::msg)
}

pub fn read_secret_file(path: &std::path::Path, what: &str) -> Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        bail!("{what} file {} is empty", path.display());
    }
    Ok(s)
}

pub async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx::new(&cli)?;
    let actor = Actor::cli();
    match cli.command {
        Command::Init { site, timezone } => site::init(&ctx, &site, &timezone, &actor).await,
        Command::Serve(args) => serve::serve(&ctx, args).await,
        Command::Site(c) => site::site(&ctx, c, &actor).await,
        Command::Team(c) => site::team(&ctx, c, &actor).await,
        Command::Plan(c) => site::plan(&ctx, c, &actor).await,
        Command::Member(c) => members::member(&ctx, c, &actor).await,
        Command::Device(c) => records::device(&ctx, c, &actor).await,
        Command::Nas(c) => records::nas(&ctx, c, &actor).await,
        Command::Voucher(c) => records::voucher(&ctx, c, &actor).await,
        Command::Admin(c) => records::admin(&ctx, c, &actor).await,
        Command::Token(c) => api::token(&ctx, c, &actor).await,
        Command::Door(c) => doors::door(&ctx, c, &actor).await,
        Command::Controller(c) => controllers::controller(&ctx, c, &actor).await,
        Command::Passphrase(c) => passphrases::passphrase(&ctx, c, &actor).await,
        Command::Sync(c) => doors::sync(&ctx, c).await,
        Command::Dns(c) => dns::dns(&ctx, c, &actor).await,
        Command::Webhook(c) => api::webhook(&ctx, c, &actor).await,
        Command::Cert(c) => cert::run(&ctx, c).await,
        Command::Firewall(c) => firewall::run(&ctx, c).await,
        Command::Explain { user, at, resource } => {
            explain::explain(&ctx, &user, at.as_deref(), &resource).await
        }
        Command::Backup {
            path,
            passphrase_file,
            force,
        } => backup::backup(&ctx, &path, passphrase_file.as_deref(), force).await,
        Command::Restore {
            path,
            passphrase_file,
            force,
        } => backup::restore(&ctx, &path, passphrase_file.as_deref(), force).await,
        Command::Audit { limit } => records::audit(&ctx, limit).await,
        Command::Sessions { online, limit } => records::sessions(&ctx, online, limit).await,
    }
}
