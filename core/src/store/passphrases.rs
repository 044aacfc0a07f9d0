//! Private passphrases (identity PSK, issue 12): a WPA2-Personal passphrase per member or
//! team on a PPSK SSID. The VLAN is not stored: the owner's plan or team gives it at login
//! time, so a plan change or cancellation applies to the passphrase too.

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
}

#[derive(Clone, Debug, Serialize)]
pub struct Passphrase {
    pub id: i64,
    pub ssid: String,
    pub member_id: Option<String>,
    pub team_id: Option<i64>,
    /// The member's email or the team's name.
    pub owner: String,
    /// The passphrase itself (decrypted; never serialised).
    #[serde(skip)]
    pub secret: String,
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

type Row = (
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const SELECT: &str = "SELECT p.id, p.ssid, p.member_id, p.team_id, p.secret_enc, p.valid_until, \
     p.max_devices, p.created_at, p.revoked_at, m.email, t.name FROM passphrases p \
     LEFT JOIN members m ON m.id = p.member_id LEFT JOIN teams t ON t.id = p.team_id";

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
        let (member_id, team_id, who) = match owner {
            Owner::Member(key) => {
                let m = self.member(key).await?;
                if m.status == MemberStatus::Cancelled {
                    return Err(StoreError::Invalid(format!(
                        "member {} is cancelled",
                        m.email
                    )));
                }
                (Some(m.id), None, m.email)
            }
            Owner::Team(id) => {
                let t = self
                    .teams()
                    .await?
                    .into_iter()
                    .find(|t| t.id == *id)
                    .ok_or_else(|| StoreError::NotFound(format!("team #{id}")))?;
                (None, Some(t.id), t.name)
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
        let enc = self.key()?.encrypt(secret.as_bytes());
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO passphrases (ssid, member_id, team_id, secret_enc, valid_until, max_devices, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(ssid)
        .bind(&member_id)
        .bind(team_id)
        .bind(enc)
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
        let (id, ssid, member_id, team_id, enc, until, devices, created, revoked, email, team) = r;
        Ok(Passphrase {
            id,
            ssid,
            member_id,
            team_id,
            owner: email.or(team).unwrap_or_default(),
            secret: self.key()?.decrypt_string(&enc)?,
            valid_until: until
                .map(|d| d.parse())
                .transpose()
                .map_err(|_| StoreError::Invalid(format!("passphrase #{id}: stored date")))?,
            max_devices: devices.map(|d| d.clamp(0, i64::from(u32::MAX)) as u32),
            created_at: ts(created),
            revoked_at: revoked.map(ts),
        })
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
