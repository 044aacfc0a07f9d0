//! Members, their plan assignments and Wi-Fi credentials.

use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use crate::model::{validate_email, Assignment, Member, MemberStatus};
use crate::secrets::{generate_wifi_password, nt_hash};
use chrono::{Duration, NaiveDate};
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct NewMember {
    pub name: String,
    pub email: String,
    pub plan: String,
    pub team: Option<String>,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub wifi_username: Option<String>,
    pub wifi_password: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct MemberFilter {
    pub plan: Option<String>,
    pub status: Option<MemberStatus>,
    pub team: Option<String>,
    /// Case-insensitive substring of name, email or Wi-Fi username.
    pub search: Option<String>,
}

impl MemberFilter {
    /// Whether `m` passes, with the plan and team filters already resolved to ids (one
    /// predicate for the database listing and for in-memory directories).
    pub fn keeps(&self, m: &Member, plan_id: Option<i64>, team_id: Option<i64>) -> bool {
        let needle = self.search.as_ref().map(|s| s.to_lowercase());
        self.status.is_none_or(|s| s == m.status)
            && team_id.is_none_or(|t| m.team_id == Some(t))
            && plan_id.is_none_or(|p| m.assignments.iter().any(|a| a.plan_id == p))
            && needle.as_ref().is_none_or(|n| {
                m.name.to_lowercase().contains(n)
                    || m.email.contains(n)
                    || m.wifi_username.contains(n)
            })
    }
}

type MemberRow = (String, String, String, String, Option<i64>, String, i64);

pub(crate) fn validate_wifi_username(u: &str) -> Result<String> {
    let u = u.trim().to_lowercase();
    if u.is_empty() || u.len() > 253 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "Wi-Fi username {u:?}: 1–253 characters without spaces"
        )));
    }
    Ok(u)
}

pub(crate) fn validate_wifi_password(p: &str) -> Result<()> {
    if p.chars().count() < 8 || p.len() > 128 || p.chars().any(|c| c.is_control()) {
        return Err(StoreError::Invalid(
            "Wi-Fi password: 8–128 characters, no control characters".into(),
        ));
    }
    Ok(())
}

pub(crate) fn parse_status(s: &str) -> Result<MemberStatus> {
    s.parse().map_err(StoreError::Invalid)
}

fn date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::Invalid(format!("stored date {s:?} is invalid")))
}

/// The inclusive end of an assignment that starts on `from` for a plan valid `days` days.
pub(crate) fn default_until(from: NaiveDate, days: Option<u32>) -> Option<NaiveDate> {
    days.filter(|&d| d > 0)
        .map(|d| from + Duration::days(i64::from(d) - 1))
}

impl Store {
    /// Creates a member with a generated (or given) Wi-Fi password; returns it in clear once.
    pub async fn add_member(
        &self,
        new: &NewMember,
        today: NaiveDate,
        actor: &Actor,
    ) -> Result<(Member, String)> {
        let email = validate_email(&new.email)
            .map_err(StoreError::Invalid)?
            .to_lowercase();
        let name = new.name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("member name is empty".into()));
        }
        let plan = self.plan(&new.plan).await?;
        let team = match &new.team {
            Some(t) => Some(self.team(t).await?),
            None => None,
        };
        let from = new.valid_from.unwrap_or(today);
        let until = new
            .valid_until
            .or_else(|| default_until(from, plan.validity_days));
        if let Some(u) = until.filter(|u| *u < from) {
            return Err(StoreError::Invalid(format!(
                "valid until {u} is before valid from {from}"
            )));
        }
        let username = validate_wifi_username(new.wifi_username.as_deref().unwrap_or(&email))?;
        let password = match &new.wifi_password {
            Some(p) => {
                validate_wifi_password(p)?;
                p.clone()
            }
            None => generate_wifi_password(),
        };
        let key = self.key()?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_secs();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO members (id, name, email, status, team_id, wifi_username, nt_hash, password_enc, created_at, updated_at) \
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(name)
        .bind(&email)
        .bind(team.as_ref().map(|t| t.id))
        .bind(&username)
        .bind(hex::encode(nt_hash(&password)))
        .bind(key.encrypt(password.as_bytes()))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(dup(format!("a member with email {email} or Wi-Fi username {username}")))?;
        sqlx::query("INSERT INTO assignments (member_id, plan_id, valid_from, valid_until) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(plan.id)
            .bind(from.to_string())
            .bind(until.map(|d| d.to_string()))
            .execute(&mut *tx)
            .await?;
        let audit = Audit::new("member.add", "member", &id).after(format!(
            "email={email} plan={} from={from} until={}",
            plan.name,
            until.map_or("-".into(), |d| d.to_string())
        ));
        self.finish(tx, actor, audit).await?;
        let member = self.member(&id).await?;
        Ok((member, password))
    }

    async fn assignments_of(&self, ids: Option<&str>) -> Result<HashMap<String, Vec<Assignment>>> {
        let rows: Vec<(String, i64, String, Option<String>)> = match ids {
            Some(id) => sqlx::query_as(
                "SELECT member_id, plan_id, valid_from, valid_until FROM assignments WHERE member_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query_as(
                "SELECT member_id, plan_id, valid_from, valid_until FROM assignments ORDER BY id",
            )
            .fetch_all(&self.pool)
            .await?,
        };
        let mut map: HashMap<String, Vec<Assignment>> = HashMap::new();
        for (member_id, plan_id, from, until) in rows {
            map.entry(member_id).or_default().push(Assignment {
                plan_id,
                valid_from: date(&from)?,
                valid_until: until.as_deref().map(date).transpose()?,
            });
        }
        Ok(map)
    }

    fn member_from_row(row: MemberRow, assignments: Vec<Assignment>) -> Result<Member> {
        let (id, name, email, status, team_id, wifi_username, created_at) = row;
        Ok(Member {
            status: parse_status(&status)?,
            id,
            name,
            email,
            team_id,
            wifi_username,
            assignments,
            created_at: ts(created_at),
        })
    }

    /// Looks a member up by id, email or Wi-Fi username.
    pub async fn find_member(&self, key: &str) -> Result<Option<Member>> {
        let k = key.trim();
        let row: Option<MemberRow> = sqlx::query_as(
            "SELECT id, name, email, status, team_id, wifi_username, created_at FROM members \
             WHERE id = $1 OR email = $2 OR wifi_username = $2",
        )
        .bind(k)
        .bind(k.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mut a = self.assignments_of(Some(&row.0)).await?;
                let list = a.remove(&row.0).unwrap_or_default();
                Ok(Some(Self::member_from_row(row, list)?))
            }
        }
    }

    pub async fn member(&self, key: &str) -> Result<Member> {
        self.find_member(key).await?.ok_or_else(|| {
            StoreError::NotFound(format!("member {:?} (give an id or email)", key.trim()))
        })
    }

    pub async fn members(&self, filter: &MemberFilter) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT id, name, email, status, team_id, wifi_username, created_at FROM members ORDER BY name, email",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut assignments = self.assignments_of(None).await?;
        let plan_id = match &filter.plan {
            Some(p) => Some(self.plan(p).await?.id),
            None => None,
        };
        let team_id = match &filter.team {
            Some(t) => Some(self.team(t).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        for row in rows {
            let list = assignments.remove(&row.0).unwrap_or_default();
            let m = Self::member_from_row(row, list)?;
            if filter.keeps(&m, plan_id, team_id) {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub async fn set_member_status(
        &self,
        key: &str,
        status: MemberStatus,
        actor: &Actor,
    ) -> Result<Member> {
        let m = self.member(key).await?;
        match (m.status, status) {
            (a, b) if a == b => {
                return Err(StoreError::Invalid(format!(
                    "member {} is already {b}",
                    m.email
                )))
            }
            (MemberStatus::Cancelled, MemberStatus::Active) => {
                return Err(StoreError::Invalid(format!(
                    "member {} is cancelled; cancellation is final, add them again to rejoin",
                    m.email
                )))
            }
            (MemberStatus::Cancelled, MemberStatus::Suspended) => {
                return Err(StoreError::Invalid(format!(
                    "member {} is cancelled",
                    m.email
                )))
            }
            _ => {}
        }
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE members SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_secs())
            .bind(&m.id)
            .execute(&mut *tx)
            .await?;
        let action = match status {
            MemberStatus::Active => "member.resume",
            MemberStatus::Suspended => "member.suspend",
            MemberStatus::Cancelled => "member.cancel",
        };
        let audit = Audit::new(action, "member", &m.id)
            .before(format!("status={}", m.status))
            .after(format!("status={status}"));
        self.finish(tx, actor, audit).await?;
        self.member(&m.id).await
    }

    /// Moves a member to another plan from `today`: earlier assignments end yesterday, later
    /// ones are dropped.
    pub async fn set_member_plan(
        &self,
        key: &str,
        plan: &str,
        today: NaiveDate,
        until: Option<NaiveDate>,
        actor: &Actor,
    ) -> Result<Member> {
        let m = self.member(key).await?;
        let plan = self.plan(plan).await?;
        let until = until.or_else(|| default_until(today, plan.validity_days));
        if let Some(u) = until.filter(|u| *u < today) {
            return Err(StoreError::Invalid(format!(
                "valid until {u} is in the past"
            )));
        }
        let yesterday = today - Duration::days(1);
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM assignments WHERE member_id = $1 AND valid_from >= $2")
            .bind(&m.id)
            .bind(today.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE assignments SET valid_until = $1 WHERE member_id = $2 AND (valid_until IS NULL OR valid_until >= $3)",
        )
        .bind(yesterday.to_string())
        .bind(&m.id)
        .bind(today.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO assignments (member_id, plan_id, valid_from, valid_until) VALUES ($1, $2, $3, $4)")
            .bind(&m.id)
            .bind(plan.id)
            .bind(today.to_string())
            .bind(until.map(|d| d.to_string()))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE members SET updated_at = $1 WHERE id = $2")
            .bind(now_secs())
            .bind(&m.id)
            .execute(&mut *tx)
            .await?;
        let audit = Audit::new("member.set-plan", "member", &m.id).after(format!(
            "plan={} from={today} until={}",
            plan.name,
            until.map_or("-".into(), |d| d.to_string())
        ));
        self.finish(tx, actor, audit).await?;
        self.member(&m.id).await
    }

    /// Edits a member's name, email and team (`Some(None)`: no team). The Wi-Fi username
    /// stays: it is what their devices have saved.
    pub async fn update_member(
        &self,
        key: &str,
        name: Option<&str>,
        email: Option<&str>,
        team: Option<Option<&str>>,
        actor: &Actor,
    ) -> Result<Member> {
        let m = self.member(key).await?;
        let name = match name.map(str::trim) {
            Some("") => return Err(StoreError::Invalid("member name is empty".into())),
            Some(n) if n.chars().count() > 200 => {
                return Err(StoreError::Invalid(
                    "member name: at most 200 characters".into(),
                ))
            }
            Some(n) => n.to_string(),
            None => m.name.clone(),
        };
        let email = match email {
            Some(e) => validate_email(e)
                .map_err(StoreError::Invalid)?
                .to_lowercase(),
            None => m.email.clone(),
        };
        let team_id = match team {
            Some(Some(t)) => Some(self.team(t).await?.id),
            Some(None) => None,
            None => m.team_id,
        };
        if name == m.name && email == m.email && team_id == m.team_id {
            return Ok(m);
        }
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE members SET name = $1, email = $2, team_id = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&name)
        .bind(&email)
        .bind(team_id)
        .bind(now_secs())
        .bind(&m.id)
        .execute(&mut *tx)
        .await
        .map_err(dup(format!("a member with email {email}")))?;
        let audit = Audit::new("member.edit", "member", &m.id)
            .before(format!(
                "name={:?} email={} team={:?}",
                m.name, m.email, m.team_id
            ))
            .after(format!("name={name:?} email={email} team={team_id:?}"));
        self.finish(tx, actor, audit).await?;
        self.member(&m.id).await
    }

    /// Ends a member's plans after `last_day` (inclusive; "cancel at the end of the period"):
    /// assignments running past it end then, later ones are dropped. The status stays, so the
    /// member keeps access until then; the scheduler ends their sessions when it passes.
    pub async fn end_member_at(
        &self,
        key: &str,
        last_day: NaiveDate,
        today: NaiveDate,
        actor: &Actor,
    ) -> Result<Member> {
        let m = self.member(key).await?;
        if last_day < today {
            return Err(StoreError::Invalid(format!(
                "last day {last_day} is in the past: cancel now instead"
            )));
        }
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM assignments WHERE member_id = $1 AND valid_from > $2")
            .bind(&m.id)
            .bind(last_day.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE assignments SET valid_until = $1 WHERE member_id = $2 AND (valid_until IS NULL OR valid_until > $1)",
        )
        .bind(last_day.to_string())
        .bind(&m.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE members SET updated_at = $1 WHERE id = $2")
            .bind(now_secs())
            .bind(&m.id)
            .execute(&mut *tx)
            .await?;
        let audit = Audit::new("member.end", "member", &m.id).after(format!("last_day={last_day}"));
        self.finish(tx, actor, audit).await?;
        self.member(&m.id).await
    }

    /// Generates a new Wi-Fi password; returns it in clear once.
    pub async fn rotate_password(&self, key: &str, actor: &Actor) -> Result<(Member, String)> {
        let m = self.member(key).await?;
        let password = generate_wifi_password();
        let enc = self.key()?.encrypt(password.as_bytes());
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE members SET nt_hash = $1, password_enc = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(hex::encode(nt_hash(&password)))
        .bind(enc)
        .bind(now_secs())
        .bind(&m.id)
        .execute(&mut *tx)
        .await?;
        self.finish(
            tx,
            actor,
            Audit::new("member.rotate-password", "member", &m.id),
        )
        .await?;
        Ok((m, password))
    }

    /// The member's Wi-Fi password in clear (CHAP, export --with-secrets).
    pub async fn wifi_password(&self, member_id: &str) -> Result<String> {
        let (enc,): (String,) = sqlx::query_as("SELECT password_enc FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(self.key()?.decrypt_string(&enc)?)
    }

    /// The Wi-Fi password for an operator's or token's explicit reveal, audited as
    /// `member.reveal` (never shown in lists, logs or exports).
    pub async fn reveal_wifi_password(&self, member_id: &str, actor: &Actor) -> Result<String> {
        let password = self.wifi_password(member_id).await?;
        self.record_event(actor, "member.reveal", member_id, None)
            .await?;
        Ok(password)
    }

    /// The member's NT hash (MS-CHAPv2), 16 bytes.
    pub async fn nt_hash(&self, member_id: &str) -> Result<[u8; 16]> {
        let (h,): (String,) = sqlx::query_as("SELECT nt_hash FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_one(&self.pool)
            .await?;
        hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::Invalid("stored NT hash is malformed".into()))
    }
}
