//! `backup` / `restore`: one file with the SQLite database and the secrets key (mode 0600),
//! optionally sealed with a passphrase. PostgreSQL installs use pg_dump.

use super::{read_secret_file, Ctx};
use crate::output::{json, kv};
use anyhow::{bail, Context, Result};
use frontdesk_core::backup::{open, seal, BackupContents};
use frontdesk_core::secrets::SecretKey;
use frontdesk_core::store::{self, Backend, MemberFilter};
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically (temporary file + rename) with mode 0600.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("frontdesk"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn passphrase(file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    file.map(|f| read_secret_file(f, "passphrase").map(String::into_bytes))
        .transpose()
}

fn postgres_hint(ctx: &Ctx, verb: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{verb} works on SQLite databases; for PostgreSQL use pg_dump/pg_restore (e.g. `pg_dump --format=custom --file frontdesk.dump DBNAME`) and keep a copy of the secrets key file {}",
        ctx.key_path().display()
    )
}

/// A consistent copy of the database and the secrets key, sealed (with the passphrase, if
/// any) and written atomically with mode 0600; the sealed bytes.
async fn write_backup(
    store: &frontdesk_core::store::Store,
    key_path: &Path,
    path: &Path,
    pass: Option<&[u8]>,
) -> Result<Vec<u8>> {
    // VACUUM INTO writes a consistent copy while others keep reading and writing; it goes into
    // a private (0700) directory since it holds personal data.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".frontdesk-backup-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let copy = scratch.path().join("frontdesk.db");
    store.vacuum_into(&copy).await?;
    let database = std::fs::read(&copy)?;
    let key = SecretKey::load(key_path)?;
    let sealed = seal(
        &BackupContents {
            key_hex: key.to_hex(),
            database,
        },
        pass,
    );
    write_private(path, &sealed)?;
    Ok(sealed)
}

/// Nightly backups while `serve` runs: at `[backup] at` in the site's time zone, and at
/// start when the newest is more than a day old (a box that was off over night); keeps the
/// newest `keep`. SQLite only.
pub fn start_nightly(ctx: &Ctx, store: frontdesk_core::store::Store) -> Result<()> {
    let cfg = ctx.config.backup.clone();
    if !cfg.enabled {
        tracing::info!("nightly backups are off ([backup] enabled = false)");
        return Ok(());
    }
    if ctx.backend() == Backend::Postgres {
        tracing::info!("nightly backups: PostgreSQL is backed up with pg_dump, not by serve");
        return Ok(());
    }
    let at = chrono::NaiveTime::parse_from_str(cfg.at.trim(), "%H:%M")
        .with_context(|| format!("[backup] at = {:?}: write HH:MM, e.g. \"03:30\"", cfg.at))?;
    let dir = ctx.config.backup_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("[backup] cannot create {}", dir.display()))?;
    let pass = passphrase(cfg.passphrase_file.as_deref())?;
    let key_path = ctx.key_path();
    let keep = cfg.keep.max(1);
    tokio::spawn(async move {
        let once = |reason: &'static str| {
            let (store, dir, key_path, pass) =
                (store.clone(), dir.clone(), key_path.clone(), pass.clone());
            async move {
                let name = format!(
                    "frontdesk-{}.fdbackup",
                    frontdesk_core::clock::now().format("%Y-%m-%dT%H%M%SZ")
                );
                let path = dir.join(name);
                match write_backup(&store, &key_path, &path, pass.as_deref()).await {
                    Ok(b) => {
                        let removed = prune(&dir, keep);
                        tracing::info!(path = %path.display(), bytes = b.len(), removed, reason, "backup written");
                    }
                    Err(e) => tracing::error!(error = %e, dir = %dir.display(), "backup failed"),
                }
            }
        };
        let stale = newest_age(&dir).is_none_or(|age| age > std::time::Duration::from_secs(86_400));
        if stale {
            once("none in the last day").await;
        }
        loop {
            let wait = match store.site().await {
                Ok(site) => until_next(site.tz(), at),
                Err(_) => std::time::Duration::from_secs(3600),
            };
            tokio::time::sleep(wait).await;
            once("nightly").await;
        }
    });
    Ok(())
}

/// How long until the next `at` in `tz` (at least a minute: never twice for one day).
fn until_next(tz: chrono_tz::Tz, at: chrono::NaiveTime) -> std::time::Duration {
    use chrono::TimeZone;
    let now = frontdesk_core::clock::now();
    let local = now.with_timezone(&tz);
    for days in 0..3 {
        let day = local.date_naive() + chrono::Duration::days(days);
        if let Some(t) = tz.from_local_datetime(&day.and_time(at)).earliest() {
            let d = t.to_utc() - now;
            if d > chrono::Duration::minutes(1) {
                return d.to_std().unwrap_or_default();
            }
        }
    }
    std::time::Duration::from_secs(86_400)
}

/// Backups in `dir`, oldest first (their names sort by time).
fn backups_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("frontdesk-") && n.ends_with(".fdbackup"))
        })
        .collect();
    v.sort();
    v
}

fn newest_age(dir: &Path) -> Option<std::time::Duration> {
    let newest = backups_in(dir).pop()?;
    std::fs::metadata(newest)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()
}

/// Removes all but the newest `keep`; how many were removed.
fn prune(dir: &Path, keep: usize) -> usize {
    let all = backups_in(dir);
    let extra = all.len().saturating_sub(keep);
    all.iter()
        .take(extra)
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

pub async fn backup(
    ctx: &Ctx,
    path: &Path,
    passphrase_file: Option<&Path>,
    force: bool,
) -> Result<()> {
    if ctx.backend() == Backend::Postgres {
        return Err(postgres_hint(ctx, "backup"));
    }
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace it",
            path.display()
        );
    }
    let pass = passphrase(passphrase_file)?;
    let store = ctx.open().await?;
    let sealed = write_backup(&store, &ctx.key_path(), path, pass.as_deref()).await?;
    let members = store.members(&MemberFilter::default()).await?.len();
    if ctx.json {
        json(
            &json!({"path": path, "bytes": sealed.len(), "members": members, "encrypted": pass.is_some()}),
        );
    } else {
        kv(&[
            ("backup", path.display().to_string()),
            ("size", format!("{} bytes", sealed.len())),
            ("members", members.to_string()),
            (
                "encrypted",
                if pass.is_some() {
                    "yes (passphrase)"
                } else {
                    "no: keep this file private, it holds the secrets key"
                }
                .into(),
            ),
        ]);
    }
    Ok(())
}

pub async fn restore(
    ctx: &Ctx,
    path: &Path,
    passphrase_file: Option<&Path>,
    force: bool,
) -> Result<()> {
    if ctx.backend() == Backend::Postgres {
        return Err(postgres_hint(ctx, "restore"));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let pass = passphrase(passphrase_file)?;
    let contents = open(&bytes, pass.as_deref())?;
    if !contents.database.starts_with(b"SQLite format 3\0") {
        bail!("the backup file is damaged: it holds no SQLite database");
    }
    let key = SecretKey::from_hex(&contents.key_hex, "backup")?;
    let db = store::sqlite_path(&ctx.db_url).context("database URL has no file path")?;
    let key_path = ctx.key_path();
    for existing in [&db, &key_path] {
        if existing.exists() && !force {
            bail!(
                "{} already exists; pass --force to replace it with the backup",
                existing.display()
            );
        }
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    write_private(&db, &contents.database)?;
    if key_path.exists() {
        std::fs::remove_file(&key_path)?;
    }
    key.write_new(&key_path)?;
    // Prove it: open with the restored key and count.
    let store = ctx.open().await?;
    let members = store.members(&MemberFilter::default()).await?.len();
    let site = store.site().await?;
    if ctx.json {
        json(
            &json!({"restored": path, "database": store::redact_url(&ctx.db_url), "site": site.name, "members": members}),
        );
    } else {
        kv(&[
            ("restored", path.display().to_string()),
            ("database", store::redact_url(&ctx.db_url)),
            ("key_file", key_path.display().to_string()),
            ("site", site.name),
            ("members", members.to_string()),
        ]);
    }
    Ok(())
}
