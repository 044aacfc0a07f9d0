//! Private passphrases in the RADIUS index (identity PSK): by SSID, by owner, by device, with
//! each PMK keyed into HMAC-SHA1 once so an unbound-mode scan costs two short HMACs a
//! passphrase.

use super::{Directory, MemberRef};
use crate::psk::{keyed, KeyedPmk};
use chrono::{DateTime, NaiveDate, Utc};
use frontdesk_core::decide::{decide, Decision, Holder, Reason, Resource, Subject};
use frontdesk_core::model::{Assignment, Device, MemberStatus};
use frontdesk_core::store::passphrases::Passphrase;
use frontdesk_core::store::{Store, StoreError};
use frontdesk_core::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Whose passphrase it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PskOwner {
    Member(String),
    Team(i64),
    /// A plan's shared "join" passphrase.
    Plan(i64),
}

/// A passphrase as the index keeps it (the offline cache keeps these too, sealed).
#[derive(Clone, Serialize, Deserialize)]
pub struct PskEntry {
    pub id: i64,
    pub ssid: String,
    pub owner: PskOwner,
    pub secret: String,
    pub pmk: [u8; 32],
    pub valid_until: Option<NaiveDate>,
    pub max_devices: Option<u32>,
    pub revoked: bool,
}

impl std::fmt::Debug for PskEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskEntry")
            .field("id", &self.id)
            .field("ssid", &self.ssid)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl From<Passphrase> for PskEntry {
    fn from(p: Passphrase) -> PskEntry {
        let owner = match (p.member_id, p.team_id, p.plan_id) {
            (Some(m), _, _) => PskOwner::Member(m),
            (_, Some(t), _) => PskOwner::Team(t),
            (_, _, plan) => PskOwner::Plan(plan.unwrap_or_default()),
        };
        PskEntry {
            id: p.id,
            ssid: p.ssid,
            owner,
            secret: p.secret,
            pmk: p.pmk,
            valid_until: p.valid_until,
            max_devices: p.max_devices,
            revoked: p.revoked_at.is_some(),
        }
    }
}

/// Every passphrase (revoked ones too: their devices' sessions must be ended) and the
/// devices learned with them.
pub async fn load(store: &Store) -> Result<(Vec<PskEntry>, Vec<(i64, MacAddr)>), StoreError> {
    let entries = store
        .passphrases(true)
        .await?
        .into_iter()
        .map(PskEntry::from)
        .collect();
    let devices = store
        .passphrase_devices_all()
        .await?
        .into_iter()
        .map(|d| (d.passphrase_id, d.mac))
        .collect();
    Ok((entries, devices))
}

#[derive(Default)]
pub(super) struct Passphrases {
    entries: Vec<PskEntry>,
    keyed: Vec<KeyedPmk>,
    /// Passphrases in force, by SSID.
    by_ssid: HashMap<String, Vec<u32>>,
    /// Passphrases in force, by owner and SSID.
    by_owner: HashMap<(PskOwner, String), u32>,
    /// Every passphrase, by its id.
    by_id: HashMap<i64, u32>,
    /// Devices learned or bound, to every passphrase they used (revoked ones included).
    bound: HashMap<MacAddr, Vec<u32>>,
    /// How many devices each passphrase has.
    device_count: Vec<u32>,
    /// A team's passphrase is good while some active member of the team holds a plan: the
    /// union of their assignments.
    team_assignments: HashMap<i64, Vec<Assignment>>,
}

/// Which passphrase answers a device, and how it was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The device joined (or was bound) with it before.
    Bound(u32),
    /// The device is registered to a member: that member's (or their team's) passphrase.
    Owner(u32),
    /// Nobody's device: the SSID's join passphrase.
    Join(u32),
}

impl Pick {
    pub fn index(self) -> u32 {
        match self {
            Pick::Bound(i) | Pick::Owner(i) | Pick::Join(i) => i,
        }
    }
}

impl Directory {
    /// Adds passphrases and the devices learned with them.
    pub fn with_passphrases(
        mut self,
        entries: Vec<PskEntry>,
        devices: Vec<(i64, MacAddr)>,
    ) -> Directory {
        let mut p = Passphrases {
            keyed: entries.iter().map(|e| keyed(&e.pmk)).collect(),
            device_count: vec![0; entries.len()],
            ..Passphrases::default()
        };
        p.by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i as u32))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            if e.revoked {
                continue;
            }
            p.by_ssid.entry(e.ssid.clone()).or_default().push(i as u32);
            p.by_owner
                .insert((e.owner.clone(), e.ssid.clone()), i as u32);
        }
        for (id, mac) in devices {
            if let Some(&i) = p.by_id.get(&id) {
                p.bound.entry(mac).or_default().push(i);
                p.device_count[i as usize] += 1;
            }
        }
        // Members owning a passphrase are looked up by id (as device owners are).
        let owners: std::collections::HashSet<&str> = entries
            .iter()
            .filter_map(|e| match &e.owner {
                PskOwner::Member(m) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        let teams: std::collections::HashSet<i64> = entries
            .iter()
            .filter_map(|e| match e.owner {
                PskOwner::Team(t) => Some(t),
                _ => None,
            })
            .collect();
        for i in 0..self.members.records.len() as u32 {
            let m = self.members.get(i);
            if owners.contains(m.id) {
                self.by_id.insert(m.id.into(), i);
            }
            if let Some(t) = m.holder.team_id.filter(|t| teams.contains(t)) {
                if m.holder.status == MemberStatus::Active {
                    p.team_assignments
                        .entry(t)
                        .or_default()
                        .extend_from_slice(m.holder.assignments);
                }
            }
        }
        p.entries = entries;
        self.passphrases = p;
        self
    }

    /// Adds the store's passphrases and their devices.
    pub async fn with_stored_passphrases(self, store: &Store) -> Result<Directory, StoreError> {
        let (entries, devices) = load(store).await?;
        Ok(self.with_passphrases(entries, devices))
    }

    /// Does this SSID carry private passphrases?
    pub fn psk_ssid(&self, ssid: &str) -> bool {
        self.passphrases.by_ssid.contains_key(ssid)
    }

    pub fn psk_entry(&self, i: u32) -> &PskEntry {
        &self.passphrases.entries[i as usize]
    }

    pub fn psk_keyed(&self, i: u32) -> &KeyedPmk {
        &self.passphrases.keyed[i as usize]
    }

    /// Passphrases in force on an SSID.
    pub fn psk_on(&self, ssid: &str) -> &[u32] {
        self.passphrases
            .by_ssid
            .get(ssid)
            .map_or(&[], Vec::as_slice)
    }

    /// Passphrases a device used before (revoked ones too).
    pub fn psk_bound(&self, mac: &MacAddr) -> &[u32] {
        self.passphrases.bound.get(mac).map_or(&[], Vec::as_slice)
    }

    pub fn psk_device_count(&self, i: u32) -> u32 {
        self.passphrases.device_count[i as usize]
    }

    pub fn psk_by_id(&self, id: i64) -> Option<u32> {
        self.passphrases.by_id.get(&id).copied()
    }

    /// Is passphrase `i` in force on `ssid`?
    pub fn psk_in_force_on(&self, i: u32, ssid: &str) -> bool {
        let e = self.psk_entry(i);
        !e.revoked && e.ssid == ssid
    }

    /// MAC-bound mode: the passphrase to hand a device on `ssid`: one it used before, else
    /// its registered owner's (or the owner's team's), else the SSID's join passphrase.
    pub fn psk_for_mac(&self, mac: &MacAddr, ssid: &str) -> Option<Pick> {
        let p = &self.passphrases;
        if let Some(&i) = self
            .psk_bound(mac)
            .iter()
            .find(|&&i| self.psk_in_force_on(i, ssid))
        {
            return Some(Pick::Bound(i));
        }
        if let Some(member) = self
            .device(mac)
            .and_then(|d| d.member_id.as_deref())
            .and_then(|id| self.member_by_id(id))
        {
            let mine = p
                .by_owner
                .get(&(PskOwner::Member(member.id.to_owned()), ssid.to_owned()));
            let team = member
                .holder
                .team_id
                .and_then(|t| p.by_owner.get(&(PskOwner::Team(t), ssid.to_owned())));
            if let Some(&i) = mine.or(team) {
                return Some(Pick::Owner(i));
            }
        }
        self.psk_on(ssid)
            .iter()
            .find(|&&i| matches!(p.entries[i as usize].owner, PskOwner::Plan(_)))
            .map(|&i| Pick::Join(i))
    }

    /// The member a passphrase belongs to (for the auth log and the device limit).
    pub fn psk_member(&self, i: u32) -> Option<MemberRef<'_>> {
        match &self.psk_entry(i).owner {
            PskOwner::Member(id) => self.member_by_id(id),
            _ => None,
        }
    }

    /// The same `decide()` as any login, for the passphrase's owner; a revoked passphrase or
    /// one past its last day is refused; access ends at its last day at the latest.
    pub fn psk_decide(&self, i: u32, resource: Resource<'_>, now: DateTime<Utc>) -> Decision {
        let e = self.psk_entry(i);
        let catalog = self.catalog();
        let cal = &catalog.site.calendar;
        let last = e.valid_until.map(|d| cal.day_end(d));
        if e.revoked || last.is_some_and(|end| now.timestamp() >= end) {
            return Decision::deny(Reason::PassphraseRevoked);
        }
        let mut d = match &e.owner {
            PskOwner::Member(id) => match self.member_by_id(id) {
                Some(m) => decide(catalog, Subject::Member(m.holder), resource, now),
                None => Decision::deny(Reason::UnknownUser),
            },
            PskOwner::Team(t) => {
                let assignments = self
                    .passphrases
                    .team_assignments
                    .get(t)
                    .map_or(&[][..], Vec::as_slice);
                decide(
                    catalog,
                    Subject::Member(Holder {
                        status: MemberStatus::Active,
                        team_id: Some(*t),
                        assignments,
                    }),
                    resource,
                    now,
                )
            }
            PskOwner::Plan(plan) => {
                let device = Device {
                    id: 0,
                    mac: MacAddr([0; 6]),
                    member_id: None,
                    plan_id: *plan,
                    name: String::new(),
                };
                decide(
                    catalog,
                    Subject::Device {
                        device: &device,
                        owner: None,
                    },
                    resource,
                    now,
                )
            }
        };
        if let (true, Some(end)) = (d.allowed, last) {
            let end = DateTime::from_timestamp(end, 0).unwrap_or(now);
            d.valid_until = Some(d.valid_until.map_or(end, |v| v.min(end)));
        }
        d
    }
}
