//! Private passphrases (identity PSK, issue 12): a WPA2-Personal passphrase per member or
//! team on a PPSK SSID, or a plan's shared "join" passphrase. The VLAN is not stored: the
//! owner's plan or team gives it at login time, so a plan change or cancellation applies to
//! the passphrase too. Devices learned with a passphrase are kept (`passphrase_devices`).

use super::{now_secs, ts, Actor, Audit, Result, Store, StoreError};
use crate::model::MemberStatus;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Whose passphrase it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A member id.
    Member(String),
    /// A team id.
    Team(i64),
    /// A plan id: a shared "join" passphrase (devices nobody has bound land on its VLAN).
    Plan(i64),
}

#[derive(Clone, Debug, Serialize)]
pub struct Passphrase {
    pub id: i64,
    pub ssid: String,
    pub member_id: Option<String>,
    pub team_id: Option<i64>,
    pub plan_id: Option<i64>,
    /// The member's email, the team's name or `plan <name>`.
    pub owner: String,
    /// The passphrase itself (decrypted; never serialised).
    #[serde(skip)]
    pub secret: String,
    /// PBKDF2(secret, SSID): what the 4-way handshake is keyed with (never serialised).
    #[serde(skip)]
    pub pmk: [u8; 32],
    /// Last local day it works (inclusive); `None`: as long as the owner has Wi-Fi.
    pub valid_until: Option<NaiveDate>,
    pub max_devices: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Passphrase {
    /// The `WIFI:` string phones read from a QR code to join.
    pub fn wifi_uri(&self) -> String {
        let esc = |s: &str| {
            s.chars()
                .flat_map(|c| match c {
                    '\\' | ';' | ',' | ':' | '"' => vec!['\\', c],
                    c => vec![c],
                })
                .collect::<String>()
        };
        format!("WIFI:T:WPA;S:{};P:{};;", esc(&self.ssid), esc(&self.secret))
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    ssid: String,
    member_id: Option<String>,
    team_id: Option<i64>,
    plan_id: Option<i64>,
    secret_enc: String,
    pmk_enc: Option<String>,
    valid_until: Option<String>,
    max_devices: Option<i64>,
    created_at: i64,
    revoked_at: Option<i64>,
    email: Option<String>,
    team: Option<String>,
    plan: Option<String>,
}

const SELECT: &str = "SELECT p.id, p.ssid, p.member_id, p.team_id, p.plan_id, p.secret_enc, \
     p.pmk_enc, p.valid_until, p.max_devices, p.created_at, p.revoked_at, m.email, \
     t.name AS team, pl.name AS plan FROM passphrases p \
     LEFT JOIN members m ON m.id = p.member_id LEFT JOIN teams t ON t.id = p.team_id \
     LEFT JOIN plans pl ON pl.id = p.plan_id";

/// A device seen with a passphrase.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseDevice {
    pub passphrase_id: i64,
    pub mac: crate::MacAddr,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

impl Store {
    /// Issues a new generated passphrase for `owner` on `ssid` (8–63 printable ASCII as
    /// WPA2 requires; unique on that SSID).
    pub async fn issue_passphrase(
        &self,
        owner: &Owner,
        ssid: &str,
        valid_until: Option<NaiveDate>,
        max_devices: Option<u32>,
        actor: &Actor,
    ) -> Result<Passphrase> {
        let ssid = ssid.trim();
        if ssid.is_empty() || ssid.len() > 32 {
            return Err(StoreError::Invalid(
                "SSID: 1 to 32 bytes, as the access point broadcasts it".into(),
            ));
        }
        if max_devices == Some(0) {
            return Err(StoreError::Invalid(
                "--devices: at least 1 (or leave it out for no limit)".into(),
            ));
        }
        let (member_id, team_id, plan_id, who) = match owner {
            Owner::Member(key) => {
                let m = self.member(key).await?;
                if m.status == MemberStatus::Cancelled {
                    return Err(StoreError::Invalid(format!(
                        "member {} is cancelled",
                        m.email
                    )));
                }
                (Some(m.id), None, None, m.email)
            }
            Owner::Team(id) => {
                let t = self
                    .teams()
                    .await?
                    .into_iter()
                    .find(|t| t.id == *id)
                    .ok_or_else(|| StoreError::NotFound(format!("team #{id}")))?;
                (None, Some(t.id), None, t.name)
            }
            Owner::Plan(id) => {
                let p = self
                    .plans()
                    .await?
                    .into_iter()
                    .find(|p| p.id == *id)
                    .ok_or_else(|| StoreError::NotFound(format!("plan #{id}")))?;
                (None, None, Some(p.id), format!("plan {}", p.name))
            }
        };
        let taken: Vec<String> = self
            .passphrases(false)
            .await?
            .into_iter()
            .filter(|p| p.ssid == ssid)
            .map(|p| p.secret)
            .collect();
        let secret = loop {
            let s = crate::secrets::generate_passphrase();
            if !taken.contains(&s) {
                break s;
            }
        };
        let key = self.key()?;
        let enc = key.encrypt(secret.as_bytes());
        let pmk = {
            let (s, ssid) = (secret.clone(), ssid.to_string());
            tokio::task::spawn_blocking(move || crate::secrets::wpa_pmk(&s, &ssid))
                .await
                .map_err(|e| StoreError::Invalid(format!("deriving the PMK: {e}")))?
        };
        let pmk_enc = key.encrypt(&pmk);
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO passphrases (ssid, member_id, team_id, plan_id, secret_enc, pmk_enc, valid_until, max_devices, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(ssid)
        .bind(&member_id)
        .bind(team_id)
        .bind(plan_id)
        .bind(enc)
        .bind(pmk_enc)
        .bind(valid_until.map(|d| d.to_string()))
        .bind(max_devices.map(i64::from))
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await?;
        // The passphrase itself is never in the audit log.
        let audit = Audit::new("passphrase.issue", "passphrase", format!("#{id}")).after(format!(
            "ssid={ssid} owner={who} until={} devices={}",
            valid_until.map_or("-".into(), |d| d.to_string()),
            max_devices.map_or("-".into(), |d| d.to_string())
        ));
        self.finish(tx, actor, audit).await?;
        self.passphrase(id).await
    }

    pub async fn passphrase(&self, id: i64) -> Result<Passphrase> {
        let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        self.passphrase_row(row.ok_or_else(|| StoreError::NotFound(format!("passphrase #{id}")))?)
    }

    /// Passphrases, newest first; revoked ones only with `include_revoked`.
    pub async fn passphrases(&self, include_revoked: bool) -> Result<Vec<Passphrase>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT}{} ORDER BY p.id DESC",
            if include_revoked {
                ""
            } else {
                " WHERE p.revoked_at IS NULL"
            }
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| self.passphrase_row(r)).collect()
    }

    fn passphrase_row(&self, r: Row) -> Result<Passphrase> {
        let key = self.key()?;
        let secret = key.decrypt_string(&r.secret_enc)?;
        let id = r.id;
        let pmk = match r.pmk_enc.as_deref().map(|p| key.decrypt(p)).transpose()? {
            Some(p) => p
                .try_into()
                .map_err(|_| StoreError::Invalid(format!("passphrase #{id}: stored PMK")))?,
            // Issued before the PMK was kept: derived here (~5 ms).
            None => crate::secrets::wpa_pmk(&secret, &r.ssid),
        };
        Ok(Passphrase {
            id,
            ssid: r.ssid,
            member_id: r.member_id,
            team_id: r.team_id,
            plan_id: r.plan_id,
            owner: r
                .email
                .or(r.team)
                .or(r.plan.map(|p| format!("plan {p}")))
                .unwrap_or_default(),
            secret,
            pmk,
            valid_until: r
                .valid_until
                .map(|d| d.parse())
                .transpose()
                .map_err(|_| StoreError::Invalid(format!("passphrase #{id}: stored date")))?,
            max_devices: r
                .max_devices
                .map(|d| d.clamp(0, i64::from(u32::MAX)) as u32),
            created_at: ts(r.created_at),
            revoked_at: r.revoked_at.map(ts),
        })
    }

    /// Every device learned with a passphrase (the RADIUS index reads them all at once).
    pub async fn passphrase_devices_all(&self) -> Result<Vec<PassphraseDevice>> {
        self.passphrase_devices_where("", None).await
    }

    /// Devices learned with one passphrase, most recent first.
    pub async fn passphrase_devices(&self, id: i64) -> Result<Vec<PassphraseDevice>> {
        self.passphrase_devices_where(" WHERE passphrase_id = $1", Some(id))
            .await
    }

    async fn passphrase_devices_where(
        &self,
        filter: &str,
        id: Option<i64>,
    ) -> Result<Vec<PassphraseDevice>> {
        let q = format!(
            "SELECT passphrase_id, mac, first_at, last_at FROM passphrase_devices{filter} ORDER BY last_at DESC"
        );
        let mut q = sqlx::query_as::<_, (i64, String, i64, i64)>(&q);
        if let Some(id) = id {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .filter_map(|(passphrase_id, mac, first, last)| {
                Some(PassphraseDevice {
                    passphrase_id,
                    mac: mac.parse().ok()?,
                    first_at: ts(first),
                    last_at: ts(last),
                })
            })
            .collect())
    }

    /// Records that `mac` joined with passphrase `id` (RADIUS learns this; an operator may
    /// bind a device in advance). Not audited per sighting: the auth log has each login.
    pub async fn record_passphrase_device(
        &self,
        id: i64,
        mac: crate::MacAddr,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO passphrase_devices (passphrase_id, mac, first_at, last_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (passphrase_id, mac) DO UPDATE SET last_at = excluded.last_at",
        )
        .bind(id)
        .bind(mac.to_string())
        .bind(at.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An operator binds a device to a passphrase ahead of its first join (MAC-bound mode
    /// answers that MAC with this passphrase); audited, and the RADIUS index reloads.
    pub async fn bind_passphrase_device(
        &self,
        id: i64,
        mac: crate::MacAddr,
        actor: &Actor,
    ) -> Result<()> {
        let p = self.passphrase(id).await?;
        if p.revoked_at.is_some() {
            return Err(StoreError::Invalid(format!("passphrase #{id} is revoked")));
        }
        let bound = self.passphrase_devices(id).await?;
        if let Some(max) = p.max_devices {
            if !bound.iter().any(|d| d.mac == mac) && bound.len() >= max as usize {
                return Err(StoreError::Invalid(format!(
                    "passphrase #{id} already has its {max} device(s); unbind one first"
                )));
            }
        }
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO passphrase_devices (passphrase_id, mac, first_at, last_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (passphrase_id, mac) DO NOTHING",
        )
        .bind(id)
        .bind(mac.to_string())
        .bind(now_secs())
        .execute(&mut *tx)
        .await?;
        self.finish(
            tx,
            actor,
            Audit::new("passphrase.bind", "passphrase", format!("#{id}")).after(mac.to_string()),
        )
        .await
    }

    /// Forgets a device learned with a passphrase (it frees a place under `max_devices`).
    pub async fn unbind_passphrase_device(
        &self,
        id: i64,
        mac: crate::MacAddr,
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM passphrase_devices WHERE passphrase_id = $1 AND mac = $2")
            .bind(id)
            .bind(mac.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "device {mac} on passphrase #{id}"
            )));
        }
        self.finish(
            tx,
            actor,
            Audit::new("passphrase.unbind", "passphrase", format!("#{id}")).before(mac.to_string()),
        )
        .await
    }

    /// Revokes a passphrase: it stops working at the next login (RADIUS) and its devices'
    /// sessions are ended like a cancelled member's.
    pub async fn revoke_passphrase(&self, id: i64, actor: &Actor) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE passphrases SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_secs())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "passphrase #{id} (or already revoked)"
            )));
        }
        self.finish(
            tx,
            actor,
            Audit::new("passphrase.revoke", "passphrase", format!("#{id}")),
        )
        .await
    }
}
