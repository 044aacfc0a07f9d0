//! The storage suite, run on SQLite and on PostgreSQL (each test in its own schema).

use super::*;
use crate::decide::{decide, Reason, Resource, Subject};
use crate::model::{MemberStatus, Role, Vendor};
use crate::ports::ChangeFeed;
use crate::schedule::DaySet;
use crate::store::doors::DoorEvent;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh database for one test; dropped (PostgreSQL schema) by `cleanup`.
pub(crate) struct TestDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::open(&url, OpenMode::Create).await.unwrap();
        TestDb {
            store,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// PostgreSQL must be reachable: CI runs it and an unreachable server fails the suite.
    /// Set FRONTDESK_SKIP_POSTGRES=1 to skip (loudly) on a machine without it.
    pub async fn postgres() -> Option<TestDb> {
        if std::env::var("FRONTDESK_SKIP_POSTGRES").is_ok_and(|v| v == "1")
            && std::env::var("CI").is_err()
        {
            eprintln!("SKIPPED: PostgreSQL storage test (FRONTDESK_SKIP_POSTGRES=1)");
            return None;
        }
        sqlx::any::install_default_drivers();
        let base = std::env::var("FRONTDESK_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG.into());
        let schema = format!("fd_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::AnyPool::connect(&base).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is unreachable ({e}); start it, set FRONTDESK_TEST_POSTGRES, or FRONTDESK_SKIP_POSTGRES=1 outside CI")
        });
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store = Store::open(&url, OpenMode::Create).await.unwrap();
        Some(TestDb {
            store,
            _dir: None,
            pg_schema: Some((base, schema)),
        })
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((base, schema)) = self.pg_schema {
            let admin = sqlx::AnyPool::connect(&base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

/// Runs one async test body on SQLite and on PostgreSQL.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let db = TestDb::sqlite().await;
                $body(&db.store).await;
                db.cleanup().await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = TestDb::postgres().await {
                    $body(&db.store).await;
                    db.cleanup().await;
                }
            }
        }
    };
}

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        source: "test".into(),
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

async fn ready(store: &Store) -> Store {
    let mut s = store.clone();
    s.init_site("Berlin", "Europe/Berlin", &actor())
        .await
        .unwrap();
    s.unlock(crate::secrets::SecretKey::generate(), "test-key")
        .await
        .unwrap();
    s
}

fn new_member(email: &str, plan: &str) -> NewMember {
    NewMember {
        name: "Ada Lovelace".into(),
        email: email.into(),
        plan: plan.into(),
        ..Default::default()
    }
}

async fn init_and_catalog(store: &Store) {
    let s = ready(store).await;
    let cat = s.catalog().await.unwrap();
    let names: Vec<&str> = cat.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["guest", "day-pass", "flex", "full-time", "team", "iot"]
    );
    assert_eq!(cat.plan_by_name("guest").unwrap().vlan, Some(30));
    assert_eq!(cat.plan_by_name("iot").unwrap().vlan, Some(40));
    assert!(cat.plan_by_name("iot").unwrap().mac_only);
    assert_eq!(cat.site.tz().name(), "Europe/Berlin");
    assert_eq!(
        cat.site.hours(),
        &crate::schedule::OpeningHours::default_hours()
    );
    // A second init changes nothing.
    let before = s.logical_dump().await.unwrap();
    let err = s.init_site("Other", "UTC", &actor()).await.unwrap_err();
    assert!(err.to_string().contains("already initialised"), "{err}");
    assert_eq!(s.logical_dump().await.unwrap(), before);
    // Another key cannot unlock this database.
    let mut other = s.clone();
    let err = other
        .unlock(crate::secrets::SecretKey::generate(), "/x.key")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}
both!(init, init_and_catalog);

async fn member_lifecycle(store: &Store) {
    let s = ready(store).await;
    let (m, password) = s
        .add_member(&new_member("Ada@Example.com", "flex"), today(), &actor())
        .await
        .unwrap();
    assert_eq!(m.email, "ada@example.com");
    assert_eq!(m.wifi_username, "ada@example.com");
    assert_eq!(m.status, MemberStatus::Active);
    assert_eq!(m.assignments.len(), 1);
    assert_eq!(m.assignments[0].valid_from, today());
    assert_eq!(s.wifi_password(&m.id).await.unwrap(), password);
    assert_eq!(
        s.nt_hash(&m.id).await.unwrap(),
        crate::secrets::nt_hash(&password)
    );
    // Found by id, email (any case) and username.
    assert_eq!(s.member(&m.id).await.unwrap().id, m.id);
    assert_eq!(s.member("ADA@example.com").await.unwrap().id, m.id);

    // Duplicate email: refused, nothing written.
    let before = s.logical_dump().await.unwrap();
    let err = s
        .add_member(&new_member("ada@example.com", "flex"), today(), &actor())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
    let err = s
        .add_member(&new_member("bob@example.com", "gold"), today(), &actor())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("plan \"gold\""), "{err}");
    assert_eq!(s.logical_dump().await.unwrap(), before);

    // The stored member decides like the domain says.
    let cat = s.catalog().await.unwrap();
    let ten = chrono_tz::Europe::Berlin
        .with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let m = s.member(&m.id).await.unwrap();
    let d = decide(&cat, Subject::Member((&m).into()), Resource::WIFI, ten);
    assert!(d.allowed);
    assert_eq!(d.vlan, Some(20));

    let m = s
        .set_member_status(&m.id, MemberStatus::Suspended, &actor())
        .await
        .unwrap();
    assert_eq!(
        decide(&cat, Subject::Member((&m).into()), Resource::WIFI, ten).reason,
        Reason::Suspended
    );
    let m = s
        .set_member_status(&m.email, MemberStatus::Active, &actor())
        .await
        .unwrap();
    assert!(s
        .set_member_status(&m.id, MemberStatus::Active, &actor())
        .await
        .is_err());

    // Plan change from today: the old assignment ends yesterday.
    let m = s
        .set_member_plan(
            &m.id,
            "full-time",
            today() + chrono::Duration::days(1),
            None,
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(m.assignments.len(), 2);
    assert_eq!(m.assignments[0].valid_until, Some(today()));
    let (_, new_pw) = s.rotate_password(&m.id, &actor()).await.unwrap();
    assert_ne!(new_pw, password);
    assert_eq!(s.wifi_password(&m.id).await.unwrap(), new_pw);

    let m = s
        .set_member_status(&m.id, MemberStatus::Cancelled, &actor())
        .await
        .unwrap();
    assert!(s
        .set_member_status(&m.id, MemberStatus::Active, &actor())
        .await
        .is_err());

    // Day passes last one day by default.
    let (dp, _) = s
        .add_member(
            &new_member("dee@example.com", "day-pass"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(dp.assignments[0].valid_until, Some(today()));

    // Filters.
    let all = s.members(&MemberFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let cancelled = s
        .members(&MemberFilter {
            status: Some(MemberStatus::Cancelled),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    let dee = s
        .members(&MemberFilter {
            search: Some("DEE".into()),
            plan: Some("day-pass".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dee.len(), 1);

    // Every mutation was audited, newest first.
    let log = s.audit_log(100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "member.add",
            "member.cancel",
            "member.rotate-password",
            "member.set-plan",
            "member.resume",
            "member.suspend",
            "member.add",
            "site.init"
        ]
    );
    assert!(log.iter().all(|e| e.actor == "test"));
}
both!(members, member_lifecycle);

async fn teams_hours_closures(store: &Store) {
    let s = ready(store).await;
    let team = s.add_team("Acme", 101, &actor()).await.unwrap();
    assert!(matches!(
        s.add_team("Acme", 102, &actor()).await,
        Err(StoreError::Duplicate(_))
    ));
    let mut nm = new_member("ceo@acme.example", "team");
    nm.team = Some("Acme".into());
    let (m, _) = s.add_member(&nm, today(), &actor()).await.unwrap();
    assert_eq!(m.team_id, Some(team.id));
    s.set_hours(
        "sat".parse().unwrap(),
        Some(("10:00".parse().unwrap(), "16:00".parse().unwrap())),
        &actor(),
    )
    .await
    .unwrap();
    s.set_hours("fri".parse::<DaySet>().unwrap(), None, &actor())
        .await
        .unwrap();
    let c = s
        .add_closure(today(), today(), "Staff party", false, &actor())
        .await
        .unwrap();
    assert!(s
        .add_closure(
            today(),
            today() - chrono::Duration::days(1),
            "",
            false,
            &actor()
        )
        .await
        .is_err());
    let cat = s.catalog().await.unwrap();
    assert_eq!(cat.site.hours().days[5].len(), 1);
    assert!(cat.site.hours().days[4].is_empty());
    assert_eq!(cat.site.closures(), &[c]);
    let night = chrono_tz::Europe::Berlin
        .with_ymd_and_hms(2026, 11, 27, 23, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let d = decide(&cat, Subject::Member((&m).into()), Resource::WIFI, night);
    assert_eq!(d.vlan, Some(101));
    let (f, _) = s
        .add_member(&new_member("flex@example.com", "flex"), today(), &actor())
        .await
        .unwrap();
    let noon = chrono_tz::Europe::Berlin
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        decide(&cat, Subject::Member((&f).into()), Resource::WIFI, noon).reason,
        Reason::SiteClosed
    );
}
both!(site, teams_hours_closures);

async fn devices_nas_vouchers(store: &Store) {
    let s = ready(store).await;
    let (m, _) = s
        .add_member(
            &new_member("ada@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let mac = "AA-BB-CC-00-00-01".parse().unwrap();
    s.add_device(Some(&m.email), mac, "iot", "printer", &actor())
        .await
        .unwrap();
    assert!(matches!(
        s.add_device(None, mac, "iot", "x", &actor()).await,
        Err(StoreError::Duplicate(_))
    ));
    match s.resolve("aabbcc000001").await.unwrap() {
        Resolved::Device { device, owner } => {
            assert_eq!(device.name, "printer");
            assert_eq!(owner.unwrap().id, m.id);
        }
        other => panic!("resolved {other:?}"),
    }
    let nas = s
        .add_nas(
            &NewNas {
                name: "ap-1".into(),
                address: "10.0.0.0/24".parse().unwrap(),
                secret: "testing123".into(),
                vendor: Vendor::Cisco,
                disconnect_port: None,
                coa_port: None,
                require_message_authenticator: true,
            },
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!((nas.disconnect_port, nas.coa_port), (3799, 1700));
    let listed = s.nas_list().await.unwrap();
    assert_eq!(listed[0].secret, "testing123");
    // The secret is not stored in clear.
    assert!(!s.logical_dump().await.unwrap().contains("testing123"));
    s.remove_nas("ap-1", &actor()).await.unwrap();
    assert!(matches!(
        s.remove_nas("ap-1", &actor()).await,
        Err(StoreError::NotFound(_))
    ));

    let vs = s
        .create_vouchers(3, 8 * 3600, 2, "guest", Some(&m.email), &actor())
        .await
        .unwrap();
    assert_eq!(vs.len(), 3);
    let code = vs[0].code.to_lowercase().replace('-', "");
    match s.resolve(&code).await.unwrap() {
        Resolved::Voucher(v) => {
            assert_eq!(v.code, vs[0].code);
            assert_eq!(v.sponsor_id.as_deref(), Some(m.id.as_str()));
        }
        other => panic!("resolved {other:?}"),
    }
    assert!(s.resolve("nobody@example.com").await.is_err());
    let (admin, pw) = s
        .add_admin("Owner@Example.com", Role::Owner, &actor())
        .await
        .unwrap();
    assert_eq!(admin.email, "owner@example.com");
    assert!(pw.len() >= 20);
    assert!(!s.logical_dump().await.unwrap().contains(&pw));
}
both!(records, devices_nas_vouchers);

async fn import_all_or_nothing(store: &Store) {
    let s = ready(store).await;
    s.add_team("Acme", 101, &actor()).await.unwrap();
    let rows: Vec<ImportRow> = (0..1200)
        .map(|i| ImportRow {
            line: i + 2,
            name: format!("Member {i}"),
            email: format!("m{i}@example.com"),
            plan: if i % 2 == 0 { "flex" } else { "full-time" }.into(),
            team: (i % 10 == 0).then(|| "Acme".to_string()),
            valid_until: None,
            wifi_username: None,
            wifi_password: (i == 5).then(|| "given-password".to_string()),
        })
        .collect();
    let summary = s
        .import_members(&rows, today(), &actor(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            created: 1200,
            updated: 0,
            unchanged: 0
        }
    );
    let m5 = s.member("m5@example.com").await.unwrap();
    assert_eq!(s.wifi_password(&m5.id).await.unwrap(), "given-password");
    // Re-import is idempotent; a changed plan is an update.
    let mut again = rows.clone();
    again[0].plan = "full-time".into();
    let summary = s
        .import_members(&again, today(), &actor(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            created: 0,
            updated: 1,
            unchanged: 1199
        }
    );
    // One bad line: nothing changes, and the error names the line.
    let before = s.logical_dump().await.unwrap();
    let mut bad = rows.clone();
    bad.push(ImportRow {
        line: 1202,
        name: "New".into(),
        email: "new@example.com".into(),
        plan: "flex".into(),
        ..Default::default()
    });
    bad[700].email = "not-an-email".into();
    let err = s
        .import_members(&bad, today(), &actor(), &|_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("line 702: malformed email"),
        "{err}"
    );
    bad[700].email = "m700@example.com".into();
    bad[900].plan = "gold".into();
    let err = s
        .import_members(&bad, today(), &actor(), &|_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("line 902: unknown plan"),
        "{err}"
    );
    assert_eq!(s.logical_dump().await.unwrap(), before);
}
both!(import, import_all_or_nothing);

async fn audit_is_append_only(store: &Store) {
    let s = ready(store).await;
    assert!(sqlx::query("UPDATE audit SET actor = 'mallory'")
        .execute(s.pool())
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit")
        .execute(s.pool())
        .await
        .is_err());
    assert_eq!(s.audit_log(10).await.unwrap().len(), 1);
}
both!(audit, audit_is_append_only);

async fn change_feed_sees_other_writers(store: &Store) {
    let s = ready(store).await;
    let mut feed = s.follow_changes().await.unwrap();
    let writer = s.clone();
    let t0 = std::time::Instant::now();
    let written = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        writer
            .add_member(&new_member("ada@example.com", "flex"), today(), &actor())
            .await
            .unwrap();
    });
    let batch = tokio::time::timeout(std::time::Duration::from_secs(2), feed.next_batch())
        .await
        .expect("change seen within 1 s")
        .unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].kind, "member");
    // The writer finishes before the pool closes.
    written.await.unwrap();
}
both!(feed, change_feed_sees_other_writers);

async fn portal_vouchers_and_clients(store: &Store) {
    use super::portal::{PortalClient, PortalKind, Redeemed};
    let s = ready(store).await;
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let vs = s
        .create_vouchers(1, 3600, 2, "guest", None, &actor())
        .await
        .unwrap();
    let code = vs[0].code.to_lowercase();
    let mac = |n: u8| crate::mac::MacAddr([2, 0, 0, 0, 0, n]);
    assert!(matches!(
        s.redeem_voucher("NOPE-NOPE0", mac(1), at, &actor())
            .await
            .unwrap(),
        Redeemed::NotFound
    ));
    let Redeemed::Ok(v) = s.redeem_voucher(&code, mac(1), at, &actor()).await.unwrap() else {
        panic!("first device refused")
    };
    assert_eq!(v.first_used_at, Some(at));
    // Validity starts at first use and is not moved by later devices or repeats.
    let later = at + chrono::Duration::minutes(5);
    for m in [mac(1), mac(2), mac(1)] {
        let Redeemed::Ok(v) = s.redeem_voucher(&code, m, later, &actor()).await.unwrap() else {
            panic!("device {m} refused")
        };
        assert_eq!(v.first_used_at, Some(at));
    }
    assert!(matches!(
        s.redeem_voucher(&code, mac(3), later, &actor())
            .await
            .unwrap(),
        Redeemed::DeviceLimit { devices: 2 }
    ));
    // Two uses audited (one per device), no change-feed rows for them.
    let dump = s.logical_dump().await.unwrap();
    assert_eq!(dump.matches("voucher.use").count(), 2, "{dump}");

    let client = |m: u8, until_min: i64| PortalClient {
        mac: mac(m),
        ip: Some(format!("10.30.0.{m}")),
        network: Some("vlan30".into()),
        kind: PortalKind::Voucher,
        subject: vs[0].code.clone(),
        authorized_at: at,
        valid_until: at + chrono::Duration::minutes(until_min),
    };
    s.record_portal_client(&client(1, 60)).await.unwrap();
    s.record_portal_client(&client(2, 1)).await.unwrap();
    // Re-recording extends (upsert), never duplicates.
    s.record_portal_client(&client(1, 90)).await.unwrap();
    let now = at + chrono::Duration::minutes(2);
    assert_eq!(
        s.portal_client(mac(1), now)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        at + chrono::Duration::minutes(90)
    );
    assert!(s.portal_client(mac(2), now).await.unwrap().is_none());
    let live = s.portal_clients(now).await.unwrap();
    assert_eq!(live, vec![client(1, 90)]);
    assert_eq!(s.portal_clients_of(&vs[0].code).await.unwrap().len(), 1);
    assert!(s.remove_portal_client(mac(1)).await.unwrap());
    assert!(!s.remove_portal_client(mac(1)).await.unwrap());
}
both!(portal, portal_vouchers_and_clients);

async fn sponsor_requests(store: &Store) {
    use super::portal::{NewSponsorRequest, SponsorState};
    let s = ready(store).await;
    let (m, _) = s
        .add_member(
            &new_member("ada@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mac = crate::mac::MacAddr([2, 0, 0, 0, 0, 7]);
    for (id, hash, ttl) in [("r1", "h1", 30), ("r2", "h2", -1)] {
        s.create_sponsor_request(
            &NewSponsorRequest {
                id,
                token_hash: hash,
                member_id: &m.id,
                guest_mac: mac,
                guest_ip: Some("10.30.0.7".into()),
                network: Some("vlan30".into()),
                guest_name: "Grace",
                expires_at: now + chrono::Duration::minutes(ttl),
            },
            now,
        )
        .await
        .unwrap();
    }
    let r = s
        .sponsor_request_by_token("h1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.id.as_str(), r.state), ("r1", SponsorState::Pending));
    assert_eq!(r.guest_mac, mac);
    assert_eq!(
        s.sponsor_request("r2", now).await.unwrap().unwrap().state,
        SponsorState::Expired
    );
    let until = now + chrono::Duration::hours(2);
    assert!(s
        .decide_sponsor_request("r1", true, Some(until), now, &actor())
        .await
        .unwrap());
    // Once only; and never after expiry.
    assert!(!s
        .decide_sponsor_request("r1", false, None, now, &actor())
        .await
        .unwrap());
    assert!(!s
        .decide_sponsor_request("r2", true, None, now, &actor())
        .await
        .unwrap());
    let r = s.sponsor_request("r1", now).await.unwrap().unwrap();
    assert_eq!(r.state, SponsorState::Approved);
    assert_eq!(
        r.valid_until.map(|t| t.timestamp()),
        Some(until.timestamp())
    );
    assert!(s.sponsor_request("nope", now).await.unwrap().is_none());
}
both!(sponsor, sponsor_requests);

/// A NAS stand-in: records Disconnect requests; answers like a NAS that is down when `fail`.
#[derive(Default)]
struct Rec(std::sync::Mutex<Vec<crate::ports::SessionRef>>, bool);

#[async_trait::async_trait]
impl crate::ports::Disconnector for Rec {
    async fn disconnect(
        &self,
        s: &crate::ports::SessionRef,
        _: crate::Reason,
    ) -> Result<(), crate::ports::ActError> {
        self.0.lock().unwrap().push(s.clone());
        if self.1 {
            return Err(crate::ports::ActError::Timeout("NAS test".into()));
        }
        Ok(())
    }
}

fn acct_start(
    m: &crate::model::Member,
    sid: &str,
    at: DateTime<Utc>,
) -> crate::store::radius::AccountingRecord {
    crate::store::radius::AccountingRecord {
        at,
        nas_id: 1,
        nas_addr: "192.0.2.1:1813".into(),
        status: crate::store::radius::AcctStatus::Start,
        session_id: sid.into(),
        user_name: m.wifi_username.clone(),
        member_id: Some(m.id.clone()),
        mac: Some(crate::mac::MacAddr([2, 0, 0, 0, 0, 1])),
        framed_ip: None,
        vlan: None,
        class: None,
        input_octets: 0,
        output_octets: 0,
        session_time: 0,
        terminate_cause: None,
    }
}

async fn enforcement_of_member_changes(store: &Store) {
    use crate::enforce::enforce_members;
    let s = ready(store).await;
    let (keep, _) = s
        .add_member(
            &new_member("keep@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let (gone, _) = s
        .add_member(
            &new_member("gone@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    s.record_accounting(&[acct_start(&keep, "k-1", now), acct_start(&gone, "g-1", now)])
        .await
        .unwrap();
    let k1 = s.session_by_key(1, "k-1").await.unwrap().unwrap();
    let since = now - chrono::Duration::minutes(1);
    assert_eq!(
        s.online_sessions_by_vlan(since).await.unwrap(),
        [(None, 2)],
        "counted by VLAN (metrics)"
    );
    assert_eq!(
        s.online_session(k1.id, since)
            .await
            .unwrap()
            .unwrap()
            .acct_session_id,
        "k-1"
    );
    assert!(s
        .online_session(k1.id + 1000, since)
        .await
        .unwrap()
        .is_none());
    s.set_member_status(&gone.id, crate::model::MemberStatus::Cancelled, &actor())
        .await
        .unwrap();
    let catalog = s.catalog().await.unwrap();
    let d = Rec::default();
    let ids: std::collections::BTreeSet<String> =
        [keep.id.clone(), gone.id.clone()].into_iter().collect();
    let out = enforce_members(&s, &catalog, &ids, &d, None, now)
        .await
        .unwrap();
    // Only the cancelled member's session ends, named the way the NAS knows it.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].subject, gone.id);
    assert_eq!(out[0].reason, crate::Reason::Cancelled);
    let sent = d.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].acct_session_id.as_deref(), Some("g-1"));
    assert_eq!(sent[0].user_name, gone.wifi_username);
    assert_eq!(sent[0].nas_addr, "192.0.2.1:1813".parse().unwrap());
    assert!(s
        .logical_dump()
        .await
        .unwrap()
        .contains("session.disconnect"));
}
both!(enforcement, enforcement_of_member_changes);

async fn scheduler_at_closing_time(store: &Store) {
    use crate::scheduler::{Alarm, NetworkSwitch, ScheduledNetwork, Scheduler, StoreLookup};
    use crate::store::portal::{PortalClient, PortalKind};
    use std::sync::Arc;
    #[derive(Default)]
    struct Switch(std::sync::Mutex<Vec<Vec<String>>>);
    #[async_trait::async_trait]
    impl NetworkSwitch for Switch {
        async fn set_closed(&self, closed: &[String]) -> Result<(), crate::ports::ActError> {
            self.0.lock().unwrap().push(closed.to_vec());
            Ok(())
        }
    }
    let s = ready(store).await;
    let (flex, _) = s
        .add_member(&new_member("flex@example.com", "flex"), today(), &actor())
        .await
        .unwrap();
    let (ft, _) = s
        .add_member(
            &new_member("ft@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    // Friday 27 November 2026; the default opening hours end at 19:00.
    let at = |hms: &str| {
        let t = chrono::NaiveDateTime::parse_from_str(
            &format!("2026-11-27 {hms}"),
            "%Y-%m-%d %H:%M:%S",
        )
        .unwrap();
        tz.from_local_datetime(&t).unwrap().with_timezone(&Utc)
    };
    let before = at("18:59:30");
    let closing = at("19:00:00");
    s.record_accounting(&[
        acct_start(&flex, "f-1", before),
        acct_start(&ft, "t-1", before),
    ])
    .await
    .unwrap();
    let voucher = s
        .create_vouchers(1, 3600, 1, "guest", None, &actor())
        .await
        .unwrap()
        .remove(0);
    s.record_portal_client(&PortalClient {
        mac: crate::mac::MacAddr([2, 0, 0, 0, 0, 9]),
        ip: Some("10.0.0.9".into()),
        network: Some("guest0".into()),
        kind: PortalKind::Voucher,
        subject: voucher.code.clone(),
        authorized_at: at("18:30:00"),
        valid_until: closing,
    })
    .await
    .unwrap();

    let nas = Arc::new(Rec::default());
    let switch = Arc::new(Switch::default());
    let mut sch = Scheduler::new(
        s.clone(),
        Arc::new(StoreLookup::load(&s).await.unwrap()),
        nas.clone(),
        Arc::new(Alarm::default()),
    );
    sch.networks = vec![ScheduledNetwork {
        iface: "dropin0".into(),
        hours: "opening-hours".parse().unwrap(),
    }];
    sch.switch = Some(switch.clone());

    // Half a minute before closing: nothing to do; wake exactly at closing.
    let sw = sch.sweep(before).await.unwrap();
    assert!(sw.ended.is_empty(), "{:?}", sw.ended);
    assert_eq!(sw.sessions_online, 2);
    // A session whose VLAN is no longer the member's (moved from flex's 20 to full-time's 10)
    // is ended so the device re-associates into the new VLAN.
    let mut moved = acct_start(&ft, "t-2", before);
    moved.vlan = Some(20);
    s.record_accounting(&[moved]).await.unwrap();
    let sw = sch.sweep(before).await.unwrap();
    assert_eq!(sw.ended.len(), 1, "{:?}", sw.ended);
    assert_eq!(sw.ended[0].reason, crate::Reason::Ok);
    assert!(s
        .logical_dump()
        .await
        .unwrap()
        .contains("reason=vlan-change 20->10"));
    let mut stop = acct_start(&ft, "t-2", before);
    stop.status = crate::store::radius::AcctStatus::Stop;
    s.record_accounting(&[stop]).await.unwrap();
    nas.0.lock().unwrap().clear();
    switch.0.lock().unwrap().clear();
    let sw = sch.sweep(before).await.unwrap();
    assert!(sw.ended.is_empty(), "{:?}", sw.ended);
    assert_eq!(sw.portal_online, 1);
    assert_eq!(sw.next, Some(closing));
    assert!(
        switch.0.lock().unwrap().is_empty(),
        "applied once, in the first sweep"
    );

    // At closing: the flex member's session ends, the 24/7 one stays, the guest's time is up,
    // the drop-in network is switched off; next wake is Monday's opening.
    let sw = sch.sweep(closing).await.unwrap();
    assert_eq!(sw.ended.len(), 1, "{:?}", sw.ended);
    assert_eq!(sw.ended[0].subject, flex.id);
    assert_eq!(sw.ended[0].reason, crate::Reason::OutsideHours);
    assert_eq!(sw.expired, 1);
    assert_eq!(sw.closed_networks, vec!["dropin0".to_string()]);
    let monday = tz
        .with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(sw.next, Some(monday));
    let sent = nas.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].acct_session_id.as_deref(), Some("f-1"));
    let rows = s.sessions(Some(before), 10).await.unwrap();
    let f = rows.iter().find(|r| r.acct_session_id == "f-1").unwrap();
    assert_eq!(f.disconnect.as_deref(), Some("acked"));
    assert!(rows
        .iter()
        .find(|r| r.acct_session_id == "t-1")
        .unwrap()
        .disconnect
        .is_none());

    // A second sweep (restart, clock step) does not send again: the NAS acknowledged.
    let sw = sch.sweep(at("19:00:05")).await.unwrap();
    assert!(sw.ended.is_empty());
    assert_eq!(nas.0.lock().unwrap().len(), 1);
    assert_eq!(switch.0.lock().unwrap().len(), 1, "closed set applied once");
    // ...unless the session keeps reporting a minute after the ACK: the NAS did not end it.
    let mut interim = acct_start(&flex, "f-1", at("19:01:30"));
    interim.status = crate::store::radius::AcctStatus::Interim;
    s.record_accounting(&[interim]).await.unwrap();
    let sw = sch.sweep(at("19:01:31")).await.unwrap();
    assert_eq!(sw.ended.len(), 1, "sent again: {:?}", sw.ended);
    assert_eq!(nas.0.lock().unwrap().len(), 2);
    let dump = s.logical_dump().await.unwrap();
    for action in ["session.disconnect", "portal.expire", "network.close"] {
        assert!(dump.contains(action), "{action} audited");
    }

    // A NAS that does not answer: marked failed, retried a minute later, not before.
    let (late, _) = s
        .add_member(&new_member("late@example.com", "flex"), today(), &actor())
        .await
        .unwrap();
    s.record_accounting(&[acct_start(&late, "l-1", at("19:00:10"))])
        .await
        .unwrap();
    let down = Arc::new(Rec(Default::default(), true));
    let sch = Scheduler::new(
        s.clone(),
        Arc::new(StoreLookup::load(&s).await.unwrap()),
        down.clone(),
        Arc::new(Alarm::default()),
    );
    let sw = sch.sweep(at("19:00:20")).await.unwrap();
    assert_eq!(sw.ended.len(), 1, "{:?}", sw.ended);
    assert!(sw.ended[0].result.is_err());
    assert_eq!(sw.next, Some(at("19:01:20")));
    let rows = s.sessions(Some(before), 10).await.unwrap();
    let l = rows.iter().find(|r| r.acct_session_id == "l-1").unwrap();
    assert!(
        l.disconnect.as_deref().unwrap().starts_with("failed: "),
        "{:?}",
        l.disconnect
    );
    assert!(sch.sweep(at("19:00:50")).await.unwrap().ended.is_empty());
    assert_eq!(sch.sweep(at("19:01:30")).await.unwrap().ended.len(), 1);
    assert_eq!(down.0.lock().unwrap().len(), 2);
}
both!(scheduler, scheduler_at_closing_time);

async fn audit_search_filters(store: &Store) {
    let s = ready(store).await;
    s.add_member(
        &new_member("find.me@example.com", "flex"),
        today(),
        &actor(),
    )
    .await
    .unwrap();
    s.record_event(
        &actor(),
        "session.disconnect",
        "m-1",
        Some("100% done_x".into()),
    )
    .await
    .unwrap();
    let all = s.audit_search(None, None, 100).await.unwrap();
    assert!(all.len() >= 3, "{all:?}");
    let members = s.audit_search(Some("member."), None, 100).await.unwrap();
    assert!(!members.is_empty() && members.iter().all(|e| e.action.starts_with("member.")));
    let found = s.audit_search(None, Some("FIND.ME"), 100).await.unwrap();
    assert!(found.iter().any(|e| e.action == "member.add"), "{found:?}");
    // % and _ are literal characters in the search.
    let pct = s.audit_search(None, Some("100%"), 100).await.unwrap();
    assert_eq!(pct.len(), 1);
    assert!(s.audit_search(None, Some("0% d"), 100).await.unwrap().len() == 1);
    assert!(s
        .audit_search(None, Some("x_%"), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(
        s.audit_search(Some("session."), Some("done_x"), 100)
            .await
            .unwrap()
            .len()
            == 1
    );
}
both!(audit_search, audit_search_filters);

async fn auth_log_filters(store: &Store) {
    use crate::store::radius::{AuthLogEntry, AuthLogFilter};
    let s = ready(store).await;
    let e = |user: &str, mac: Option<&str>, accepted: bool, reason: &str| AuthLogEntry {
        at: chrono::Utc::now(),
        nas_id: Some(1),
        user_name: user.into(),
        mac: mac.map(Into::into),
        method: "pap".into(),
        accepted,
        reason: reason.into(),
        vlan: None,
        latency_us: 10,
    };
    s.record_auth_log(&[
        e("ada@example.com", Some("aa-bb-cc-00-00-01"), true, "ok"),
        e(
            "ada@example.com",
            Some("aa-bb-cc-00-00-01"),
            false,
            "bad-password",
        ),
        e("grace_h@example.com", None, false, "outside-hours"),
        e("gracehx@example.com", None, false, "unknown-user"),
    ])
    .await
    .unwrap();
    let all = s
        .auth_log_search(&AuthLogFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].user_name, "gracehx@example.com", "newest first");
    let f = |f: AuthLogFilter| {
        let s = s.clone();
        async move { s.auth_log_search(&f, 100).await.unwrap() }
    };
    let rejected = f(AuthLogFilter {
        accepted: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(rejected.len(), 3);
    // `_` is a literal character, not a wildcard.
    let grace = f(AuthLogFilter {
        user: Some("GRACE_".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(grace.len(), 1);
    assert_eq!(grace[0].reason, "outside-hours");
    // MACs in any notation.
    let by_mac = f(AuthLogFilter {
        mac: Some("AA:BB:CC:00:00:01".into()),
        accepted: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(by_mac.len(), 1);
    assert_eq!(by_mac[0].reason, "bad-password");
    let by_reason = f(AuthLogFilter {
        reason: Some("hours".into()),
        nas_id: Some(1),
        ..Default::default()
    })
    .await;
    assert_eq!(by_reason.len(), 1);
    assert!(f(AuthLogFilter {
        nas_id: Some(2),
        ..Default::default()
    })
    .await
    .is_empty());
}
both!(auth_log, auth_log_filters);

/// Batches of any size go in whole, in order, through the three statement shapes.
async fn auth_log_batches_of_any_size(store: &Store) {
    use crate::store::radius::{AuthLogEntry, AuthLogFilter};
    let s = ready(store).await;
    let entry = |i: usize| AuthLogEntry {
        at: chrono::Utc::now(),
        nas_id: Some(1),
        user_name: format!("user{i}@example.com"),
        mac: (i % 2 == 0).then(|| format!("aa-bb-cc-00-00-{:02x}", i % 256)),
        method: "pap".into(),
        accepted: i % 3 != 0,
        reason: if i % 3 == 0 { "bad-password" } else { "ok" }.into(),
        vlan: (i % 3 != 0).then_some(10),
        latency_us: i as i64,
    };
    let mut written = 0;
    for size in [1, 9, 10, 11, 100, 123, 250] {
        let batch: Vec<AuthLogEntry> = (written..written + size).map(entry).collect();
        s.record_auth_log(&batch).await.unwrap();
        written += size;
    }
    let all = s
        .auth_log_search(&AuthLogFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(all.len(), written);
    // Newest first: the rows are in the order given, every field intact.
    for (row, i) in all.iter().zip((0..written).rev()) {
        let e = entry(i);
        assert_eq!(row.user_name, e.user_name);
        assert_eq!(row.mac, e.mac);
        assert_eq!(row.accepted, e.accepted);
        assert_eq!(row.reason, e.reason);
        assert_eq!(row.vlan, e.vlan);
        assert_eq!(row.latency_us, e.latency_us);
    }
}
both!(auth_log_batches, auth_log_batches_of_any_size);

async fn self_service_links_sessions_and_devices(store: &Store) {
    let s = ready(store).await;
    let today = chrono::Utc::now().date_naive();
    let (ada, _) = s
        .add_member(&new_member("ada@example.com", "flex"), today, &actor())
        .await
        .unwrap();
    let (bob, _) = s
        .add_member(&new_member("bob@example.com", "flex"), today, &actor())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let min = chrono::Duration::minutes;
    // A link works once, and not after it expires.
    s.create_member_link("h1", &ada.id, now, now + min(20))
        .await
        .unwrap();
    s.create_member_link("h2", &ada.id, now, now + min(20))
        .await
        .unwrap();
    assert!(s.member_link_valid("h1", now).await.unwrap());
    assert_eq!(
        s.use_member_link("h1", now).await.unwrap().as_deref(),
        Some(ada.id.as_str())
    );
    assert_eq!(s.use_member_link("h1", now).await.unwrap(), None);
    assert!(!s.member_link_valid("h2", now + min(21)).await.unwrap());
    assert_eq!(s.use_member_link("h2", now + min(21)).await.unwrap(), None);
    assert_eq!(s.use_member_link("nope", now).await.unwrap(), None);

    // Sessions: idle and absolute expiry; a password change keeps only the current one;
    // suspension ends them.
    let (idle, abs) = (min(30), chrono::Duration::hours(12));
    for t in ["s1", "s2", "s3"] {
        s.create_member_session(t, &ada.id, "csrf", "192.0.2.1", now)
            .await
            .unwrap();
    }
    assert!(s
        .member_session("s1", now, idle, abs)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .member_session("s3", now + min(31), idle, abs)
        .await
        .unwrap()
        .is_none());
    assert!(
        s.member_session("s3", now, idle, abs)
            .await
            .unwrap()
            .is_none(),
        "deleted"
    );
    assert!(s
        .member_login("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .1
        .is_none());
    s.set_member_login(&ada.id, "argon-hash", Some("s1"), &actor())
        .await
        .unwrap();
    assert_eq!(
        s.member_login("ADA@example.com")
            .await
            .unwrap()
            .unwrap()
            .1
            .as_deref(),
        Some("argon-hash")
    );
    assert!(s
        .member_session("s2", now, idle, abs)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .member_session("s1", now, idle, abs)
        .await
        .unwrap()
        .is_some());
    s.set_member_status(&ada.id, MemberStatus::Suspended, &actor())
        .await
        .unwrap();
    assert!(s
        .member_session("s1", now, idle, abs)
        .await
        .unwrap()
        .is_none());
    s.set_member_status(&ada.id, MemberStatus::Active, &actor())
        .await
        .unwrap();

    // Devices within a limit, removal scoped to the owner.
    let flex = s.plan("flex").await.unwrap();
    let mac = |i: u8| crate::MacAddr([0xaa, 0, 0, 0, 0, i]);
    for i in 1..=2 {
        s.add_member_device(&ada.id, mac(i), flex.id, "d", 2, &actor())
            .await
            .unwrap();
    }
    assert!(matches!(
        s.add_member_device(&ada.id, mac(3), flex.id, "d", 2, &actor())
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_member_device(&bob.id, mac(1), flex.id, "d", 2, &actor())
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.remove_device(mac(1), Some(&bob.id), &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    s.remove_device(mac(1), Some(&ada.id), &actor())
        .await
        .unwrap();
    assert_eq!(s.devices_of(&ada.id).await.unwrap().len(), 1);
    assert!(s.devices_of(&bob.id).await.unwrap().is_empty());

    // Guest passes by sponsor.
    s.create_vouchers(2, 3600, 1, "guest", Some(&bob.id), &actor())
        .await
        .unwrap();
    s.create_vouchers(1, 3600, 1, "guest", None, &actor())
        .await
        .unwrap();
    assert_eq!(s.vouchers_sponsored_by(&bob.id).await.unwrap().len(), 2);
    assert!(s.vouchers_sponsored_by(&ada.id).await.unwrap().is_empty());
    assert!(s
        .sponsor_requests_of(&ada.id, now, 7)
        .await
        .unwrap()
        .is_empty());
    assert!(s.sponsor_requests_since(0, now).await.unwrap().is_empty());
    let pass = &s.vouchers_sponsored_by(&bob.id).await.unwrap()[0];
    s.redeem_voucher(&pass.code, mac(9), now, &actor())
        .await
        .unwrap();
    let used = s.voucher_devices().await.unwrap();
    assert_eq!(used[&pass.code], vec![mac(9).to_string()]);
}
both!(self_service, self_service_links_sessions_and_devices);

async fn report_aggregates(store: &Store) {
    use crate::store::radius::{AccountingRecord, AcctStatus, AuthLogEntry};
    let s = ready(store).await;
    let now = chrono::Utc::now();
    let e = |at: DateTime<Utc>, accepted: bool, reason: &str| AuthLogEntry {
        at,
        nas_id: Some(1),
        user_name: "u".into(),
        mac: None,
        method: "pap".into(),
        accepted,
        reason: reason.into(),
        vlan: None,
        latency_us: 1,
    };
    s.record_auth_log(&[
        e(now, true, "ok"),
        e(now, true, "ok"),
        e(now, false, "bad-password"),
        e(now - chrono::Duration::hours(30), false, "old"),
    ])
    .await
    .unwrap();
    let counts = s
        .auth_counts_since(now - chrono::Duration::hours(23))
        .await
        .unwrap();
    let hour = now.timestamp() / 3600;
    let count = |accepted: bool, reason: &str| {
        counts
            .iter()
            .find(|c| c.accepted == accepted && c.reason == reason && c.hour == hour)
            .map(|c| c.count)
    };
    assert_eq!(count(true, "ok"), Some(2));
    assert_eq!(count(false, "bad-password"), Some(1));
    assert_eq!(counts.len(), 2);
    let rec = |sid: &str, status: AcctStatus, at: DateTime<Utc>| AccountingRecord {
        at,
        nas_id: 1,
        nas_addr: "192.0.2.50".into(),
        status,
        session_id: sid.into(),
        user_name: "u".into(),
        member_id: Some("m1".into()),
        mac: None,
        framed_ip: None,
        vlan: Some(20),
        class: None,
        input_octets: 0,
        output_octets: 0,
        session_time: 0,
        terminate_cause: None,
    };
    let h = chrono::Duration::hours;
    s.record_accounting(&[
        rec("old", AcctStatus::Start, now - h(24 * 40)),
        rec("done", AcctStatus::Start, now - h(5)),
        rec("open", AcctStatus::Start, now - h(1)),
    ])
    .await
    .unwrap();
    s.record_accounting(&[
        rec("old", AcctStatus::Stop, now - h(24 * 39)),
        rec("done", AcctStatus::Stop, now - h(3)),
    ])
    .await
    .unwrap();
    let spans = s
        .session_spans(now - h(24 * 28), now, chrono::Duration::minutes(15))
        .await
        .unwrap();
    let mut got: Vec<(i64, i64)> = spans.iter().map(|x| (x.start, x.end)).collect();
    got.sort();
    // The open session last reported at its start, an hour ago (beyond the 15-minute
    // horizon): it counts until that report.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], ((now - h(5)).timestamp(), (now - h(3)).timestamp()));
    assert_eq!(got[1].0, (now - h(1)).timestamp());
    assert_eq!(spans[0].vlan, Some(20));
    let sessions = s.sessions(None, 10).await.unwrap();
    let open = sessions
        .iter()
        .find(|x| x.acct_session_id == "open")
        .unwrap();
    s.mark_disconnect(&[(open.id, "failed: timeout".into())], now)
        .await
        .unwrap();
    assert_eq!(
        s.disconnect_failures_since(now - h(24)).await.unwrap(),
        vec![("192.0.2.50".to_string(), 1, "failed: timeout".to_string())]
    );
}
both!(reports, report_aggregates);

async fn plan_update_and_closure_removal(store: &Store) {
    let s = ready(store).await;
    let mut flex = s.plan("flex").await.unwrap();
    flex.wifi = "mon-fri 07:00-22:00".parse().unwrap();
    flex.device_limit = None;
    flex.ssids = vec!["Members".into()];
    let saved = s.update_plan(&flex, &actor()).await.unwrap();
    assert_eq!(saved.id, flex.id);
    let back = s.plan("flex").await.unwrap();
    assert_eq!(back.wifi.to_string(), "mon-fri 07:00-22:00");
    assert_eq!(back.device_limit, None);
    assert_eq!(back.ssids, vec!["Members".to_string()]);
    let mut ghost = flex.clone();
    ghost.name = "ghost".into();
    assert!(matches!(
        s.update_plan(&ghost, &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    let d = NaiveDate::from_ymd_opt(2099, 12, 24).unwrap();
    let cl = s.add_closure(d, d, "Xmas", false, &actor()).await.unwrap();
    s.remove_closure(cl.id, &actor()).await.unwrap();
    assert!(s.site().await.unwrap().calendar.closures.is_empty());
    assert!(matches!(
        s.remove_closure(cl.id, &actor()).await,
        Err(StoreError::NotFound(_))
    ));
}
both!(plan_update, plan_update_and_closure_removal);

async fn nas_update_keeps_or_replaces_the_secret(store: &Store) {
    let s = ready(store).await;
    s.add_nas(
        &NewNas {
            name: "ap".into(),
            address: "192.0.2.1/32".parse().unwrap(),
            secret: "first-secret".into(),
            vendor: Vendor::Generic,
            disconnect_port: None,
            coa_port: None,
            require_message_authenticator: false,
        },
        &actor(),
    )
    .await
    .unwrap();
    let net: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
    s.update_nas("ap", net, Vendor::Meraki, true, None, &actor())
        .await
        .unwrap();
    let n = &s.nas_list().await.unwrap()[0];
    assert_eq!(
        (n.secret.as_str(), n.vendor, n.require_message_authenticator),
        ("first-secret", Vendor::Meraki, true)
    );
    assert_eq!(n.disconnect_port, Vendor::Meraki.disconnect_port());
    s.update_nas(
        "ap",
        net,
        Vendor::Meraki,
        true,
        Some("second-secret"),
        &actor(),
    )
    .await
    .unwrap();
    assert_eq!(s.nas_list().await.unwrap()[0].secret, "second-secret");
    assert!(matches!(
        s.update_nas("ap", net, Vendor::Meraki, true, Some("short"), &actor())
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.update_nas("nope", net, Vendor::Meraki, true, None, &actor())
            .await,
        Err(StoreError::NotFound(_))
    ));
}
both!(nas_update, nas_update_keeps_or_replaces_the_secret);

async fn door_backends_maps_and_sync_items(store: &Store) {
    let s = ready(store).await;
    let b = s
        .add_door_backend(
            "kisi",
            "kisi",
            "https://api.kisi.io/",
            Some("key"),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(b.url, "https://api.kisi.io");
    assert!(matches!(
        s.add_door_backend("x", "bogus", "https://x", None, &actor())
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_door_backend("kisi", "kisi", "https://x", None, &actor())
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        s.door_backends().await.unwrap()[0].secret.as_deref(),
        Some("key")
    );
    s.map_door("kisi", "flex", "Studio", None, &actor())
        .await
        .unwrap();
    s.map_door(
        "kisi",
        "flex",
        "Studio",
        Some("always".parse().unwrap()),
        &actor(),
    )
    .await
    .unwrap();
    let maps = s.door_maps().await.unwrap();
    assert_eq!(maps.len(), 1, "one map per plan and group, replaced");
    assert_eq!(maps[0].schedule.as_ref().unwrap().to_string(), "always");
    let now = chrono::Utc::now();
    s.sync_ok(b.id, "m1", Some("{}")).await.unwrap();
    assert_eq!(
        s.sync_failed(b.id, "m1", "boom", now, false).await.unwrap(),
        1
    );
    assert_eq!(
        s.sync_failed(b.id, "m1", "boom", now, true).await.unwrap(),
        2
    );
    let items = s.sync_items(b.id).await.unwrap();
    assert_eq!(items[0].state, "quarantined");
    assert_eq!(
        items[0].synced.as_deref(),
        Some("{}"),
        "the last good record stays"
    );
    assert_eq!(s.sync_release(b.id).await.unwrap(), 1);
    s.sync_ok(b.id, "m1", Some("{\"grants\":[]}"))
        .await
        .unwrap();
    let items = s.sync_items(b.id).await.unwrap();
    assert_eq!((items[0].state.as_str(), items[0].failures), ("ok", 0));
    s.sync_run_started(b.id, now).await.unwrap();
    s.sync_run_finished(b.id, now, 3, 0, None).await.unwrap();
    let runs = s.sync_runs().await.unwrap();
    assert_eq!(runs[0].operations, 3);
    assert!(runs[0].finished_at.is_some());
}
both!(doors, door_backends_maps_and_sync_items);

async fn door_events_unmap_and_remove(store: &Store) {
    let s = ready(store).await;
    let b = s
        .add_door_backend("kisi", "kisi", "https://api.kisi.io", Some("key"), &actor())
        .await
        .unwrap();
    assert!(s.door_backends().await.unwrap()[0].events_secret.is_none());
    assert!(matches!(
        s.set_door_events_secret("kisi", "short", &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    s.set_door_events_secret("kisi", "0123456789abcdef0123", &actor())
        .await
        .unwrap();
    assert_eq!(
        s.door_backends().await.unwrap()[0].events_secret.as_deref(),
        Some("0123456789abcdef0123")
    );
    // The link the sync wrote maps the door system's user to the member.
    s.sync_ok(b.id, "m-ada", Some(r#"{"user_id":"901","grants":[]}"#))
        .await
        .unwrap();
    assert_eq!(
        s.member_for_door_user(b.id, "901")
            .await
            .unwrap()
            .as_deref(),
        Some("m-ada")
    );
    assert_eq!(s.member_for_door_user(b.id, "902").await.unwrap(), None);
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let e = DoorEvent {
        backend: "kisi".into(),
        event_id: "ev-1".into(),
        at,
        kind: "unlock".into(),
        door: "Front door".into(),
        member_id: Some("m-ada".into()),
        actor: Some("Ada".into()),
    };
    assert!(s.record_door_event(b.id, &e).await.unwrap());
    assert!(
        !s.record_door_event(b.id, &e).await.unwrap(),
        "a redelivery is recorded once"
    );
    let got = s
        .door_events_since(at - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].kind.as_str(), got[0].door.as_str()),
        ("unlock", "Front door")
    );
    assert_eq!(got[0].at.timestamp(), at.timestamp());
    assert!(s
        .door_events_since(at + chrono::Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    let audit = s.audit_log(10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "door.unlock"), "{audit:?}");
    // Unmap, then remove; remove is refused while maps exist.
    s.map_door("kisi", "flex", "Studio", None, &actor())
        .await
        .unwrap();
    assert!(matches!(
        s.remove_door_backend("kisi", false, &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.unmap_door("kisi", "flex", "Nope", &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    s.unmap_door("kisi", "flex", "Studio", &actor())
        .await
        .unwrap();
    assert!(s.door_maps().await.unwrap().is_empty());
    s.remove_door_backend("kisi", false, &actor())
        .await
        .unwrap();
    assert!(s.door_backends().await.unwrap().is_empty());
    assert!(
        s.door_events_since(at - chrono::Duration::seconds(1))
            .await
            .unwrap()
            .is_empty(),
        "events go with their backend"
    );
}
both!(door_events, door_events_unmap_and_remove);

async fn sites_in_one_database(store: &Store) {
    let s = ready(store).await;
    let first = s.site().await.unwrap().name;
    s.add_site("Annex", "Europe/Berlin", &actor())
        .await
        .unwrap();
    assert!(matches!(
        s.add_site("Annex", "UTC", &actor()).await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.add_site("X", "Mars/Olympus", &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.sites().await.unwrap().len(), 2);
    assert_eq!(
        s.site().await.unwrap().name,
        first,
        "default: the first site"
    );
    let mut annex = s.clone();
    annex.select_site("Annex");
    let site = annex.site().await.unwrap();
    assert_eq!(
        (site.name.as_str(), site.tz().name()),
        ("Annex", "Europe/Berlin")
    );
    assert_eq!(annex.catalog().await.unwrap().site.name, "Annex");
    let mut nowhere = s.clone();
    nowhere.select_site("Nowhere");
    assert!(matches!(nowhere.site().await, Err(StoreError::NotFound(_))));
}
both!(sites, sites_in_one_database);

async fn controllers_with_sealed_secrets_and_health(store: &Store) {
    use super::controllers::NewController;
    let s = ready(store).await;
    let new = |name: &'static str, kind: &'static str, url: &'static str| NewController {
        name,
        kind,
        url,
        site: Some("default"),
        username: Some("portal"),
        secret: Some("s3cret-pass"),
    };
    let c = s
        .add_controller(
            &new("wifi", "unifi", "https://unifi.example:8443/"),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        (c.url.as_str(), c.secret.as_deref(), c.last_ok_at),
        ("https://unifi.example:8443", Some("s3cret-pass"), None)
    );
    let (stored,): (String,) =
        sqlx::query_as("SELECT secret_enc FROM controllers WHERE name = 'wifi'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert!(!stored.contains("s3cret"), "sealed at rest");
    assert!(matches!(
        s.add_controller(&new("wifi", "omada", "https://x"), &actor())
            .await,
        Err(StoreError::Duplicate(_))
    ));
    for (kind, url) in [("aruba", "https://x"), ("unifi", "ftp://x")] {
        assert!(matches!(
            s.add_controller(&new("other", kind, url), &actor()).await,
            Err(StoreError::Invalid(_))
        ));
    }
    s.set_controller_health("wifi", Some("HTTP 500"))
        .await
        .unwrap();
    let c = s.controller("wifi").await.unwrap().unwrap();
    assert_eq!(c.last_error.as_deref(), Some("HTTP 500"));
    assert!(c.last_error_at.is_some() && c.last_ok_at.is_none());
    s.set_controller_health("wifi", None).await.unwrap();
    let c = s.controller("wifi").await.unwrap().unwrap();
    assert!(
        c.last_error.is_none() && c.last_ok_at.is_some(),
        "a success settles it"
    );
    s.remove_controller("wifi", &actor()).await.unwrap();
    assert!(s.controllers().await.unwrap().is_empty());
    assert!(matches!(
        s.remove_controller("wifi", &actor()).await,
        Err(StoreError::NotFound(_))
    ));
}
both!(controllers, controllers_with_sealed_secrets_and_health);

async fn passphrases_issue_list_revoke(store: &Store) {
    use super::passphrases::Owner;
    let s = ready(store).await;
    let (ada, _) = s
        .add_member(
            &new_member("ada@example.com", "full-time"),
            today(),
            &actor(),
        )
        .await
        .unwrap();
    let team = s.add_team("Acme", 101, &actor()).await.unwrap();
    let p = s
        .issue_passphrase(
            &Owner::Member("ada@example.com".into()),
            "Frontdesk-Devices",
            None,
            Some(3),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        (p.member_id.as_deref(), p.owner.as_str(), p.max_devices),
        (Some(ada.id.as_str()), "ada@example.com", Some(3))
    );
    assert!(
        (8..=63).contains(&p.secret.len()) && p.secret.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "WPA2 passphrase rules: {:?}",
        p.secret
    );
    assert_eq!(
        p.wifi_uri(),
        format!("WIFI:T:WPA;S:Frontdesk-Devices;P:{};;", p.secret)
    );
    let until = today() + chrono::Duration::days(30);
    let t = s
        .issue_passphrase(
            &Owner::Team(team.id),
            "Frontdesk-Devices",
            Some(until),
            None,
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!((t.owner.as_str(), t.valid_until), ("Acme", Some(until)));
    assert_ne!(t.secret, p.secret, "unique on the SSID");
    let (stored,): (String,) = sqlx::query_as("SELECT secret_enc FROM passphrases WHERE id = $1")
        .bind(p.id)
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&p.secret), "sealed at rest");
    let audit: Vec<(String,)> = sqlx::query_as("SELECT COALESCE(after_summary, '') FROM audit")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert!(
        audit.iter().all(|(a,)| !a.contains(&p.secret)),
        "never in the audit log"
    );
    // The PMK is derived at issue and kept sealed.
    assert_eq!(
        p.pmk,
        crate::secrets::wpa_pmk(&p.secret, "Frontdesk-Devices")
    );
    assert_eq!(s.passphrase(p.id).await.unwrap().pmk, p.pmk);
    // A plan's join passphrase.
    let guest = s.plan("guest").await.unwrap();
    let j = s
        .issue_passphrase(
            &Owner::Plan(guest.id),
            "Frontdesk-Devices",
            None,
            None,
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        (j.plan_id, j.owner.as_str()),
        (Some(guest.id), "plan guest")
    );
    // Devices: bound by an operator (audited, limited), learned by RADIUS (upserted).
    let (m1, m2, m3): (crate::MacAddr, crate::MacAddr, crate::MacAddr) = (
        "02:00:00:00:00:01".parse().unwrap(),
        "02:00:00:00:00:02".parse().unwrap(),
        "02:00:00:00:00:03".parse().unwrap(),
    );
    s.bind_passphrase_device(p.id, m1, &actor()).await.unwrap();
    s.bind_passphrase_device(p.id, m1, &actor()).await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    s.record_passphrase_device(p.id, m2, later).await.unwrap();
    s.record_passphrase_device(p.id, m2, later).await.unwrap();
    s.bind_passphrase_device(p.id, m3, &actor()).await.unwrap();
    assert!(
        matches!(
            s.bind_passphrase_device(p.id, "02:00:00:00:00:04".parse().unwrap(), &actor())
                .await,
            Err(StoreError::Invalid(_))
        ),
        "over its 3 devices"
    );
    let devices = s.passphrase_devices(p.id).await.unwrap();
    assert_eq!(devices.len(), 3);
    assert_eq!(devices[0].mac, m2, "most recent first");
    s.unbind_passphrase_device(p.id, m3, &actor())
        .await
        .unwrap();
    assert!(matches!(
        s.unbind_passphrase_device(p.id, m3, &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.passphrase_devices_all().await.unwrap().len(), 2);
    s.revoke_passphrase(j.id, &actor()).await.unwrap();
    assert_eq!(s.passphrases(false).await.unwrap().len(), 2);
    s.revoke_passphrase(p.id, &actor()).await.unwrap();
    assert!(
        matches!(
            s.bind_passphrase_device(p.id, m3, &actor()).await,
            Err(StoreError::Invalid(_))
        ),
        "revoked"
    );
    assert!(matches!(
        s.revoke_passphrase(p.id, &actor()).await,
        Err(StoreError::NotFound(_))
    ));
    let live = s.passphrases(false).await.unwrap();
    assert_eq!(live.iter().map(|p| p.id).collect::<Vec<_>>(), [t.id]);
    assert!(s.passphrases(true).await.unwrap()[2].revoked_at.is_some());
    for bad in ["", &"x".repeat(33)] {
        assert!(matches!(
            s.issue_passphrase(&Owner::Team(team.id), bad, None, None, &actor())
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        s.issue_passphrase(&Owner::Team(team.id), "x", None, Some(0), &actor())
            .await,
        Err(StoreError::Invalid(_))
    ));
    s.set_member_status("ada@example.com", MemberStatus::Cancelled, &actor())
        .await
        .unwrap();
    assert!(matches!(
        s.issue_passphrase(
            &Owner::Member("ada@example.com".into()),
            "x",
            None,
            None,
            &actor()
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
}
both!(passphrases, passphrases_issue_list_revoke);

async fn dns_lists_exceptions_and_query_log(store: &Store) {
    use crate::store::dns::{QueryLogEntry, QueryLogFilter, Scope};
    let s = ready(store).await;
    let (member, _) = s
        .add_member(&new_member("ada@example.com", "flex"), today(), &actor())
        .await
        .unwrap();
    let b = s
        .add_blocklist("malware", "/lists/malware.txt", &["guest".into()], &actor())
        .await
        .unwrap();
    assert_eq!(b.plans, ["guest"]);
    assert!(matches!(
        s.add_blocklist("malware", "/x", &[], &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_blocklist("x", "/x", &["nope".into()], &actor()).await,
        Err(StoreError::Invalid(_))
    ));
    // A request, approved for a plan until a date; decided once.
    let r = s
        .request_exception(
            "docs.example",
            Some(&member.id),
            "work",
            Some("malware"),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, "pending");
    assert_eq!(r.scope, Scope::Member(member.id.clone()));
    assert_eq!(s.exceptions(Some("pending")).await.unwrap().len(), 1);
    let until = today() + chrono::Duration::days(7);
    let d = s
        .decide_exception(
            r.id,
            Some((Scope::Plan("flex".into()), Some(until))),
            &actor(),
        )
        .await
        .unwrap();
    assert_eq!(
        (d.status.as_str(), d.valid_until),
        ("approved", Some(until))
    );
    assert!(s.decide_exception(r.id, None, &actor()).await.is_err());
    assert!(s.exceptions(Some("pending")).await.unwrap().is_empty());
    assert_eq!(s.blocklists().await.unwrap()[0].domains, None);
    s.record_blocklist_load("malware", Some(1234), None)
        .await
        .unwrap();
    s.record_blocklist_load("malware", None, Some("HTTP 404"))
        .await
        .unwrap();
    let b = &s.blocklists().await.unwrap()[0];
    assert_eq!(b.domains, Some(1234), "the last good count is kept");
    assert_eq!(b.load_error.as_deref(), Some("HTTP 404"));
    assert!(b.loaded_at.is_some());
    s.record_blocklist_load("malware", Some(1300), None)
        .await
        .unwrap();
    let b = &s.blocklists().await.unwrap()[0];
    assert_eq!((b.domains, b.load_error.as_deref()), (Some(1300), None));
    s.remove_blocklist("malware", &actor()).await.unwrap();
    assert!(s.blocklists().await.unwrap().is_empty());

    // Query log: batches, filters, newest first, retention.
    let old = Utc::now() - chrono::Duration::days(10);
    let line = |i: i64, at: DateTime<Utc>, blocked: bool| QueryLogEntry {
        at: ts(at.timestamp()),
        client: format!("10.0.20.{}", i % 3),
        plan: Some("flex".into()),
        member: (i % 2 == 0).then(|| member.id.clone()),
        name: format!("n{i}.example"),
        qtype: 1,
        result: if blocked { "blocked" } else { "forwarded" }.into(),
        list: blocked.then(|| "malware".into()),
    };
    let mut batch: Vec<_> = (0..600).map(|i| line(i, Utc::now(), i % 5 == 0)).collect();
    batch.extend((600..610).map(|i| line(i, old, false)));
    s.record_dns_log(&batch).await.unwrap();
    let all = s
        .dns_log(&QueryLogFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 610);
    assert_eq!(all[0].name, "n609.example");
    assert_eq!(all[609], batch[0]);
    let blocked = s
        .dns_log(&QueryLogFilter {
            blocked_only: true,
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(blocked.len(), 120);
    let mine = s
        .dns_log(&QueryLogFilter {
            member: Some(member.id.clone()),
            client: Some("10.0.20.0".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 5);
    assert!(mine
        .iter()
        .all(|e| e.client == "10.0.20.0" && e.member.as_deref() == Some(&*member.id)));
    let gone = s
        .prune_dns_log(Utc::now() - chrono::Duration::days(7))
        .await
        .unwrap();
    assert_eq!(gone, 10);
}
both!(dns, dns_lists_exceptions_and_query_log);
