//! Protective DNS (issue 13): blocklists (where each comes from, which plans it applies to)
//! and exceptions (requested on the block page, approved by an operator for a member, a plan
//! or everyone, until a date).

use super::{now_secs, ts, Actor, Audit, Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Blocklist {
    pub id: i64,
    pub name: String,
    /// A file path or an http(s) URL.
    pub source: String,
    /// Plans it applies to; empty = every plan.
    pub plans: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Domains found by the last load (`None`: not loaded yet).
    pub domains: Option<i64>,
    pub loaded_at: Option<DateTime<Utc>>,
    /// Why the last load failed (the resolver then runs without the list).
    pub load_error: Option<String>,
}

/// Who an exception is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "for", rename_all = "lowercase")]
pub enum Scope {
    Everyone,
    Plan(String),
    Member(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Exception {
    pub id: i64,
    pub domain: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// Last local day it holds (inclusive); `None`: no end.
    pub valid_until: Option<NaiveDate>,
    /// pending | approved | denied
    pub status: String,
    /// The member who asked (id), when asked on the block page.
    pub requester: Option<String>,
    pub reason: String,
    /// The list that blocked it, as the block page said.
    pub list: Option<String>,
    pub created_at: DateTime<Utc>,
}

type ExceptionRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
);

fn scope_parts(s: &Scope) -> (&'static str, Option<&str>) {
    match s {
        Scope::Everyone => ("everyone", None),
        Scope::Plan(p) => ("plan", Some(p)),
        Scope::Member(m) => ("member", Some(m)),
    }
}

impl Store {
    /// Adds a blocklist; `plans` empty = every plan (names are checked).
    pub async fn add_blocklist(
        &self,
        name: &str,
        source: &str,
        plans: &[String],
        actor: &Actor,
    ) -> Result<Blocklist> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.contains(',') {
            return Err(StoreError::Invalid(
                "--name: 1 to 64 characters, no commas".into(),
            ));
        }
        let known: Vec<String> = self.plans().await?.into_iter().map(|p| p.name).collect();
        if let Some(bad) = plans.iter().find(|p| !known.contains(p)) {
            return Err(StoreError::Invalid(format!(
                "no plan {bad:?} (plans: {})",
                known.join(", ")
            )));
        }
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO dns_blocklists (name, source, plans, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(source)
        .bind(plans.join(","))
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Invalid(format!("a blocklist named {name:?} exists"))
            }
            e => e.into(),
        })?;
        let audit = Audit::new("dns.blocklist.add", "dns", name.to_string()).after(format!(
            "source={source} plans={}",
            if plans.is_empty() {
                "all".into()
            } else {
                plans.join(",")
            }
        ));
        self.finish(tx, actor, audit).await?;
        Ok(self
            .blocklists()
            .await?
            .into_iter()
            .find(|b| b.id == id)
            .expect("just added"))
    }

    pub async fn blocklists(&self) -> Result<Vec<Blocklist>> {
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, source, plans, created_at, domains, loaded_at, load_error FROM dns_blocklists ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, source, plans, created, domains, loaded, error)| Blocklist {
                    domains,
                    loaded_at: loaded.map(ts),
                    load_error: error,
                    id,
                    name,
                    source,
                    plans: plans
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect(),
                    created_at: ts(created),
                },
            )
            .collect())
    }

    /// Records what loading a list found: its domain count, or why it failed (the count of
    /// the last good load is kept then).
    pub async fn record_blocklist_load(
        &self,
        name: &str,
        domains: Option<usize>,
        error: Option<&str>,
    ) -> Result<()> {
        let q = match domains {
            Some(n) => sqlx::query(
                "UPDATE dns_blocklists SET domains = $1, loaded_at = $2, load_error = NULL WHERE name = $3",
            )
            .bind(i64::try_from(n).unwrap_or(i64::MAX)),
            None => sqlx::query(
                "UPDATE dns_blocklists SET load_error = $1, loaded_at = $2 WHERE name = $3",
            )
            .bind(error.unwrap_or("failed").to_string()),
        };
        q.bind(now_secs()).bind(name).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn remove_blocklist(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM dns_blocklists WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("blocklist {name:?}")));
        }
        self.finish(
            tx,
            actor,
            Audit::new("dns.blocklist.remove", "dns", name.to_string()),
        )
        .await
    }

    /// An approved exception, made by an operator directly (`dns allow`).
    pub async fn allow_domain(
        &self,
        domain: &str,
        scope: &Scope,
        valid_until: Option<NaiveDate>,
        actor: &Actor,
    ) -> Result<Exception> {
        let id = self
            .insert_exception(
                domain,
                scope,
                valid_until,
                "approved",
                None,
                "",
                None,
                actor,
            )
            .await?;
        self.exception(id).await
    }

    /// A member's (or visitor's) request from the block page.
    pub async fn request_exception(
        &self,
        domain: &str,
        requester: Option<&str>,
        reason: &str,
        list: Option<&str>,
        actor: &Actor,
    ) -> Result<Exception> {
        let scope = match requester {
            Some(m) => Scope::Member(m.to_string()),
            None => Scope::Everyone,
        };
        let id = self
            .insert_exception(
                domain, &scope, None, "pending", requester, reason, list, actor,
            )
            .await?;
        self.exception(id).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_exception(
        &self,
        domain: &str,
        scope: &Scope,
        valid_until: Option<NaiveDate>,
        status: &str,
        requester: Option<&str>,
        reason: &str,
        list: Option<&str>,
        actor: &Actor,
    ) -> Result<i64> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty()
            || domain.len() > 253
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(StoreError::Invalid(format!(
                "{domain:?} is not a domain name"
            )));
        }
        if let Scope::Plan(p) = scope {
            self.plan(p).await?;
        }
        if reason.len() > 500 {
            return Err(StoreError::Invalid("reason: at most 500 characters".into()));
        }
        let (kind, value) = scope_parts(scope);
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO dns_exceptions (domain, scope, scope_value, valid_until, status, requester, reason, list, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&domain)
        .bind(kind)
        .bind(value)
        .bind(valid_until.map(|d| d.to_string()))
        .bind(status)
        .bind(requester)
        .bind(reason)
        .bind(list)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await?;
        let action = if status == "pending" {
            "dns.exception.request"
        } else {
            "dns.exception.allow"
        };
        let audit = Audit::new(action, "dns", domain.clone()).after(format!(
            "#{id} {kind}{} until={}",
            value.map_or(String::new(), |v| format!("={v}")),
            valid_until.map_or("-".into(), |d| d.to_string())
        ));
        self.finish(tx, actor, audit).await?;
        Ok(id)
    }

    pub async fn exception(&self, id: i64) -> Result<Exception> {
        self.exceptions_where(" WHERE id = $1", Some(id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("exception #{id}")))
    }

    /// Exceptions, newest first; `status` filters (pending, approved, denied).
    pub async fn exceptions(&self, status: Option<&str>) -> Result<Vec<Exception>> {
        let all = self.exceptions_where("", None).await?;
        Ok(all
            .into_iter()
            .filter(|e| status.is_none_or(|s| e.status == s))
            .collect())
    }

    async fn exceptions_where(&self, filter: &str, id: Option<i64>) -> Result<Vec<Exception>> {
        let q = format!(
            "SELECT id, domain, scope, scope_value, valid_until, status, requester, reason, list, created_at \
             FROM dns_exceptions{filter} ORDER BY id DESC"
        );
        let mut q = sqlx::query_as::<_, ExceptionRow>(&q);
        if let Some(id) = id {
            q = q.bind(id);
        }
        q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(
                |(id, domain, scope, value, until, status, requester, reason, list, created)| {
                    Ok(Exception {
                        id,
                        domain,
                        scope: match (scope.as_str(), value) {
                            ("plan", Some(p)) => Scope::Plan(p),
                            ("member", Some(m)) => Scope::Member(m),
                            _ => Scope::Everyone,
                        },
                        valid_until: until
                            .map(|d| d.parse())
                            .transpose()
                            .map_err(|_| StoreError::Invalid(format!("exception #{id}: date")))?,
                        status,
                        requester,
                        reason,
                        list,
                        created_at: ts(created),
                    })
                },
            )
            .collect()
    }

    /// Approves (with a scope and an expiry) or denies a pending request.
    pub async fn decide_exception(
        &self,
        id: i64,
        approve: Option<(Scope, Option<NaiveDate>)>,
        actor: &Actor,
    ) -> Result<Exception> {
        let e = self.exception(id).await?;
        if e.status != "pending" {
            return Err(StoreError::Invalid(format!(
                "exception #{id} is already {}",
                e.status
            )));
        }
        let mut tx = self.begin().await?;
        let summary = match &approve {
            Some((scope, until)) => {
                let (kind, value) = scope_parts(scope);
                sqlx::query(
                    "UPDATE dns_exceptions SET status = 'approved', scope = $1, scope_value = $2, valid_until = $3, decided_at = $4, decided_by = $5 WHERE id = $6",
                )
                .bind(kind)
                .bind(value)
                .bind(until.map(|d| d.to_string()))
                .bind(now_secs())
                .bind(&actor.name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                format!(
                    "approved {kind}{}",
                    value.map_or(String::new(), |v| format!("={v}"))
                )
            }
            None => {
                sqlx::query(
                    "UPDATE dns_exceptions SET status = 'denied', decided_at = $1, decided_by = $2 WHERE id = $3",
                )
                .bind(now_secs())
                .bind(&actor.name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                "denied".into()
            }
        };
        self.finish(
            tx,
            actor,
            Audit::new("dns.exception.decide", "dns", e.domain.clone()).after(summary),
        )
        .await?;
        self.exception(id).await
    }
}

/// One line of the DNS query log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueryLogEntry {
    pub at: DateTime<Utc>,
    pub client: String,
    pub plan: Option<String>,
    /// Member id, when the client address maps to a member's session.
    pub member: Option<String>,
    pub name: String,
    pub qtype: u16,
    /// cached | forwarded | blocked | canary | formerr | notimp | refused | servfail
    pub result: String,
    /// The list that blocked it.
    pub list: Option<String>,
}

/// Which log lines `dns_log` returns (newest first).
#[derive(Clone, Debug, Default)]
pub struct QueryLogFilter {
    pub client: Option<String>,
    pub member: Option<String>,
    pub blocked_only: bool,
    pub limit: i64,
}

type LogRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    Option<String>,
);

impl Store {
    /// Appends query-log lines with multi-row INSERTs (written at DNS rates, in batches).
    pub async fn record_dns_log(&self, batch: &[QueryLogEntry]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        static ROWS: super::RowInsert = super::RowInsert::new(
            "INSERT INTO dns_log (at, client, plan, member, name, qtype, result, list) VALUES ",
            8,
        );
        for (sql, chunk) in ROWS.chunks(self, batch) {
            let mut q = sqlx::query(sql);
            for e in chunk {
                q = q
                    .bind(e.at.timestamp())
                    .bind(&e.client)
                    .bind(&e.plan)
                    .bind(&e.member)
                    .bind(&e.name)
                    .bind(i64::from(e.qtype))
                    .bind(&e.result)
                    .bind(&e.list);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest query-log lines matching `f`, newest first.
    pub async fn dns_log(&self, f: &QueryLogFilter) -> Result<Vec<QueryLogEntry>> {
        let mut sql = String::from(
            "SELECT at, client, plan, member, name, qtype, result, list FROM dns_log WHERE 1 = 1",
        );
        let mut n = 0;
        if f.client.is_some() {
            n += 1;
            sql.push_str(&format!(" AND client = ${n}"));
        }
        if f.member.is_some() {
            n += 1;
            sql.push_str(&format!(" AND member = ${n}"));
        }
        if f.blocked_only {
            sql.push_str(" AND result = 'blocked'");
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", n + 1));
        let mut q = sqlx::query_as::<_, LogRow>(&sql);
        if let Some(c) = &f.client {
            q = q.bind(c);
        }
        if let Some(m) = &f.member {
            q = q.bind(m);
        }
        let rows = q
            .bind(if f.limit > 0 { f.limit } else { 100 })
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(at, client, plan, member, name, qtype, result, list)| QueryLogEntry {
                    at: ts(at),
                    client,
                    plan,
                    member,
                    name,
                    qtype: u16::try_from(qtype).unwrap_or(0),
                    result,
                    list,
                },
            )
            .collect())
    }

    /// Deletes query-log lines older than `before`; how many went.
    pub async fn prune_dns_log(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM dns_log WHERE at < $1")
            .bind(before.timestamp())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
