//! The offline entitlement cache: what RADIUS needs to authenticate (site calendar, plans,
//! teams, members with their Wi-Fi secrets, devices, NAS clients, EAP certificates), written
//! to `<state_dir>/entitlements.cache` whenever `serve` reloads it from a shared PostgreSQL.
//! If the database cannot be reached when `serve` starts, RADIUS starts from this file and the
//! rest (console, portal, scheduler, door sync) follows when the database answers.
//!
//! The file holds password equivalents (NT hashes, cleartext for CHAP): it is sealed with the
//! secrets key (ChaCha20-Poly1305, the same key that protects them in the database), mode
//! 0600, replaced atomically (temporary file, fsync, rename), so a crash mid-write leaves the
//! previous cache.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveTime, Utc};
use frontdesk_core::decide::Catalog;
use frontdesk_core::model::{Device, Member, Nas, Plan, Site, Team};
use frontdesk_core::schedule::{Calendar, Closure, OpeningHours};
use frontdesk_core::secrets::SecretKey;
use frontdesk_core::store::Store;
use frontdesk_radius::directory::{Directory, Parts, PskEntry};
use frontdesk_radius::eap::pki::Pki;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const MAGIC: &[u8] = b"FRONTDESK-CACHE\n";
/// Bumped when the layout changes; an older file is ignored, not misread.
const FORMAT: u32 = 1;

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("entitlements.cache")
}

#[derive(Serialize, Deserialize)]
struct CachedSite {
    id: i64,
    name: String,
    timezone: String,
    hours: Vec<Vec<(NaiveTime, NaiveTime)>>,
    closures: Vec<Closure>,
}

#[derive(Serialize, Deserialize)]
struct CachedMember {
    member: Member,
    nt_hash: [u8; 16],
    password: String,
}

#[derive(Serialize, Deserialize)]
struct CachedNas {
    nas: Nas,
    secret: String,
}

#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    format: u32,
    pub written_at: DateTime<Utc>,
    site: CachedSite,
    plans: Vec<Plan>,
    teams: Vec<Team>,
    members: Vec<CachedMember>,
    devices: Vec<Device>,
    nas: Vec<CachedNas>,
    pki: Option<Pki>,
    /// Private passphrases (identity PSK) and the devices learned with them.
    #[serde(default)]
    passphrases: Vec<PskEntry>,
    #[serde(default)]
    passphrase_devices: Vec<(i64, frontdesk_core::MacAddr)>,
}

impl Snapshot {
    /// Reads what the RADIUS directory is built from (the same queries as `Directory::load`).
    /// Reads what the RADIUS directory is built from (the same parts as `Directory::load`).
    pub async fn load(store: &Store) -> Result<Snapshot> {
        let Parts {
            catalog,
            members,
            devices,
            nas,
        } = Parts::load(store).await?;
        let (passphrases, passphrase_devices) =
            frontdesk_radius::directory::load_passphrases(store).await?;
        let Catalog { site, plans, teams } = catalog;
        Ok(Snapshot {
            format: FORMAT,
            written_at: Utc::now(),
            site: CachedSite {
                id: site.id,
                timezone: site.tz().name().to_string(),
                hours: site.calendar.hours.days.to_vec(),
                closures: site.calendar.closures,
                name: site.name,
            },
            plans,
            teams,
            members: members
                .into_iter()
                .map(|e| CachedMember {
                    member: e.member,
                    nt_hash: e.nt_hash,
                    password: e.password,
                })
                .collect(),
            devices,
            nas: nas
                .into_iter()
                .map(|nas| CachedNas {
                    secret: nas.secret.clone(),
                    nas,
                })
                .collect(),
            pki: None,
            passphrases,
            passphrase_devices,
        })
    }

    /// Kept with the entitlements: 802.1X needs the server certificate before the database
    /// can be asked for it.
    pub fn with_pki(mut self, pki: &Pki) -> Snapshot {
        self.pki = Some(pki.clone());
        self
    }

    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn site_name(&self) -> &str {
        &self.site.name
    }

    pub fn directory(&self) -> Result<Directory> {
        let tz = self
            .site
            .timezone
            .parse()
            .map_err(|e| anyhow::anyhow!("cached site time zone: {e}"))?;
        let days: [Vec<(NaiveTime, NaiveTime)>; 7] = self
            .site
            .hours
            .clone()
            .try_into()
            .map_err(|_| anyhow::anyhow!("cached opening hours are not seven days"))?;
        let catalog = Catalog {
            site: Site {
                id: self.site.id,
                name: self.site.name.clone(),
                calendar: Calendar {
                    tz,
                    hours: OpeningHours { days },
                    closures: self.site.closures.clone(),
                },
            },
            plans: self.plans.clone(),
            teams: self.teams.clone(),
        };
        let nas = self
            .nas
            .iter()
            .map(|c| Nas {
                secret: c.secret.clone(),
                ..c.nas.clone()
            })
            .collect();
        Ok(Directory::build(
            catalog,
            self.devices.clone(),
            nas,
            self.members
                .iter()
                .map(|m| (&m.member, &m.nt_hash, m.password.as_str())),
        )
        .with_passphrases(self.passphrases.clone(), self.passphrase_devices.clone()))
    }

    /// Sealed file contents: magic ‖ nonce ‖ ChaCha20-Poly1305(JSON).
    fn seal(&self, key: &SecretKey) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self)?;
        let mut out = MAGIC.to_vec();
        out.extend(key.seal_bytes(&json));
        Ok(out)
    }

    fn open(bytes: &[u8], key: &SecretKey) -> Result<Snapshot> {
        let Some(sealed) = bytes.strip_prefix(MAGIC) else {
            bail!("not a Frontdesk entitlement cache");
        };
        let json = key.open_bytes(sealed).map_err(|_| {
            anyhow::anyhow!("the cache does not open with this secrets key (damaged, or written for another database)")
        })?;
        let snap: Snapshot = serde_json::from_slice(&json).context("cache contents")?;
        if snap.format != FORMAT {
            bail!(
                "cache format {} (this Frontdesk reads {FORMAT})",
                snap.format
            );
        }
        Ok(snap)
    }
}

/// Writes the cache file atomically.
pub fn write(path: &Path, key: &SecretKey, snap: &Snapshot) -> Result<()> {
    let bytes = snap.seal(key)?;
    let tmp = path.with_extension("cache.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub fn read(path: &Path, key: &SecretKey) -> Result<Snapshot> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Snapshot::open(&bytes, key).with_context(|| path.display().to_string())
}

/// Keeps the cache file current without holding up the change feed: the latest snapshot is
/// written in the background, at most once every `min_gap` (a burst of changes costs one
/// write, and the last state is always written).
pub struct Writer {
    latest: Arc<Latest>,
}

/// The snapshot waiting to be written; the writer takes it, so a written snapshot (a copy
/// of every member) is not kept in memory.
#[derive(Default)]
struct Latest {
    snap: std::sync::Mutex<Option<Snapshot>>,
    ready: tokio::sync::Notify,
}

impl Writer {
    pub fn start(path: PathBuf, key: SecretKey, min_gap: Duration) -> Writer {
        let latest = Arc::new(Latest::default());
        let shared = latest.clone();
        tokio::spawn(async move {
            loop {
                shared.ready.notified().await;
                let Some(snap) = shared.snap.lock().expect("snapshot lock").take() else {
                    continue;
                };
                let (path, key) = (path.clone(), key.clone());
                let members = snap.member_count();
                let t = std::time::Instant::now();
                match tokio::task::spawn_blocking(move || write(&path, &key, &snap)).await {
                    Ok(Ok(())) => tracing::debug!(
                        members,
                        ms = t.elapsed().as_millis() as u64,
                        "offline entitlement cache written"
                    ),
                    Ok(Err(e)) => tracing::warn!(
                        error = %format!("{e:#}"),
                        "offline entitlement cache not written; a start without the database would use an older one"
                    ),
                    Err(e) => tracing::warn!(error = %e, "offline entitlement cache writer failed"),
                }
                // The snapshot and its sealed copy were large and short-lived: hand the
                // memory back rather than keep it mapped until the next reload.
                frontdesk_radius::directory::release_free_memory();
                tokio::time::sleep(min_gap).await;
            }
        });
        Writer { latest }
    }

    pub fn save(&self, snap: Snapshot) {
        *self.latest.snap.lock().expect("snapshot lock") = Some(snap);
        self.latest.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::model::{default_plans, Assignment, MemberStatus};

    fn snapshot() -> Snapshot {
        let mut plans = default_plans();
        for (i, p) in plans.iter_mut().enumerate() {
            p.id = i as i64 + 1;
        }
        let member = Member {
            id: "m1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            status: MemberStatus::Active,
            team_id: None,
            wifi_username: "ada".into(),
            assignments: vec![Assignment {
                plan_id: 4,
                valid_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                valid_until: None,
            }],
            created_at: Utc::now(),
        };
        Snapshot {
            format: FORMAT,
            written_at: Utc::now(),
            site: CachedSite {
                id: 1,
                name: "Lab".into(),
                timezone: "Europe/Berlin".into(),
                hours: OpeningHours::default_hours().days.to_vec(),
                closures: vec![],
            },
            plans,
            teams: vec![],
            members: vec![CachedMember {
                member,
                nt_hash: [7; 16],
                password: "correct horse".into(),
            }],
            devices: vec![],
            nas: vec![],
            pki: None,
            passphrases: vec![PskEntry {
                id: 1,
                ssid: "Members-PSK".into(),
                owner: frontdesk_radius::directory::PskOwner::Member("m1".into()),
                secret: "private passphrase".into(),
                pmk: [3; 32],
                valid_until: None,
                max_devices: None,
                revoked: false,
            }],
            passphrase_devices: vec![(1, "02:00:00:00:00:07".parse().unwrap())],
        }
    }

    #[test]
    fn round_trip_needs_the_key_and_an_intact_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        let key = SecretKey::generate();
        write(&path, &key, &snapshot()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !raw.windows(b"private passphrase".len())
                .any(|w| w == b"private passphrase"),
            "a passphrase in the clear"
        );
        assert!(
            !raw.windows(b"correct horse".len())
                .any(|w| w == b"correct horse"),
            "sealed, not plain JSON"
        );
        let back = read(&path, &key).unwrap();
        let dir = back.directory().unwrap();
        let m = dir
            .member_by_username("ADA")
            .expect("member from the cache");
        assert_eq!((m.id, m.password), ("m1", "correct horse"));
        assert_eq!(dir.catalog().site.tz().name(), "Europe/Berlin");
        assert_eq!(dir.catalog().plans.len(), 6);

        assert!(read(&path, &SecretKey::generate()).is_err(), "another key");
        std::fs::write(&path, &raw[..raw.len() - 1]).unwrap();
        assert!(read(&path, &key).is_err(), "truncated");
        std::fs::write(&path, b"{}").unwrap();
        assert!(read(&path, &key).is_err(), "not a cache");
    }
}
