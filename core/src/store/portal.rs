//! Captive-portal state: voucher redemption (device-counted) and the clients let out, with
//! their end. Portal logins are observations, not catalog changes: they are audited but do not
//! go through the `changes` feed (the RADIUS index has nothing to refresh for them).

use super::records::normalise_voucher_code;
use super::{now_secs, ts, Actor, Result, Store};
use crate::mac::MacAddr;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How a portal client got in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortalKind {
    Voucher,
    Member,
    Sponsor,
}

impl PortalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PortalKind::Voucher => "voucher",
            PortalKind::Member => "member",
            PortalKind::Sponsor => "sponsor",
        }
    }

    fn parse(s: &str) -> PortalKind {
        match s {
            "member" => PortalKind::Member,
            "sponsor" => PortalKind::Sponsor,
            _ => PortalKind::Voucher,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortalClient {
    pub mac: MacAddr,
    pub ip: Option<String>,
    /// Gateway interface or controller site.
    pub network: Option<String>,
    pub kind: PortalKind,
    /// Voucher code or member id.
    pub subject: String,
    pub authorized_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl PortalClient {
    /// The device as the authorizer (firewall, controller) knows it.
    pub fn client_ref(&self) -> crate::ports::ClientRef {
        crate::ports::ClientRef {
            mac: self.mac,
            ip: self.ip.as_deref().and_then(|i| i.parse().ok()),
            location: self.network.clone(),
        }
    }
}

/// The outcome of presenting a voucher from a device.
#[derive(Clone, Debug)]
pub enum Redeemed {
    /// Counted for this device (now or before); `first_used_at` is set.
    Ok(crate::model::Voucher),
    NotFound,
    /// All of the voucher's devices are used by other MACs.
    DeviceLimit {
        devices: u32,
    },
}

type ClientRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

fn client_from_row(
    (mac, ip, network, kind, subject, at, until): ClientRow,
) -> Option<PortalClient> {
    Some(PortalClient {
        mac: mac.parse().ok()?,
        ip,
        network,
        kind: PortalKind::parse(&kind),
        subject,
        authorized_at: ts(at),
        valid_until: ts(until),
    })
}

const CLIENT_COLS: &str = "mac, ip, network, kind, subject, authorized_at, valid_until";

impl Store {
    /// Counts `mac` against the voucher and starts its validity on first use, atomically (two
    /// phones racing for the last device slot: one wins). Presenting it again from a device
    /// already counted is fine.
    pub async fn redeem_voucher(
        &self,
        code: &str,
        mac: MacAddr,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Redeemed> {
        let code = normalise_voucher_code(code);
        let mut tx = self.begin().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT devices, COALESCE(first_used_at, -1) FROM vouchers WHERE code = $1",
        )
        .bind(&code)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((devices, first)) = row else {
            return Ok(Redeemed::NotFound);
        };
        let mac_s = mac.to_string();
        let (known,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM voucher_devices WHERE code = $1 AND mac = $2")
                .bind(&code)
                .bind(&mac_s)
                .fetch_one(&mut *tx)
                .await?;
        let now = at.timestamp();
        if known == 0 {
            let (used,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM voucher_devices WHERE code = $1")
                    .bind(&code)
                    .fetch_one(&mut *tx)
                    .await?;
            if used >= devices {
                return Ok(Redeemed::DeviceLimit {
                    devices: devices.clamp(0, i64::from(u32::MAX)) as u32,
                });
            }
            sqlx::query("INSERT INTO voucher_devices (code, mac, first_at) VALUES ($1, $2, $3)")
                .bind(&code)
                .bind(&mac_s)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if first < 0 {
                sqlx::query("UPDATE vouchers SET first_used_at = $1 WHERE code = $2 AND first_used_at IS NULL")
                    .bind(now)
                    .bind(&code)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO audit (at, actor, source, action, object, before_summary, after_summary) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
            )
            .bind(now_secs())
            .bind(&actor.name)
            .bind(&actor.source)
            .bind("voucher.use")
            .bind(&code)
            .bind(format!("device={mac_s}"))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(match self.voucher(&code).await? {
            Some(v) => Redeemed::Ok(v),
            None => Redeemed::NotFound,
        })
    }

    /// Records (or extends) a client let out through the portal.
    pub async fn record_portal_client(&self, c: &PortalClient) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO portal_clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, network = excluded.network, kind = excluded.kind, \
             subject = excluded.subject, authorized_at = excluded.authorized_at, valid_until = excluded.valid_until"
        ))
        .bind(c.mac.to_string())
        .bind(&c.ip)
        .bind(&c.network)
        .bind(c.kind.as_str())
        .bind(&c.subject)
        .bind(c.authorized_at.timestamp())
        .bind(c.valid_until.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The client's record while it is still valid at `now`.
    pub async fn portal_client(
        &self,
        mac: MacAddr,
        now: DateTime<Utc>,
    ) -> Result<Option<PortalClient>> {
        let row: Option<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLS} FROM portal_clients WHERE mac = $1 AND valid_until > $2"
        ))
        .bind(mac.to_string())
        .bind(now.timestamp())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(client_from_row))
    }

    /// How many portal clients are authorized at `now` (metrics; read-only).
    pub async fn portal_clients_count(&self, now: DateTime<Utc>) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM portal_clients WHERE valid_until > $1")
                .bind(now.timestamp())
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    /// Every client still valid at `now` (what a firewall reload re-authorizes); expired rows
    /// are removed on the way.
    pub async fn portal_clients(&self, now: DateTime<Utc>) -> Result<Vec<PortalClient>> {
        sqlx::query("DELETE FROM portal_clients WHERE valid_until <= $1")
            .bind(now.timestamp())
            .execute(&self.pool)
            .await?;
        let rows: Vec<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLS} FROM portal_clients ORDER BY valid_until, mac"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(client_from_row).collect())
    }

    /// Takes out the clients whose time is up at `now` and returns them (for the audit).
    pub async fn take_expired_portal_clients(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<PortalClient>> {
        let rows: Vec<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLS} FROM portal_clients WHERE valid_until <= $1 ORDER BY valid_until, mac"
        ))
        .bind(now.timestamp())
        .fetch_all(&self.pool)
        .await?;
        let gone: Vec<PortalClient> = rows.into_iter().filter_map(client_from_row).collect();
        let mut tx = self.begin().await?;
        for c in &gone {
            sqlx::query("DELETE FROM portal_clients WHERE mac = $1 AND valid_until <= $2")
                .bind(c.mac.to_string())
                .bind(now.timestamp())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Removes a client (logout, revocation); true when it was there.
    pub async fn remove_portal_client(&self, mac: MacAddr) -> Result<bool> {
        let res = sqlx::query("DELETE FROM portal_clients WHERE mac = $1")
            .bind(mac.to_string())
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Clients let out on a member's or voucher's behalf (to revoke them with it).
    pub async fn portal_clients_of(&self, subject: &str) -> Result<Vec<PortalClient>> {
        let rows: Vec<ClientRow> = sqlx::query_as(&format!(
            "SELECT {CLIENT_COLS} FROM portal_clients WHERE subject = $1 ORDER BY mac"
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(client_from_row).collect())
    }
}

impl Store {
    /// MACs of suspended and cancelled members: their registered devices and the devices seen
    /// in their RADIUS sessions during the last 30 days (gateway mode blocks them on every
    /// tier network).
    pub async fn blocked_macs(&self, now: DateTime<Utc>) -> Result<Vec<MacAddr>> {
        let since = now.timestamp() - 30 * 86_400;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT d.mac FROM devices d JOIN members m ON m.id = d.member_id \
             WHERE m.status IN ('suspended', 'cancelled') \
             UNION SELECT s.mac FROM radius_sessions s JOIN members m ON m.id = s.member_id \
             WHERE m.status IN ('suspended', 'cancelled') AND s.mac IS NOT NULL AND s.updated_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut macs: Vec<MacAddr> = rows.iter().filter_map(|(m,)| m.parse().ok()).collect();
        macs.sort();
        macs.dedup();
        Ok(macs)
    }
}

/// Where a sponsor request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SponsorState {
    Pending,
    Approved,
    Declined,
    Expired,
}

impl SponsorState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SponsorState::Pending => "pending",
            SponsorState::Approved => "approved",
            SponsorState::Declined => "declined",
            SponsorState::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SponsorRequest {
    pub id: String,
    pub member_id: String,
    pub guest_mac: MacAddr,
    pub guest_ip: Option<String>,
    pub network: Option<String>,
    pub guest_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: SponsorState,
    pub valid_until: Option<DateTime<Utc>>,
}

/// A new sponsor request (the id and the link's token hash are made by the caller).
pub struct NewSponsorRequest<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub member_id: &'a str,
    pub guest_mac: MacAddr,
    pub guest_ip: Option<String>,
    pub network: Option<String>,
    pub guest_name: &'a str,
    pub expires_at: DateTime<Utc>,
}

type SponsorRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

const SPONSOR_COLS: &str = "id, member_id, guest_mac, guest_ip, network, guest_name, created_at, expires_at, approved, valid_until";

fn sponsor_from_row(r: SponsorRow, now: DateTime<Utc>) -> Option<SponsorRequest> {
    let (id, member_id, mac, ip, network, name, created, expires, approved, until) = r;
    let state = match approved {
        Some(1) => SponsorState::Approved,
        Some(_) => SponsorState::Declined,
        None if expires <= now.timestamp() => SponsorState::Expired,
        None => SponsorState::Pending,
    };
    Some(SponsorRequest {
        id,
        member_id,
        guest_mac: mac.parse().ok()?,
        guest_ip: ip,
        network,
        guest_name: name,
        created_at: ts(created),
        expires_at: ts(expires),
        state,
        valid_until: until.map(ts),
    })
}

impl Store {
    pub async fn create_sponsor_request(
        &self,
        r: &NewSponsorRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sponsor_requests (id, token_hash, member_id, guest_mac, guest_ip, network, guest_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.id)
        .bind(r.token_hash)
        .bind(r.member_id)
        .bind(r.guest_mac.to_string())
        .bind(&r.guest_ip)
        .bind(&r.network)
        .bind(r.guest_name)
        .bind(now.timestamp())
        .bind(r.expires_at.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every sponsor request created at or after `since` (seconds), newest first (the
    /// console's guests page).
    pub async fn sponsor_requests_since(
        &self,
        since: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<SponsorRequest>> {
        let rows: Vec<SponsorRow> = sqlx::query_as(&format!(
            "SELECT {SPONSOR_COLS} FROM sponsor_requests WHERE created_at >= $1 ORDER BY created_at DESC LIMIT 500"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| sponsor_from_row(r, now))
            .collect())
    }

    /// The devices each voucher let in (code → MACs).
    pub async fn voucher_devices(&self) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT code, mac FROM voucher_devices ORDER BY code, mac")
                .fetch_all(&self.pool)
                .await?;
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (code, mac) in rows {
            out.entry(code).or_default().push(mac);
        }
        Ok(out)
    }

    /// A member's sponsor requests created at or after `since` (seconds), newest first.
    pub(super) async fn sponsor_requests_where(
        &self,
        member_id: &str,
        since: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<SponsorRequest>> {
        let rows: Vec<SponsorRow> = sqlx::query_as(&format!(
            "SELECT {SPONSOR_COLS} FROM sponsor_requests WHERE member_id = $1 AND created_at >= $2 ORDER BY created_at DESC"
        ))
        .bind(member_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| sponsor_from_row(r, now))
            .collect())
    }

    pub async fn sponsor_request(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SponsorRequest>> {
        let row: Option<SponsorRow> = sqlx::query_as(&format!(
            "SELECT {SPONSOR_COLS} FROM sponsor_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| sponsor_from_row(r, now)))
    }

    pub async fn sponsor_request_by_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SponsorRequest>> {
        let row: Option<SponsorRow> = sqlx::query_as(&format!(
            "SELECT {SPONSOR_COLS} FROM sponsor_requests WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| sponsor_from_row(r, now)))
    }

    /// Records the member's answer; false when the request was no longer pending (answered
    /// already, or expired), so a link works once.
    pub async fn decide_sponsor_request(
        &self,
        id: &str,
        approved: bool,
        valid_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "UPDATE sponsor_requests SET decided_at = $1, approved = $2, valid_until = $3 \
             WHERE id = $4 AND decided_at IS NULL AND expires_at > $1",
        )
        .bind(now.timestamp())
        .bind(i64::from(approved))
        .bind(valid_until.map(|t| t.timestamp()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, source, action, object, before_summary, after_summary) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(now_secs())
        .bind(&actor.name)
        .bind(&actor.source)
        .bind(if approved { "sponsor.approve" } else { "sponsor.decline" })
        .bind(id)
        .bind(valid_until.map(|t| format!("until={}", t.to_rfc3339())))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
