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
    let key = SecretKey::load(&ctx.key_path())?;
    let sealed = seal(
        &BackupContents {
            key_hex: key.to_hex(),
            database,
        },
        pass.as_deref(),
    );
    write_private(path, &sealed)?;
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
