//! Storage on SQLite (embedded default) and PostgreSQL, through one implementation.
//!
//! Design: every query is written once in the SQL both engines accept (`$1` placeholders,
//! `RETURNING`, `ON CONFLICT`), run through sqlx's `Any` driver with runtime queries; the only
//! per-backend parts are the migrations (core/migrations/{sqlite,postgres}) and a few
//! statements selected by [`Backend`]. This keeps SQLite and PostgreSQL behaviour identical by
//! construction and the whole test suite runs against both.
//!
//! Every mutation writes its change, an audit event and a `changes` row in one transaction.

pub mod api;
mod audit;
pub mod console;
pub mod controllers;
pub mod dns;
pub mod doors;
mod feed;
mod import;
mod members;
pub mod passphrases;
pub mod portal;
pub mod radius;
mod records;
pub mod reports;
pub mod selfservice;
mod site;

pub use audit::Audit;
pub use feed::SqlChangeFeed;
pub use import::{ImportRow, ImportSummary};
pub use members::{MemberFilter, NewMember};
pub use records::{normalise_voucher_code, NewNas, Resolved};
/// The database driver's error, for callers that classify store errors.
pub use sqlx::Error as SqlxError;

use crate::secrets::{SecretKey, SecretsError};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {0} does not exist: create it with `frontdesk init --site NAME --timezone ZONE` (or try `frontdesk serve --demo`)")]
    Missing(String),
    #[error(
        "database {0} is not initialised: run `frontdesk init --site NAME --timezone ZONE` first"
    )]
    NotInitialised(String),
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("the secrets key is not loaded")]
    Locked,
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether opening may create the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    Create,
    Existing,
}

/// Who performs a mutation, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: String,
    /// `cli`, `console`, `api`, `scheduler`, …
    pub source: String,
}

impl Actor {
    /// Frontdesk itself (scheduler, enforcement), acting through `source`.
    pub fn system(source: &str) -> Actor {
        Actor {
            name: "frontdesk".into(),
            source: source.into(),
        }
    }

    pub fn cli() -> Actor {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            name: format!("cli:{user}"),
            source: "cli".into(),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    key: Option<SecretKey>,
    /// The site this process serves when several share one database (`site = "…"` in the
    /// configuration); `None`: the first site.
    site_name: Option<std::sync::Arc<str>>,
    /// Made by [`Store::offline`]: the database was unreachable when it was made.
    offline: bool,
}

/// The file behind a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

pub fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}

/// A URL safe to print: the password of a PostgreSQL URL masked.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    pub async fn open(url: &str, mode: OpenMode) -> Result<Store> {
        Store::open_within(url, mode, Duration::from_secs(10)).await
    }

    /// `open`, giving up on an unreachable database after `timeout` (also the pool's wait for
    /// a connection later).
    pub async fn open_within(url: &str, mode: OpenMode, timeout: Duration) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let mut connect_url = url.to_string();
        if backend == Backend::Sqlite {
            let path = sqlite_path(url).ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
            if mode == OpenMode::Existing && !path.exists() {
                return Err(StoreError::Missing(path.display().to_string()));
            }
            if mode == OpenMode::Create && !path.exists() {
                // The file holds NT hashes (password-equivalent for MS-CHAP): private from the
                // start; SQLite gives its -wal and -shm files the same mode.
                create_private_file(&path)?;
            }
            if mode == OpenMode::Create && !url.contains("mode=") {
                connect_url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options = AnyConnectOptions::from_str(&connect_url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets `serve` read while the CLI writes; wait for locks, don't fail.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            backend,
            url: url.to_string(),
            key: None,
            site_name: None,
            offline: false,
        };
        if mode == OpenMode::Existing && !store.has_schema().await? {
            return Err(StoreError::NotInitialised(redact_url(url)));
        }
        match backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&store.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&store.pool)
                    .await?
            }
        }
        Ok(store)
    }

    /// A store for a PostgreSQL database that cannot be reached now: nothing is checked or
    /// migrated, the pool connects when first used. `serve` starts RADIUS on it from the
    /// offline cache; writes fail as unreachable (accounting goes to the spool) until the
    /// database answers.
    pub fn offline(url: &str, key: SecretKey, site: Option<&str>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        if backend != Backend::Postgres {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(AnyConnectOptions::from_str(url)?);
        Ok(Store {
            pool,
            backend,
            url: url.to_string(),
            key: Some(key),
            site_name: site.map(|s| std::sync::Arc::from(s.trim())),
            offline: true,
        })
    }

    async fn has_schema(&self) -> Result<bool> {
        let q = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sites'",
            Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'sites'",
        };
        let (n,): (i64,) = sqlx::query_as(q).fetch_one(&self.pool).await?;
        if n == 0 {
            return Ok(false);
        }
        let (sites,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sites")
            .fetch_one(&self.pool)
            .await?;
        Ok(sites > 0)
    }

    /// The n-th (1-based) bind placeholder for generated multi-row statements. SQLite gets
    /// anonymous `?`: it resolves each `$N` by a linear scan of the statement's parameter names,
    /// which made a 4000-parameter INSERT quadratic (67% of a 100k-member import's time).
    pub(crate) fn placeholder(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".into(),
            Backend::Postgres => format!("${n}"),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether an error means the database could not be reached (as opposed to refusing the
    /// data): the caller may keep the work and try again later.
    pub fn is_unreachable(e: &StoreError) -> bool {
        matches!(
            e,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }

    /// Made without the database (start from the offline cache): reads would only wait.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_as::<_, (String,)>("SELECT value FROM meta WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.0),
        )
    }

    /// A value kept encrypted under the secrets key (the EAP certificates and their keys).
    pub async fn sealed_meta(&self, key: &str) -> Result<Option<String>> {
        match self.meta(&format!("sealed.{key}")).await? {
            None => Ok(None),
            Some(v) => Ok(Some(self.key()?.decrypt_string(&v)?)),
        }
    }

    pub async fn set_sealed_meta(&self, key: &str, value: &str) -> Result<()> {
        let sealed = self.key()?.encrypt(value.as_bytes());
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(format!("sealed.{key}"))
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the database already has a secrets key (check value) recorded.
    pub async fn has_secrets_key(&self) -> Result<bool> {
        Ok(self.meta("secrets_check").await?.is_some())
    }

    /// Loads the key, verifying it belongs to this database.
    pub async fn unlock(&mut self, key: SecretKey, path_for_errors: &str) -> Result<()> {
        match self.meta("secrets_check").await? {
            Some(check) if key.matches(&check) => {}
            Some(_) => return Err(SecretsError::WrongKey(path_for_errors.to_string()).into()),
            None => {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
                    .bind("secrets_check")
                    .bind(key.check_value())
                    .execute(&self.pool)
                    .await?;
            }
        }
        self.key = Some(key);
        Ok(())
    }

    pub(crate) fn key(&self) -> Result<&SecretKey> {
        self.key.as_ref().ok_or(StoreError::Locked)
    }

    /// A write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so two
    /// processes writing at once wait on the busy timeout instead of failing to upgrade.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Every table's rows, sorted, as text: compares database contents independent of file
    /// layout (tests use it to prove a failed command changed nothing).
    pub async fn logical_dump(&self) -> Result<String> {
        let tables: [(&str, &str); 17] = [
            ("meta", "key, value"),
            ("sites", "id, name, timezone"),
            ("opening_hours", "site_id, weekday, open_at, close_at"),
            ("closures", "id, from_date, to_date, reason, all_windows"),
            ("plans", "id, name, vlan, wifi_window, door_window, device_limit, door_groups, ssids, mac_only, validity_days"),
            ("teams", "id, name, vlan"),
            ("members", "id, name, email, status, team_id, wifi_username, nt_hash, password_enc"),
            ("assignments", "id, member_id, plan_id, valid_from, valid_until"),
            ("devices", "id, mac, member_id, plan_id, name"),
            ("vouchers", "code, plan_id, valid_secs, devices, sponsor_id, first_used_at"),
            ("voucher_devices", "code, mac"),
            ("portal_clients", "mac, ip, network, kind, subject, valid_until"),
            ("nas", "id, name, address, secret_enc, vendor, disconnect_port, coa_port, require_message_authenticator"),
            ("admins", "id, email, role, password_hash"),
            ("api_tokens", "id, name, token_hash, scopes, revoked_at"),
            ("audit", "id, actor, action, object, before_summary, after_summary"),
            ("changes", "seq, kind, object"),
        ];
        let mut out = String::new();
        for (table, cols) in tables {
            // Cast everything to text so one decoder reads every column on both engines.
            let select: Vec<String> = cols
                .split(", ")
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '∅')"))
                .collect();
            let sql = format!(
                "SELECT {} AS row FROM {table} ORDER BY 1",
                select.join(" || '|' || ")
            );
            let rows: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
            out.push_str(&format!("## {table}\n"));
            for (r,) in rows {
                out.push_str(&r);
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// SQLite online backup into a new file (`VACUUM INTO`).
    pub async fn vacuum_into(&self, path: &std::path::Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(
                "backup of a PostgreSQL database: use pg_dump (and keep a copy of the secrets key file)".into(),
            ));
        }
        let p = path
            .to_str()
            .ok_or_else(|| StoreError::Invalid("backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(p)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn create_private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| {
        StoreError::Invalid(format!("cannot create database {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    Ok(())
}

pub(crate) fn now_secs() -> i64 {
    crate::clock::now().timestamp()
}

/// Lower-cased text for `LOWER(col) LIKE $n ESCAPE '\'` that matches it literally (`%` and `_`
/// are ordinary characters in an operator's search).
pub(crate) fn like_literal(s: &str) -> String {
    s.to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) fn ts(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Maps a unique-constraint violation to a readable duplicate error.
pub(crate) fn dup(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let what = what.into();
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate(what),
        _ => StoreError::Db(e),
    }
}

/// Multi-row INSERTs for the logs written at protocol rates (auth log, DNS query log): a
/// batch goes in chunks of 100, then 10, then 1 rows, so each table has only three statement
/// texts per backend, built once, and every statement comes from the prepared-statement cache
/// (a batch's odd remainder used to be a new text, parsed again, every batch).
pub(crate) struct RowInsert {
    head: &'static str,
    columns: usize,
    /// Per backend (SQLite, PostgreSQL): the statement for each chunk size.
    sql: [std::sync::OnceLock<[String; 3]>; 2],
}

impl RowInsert {
    const CHUNKS: [usize; 3] = [100, 10, 1];

    /// `head` is the statement up to and including `VALUES `.
    pub(crate) const fn new(head: &'static str, columns: usize) -> RowInsert {
        RowInsert {
            head,
            columns,
            sql: [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
        }
    }

    /// `rows` in chunks, each with its statement.
    pub(crate) fn chunks<'a, T>(
        &'a self,
        store: &Store,
        mut rows: &'a [T],
    ) -> impl Iterator<Item = (&'a str, &'a [T])> {
        let slot = match store.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => 1,
        };
        let sql = self.sql[slot].get_or_init(|| {
            Self::CHUNKS.map(|n| {
                let mut sql = String::from(self.head);
                for i in 0..n {
                    sql.push_str(if i > 0 { ",(" } else { "(" });
                    for k in 1..=self.columns {
                        if k > 1 {
                            sql.push(',');
                        }
                        sql.push_str(&store.placeholder(i * self.columns + k));
                    }
                    sql.push(')');
                }
                sql
            })
        });
        std::iter::from_fn(move || {
            let (shape, n) = Self::CHUNKS
                .into_iter()
                .enumerate()
                .find(|&(_, n)| rows.len() >= n)?;
            let (chunk, rest) = rows.split_at(n);
            rows = rest;
            Some((sql[shape].as_str(), chunk))
        })
    }
}

#[cfg(test)]
mod tests;
