//! The in-memory index the hot path reads: credentials, devices, plans, NAS clients. Built
//! from the store at start and rebuilt when the change feed reports a change, so no request
//! waits on the database.
//!
//! Members are kept in a compact layout (measured, 100k members): one fixed-size record each,
//! their strings in one arena, their plan assignments in one array, and a hash table of record
//! numbers keyed by Wi-Fi username, so the index costs about 150 bytes a member instead of the
//! ~600 that whole `Member` values with their own allocations and a `String`-keyed map took.

use frontdesk_core::decide::{Catalog, Holder};
use frontdesk_core::model::{Assignment, Device, Member, MemberStatus, Nas, Voucher};
use frontdesk_core::store::{MemberFilter, Store, StoreError};
use frontdesk_core::MacAddr;
use hashbrown::HashTable;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

mod passphrases;
pub use passphrases::{load as load_passphrases, Pick, PskEntry, PskOwner};

/// A member as `Directory::new` takes it (tests and tools build these; `load` streams).
pub struct MemberEntry {
    pub member: Member,
    pub nt_hash: [u8; 16],
    pub password: String,
}

impl std::fmt::Debug for MemberEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberEntry")
            .field("member", &self.member.id)
            .finish_non_exhaustive()
    }
}

/// A member as the hot path sees it: borrowed from the index, no allocation.
#[derive(Clone, Copy)]
pub struct MemberRef<'a> {
    pub id: &'a str,
    pub wifi_username: &'a str,
    pub nt_hash: &'a [u8; 16],
    /// Cleartext Wi-Fi password (CHAP needs it).
    pub password: &'a str,
    pub holder: Holder<'a>,
}

impl std::fmt::Debug for MemberRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberRef")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One member's fixed-size record; strings and assignments live in shared arrays.
struct Record {
    nt_hash: [u8; 16],
    team_id: Option<i64>,
    /// Start of `id`, `wifi_username`, `password` (in that order) in `Directory::text`.
    text: u32,
    assignments: u32,
    id_len: u8,
    user_len: u16,
    pass_len: u16,
    assignment_count: u16,
    status: MemberStatus,
}

#[derive(Default)]
struct Members {
    records: Vec<Record>,
    text: String,
    assignments: Vec<Assignment>,
    by_username: HashTable<u32>,
    hasher: RandomState,
}

impl Record {
    fn username<'t>(&self, text: &'t str) -> &'t str {
        let start = self.text as usize + self.id_len as usize;
        &text[start..start + self.user_len as usize]
    }
}

impl Members {
    fn get(&self, i: u32) -> MemberRef<'_> {
        let r = &self.records[i as usize];
        let t = r.text as usize;
        let (id_end, user_end) = (
            t + r.id_len as usize,
            t + r.id_len as usize + r.user_len as usize,
        );
        let a = r.assignments as usize;
        MemberRef {
            id: &self.text[t..id_end],
            wifi_username: &self.text[id_end..user_end],
            password: &self.text[user_end..user_end + r.pass_len as usize],
            nt_hash: &r.nt_hash,
            holder: Holder {
                status: r.status,
                team_id: r.team_id,
                assignments: &self.assignments[a..a + r.assignment_count as usize],
            },
        }
    }

    /// Adds a member; `false` if a field is too long for the compact record (the store's
    /// own limits are far below these) or the username is taken.
    fn push(&mut self, m: &Member, nt_hash: [u8; 16], password: &str) -> bool {
        let (Ok(id_len), Ok(user_len), Ok(pass_len), Ok(assignment_count)) = (
            u8::try_from(m.id.len()),
            u16::try_from(m.wifi_username.len()),
            u16::try_from(password.len()),
            u16::try_from(m.assignments.len()),
        ) else {
            return false;
        };
        let (Ok(text), Ok(assignments), Ok(index)) = (
            u32::try_from(self.text.len()),
            u32::try_from(self.assignments.len()),
            u32::try_from(self.records.len()),
        ) else {
            return false;
        };
        let hash = self.hasher.hash_one(m.wifi_username.as_str());
        if self.find_hashed(hash, &m.wifi_username).is_some() {
            return false;
        }
        self.text.push_str(&m.id);
        self.text.push_str(&m.wifi_username);
        self.text.push_str(password);
        self.assignments.extend_from_slice(&m.assignments);
        self.records.push(Record {
            nt_hash,
            team_id: m.team_id,
            text,
            assignments,
            id_len,
            user_len,
            pass_len,
            assignment_count,
            status: m.status,
        });
        let Members {
            records,
            text,
            by_username,
            hasher,
            ..
        } = self;
        by_username.insert_unique(hash, index, |&i| {
            hasher.hash_one(records[i as usize].username(text))
        });
        true
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.find_hashed(self.hasher.hash_one(name), name)
    }

    fn find_hashed(&self, hash: u64, name: &str) -> Option<u32> {
        self.by_username
            .find(hash, |&i| {
                self.records[i as usize].username(&self.text) == name
            })
            .copied()
    }

    fn shrink(&mut self) {
        self.records.shrink_to_fit();
        self.text.shrink_to_fit();
        self.assignments.shrink_to_fit();
    }
}

#[derive(Default)]
pub struct Directory {
    pub catalog: Option<Catalog>,
    members: Members,
    /// Record numbers of device owners (MAB looks owners up by id; nothing else does).
    by_id: HashMap<Box<str>, u32>,
    devices: HashMap<MacAddr, Device>,
    nas: Vec<Nas>,
    /// Vouchers still good, by code, with the devices bound to them (a controller's own
    /// RADIUS hotspot logs guests in with the code).
    vouchers: HashMap<String, (Voucher, Vec<MacAddr>)>,
    /// Private passphrases (identity PSK).
    passphrases: passphrases::Passphrases,
}

/// What the index is built from, as the store holds it (the offline cache keeps a copy).
pub struct Parts {
    pub catalog: Catalog,
    /// Members with Wi-Fi secrets (a member without any is left out).
    pub members: Vec<MemberEntry>,
    pub devices: Vec<Device>,
    pub nas: Vec<Nas>,
}

impl Parts {
    pub async fn load(store: &Store) -> Result<Parts, StoreError> {
        let catalog = store.catalog().await?;
        let mut secrets: HashMap<String, ([u8; 16], String)> = store
            .wifi_secrets()
            .await?
            .into_iter()
            .map(|s| (s.member_id, (s.nt_hash, s.password)))
            .collect();
        let members = store
            .members(&MemberFilter::default())
            .await?
            .into_iter()
            .filter_map(|member| {
                let (nt_hash, password) = secrets.remove(&member.id)?;
                Some(MemberEntry {
                    member,
                    nt_hash,
                    password,
                })
            })
            .collect();
        Ok(Parts {
            catalog,
            members,
            devices: store.devices().await?,
            nas: store.nas_list().await?,
        })
    }
}

impl Directory {
    pub fn new(
        catalog: Catalog,
        members: Vec<MemberEntry>,
        devices: Vec<Device>,
        nas: Vec<Nas>,
    ) -> Directory {
        let mut dir = Directory::with(catalog, devices, nas);
        dir.members.records.reserve_exact(members.len());
        dir.fill(
            members
                .iter()
                .map(|e| (&e.member, &e.nt_hash, e.password.as_str())),
        );
        dir
    }

    /// Builds the index from borrowed members (member, NT hash, cleartext password): the
    /// offline cache keeps its own copy and must not hand it over.
    pub fn build<'m>(
        catalog: Catalog,
        devices: Vec<Device>,
        nas: Vec<Nas>,
        members: impl ExactSizeIterator<Item = (&'m Member, &'m [u8; 16], &'m str)>,
    ) -> Directory {
        let mut dir = Directory::with(catalog, devices, nas);
        dir.members.records.reserve_exact(members.len());
        dir.fill(members);
        dir
    }

    fn with(catalog: Catalog, devices: Vec<Device>, nas: Vec<Nas>) -> Directory {
        // Most specific NAS entry first: a /32 wins over the /24 it sits in.
        let mut nas = nas;
        nas.sort_by_key(|n| std::cmp::Reverse(n.address.prefix_len()));
        Directory {
            catalog: Some(catalog),
            members: Members::default(),
            by_id: HashMap::new(),
            devices: devices.into_iter().map(|d| (d.mac, d)).collect(),
            nas,
            vouchers: HashMap::new(),
            passphrases: Default::default(),
        }
    }

    /// Adds vouchers (those already over are left out) with their bound devices.
    pub fn with_vouchers(
        mut self,
        vouchers: Vec<Voucher>,
        devices: Vec<(String, MacAddr)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Directory {
        self.vouchers = vouchers
            .into_iter()
            .filter(|v| v.expires_at().is_none_or(|end| end > now))
            .map(|v| (v.code.clone(), (v, Vec::new())))
            .collect();
        for (code, mac) in devices {
            if let Some(v) = self.vouchers.get_mut(&code) {
                v.1.push(mac);
            }
        }
        self
    }

    /// A voucher by its code as a guest typed it (case, spaces and dash do not matter).
    pub fn voucher(&self, code: &str) -> Option<(&Voucher, &[MacAddr])> {
        if code.is_empty() || code.len() > 64 {
            return None;
        }
        self.vouchers
            .get(&frontdesk_core::store::normalise_voucher_code(code))
            .map(|(v, m)| (v, m.as_slice()))
    }

    fn fill<'m>(&mut self, members: impl Iterator<Item = (&'m Member, &'m [u8; 16], &'m str)>) {
        let mut owners: HashSet<&str> = self
            .devices
            .values()
            .filter_map(|d| d.member_id.as_deref())
            .collect();
        for (member, nt_hash, password) in members {
            let index = self.members.records.len() as u32;
            if !self.members.push(member, *nt_hash, password) {
                tracing::warn!(
                    member = %member.id,
                    "member left out of the RADIUS index (duplicate Wi-Fi username or oversized field)"
                );
            } else if owners.remove(member.id.as_str()) {
                self.by_id.insert(member.id.as_str().into(), index);
            }
        }
        self.members.shrink();
        self.by_id.shrink_to_fit();
    }

    pub async fn load(store: &Store) -> Result<Directory, StoreError> {
        let p = Parts::load(store).await?;
        Directory::new(p.catalog, p.members, p.devices, p.nas)
            .with_stored_vouchers(store)
            .await?
            .with_stored_passphrases(store)
            .await
    }

    /// Adds the store's vouchers (those still good) and their devices.
    pub async fn with_stored_vouchers(self, store: &Store) -> Result<Directory, StoreError> {
        Ok(self.with_vouchers(
            store.vouchers().await?,
            store.voucher_devices_all().await?,
            frontdesk_core::clock::now(),
        ))
    }

    pub fn catalog(&self) -> &Catalog {
        self.catalog
            .as_ref()
            .expect("a loaded directory has a catalog")
    }

    /// Wi-Fi usernames are matched case-insensitively.
    pub fn member_by_username(&self, name: &str) -> Option<MemberRef<'_>> {
        let i = match self.members.find(name) {
            Some(i) => i,
            None => self.members.find(&name.to_lowercase())?,
        };
        Some(self.members.get(i))
    }

    pub fn member_by_id(&self, id: &str) -> Option<MemberRef<'_>> {
        self.by_id.get(id).map(|&i| self.members.get(i))
    }

    pub fn device(&self, mac: &MacAddr) -> Option<&Device> {
        self.devices.get(mac)
    }

    pub fn nas_for(&self, ip: IpAddr) -> Option<&Nas> {
        // IPv4-mapped IPv6 sources (dual-stack sockets) match IPv4 entries.
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.nas.iter().find(|n| n.address.contains(&ip))
    }

    pub fn nas_clients(&self) -> &[Nas] {
        &self.nas
    }

    pub fn member_count(&self) -> usize {
        self.members.records.len()
    }

    pub fn active_member_count(&self) -> usize {
        self.members
            .records
            .iter()
            .filter(|r| r.status == MemberStatus::Active)
            .count()
    }
}

/// glibc serves allocations above a *moving* threshold (128 KiB, raised up to 32 MiB each
/// time a large mmapped block is freed) from the heap. Loading the directory frees large
/// temporary buffers, so the directory's own large arrays were then placed on the heap above
/// the temporaries, and the heap could not shrink below them: with 100,000 members the
/// resident size stayed at 59-80 MB idle for ~15 MB of live data. A fixed 256 KiB threshold
/// keeps every large block in its own mapping, returned on free: 40-44 MB idle, same
/// throughput (BENCHMARKS.md). Nothing on the request path allocates that much. Call it
/// first thing in `main`.
pub fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets a glibc tunable; called at the start of main, before any thread
    // exists, with a valid parameter and value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Returns freed heap to the operating system after a (re)load: building the index allocates
/// the whole member table twice over (rows, then entries), and glibc keeps that memory mapped
/// otherwise (measured: 164 MB idle RSS with 100k members).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap structures; it takes no pointers from us
    // and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::model::default_plans;

    fn member(id: &str, user: &str, plans: &[i64], status: MemberStatus) -> MemberEntry {
        MemberEntry {
            member: Member {
                id: id.into(),
                name: "Name".into(),
                email: "e@example.com".into(),
                status,
                team_id: (id == "m2").then_some(7),
                wifi_username: user.into(),
                assignments: plans
                    .iter()
                    .map(|&plan_id| Assignment {
                        plan_id,
                        valid_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                        valid_until: None,
                    })
                    .collect(),
                created_at: frontdesk_core::clock::now(),
            },
            nt_hash: frontdesk_core::secrets::nt_hash(&format!("pw-{id}")),
            password: format!("pw-{id}"),
        }
    }

    #[test]
    fn compact_index_returns_each_member_as_stored() {
        let catalog = crate::testing::lab_catalog(default_plans());
        let printer = Device {
            id: 1,
            mac: "02:00:00:00:00:01".parse().unwrap(),
            member_id: Some("m2".into()),
            plan_id: 6,
            name: "printer".into(),
        };
        let mut entries: Vec<MemberEntry> = (0..1000)
            .map(|i| {
                member(
                    &format!("id{i}"),
                    &format!("user{i}@x"),
                    &[4],
                    MemberStatus::Active,
                )
            })
            .collect();
        entries.push(member("m2", "grace@x", &[3, 5], MemberStatus::Suspended));
        // A second member with a taken username is left out, not allowed to shadow the first.
        entries.push(member("m3", "grace@x", &[1], MemberStatus::Active));
        let dir = Directory::new(catalog, entries, vec![printer], vec![]);

        assert_eq!(dir.member_count(), 1001);
        assert_eq!(dir.active_member_count(), 1000);
        for i in [0, 1, 500, 999] {
            let m = dir.member_by_username(&format!("user{i}@x")).unwrap();
            assert_eq!(m.id, format!("id{i}"));
            assert_eq!(m.password, format!("pw-id{i}"));
            assert_eq!(
                *m.nt_hash,
                frontdesk_core::secrets::nt_hash(&format!("pw-id{i}"))
            );
            assert_eq!(m.holder.assignments.len(), 1);
        }
        let g = dir.member_by_username("Grace@X").expect("case-insensitive");
        assert_eq!((g.id, g.wifi_username), ("m2", "grace@x"));
        assert_eq!(g.holder.status, MemberStatus::Suspended);
        assert_eq!(g.holder.team_id, Some(7));
        let plans: Vec<i64> = g.holder.assignments.iter().map(|a| a.plan_id).collect();
        assert_eq!(plans, [3, 5]);
        // Only device owners are indexed by id.
        assert_eq!(dir.member_by_id("m2").unwrap().wifi_username, "grace@x");
        assert!(dir.member_by_id("id1").is_none());
        assert!(dir.member_by_username("nobody@x").is_none());
    }
}
