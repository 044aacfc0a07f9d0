//! Member self-service (`/me`): sign-in links by mail, an optional self-service password,
//! sessions, and the member's own devices, guest passes and sponsor requests. Tokens are
//! stored as SHA-256 only (the caller hashes). Every query is scoped by the member's id, which
//! comes from the session, never from the request.

use super::portal::SponsorRequest;
use super::records::{device_from_row, voucher_from_row, DeviceRow, VoucherRow};
use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use crate::mac::MacAddr;
use crate::model::{Device, Voucher};
use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub struct MemberSession {
    pub member_id: String,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The member behind an email with their self-service password hash (`None` if unset).
    pub async fn member_login(&self, email: &str) -> Result<Option<(String, Option<String>)>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT id, login_hash FROM members WHERE email = $1")
                .bind(email.trim().to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row)
    }

    /// Sets (or replaces) the member's self-service password and ends their other sessions.
    pub async fn set_member_login(
        &self,
        member_id: &str,
        login_hash: &str,
        keep_session: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE members SET login_hash = $1 WHERE id = $2")
            .bind(login_hash)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("member {member_id}")));
        }
        sqlx::query("DELETE FROM member_sessions WHERE member_id = $1 AND token_hash <> $2")
            .bind(member_id)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        self.finish(
            tx,
            actor,
            Audit::new("member.login_password", "member_login", member_id),
        )
        .await
    }

    /// A sign-in link for the member, good once until `expires_at`. Older unused links of the
    /// member stay valid until they expire (a member may ask twice before the first arrives).
    pub async fn create_member_link(
        &self,
        token_hash: &str,
        member_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        // Expired links are of no use to anyone: cleaned on the way.
        sqlx::query("DELETE FROM member_links WHERE expires_at < $1")
            .bind(now.timestamp() - 86_400)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO member_links (token_hash, member_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(member_id)
        .bind(now.timestamp())
        .bind(expires_at.timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a link is still good (for the confirm page; changes nothing).
    pub async fn member_link_valid(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM member_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.timestamp())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Uses a link: the member's id, once; `None` when unknown, used or expired.
    pub async fn use_member_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE member_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING member_id",
        )
        .bind(now.timestamp())
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn create_member_session(
        &self,
        token_hash: &str,
        member_id: &str,
        csrf: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO member_sessions (token_hash, member_id, csrf, created_at, last_seen, ip) VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(member_id)
        .bind(csrf)
        .bind(now.timestamp())
        .bind(ip)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session of an active member: `None` (and the row deleted) when unknown, idle
    /// or too old, or when the member is no longer active (suspension ends self-service too).
    pub async fn member_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
        absolute: chrono::Duration,
    ) -> Result<Option<MemberSession>> {
        let row: Option<(String, String, i64, i64, String)> = sqlx::query_as(
            "SELECT s.member_id, s.csrf, s.created_at, s.last_seen, m.status \
             FROM member_sessions s JOIN members m ON m.id = s.member_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((member_id, csrf, created, seen, status)) = row else {
            return Ok(None);
        };
        let t = now.timestamp();
        if t - seen > idle.num_seconds()
            || t - created > absolute.num_seconds()
            || status != "active"
        {
            self.end_member_session(token_hash).await?;
            return Ok(None);
        }
        if t - seen >= 60 {
            sqlx::query("UPDATE member_sessions SET last_seen = $1 WHERE token_hash = $2")
                .bind(t)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(MemberSession {
            member_id,
            csrf,
            created_at: ts(created),
        }))
    }

    pub async fn end_member_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM member_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn end_member_sessions_of(&self, member_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM member_sessions WHERE member_id = $1")
            .bind(member_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Devices registered to a member (MAC authentication on the member's plan).
    pub async fn devices_of(&self, member_id: &str) -> Result<Vec<Device>> {
        let rows: Vec<DeviceRow> = sqlx::query_as(
            "SELECT id, mac, member_id, plan_id, name FROM devices WHERE member_id = $1 ORDER BY created_at, mac",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(device_from_row).collect()
    }

    /// Removes a device; with `owner`, only when it belongs to that member (a member cannot
    /// remove anyone else's device by naming its MAC: it is "not found" to them).
    pub async fn remove_device(
        &self,
        mac: MacAddr,
        owner: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = match owner {
            Some(m) => {
                sqlx::query("DELETE FROM devices WHERE mac = $1 AND member_id = $2")
                    .bind(mac.to_string())
                    .bind(m)
                    .execute(&mut *tx)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM devices WHERE mac = $1")
                    .bind(mac.to_string())
                    .execute(&mut *tx)
                    .await?
            }
        };
        if r.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("device {mac}")));
        }
        self.finish(
            tx,
            actor,
            Audit::new("device.remove", "device", mac.to_string()),
        )
        .await
    }

    /// Registers a device for a member within `limit` devices (checked in the transaction,
    /// so two quick submissions cannot both pass).
    pub async fn add_member_device(
        &self,
        member_id: &str,
        mac: MacAddr,
        plan_id: i64,
        name: &str,
        limit: u32,
        actor: &Actor,
    ) -> Result<Device> {
        let mut tx = self.begin().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM devices WHERE member_id = $1")
            .bind(member_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= i64::from(limit) {
            return Err(StoreError::Invalid(format!(
                "your plan allows {limit} registered device{}; remove one first",
                if limit == 1 { "" } else { "s" }
            )));
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO devices (mac, member_id, plan_id, name, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(mac.to_string())
        .bind(member_id)
        .bind(plan_id)
        .bind(name)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("device {mac} (registered already)")))?;
        let audit = Audit::new("device.add", "device", mac.to_string())
            .after(format!("owner={member_id} name={name}"));
        self.finish(tx, actor, audit).await?;
        Ok(Device {
            id,
            mac,
            member_id: Some(member_id.into()),
            plan_id,
            name: name.into(),
        })
    }

    /// Guest passes (vouchers) a member sponsored, newest first.
    pub async fn vouchers_sponsored_by(&self, member_id: &str) -> Result<Vec<Voucher>> {
        let rows: Vec<VoucherRow> = sqlx::query_as(
            "SELECT code, plan_id, valid_secs, devices, sponsor_id, created_at, first_used_at FROM vouchers WHERE sponsor_id = $1 ORDER BY created_at DESC, code",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(voucher_from_row).collect())
    }

    /// Sponsor requests addressed to a member in the last `days` days, newest first.
    pub async fn sponsor_requests_of(
        &self,
        member_id: &str,
        now: DateTime<Utc>,
        days: i64,
    ) -> Result<Vec<SponsorRequest>> {
        self.sponsor_requests_where(member_id, now.timestamp() - days * 86_400, now)
            .await
    }
}
