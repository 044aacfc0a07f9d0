//! JSON API, in process: tokens (unknown, revoked, scoped), every route's status and body, the
//! database effect, pagination, error JSON, audited secret reveal, and the signed webhook.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use frontdesk_core::store::api::parse_scopes;
use frontdesk_core::store::{Actor, NewMember, OpenMode, Store};
use frontdesk_portal::api::{new_token, webhook, Api};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        source: "test".into(),
    }
}

struct Lab {
    store: Store,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

async fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("a.db").display());
    let mut store = Store::open(&url, OpenMode::Create).await.unwrap();
    store
        .init_site("API Lab", "Europe/Berlin", &actor())
        .await
        .unwrap();
    store
        .unlock(frontdesk_core::secrets::SecretKey::generate(), "test-key")
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    for (name, email, plan) in [
        ("Ada Lovelace", "ada@example.com", "full-time"),
        ("Grace Hopper", "grace@example.com", "flex"),
        ("<script>alert(1)</script>", "x@example.com", "flex"),
    ] {
        store
            .add_member(
                &NewMember {
                    name: name.into(),
                    email: email.into(),
                    plan: plan.into(),
                    ..Default::default()
                },
                today,
                &actor(),
            )
            .await
            .unwrap();
    }
    let app = Api::new(store.clone(), None).router();
    Lab {
        store,
        app,
        _dir: dir,
    }
}

impl Lab {
    async fn token(&self, scopes: &str) -> String {
        let (value, hash) = new_token();
        self.store
            .create_api_token("test", &parse_scopes(scopes).unwrap(), &hash, &actor())
            .await
            .unwrap();
        value
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        assert_eq!(
            res.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{method} {path}: every answer is JSON"
        );
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

#[tokio::test]
async fn tokens_are_required_scoped_and_revocable() {
    let lab = lab().await;
    let (s, body) = lab.call("GET", "/api/v1/members", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (s, _) = lab
        .call("GET", "/api/v1/members", Some("fdk_nope"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let reader = lab.token("plans:read").await;
    let (s, body) = lab
        .call("GET", "/api/v1/members", Some(&reader), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("members:read"));
    let (s, plans) = lab.call("GET", "/api/v1/plans", Some(&reader), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(plans
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "flex"));

    // Stored as a hash only; revoked tokens stop at once.
    let dump = lab.store.logical_dump().await.unwrap();
    assert!(!dump.contains(&reader), "the token itself is never stored");
    let id = lab.store.api_tokens().await.unwrap()[0].id;
    lab.store.revoke_api_token(id, &actor()).await.unwrap();
    let (s, _) = lab.call("GET", "/api/v1/plans", Some(&reader), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(lab.store.revoke_api_token(id, &actor()).await.is_err());

    // Unknown routes under /api/v1 answer JSON too.
    let (s, body) = lab.call("GET", "/api/v1/nothing", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(parse_scopes("members:delete").is_err());
    assert_eq!(parse_scopes("all").unwrap().len(), 9);
}

#[tokio::test]
async fn members_list_create_edit_and_reveal() {
    let lab = lab().await;
    let t = lab.token("members:read,members:write").await;
    let (s, page) = lab
        .call("GET", "/api/v1/members?limit=2", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2);
    let (_, last) = lab
        .call("GET", "/api/v1/members?limit=2&offset=2", Some(&t), None)
        .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_offset"], Value::Null);
    // Names are data, never markup: JSON carries them verbatim.
    assert!(
        page.to_string().contains("<script>alert(1)</script>")
            || last.to_string().contains("<script>")
    );
    let (_, flex) = lab
        .call(
            "GET",
            "/api/v1/members?plan=flex&search=grace",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(flex["total"], 1);
    assert_eq!(flex["items"][0]["current_plan"], "flex");
    for bad in ["limit=0", "limit=501", "limit=x", "status=gone"] {
        let (s, body) = lab
            .call("GET", &format!("/api/v1/members?{bad}"), Some(&t), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "bad_request");
    }

    // Create: without secrets:read the password is not in the answer.
    let (s, made) = lab
        .call(
            "POST",
            "/api/v1/members",
            Some(&t),
            Some(json!({"name": "Linus", "email": "Linus@Example.com", "plan": "day-pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["member"]["email"], "linus@example.com");
    assert_eq!(made["wifi_password"], Value::Null);
    let id = made["member"]["id"].as_str().unwrap().to_string();
    let (s, _) = lab
        .call(
            "POST",
            "/api/v1/members",
            Some(&t),
            Some(json!({"name": "Linus", "email": "linus@example.com", "plan": "flex"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = lab
        .call(
            "POST",
            "/api/v1/members",
            Some(&t),
            Some(json!({"name": "X", "email": "y@example.com", "plan": "platinum"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = lab
        .call(
            "POST",
            "/api/v1/members",
            Some(&t),
            Some(json!({"name": "X", "email": "not-an-email", "plan": "flex"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = lab
        .call("POST", "/api/v1/members", Some(&t), Some(json!([1, 2])))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Edit, change plan, end at a date, suspend.
    let (s, m) = lab
        .call(
            "PATCH",
            &format!("/api/v1/members/{id}"),
            Some(&t),
            Some(json!({"name": "Linus T.", "plan": "flex", "status": "suspended"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["name"], "Linus T.");
    assert_eq!(m["current_plan"], "flex");
    assert_eq!(m["status"], "suspended");
    let stored = lab.store.member(&id).await.unwrap();
    assert_eq!(stored.status, frontdesk_core::MemberStatus::Suspended);
    let last_day = (chrono::Utc::now() + chrono::Duration::days(40)).date_naive();
    let (s, m) = lab
        .call(
            "PATCH",
            "/api/v1/members/linus@example.com",
            Some(&t),
            Some(json!({"last_day": last_day, "status": "active"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "active");
    assert_eq!(
        m["plans"].as_array().unwrap().last().unwrap()["valid_until"],
        json!(last_day)
    );
    let (s, _) = lab
        .call(
            "PATCH",
            &format!("/api/v1/members/{id}"),
            Some(&t),
            Some(json!({"status": "cancelled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = lab
        .call(
            "PATCH",
            &format!("/api/v1/members/{id}"),
            Some(&t),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap().contains("final"));
    let (s, _) = lab
        .call("GET", "/api/v1/members/nobody@example.com", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Reveal needs secrets:read and is audited.
    let (s, _) = lab
        .call(
            "GET",
            "/api/v1/members/ada@example.com/wifi-credentials",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let secrets = lab.token("secrets:read,members:write").await;
    let (s, cred) = lab
        .call(
            "GET",
            "/api/v1/members/ada@example.com/wifi-credentials",
            Some(&secrets),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ada = lab.store.member("ada@example.com").await.unwrap();
    assert_eq!(
        cred["wifi_password"],
        lab.store.wifi_password(&ada.id).await.unwrap()
    );
    let audit = lab.store.audit_of(&ada.id, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "member.reveal" && a.actor == "api:test"));
    let (s, rotated) = lab
        .call(
            "POST",
            "/api/v1/members/ada@example.com/rotate-wifi-password",
            Some(&secrets),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(rotated["wifi_password"], cred["wifi_password"]);
    assert_eq!(
        rotated["wifi_password"],
        lab.store.wifi_password(&ada.id).await.unwrap()
    );
}

#[tokio::test]
async fn vouchers_sessions_and_explain() {
    let lab = lab().await;
    let t = lab
        .token("vouchers:read,vouchers:write,sessions:read,sessions:write,explain:read")
        .await;
    let (s, made) = lab
        .call(
            "POST",
            "/api/v1/vouchers",
            Some(&t),
            Some(json!({"count": 3, "valid_hours": 24})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made.as_array().unwrap().len(), 3);
    assert_eq!(made[0]["state"], "unused");
    assert_eq!(made[0]["plan"], "guest");
    let (s, _) = lab
        .call(
            "POST",
            "/api/v1/vouchers",
            Some(&t),
            Some(json!({"count": 0, "valid_hours": 24})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, page) = lab
        .call("GET", "/api/v1/vouchers?limit=2", Some(&t), None)
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["next_offset"], 2);

    let (s, sessions) = lab
        .call("GET", "/api/v1/sessions?online=false", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sessions, json!([]));
    // No RADIUS in this instance: disconnecting says so.
    let (s, _) = lab
        .call("POST", "/api/v1/sessions/1/disconnect", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = lab
        .call("POST", "/api/v1/sessions/abc/disconnect", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    lab.store
        .set_member_status(
            "grace@example.com",
            frontdesk_core::MemberStatus::Suspended,
            &actor(),
        )
        .await
        .unwrap();
    let (s, e) = lab
        .call(
            "GET",
            "/api/v1/explain?user=grace@example.com",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["allowed"], false);
    assert_eq!(e["reason"], "suspended");
    assert_eq!(e["subject"]["kind"], "member");
    assert_eq!(e["timezone"], "Europe/Berlin");
    // 03:00 tomorrow (a date in the test's past would fall before Ada's membership began).
    let night = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT03:00")
        .to_string();
    let (s, e) = lab
        .call(
            "GET",
            &format!("/api/v1/explain?user=ada@example.com&at={night}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["allowed"], true, "full-time is 24/7");
    let (s, _) = lab
        .call(
            "GET",
            "/api/v1/explain?user=ada@example.com&at=soon",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = lab.call("GET", "/api/v1/explain", Some(&t), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = lab
        .call("GET", "/api/v1/explain?user=nobody", Some(&t), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let lab = lab().await;
    let (s, doc) = lab.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/members",
        "/api/v1/members/{id}",
        "/api/v1/members/{id}/wifi-credentials",
        "/api/v1/members/{id}/rotate-wifi-password",
        "/api/v1/plans",
        "/api/v1/vouchers",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}/disconnect",
        "/api/v1/explain",
        "/api/v1/webhooks/membership",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn membership_webhook_is_signed_and_idempotent() {
    let lab = lab().await;
    let send = |body: Value, sig: Option<String>| {
        let app = lab.app.clone();
        async move {
            let body = body.to_string();
            let mut req = Request::builder()
                .method("POST")
                .uri("/api/v1/webhooks/membership")
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(s) = sig {
                req = req.header("Frontdesk-Signature", s);
            }
            let res = app
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let created = json!({"id": "evt_1", "type": "member.created",
        "member": {"email": "zoe@example.com", "name": "Zoe", "plan": "flex"}});
    // Not enabled yet.
    let (s, body) = send(created.clone(), None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("frontdesk webhook secret"));
    lab.store
        .set_sealed_meta(webhook::SECRET_KEY, "whsec_test")
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let sign = |v: &Value, t: i64| Some(webhook::sign(b"whsec_test", v.to_string().as_bytes(), t));

    let (s, body) = send(created.clone(), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "bad_signature");
    let (s, _) = send(created.clone(), sign(&created, now - 3600)).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an hour-old signature is a replay"
    );
    let (s, _) = send(
        created.clone(),
        Some(webhook::sign(b"wrong", created.to_string().as_bytes(), now)),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(lab
        .store
        .find_member("zoe@example.com")
        .await
        .unwrap()
        .is_none());

    let (s, body) = send(created.clone(), sign(&created, now)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], true);
    assert_eq!(body["member"]["current_plan"], "flex");
    // The same event again (a retry): acknowledged, not applied.
    let (s, body) = send(created.clone(), sign(&created, now)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["applied"], false);

    let cancel = json!({"id": "evt_2", "type": "member.cancelled",
        "member": {"email": "zoe@example.com"}});
    let (s, body) = send(cancel.clone(), sign(&cancel, now)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["member"]["status"], "cancelled");
    let m = lab.store.member("zoe@example.com").await.unwrap();
    let audit = lab.store.audit_of(&m.id, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "member.cancel" && a.actor == "webhook"));

    let unknown = json!({"id": "evt_3", "type": "member.suspended",
        "member": {"email": "nobody@example.com"}});
    let (s, _) = send(unknown.clone(), sign(&unknown, now)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let bad = json!({"id": "evt_4", "type": "member.exploded", "member": {"email": "a@b.co"}});
    let (s, _) = send(bad.clone(), sign(&bad, now)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
