//! `member import --csv`: bulk create/update in one all-or-nothing transaction.

use super::members::{default_until, validate_wifi_password, validate_wifi_username};
use super::{now_secs, Actor, Audit, Result, Store, StoreError};
use crate::model::validate_email;
use crate::secrets::{generate_wifi_password, nt_hash};
use chrono::{Duration, NaiveDate};
use std::collections::{HashMap, HashSet};

/// One CSV record, already split into fields; `line` is the CSV line number for errors.
#[derive(Clone, Debug, Default)]
pub struct ImportRow {
    pub line: u64,
    pub name: String,
    pub email: String,
    pub plan: String,
    pub team: Option<String>,
    pub valid_until: Option<NaiveDate>,
    pub wifi_username: Option<String>,
    pub wifi_password: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Rows per multi-row INSERT: few round trips, well under both engines' parameter limits.
const CHUNK: usize = 500;

/// id, email, wifi_username, name, team_id, nt_hash of a member already stored.
type Existing = (String, String, String, String, Option<i64>, String);

struct Prepared {
    id: String,
    name: String,
    email: String,
    team_id: Option<i64>,
    username: String,
    nt: String,
    enc: String,
    plan_id: i64,
    until: Option<NaiveDate>,
}

impl Store {
    pub async fn import_members(
        &self,
        rows: &[ImportRow],
        today: NaiveDate,
        actor: &Actor,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportSummary> {
        let key = self.key()?;
        let plans: HashMap<String, (i64, Option<u32>)> = self
            .plans()
            .await?
            .into_iter()
            .map(|p| (p.name, (p.id, p.validity_days)))
            .collect();
        let teams: HashMap<String, i64> = self
            .teams()
            .await?
            .into_iter()
            .map(|t| (t.name, t.id))
            .collect();
        // Existing members by email: id, username, and their current (plan, until).
        let existing_rows: Vec<Existing> =
            sqlx::query_as("SELECT id, email, wifi_username, name, team_id, nt_hash FROM members")
                .fetch_all(&self.pool)
                .await?;
        let current: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT member_id, plan_id, valid_until FROM assignments WHERE valid_from <= $1 AND (valid_until IS NULL OR valid_until >= $1)",
        )
        .bind(today.to_string())
        .fetch_all(&self.pool)
        .await?;
        let current: HashMap<String, (i64, Option<String>)> =
            current.into_iter().map(|(m, p, u)| (m, (p, u))).collect();
        let by_email: HashMap<&str, &Existing> =
            existing_rows.iter().map(|r| (r.1.as_str(), r)).collect();
        let mut usernames: HashMap<String, String> = existing_rows
            .iter()
            .map(|r| (r.2.clone(), r.1.clone()))
            .collect();

        // Validate everything before writing anything.
        let mut seen = HashSet::new();
        let mut creates = Vec::new();
        let mut updates = Vec::new();
        let mut unchanged = 0;
        for row in rows {
            let at = |msg: String| StoreError::Invalid(format!("line {}: {msg}", row.line));
            let email = validate_email(&row.email).map_err(at)?.to_lowercase();
            if row.name.trim().is_empty() {
                return Err(at("name is empty".into()));
            }
            if !seen.insert(email.clone()) {
                return Err(at(format!("email {email} appears twice in the file")));
            }
            let &(plan_id, validity) = plans.get(row.plan.trim()).ok_or_else(|| {
                at(format!(
                    "unknown plan {:?} (see `frontdesk plan list`)",
                    row.plan.trim()
                ))
            })?;
            let team_id = match row.team.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => Some(*teams.get(t).ok_or_else(|| {
                    at(format!("unknown team {t:?} (see `frontdesk team list`)"))
                })?),
                None => None,
            };
            let until = row.valid_until.or_else(|| default_until(today, validity));
            if let Some(u) = until.filter(|u| *u < today) {
                return Err(at(format!("valid_until {u} is in the past")));
            }
            let username = validate_wifi_username(row.wifi_username.as_deref().unwrap_or(&email))
                .map_err(|e| at(e.to_string()))?;
            if let Some(owner) = usernames.get(&username) {
                if *owner != email {
                    return Err(at(format!(
                        "Wi-Fi username {username} already belongs to {owner}"
                    )));
                }
            }
            usernames.insert(username.clone(), email.clone());
            if let Some(p) = &row.wifi_password {
                validate_wifi_password(p).map_err(|e| at(e.to_string()))?;
            }
            match by_email.get(email.as_str()) {
                None => {
                    let password = row
                        .wifi_password
                        .clone()
                        .unwrap_or_else(generate_wifi_password);
                    creates.push(Prepared {
                        id: uuid::Uuid::now_v7().to_string(),
                        name: row.name.trim().into(),
                        email,
                        team_id,
                        username,
                        nt: hex::encode(nt_hash(&password)),
                        enc: key.encrypt(password.as_bytes()),
                        plan_id,
                        until,
                    });
                }
                Some(&(id, _, old_username, old_name, old_team, old_nt)) => {
                    let until_s = until.map(|d| d.to_string());
                    let same_plan = current.get(id) == Some(&(plan_id, until_s));
                    let same = same_plan
                        && *old_name == row.name.trim()
                        && *old_team == team_id
                        && *old_username == username
                        && row
                            .wifi_password
                            .as_ref()
                            .is_none_or(|p| hex::encode(nt_hash(p)) == *old_nt);
                    if same {
                        unchanged += 1;
                        continue;
                    }
                    let creds = row
                        .wifi_password
                        .as_ref()
                        .map(|p| (hex::encode(nt_hash(p)), key.encrypt(p.as_bytes())));
                    updates.push((
                        id.clone(),
                        row.name.trim().to_string(),
                        team_id,
                        username,
                        creds,
                        (!same_plan).then_some((plan_id, until)),
                    ));
                }
            }
        }

        let mut tx = self.begin().await?;
        let now = now_secs();
        let mut done = 0;
        for chunk in creates.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO members (id, name, email, status, team_id, wifi_username, nt_hash, password_enc, created_at, updated_at) VALUES ",
            );
            let mut asg = String::from(
                "INSERT INTO assignments (member_id, plan_id, valid_from, valid_until) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                    asg.push(',');
                }
                let p = |n: usize| self.placeholder(n);
                let b = i * 9;
                sql.push_str(&format!(
                    "({},{},{},'active',{},{},{},{},{},{})",
                    p(b + 1),
                    p(b + 2),
                    p(b + 3),
                    p(b + 4),
                    p(b + 5),
                    p(b + 6),
                    p(b + 7),
                    p(b + 8),
                    p(b + 9)
                ));
                let a = i * 4;
                asg.push_str(&format!(
                    "({},{},{},{})",
                    p(a + 1),
                    p(a + 2),
                    p(a + 3),
                    p(a + 4)
                ));
            }
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(&p.id)
                    .bind(&p.name)
                    .bind(&p.email)
                    .bind(p.team_id)
                    .bind(&p.username)
                    .bind(&p.nt)
                    .bind(&p.enc)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
            let mut q = sqlx::query(&asg);
            for p in chunk {
                q = q
                    .bind(&p.id)
                    .bind(p.plan_id)
                    .bind(today.to_string())
                    .bind(p.until.map(|d| d.to_string()));
            }
            q.execute(&mut *tx).await?;
            done += chunk.len();
            progress(done);
        }
        let yesterday = (today - Duration::days(1)).to_string();
        for (id, name, team_id, username, creds, plan) in &updates {
            sqlx::query("UPDATE members SET name = $1, team_id = $2, wifi_username = $3, updated_at = $4 WHERE id = $5")
                .bind(name)
                .bind(*team_id)
                .bind(username)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some((nt, enc)) = creds {
                sqlx::query("UPDATE members SET nt_hash = $1, password_enc = $2 WHERE id = $3")
                    .bind(nt)
                    .bind(enc)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((plan_id, until)) = plan {
                sqlx::query("DELETE FROM assignments WHERE member_id = $1 AND valid_from >= $2")
                    .bind(id)
                    .bind(today.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE assignments SET valid_until = $1 WHERE member_id = $2 AND (valid_until IS NULL OR valid_until >= $3)")
                    .bind(&yesterday)
                    .bind(id)
                    .bind(today.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO assignments (member_id, plan_id, valid_from, valid_until) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(*plan_id)
                    .bind(today.to_string())
                    .bind(until.map(|d| d.to_string()))
                    .execute(&mut *tx)
                    .await?;
            }
            done += 1;
            if done % 1000 == 0 {
                progress(done);
            }
        }
        let summary = ImportSummary {
            created: creates.len(),
            updated: updates.len(),
            unchanged,
        };
        let audit =
            Audit::new("member.import", "members", format!("{} rows", rows.len())).after(format!(
                "created={} updated={} unchanged={}",
                summary.created, summary.updated, summary.unchanged
            ));
        self.finish(tx, actor, audit).await?;
        progress(rows.len());
        Ok(summary)
    }
}
