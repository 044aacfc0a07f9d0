//! The JSON API under `/api/v1/` (SPEC §7): members, plans, vouchers, sessions and explain for
//! integrations (billing systems, door controllers, scripts), plus the signed membership
//! webhook. Bearer tokens are created by an owner (console or `frontdesk token create`), scoped,
//! revocable and stored as SHA-256 only. Every answer is JSON, errors included:
//! `{"error": {"code": "...", "message": "..."}}`. The OpenAPI document is generated from the
//! handlers' annotations, so it cannot drift from the code, and is served at
//! `/api/v1/openapi.json` (schemathesis checks the two against each other in CI).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use frontdesk_core::clock;
use frontdesk_core::decide::Catalog;
use frontdesk_core::ports::Disconnector;
use frontdesk_core::store::api::ApiToken;
use frontdesk_core::store::{Actor, MemberFilter, NewMember, Store, StoreError};
use frontdesk_core::{Member, MemberStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::{info, warn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub mod door_events;
pub mod webhook;

/// Largest request body the API reads (a member or a voucher batch is far smaller).
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct Api(Arc<Inner>);

struct Inner {
    store: Store,
    disconnector: Option<Arc<dyn Disconnector>>,
}

impl Api {
    pub fn new(store: Store, disconnector: Option<Arc<dyn Disconnector>>) -> Api {
        Api(Arc::new(Inner {
            store,
            disconnector,
        }))
    }

    /// Routes under `/api/v1` (anything else under it answers a JSON 404), to merge with the
    /// console's router on the same listener.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/v1/openapi.json", get(openapi))
            .route("/api/v1/members", get(list_members).post(create_member))
            .route("/api/v1/members/{id}", get(get_member).patch(patch_member))
            .route(
                "/api/v1/members/{id}/wifi-credentials",
                get(member_credentials),
            )
            .route(
                "/api/v1/members/{id}/rotate-wifi-password",
                post(rotate_member_password),
            )
            .route("/api/v1/plans", get(list_plans))
            .route("/api/v1/vouchers", get(list_vouchers).post(create_vouchers))
            .route("/api/v1/sessions", get(list_sessions))
            .route("/api/v1/sessions/{id}/disconnect", post(disconnect_session))
            .route("/api/v1/explain", get(explain))
            .route("/api/v1/webhooks/membership", post(webhook::membership))
            .route(
                "/api/v1/webhooks/doors/{backend}",
                post(door_events::door_event),
            )
            .route(
                "/api/v1/{*rest}",
                axum::routing::any(|| async { ApiError::not_found("no such API route") }),
            )
            .layer(axum::middleware::map_response(no_store))
            .with_state(self)
    }

    /// The token behind `Authorization: Bearer …`, if it is live and has `scope`.
    async fn authorize(&self, headers: &HeaderMap, scope: &str) -> Result<Caller, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send an API token: Authorization: Bearer fdk_…",
                )
            })?;
        let found = self
            .0
            .store
            .api_token_by_hash(&token_hash(token))
            .await
            .map_err(ApiError::from)?;
        let Some(t) = found else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API token is unknown or revoked",
            ));
        };
        if !t.allows(scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} lacks the scope {scope} (it has {})",
                    t.name,
                    t.scopes.join(", ")
                ),
            ));
        }
        Ok(Caller(t))
    }

    async fn catalog(&self) -> Result<Catalog, ApiError> {
        Ok(self.0.store.catalog().await?)
    }
}

/// A new API token: `fdk_` and 32 random bytes in hex. Shown once; only its hash is kept.
pub fn new_token() -> (String, String) {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let token = format!("fdk_{}", hex::encode(b));
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// API answers carry data about people: never cached.
async fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

struct Caller(ApiToken);

impl Caller {
    fn actor(&self) -> Actor {
        Actor {
            name: format!("api:{}", self.0.name),
            source: "api".into(),
        }
    }
}

// ---- errors and extractors ------------------------------------------------------------------

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `invalid`, `unavailable`, `bad_signature`.
    pub code: String,
    /// For the person reading the integration's logs.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Duplicate(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Invalid(m) => ApiError::invalid(m),
            other => {
                warn!(error = %other, "api: storage error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"frontdesk\""),
            );
        }
        r
    }
}

/// Parses a JSON body; called after the token is checked, so a caller without a token learns
/// nothing from body errors (401 before 400).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.len() > MAX_BODY {
        return Err(ApiError::bad_request("body larger than 64 KiB"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// A whole number; JSON Schema counts `116.0` as an integer, so we do too.
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = f64::deserialize(d)?;
    if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is not a whole number in 0..4294967295"
        )))
    }
}

fn whole_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "whole")] u32);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// Query parameters whose every failure answers as [`ApiError`].
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("malformed query: {e}")))
    }
}

/// One path segment (`{id}`), percent-decoded.
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Segment(p.0))
            .map_err(|e| ApiError::bad_request(format!("malformed path: {e}")))
    }
}

// ---- shapes ---------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
    Cancelled,
}

impl From<MemberStatus> for Status {
    fn from(s: MemberStatus) -> Status {
        match s {
            MemberStatus::Active => Status::Active,
            MemberStatus::Suspended => Status::Suspended,
            MemberStatus::Cancelled => Status::Cancelled,
        }
    }
}

impl From<Status> for MemberStatus {
    fn from(s: Status) -> MemberStatus {
        match s {
            Status::Active => MemberStatus::Active,
            Status::Suspended => MemberStatus::Suspended,
            Status::Cancelled => MemberStatus::Cancelled,
        }
    }
}

/// A plan held between two inclusive dates (site time zone).
#[derive(Serialize, ToSchema)]
pub struct AssignmentOut {
    pub plan: String,
    pub valid_from: NaiveDate,
    /// Inclusive; null: open-ended.
    pub valid_until: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    pub id: String,
    pub name: String,
    pub email: String,
    pub status: Status,
    pub team: Option<String>,
    pub wifi_username: String,
    /// The plan held today (site time zone), if any.
    pub current_plan: Option<String>,
    pub plans: Vec<AssignmentOut>,
    pub created_at: DateTime<Utc>,
}

fn member_out(cat: &Catalog, m: &Member) -> MemberOut {
    let today = cat.site.date_at(clock::now());
    let name = |id| {
        cat.plan(id)
            .map_or_else(|| format!("#{id}"), |p| p.name.clone())
    };
    MemberOut {
        id: m.id.clone(),
        name: m.name.clone(),
        email: m.email.clone(),
        status: m.status.into(),
        team: m.team_id.and_then(|t| cat.team(t)).map(|t| t.name.clone()),
        wifi_username: m.wifi_username.clone(),
        current_plan: m.assignment_on(today).map(|a| name(a.plan_id)),
        plans: m
            .assignments
            .iter()
            .map(|a| AssignmentOut {
                plan: name(a.plan_id),
                valid_from: a.valid_from,
                valid_until: a.valid_until,
            })
            .collect(),
        created_at: m.created_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<MemberOut>,
    /// Members matching the filters, over all pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    /// Pass as `offset` for the next page; null on the last page.
    pub next_offset: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Case-insensitive part of the name, email or Wi-Fi username.
    search: Option<String>,
    /// Only members who hold (or held) this plan.
    plan: Option<String>,
    status: Option<Status>,
    /// Only members of this team.
    team: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<u32>,
    #[param(minimum = 0, maximum = 1000000, default = 0)]
    offset: Option<u32>,
}

/// An optional `YYYY-MM-DD` from a body: a wrong one is a 422 naming the field.
pub(crate) fn date(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    v.as_deref()
        .map(|s| {
            frontdesk_core::model::parse_date(s)
                .map_err(|e| ApiError::invalid(format!("{field}: {e}")))
        })
        .transpose()
}

fn page_bounds(limit: Option<u32>, offset: Option<u32>) -> Result<(u32, u32), ApiError> {
    let limit = limit.unwrap_or(100);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit: 1..500"));
    }
    if offset > 1_000_000 {
        return Err(ApiError::bad_request("offset: 0..1000000"));
    }
    Ok((limit, offset))
}

fn slice_page<T>(all: Vec<T>, limit: u32, offset: u32) -> (Vec<T>, u64, Option<u32>) {
    let total = all.len() as u64;
    let items: Vec<T> = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    let next = (u64::from(offset) + (items.len() as u64) < total && !items.is_empty())
        .then(|| offset + items.len() as u32);
    (items, total, next)
}

/// Lists members, filtered and paginated (ordered by name, then email).
#[utoipa::path(get, path = "/api/v1/members", tag = "members", params(MembersQuery),
    security(("bearer" = ["members:read"])),
    responses(
        (status = 200, description = "A page of members", body = MemberPage),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks members:read", body = ErrorBody),
        (status = 404, description = "Unknown plan or team filter", body = ErrorBody),
    ))]
async fn list_members(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<MembersQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    api.authorize(&headers, "members:read").await?;
    let (limit, offset) = page_bounds(q.limit, q.offset)?;
    let cat = api.catalog().await?;
    let filter = MemberFilter {
        plan: q.plan.filter(|s| !s.is_empty()),
        status: q.status.map(Into::into),
        team: q.team.filter(|s| !s.is_empty()),
        search: q.search.filter(|s| !s.is_empty()),
    };
    let all = api.0.store.members(&filter).await?;
    let (items, total, next_offset) = slice_page(all, limit, offset);
    Ok(Json(MemberPage {
        items: items.iter().map(|m| member_out(&cat, m)).collect(),
        total,
        offset,
        limit,
        next_offset,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewMemberIn {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Unique; also the default Wi-Fi username.
    #[schema(format = "email")]
    pub email: String,
    /// A plan name (`GET /api/v1/plans`).
    pub plan: String,
    pub team: Option<String>,
    /// First day (site time zone); default today.
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_from: Option<String>,
    /// Last day, inclusive; default open-ended (or the plan's validity, e.g. a day pass).
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<String>,
    /// Default: the email address.
    pub wifi_username: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberCreated {
    pub member: MemberOut,
    /// The generated Wi-Fi password, shown this once and only to tokens with `secrets:read`.
    pub wifi_password: Option<String>,
}

/// Creates a member with a generated Wi-Fi password.
#[utoipa::path(post, path = "/api/v1/members", tag = "members", request_body = NewMemberIn,
    security(("bearer" = ["members:write"])),
    responses(
        (status = 201, description = "Created", body = MemberCreated),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks members:write", body = ErrorBody),
        (status = 404, description = "Unknown plan or team", body = ErrorBody),
        (status = 409, description = "Email or Wi-Fi username taken", body = ErrorBody),
        (status = 422, description = "Invalid values", body = ErrorBody),
    ))]
async fn create_member(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<MemberCreated>), ApiError> {
    let caller = api.authorize(&headers, "members:write").await?;
    let b: NewMemberIn = parse(&body)?;
    let cat = api.catalog().await?;
    let today = cat.site.date_at(clock::now());
    let new = NewMember {
        name: b.name,
        email: b.email,
        plan: b.plan,
        team: b.team.filter(|t| !t.is_empty()),
        valid_from: date("valid_from", &b.valid_from)?,
        valid_until: date("valid_until", &b.valid_until)?,
        wifi_username: b.wifi_username.filter(|u| !u.is_empty()),
        wifi_password: None,
    };
    let (m, password) = api.0.store.add_member(&new, today, &caller.actor()).await?;
    info!(token = %caller.0.name, member = %m.id, "api: member created");
    Ok((
        StatusCode::CREATED,
        Json(MemberCreated {
            member: member_out(&cat, &m),
            wifi_password: caller.0.allows("secrets:read").then_some(password),
        }),
    ))
}

/// One member by id, email or Wi-Fi username.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "Member id, email or Wi-Fi username")),
    security(("bearer" = ["members:read"])),
    responses(
        (status = 200, description = "The member", body = MemberOut),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks members:read", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
    ))]
async fn get_member(
    State(api): State<Api>,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<Json<MemberOut>, ApiError> {
    api.authorize(&headers, "members:read").await?;
    let cat = api.catalog().await?;
    let m = api.0.store.member(&id).await?;
    Ok(Json(member_out(&cat, &m)))
}

/// What to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
pub struct MemberPatch {
    pub name: Option<String>,
    #[schema(format = "email")]
    pub email: Option<String>,
    /// A team name; empty string: no team.
    pub team: Option<String>,
    /// `suspended` and `cancelled` take effect now (sessions end within seconds);
    /// cancellation is final.
    pub status: Option<Status>,
    /// Move to this plan from today.
    pub plan: Option<String>,
    /// With `plan`: the new plan's last day (inclusive).
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_until: Option<String>,
    /// End the membership after this day (inclusive): "cancel at the end of the period".
    #[schema(value_type = Option<String>, format = Date)]
    pub last_day: Option<String>,
}

/// Edits a member: details, status, plan, or the last day of their membership.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members", request_body = MemberPatch,
    params(("id" = String, Path, description = "Member id, email or Wi-Fi username")),
    security(("bearer" = ["members:write"])),
    responses(
        (status = 200, description = "The member as it is now", body = MemberOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks members:write", body = ErrorBody),
        (status = 404, description = "No such member, plan or team", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody),
        (status = 422, description = "Invalid values or status change", body = ErrorBody),
    ))]
async fn patch_member(
    State(api): State<Api>,
    headers: HeaderMap,
    Segment(id): Segment,
    body: Bytes,
) -> Result<Json<MemberOut>, ApiError> {
    let caller = api.authorize(&headers, "members:write").await?;
    let b: MemberPatch = parse(&body)?;
    let actor = caller.actor();
    let store = &api.0.store;
    let cat = api.catalog().await?;
    let today = cat.site.date_at(clock::now());
    let valid_until = date("valid_until", &b.valid_until)?;
    let last_day = date("last_day", &b.last_day)?;
    if valid_until.is_some() && b.plan.is_none() {
        return Err(ApiError::invalid(
            "valid_until goes with plan; to end a membership use last_day",
        ));
    }
    let mut m = store.member(&id).await?;
    if b.name.is_some() || b.email.is_some() || b.team.is_some() {
        let team = b.team.as_deref().map(|t| Some(t).filter(|t| !t.is_empty()));
        m = store
            .update_member(&m.id, b.name.as_deref(), b.email.as_deref(), team, &actor)
            .await?;
    }
    if let Some(plan) = &b.plan {
        m = store
            .set_member_plan(&m.id, plan, today, valid_until, &actor)
            .await?;
    }
    if let Some(last) = last_day {
        m = store.end_member_at(&m.id, last, today, &actor).await?;
    }
    if let Some(status) = b.status {
        let status: MemberStatus = status.into();
        if status != m.status {
            m = store.set_member_status(&m.id, status, &actor).await?;
        }
    }
    info!(token = %caller.0.name, member = %m.id, "api: member changed");
    Ok(Json(member_out(&cat, &m)))
}

#[derive(Serialize, ToSchema)]
pub struct Credentials {
    pub wifi_username: String,
    pub wifi_password: String,
}

/// A member's Wi-Fi credentials (needs `secrets:read`; audited).
#[utoipa::path(get, path = "/api/v1/members/{id}/wifi-credentials", tag = "members",
    params(("id" = String, Path, description = "Member id, email or Wi-Fi username")),
    security(("bearer" = ["secrets:read"])),
    responses(
        (status = 200, description = "Credentials", body = Credentials),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks secrets:read", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
    ))]
async fn member_credentials(
    State(api): State<Api>,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<Json<Credentials>, ApiError> {
    let caller = api.authorize(&headers, "secrets:read").await?;
    let store = &api.0.store;
    let m = store.member(&id).await?;
    let password = store.reveal_wifi_password(&m.id, &caller.actor()).await?;
    Ok(Json(Credentials {
        wifi_username: m.wifi_username,
        wifi_password: password,
    }))
}

/// Generates a new Wi-Fi password (the old one stops working at once); returns it with
/// `secrets:read`.
#[utoipa::path(post, path = "/api/v1/members/{id}/rotate-wifi-password", tag = "members",
    params(("id" = String, Path, description = "Member id, email or Wi-Fi username")),
    security(("bearer" = ["members:write"])),
    responses(
        (status = 200, description = "Rotated", body = MemberCreated),
        (status = 400, description = "Malformed path", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks members:write", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
    ))]
async fn rotate_member_password(
    State(api): State<Api>,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<Json<MemberCreated>, ApiError> {
    let caller = api.authorize(&headers, "members:write").await?;
    let cat = api.catalog().await?;
    let (m, password) = api.0.store.rotate_password(&id, &caller.actor()).await?;
    Ok(Json(MemberCreated {
        member: member_out(&cat, &m),
        wifi_password: caller.0.allows("secrets:read").then_some(password),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PlanOut {
    pub name: String,
    /// null: the member's team VLAN.
    pub vlan: Option<u16>,
    /// `always`, `opening-hours` or weekly windows such as `mon-fri 08:00-18:00`.
    pub wifi_hours: String,
    pub door_hours: String,
    /// null: unlimited.
    pub device_limit: Option<u32>,
    pub door_groups: Vec<String>,
    /// Empty: any SSID.
    pub ssids: Vec<String>,
    pub mac_only: bool,
    pub validity_days: Option<u32>,
}

/// The site's plans.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans",
    security(("bearer" = ["plans:read"])),
    responses(
        (status = 200, description = "Every plan", body = [PlanOut]),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks plans:read", body = ErrorBody),
    ))]
async fn list_plans(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<Vec<PlanOut>>, ApiError> {
    api.authorize(&headers, "plans:read").await?;
    let cat = api.catalog().await?;
    Ok(Json(
        cat.plans
            .iter()
            .map(|p| PlanOut {
                name: p.name.clone(),
                vlan: p.vlan,
                wifi_hours: p.wifi.to_string(),
                door_hours: p.door.to_string(),
                device_limit: p.device_limit,
                door_groups: p.door_groups.clone(),
                ssids: p.ssids.clone(),
                mac_only: p.mac_only,
                validity_days: p.validity_days,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VoucherState {
    /// Not used yet: validity starts at first use.
    Unused,
    Active,
    Expired,
}

#[derive(Serialize, ToSchema)]
pub struct VoucherOut {
    pub code: String,
    pub plan: String,
    /// Validity in seconds, counted from first use.
    pub valid_secs: i64,
    /// Devices that may use it.
    pub devices: u32,
    pub state: VoucherState,
    pub created_at: DateTime<Utc>,
    pub first_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn voucher_out(cat: &Catalog, v: &frontdesk_core::Voucher, now: DateTime<Utc>) -> VoucherOut {
    let expires_at = v.expires_at();
    VoucherOut {
        code: v.code.clone(),
        plan: cat
            .plan(v.plan_id)
            .map_or_else(|| format!("#{}", v.plan_id), |p| p.name.clone()),
        valid_secs: v.valid_secs,
        devices: v.devices,
        state: match expires_at {
            None => VoucherState::Unused,
            Some(e) if e > now => VoucherState::Active,
            Some(_) => VoucherState::Expired,
        },
        created_at: v.created_at,
        first_used_at: v.first_used_at,
        expires_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct VoucherPage {
    pub items: Vec<VoucherOut>,
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub next_offset: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<u32>,
    #[param(minimum = 0, maximum = 1000000, default = 0)]
    offset: Option<u32>,
}

/// Vouchers, newest first.
#[utoipa::path(get, path = "/api/v1/vouchers", tag = "vouchers", params(PageQuery),
    security(("bearer" = ["vouchers:read"])),
    responses(
        (status = 200, description = "A page of vouchers", body = VoucherPage),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks vouchers:read", body = ErrorBody),
    ))]
async fn list_vouchers(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Json<VoucherPage>, ApiError> {
    api.authorize(&headers, "vouchers:read").await?;
    let (limit, offset) = page_bounds(q.limit, q.offset)?;
    let cat = api.catalog().await?;
    let mut all = api.0.store.vouchers().await?;
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.code.cmp(&a.code)));
    let now = clock::now();
    let (items, total, next_offset) = slice_page(all, limit, offset);
    Ok(Json(VoucherPage {
        items: items.iter().map(|v| voucher_out(&cat, v, now)).collect(),
        total,
        offset,
        limit,
        next_offset,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewVouchersIn {
    /// Default `guest`.
    pub plan: Option<String>,
    #[schema(minimum = 1, maximum = 500)]
    #[serde(deserialize_with = "whole")]
    pub count: u32,
    /// Validity from first use, in hours.
    #[schema(minimum = 1, maximum = 8760)]
    #[serde(deserialize_with = "whole")]
    pub valid_hours: u32,
    /// Devices per voucher; default 1.
    #[schema(minimum = 1, maximum = 10)]
    #[serde(default, deserialize_with = "whole_opt")]
    pub devices: Option<u32>,
}

/// Creates a batch of vouchers.
#[utoipa::path(post, path = "/api/v1/vouchers", tag = "vouchers", request_body = NewVouchersIn,
    security(("bearer" = ["vouchers:write"])),
    responses(
        (status = 201, description = "Created", body = [VoucherOut]),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks vouchers:write", body = ErrorBody),
        (status = 404, description = "No such plan", body = ErrorBody),
        (status = 422, description = "Out-of-range values", body = ErrorBody),
    ))]
async fn create_vouchers(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Vec<VoucherOut>>), ApiError> {
    let caller = api.authorize(&headers, "vouchers:write").await?;
    let b: NewVouchersIn = parse(&body)?;
    let devices = b.devices.unwrap_or(1);
    if !(1..=500).contains(&b.count)
        || !(1..=8760).contains(&b.valid_hours)
        || !(1..=10).contains(&devices)
    {
        return Err(ApiError::invalid(
            "count 1..500, valid_hours 1..8760, devices 1..10",
        ));
    }
    let cat = api.catalog().await?;
    let plan = b.plan.unwrap_or_else(|| "guest".into());
    let made = api
        .0
        .store
        .create_vouchers(
            b.count,
            i64::from(b.valid_hours) * 3600,
            devices,
            &plan,
            None,
            &caller.actor(),
        )
        .await?;
    let now = clock::now();
    Ok((
        StatusCode::CREATED,
        Json(made.iter().map(|v| voucher_out(&cat, v, now)).collect()),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    pub id: i64,
    pub user_name: String,
    pub member_id: Option<String>,
    pub mac: Option<String>,
    pub ip: Option<String>,
    pub nas: String,
    pub vlan: Option<i64>,
    pub started_at: DateTime<Utc>,
    /// Last accounting from the access point.
    pub updated_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub input_octets: i64,
    pub output_octets: i64,
    /// Reported within the last 25 minutes and not stopped.
    pub online: bool,
    /// Enforcement: `pending`, `acked` or `failed: …` once Frontdesk set out to end it.
    pub disconnect: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only sessions online now. Default true.
    online: Option<bool>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// RADIUS sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(SessionsQuery),
    security(("bearer" = ["sessions:read"])),
    responses(
        (status = 200, description = "Sessions", body = [SessionOut]),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks sessions:read", body = ErrorBody),
    ))]
async fn list_sessions(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<Vec<SessionOut>>, ApiError> {
    api.authorize(&headers, "sessions:read").await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: 1..1000"));
    }
    let now = clock::now();
    let horizon = now - frontdesk_core::enforce::ONLINE_HORIZON;
    let since = q.online.unwrap_or(true).then_some(horizon);
    let rows = api.0.store.sessions(since, i64::from(limit)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| SessionOut {
                online: s.stopped_at.is_none() && s.updated_at >= horizon,
                id: s.id,
                user_name: s.user_name,
                member_id: s.member_id,
                mac: s.mac,
                ip: s.framed_ip,
                nas: s.nas_addr,
                vlan: s.vlan,
                started_at: s.started_at,
                updated_at: s.updated_at,
                stopped_at: s.stopped_at,
                input_octets: s.input_octets,
                output_octets: s.output_octets,
                disconnect: s.disconnect,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct DisconnectOut {
    /// The access point acknowledged (Disconnect-ACK).
    pub acknowledged: bool,
    pub message: String,
}

/// Ends an online session (RFC 5176 Disconnect-Request to its access point).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/disconnect", tag = "sessions",
    params(("id" = i64, Path, description = "Session id")),
    security(("bearer" = ["sessions:write"])),
    responses(
        (status = 200, description = "Sent; see acknowledged", body = DisconnectOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks sessions:write", body = ErrorBody),
        (status = 404, description = "No such online session", body = ErrorBody),
        (status = 503, description = "This instance does not run RADIUS", body = ErrorBody),
    ))]
async fn disconnect_session(
    State(api): State<Api>,
    headers: HeaderMap,
    Segment(id): Segment,
) -> Result<Json<DisconnectOut>, ApiError> {
    let caller = api.authorize(&headers, "sessions:write").await?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("session id: a number"))?;
    let Some(disconnector) = api.0.disconnector.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this instance does not run RADIUS",
        ));
    };
    use frontdesk_core::enforce::{end_one, Ended};
    let note = format!("api token {}", caller.0.name);
    let ended = end_one(
        &api.0.store,
        disconnector.as_ref(),
        id,
        note,
        "api",
        clock::now(),
    )
    .await?;
    let (acknowledged, message) = match ended {
        Ended::NotOnline => return Err(ApiError::not_found(format!("session {id} is not online"))),
        Ended::Sent(_, Ok(())) => (true, "disconnected".to_string()),
        Ended::Sent(_, Err(e)) => (false, format!("the access point did not confirm: {e}")),
    };
    Ok(Json(DisconnectOut {
        acknowledged,
        message,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// Member id, email, Wi-Fi username, device MAC or voucher code.
    #[param(min_length = 1)]
    user: String,
    /// `wifi` (default), `wifi:SSID` or `door:GROUP`.
    resource: Option<String>,
    /// RFC 3339, or local time in the site's zone (`2026-11-27T18:30`); default now.
    at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectOut {
    /// `member`, `device` or `voucher`.
    pub kind: String,
    pub id: String,
    pub label: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginOut {
    pub at: DateTime<Utc>,
    pub user_name: String,
    pub mac: Option<String>,
    pub method: String,
    pub accepted: bool,
    pub reason: String,
    pub vlan: Option<u16>,
}

#[derive(Serialize, ToSchema)]
pub struct ExplainOut {
    pub allowed: bool,
    /// `ok`, `outside-hours`, `suspended`, `cancelled`, `plan-expired`, …
    pub reason: String,
    pub vlan: Option<u16>,
    pub plan: Option<String>,
    /// When the allowed window ends.
    pub valid_until: Option<DateTime<Utc>>,
    /// When access opens next, if denied for time reasons.
    pub opens_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    pub timezone: String,
    pub resource: String,
    pub subject: SubjectOut,
    /// The newest RADIUS logins under this subject's login name.
    pub recent_logins: Vec<LoginOut>,
}

/// Why a member, device or voucher is (not) allowed, with recent RADIUS logins: the same
/// answer as `frontdesk explain` and the console's explain page.
#[utoipa::path(get, path = "/api/v1/explain", tag = "explain", params(ExplainQuery),
    security(("bearer" = ["explain:read"])),
    responses(
        (status = 200, description = "The decision", body = ExplainOut),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks explain:read", body = ErrorBody),
        (status = 404, description = "No such member, device or voucher", body = ErrorBody),
        (status = 422, description = "Malformed resource or time", body = ErrorBody),
    ))]
async fn explain(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<ExplainQuery>,
) -> Result<Json<ExplainOut>, ApiError> {
    api.authorize(&headers, "explain:read").await?;
    let e = frontdesk_core::explain::explain(
        &api.0.store,
        &q.user,
        q.resource.as_deref().unwrap_or("wifi"),
        q.at.as_deref(),
    )
    .await?;
    Ok(Json(ExplainOut {
        allowed: e.decision.allowed,
        reason: e.decision.reason.to_string(),
        vlan: e.decision.vlan,
        plan: e.decision.plan,
        valid_until: e.decision.valid_until,
        opens_at: e.decision.opens_at,
        at: e.at,
        timezone: e.tz.name().into(),
        resource: e.resource,
        subject: SubjectOut {
            kind: e.kind.into(),
            id: e.id,
            label: e.label,
        },
        recent_logins: e
            .recent
            .into_iter()
            .map(|r| LoginOut {
                at: r.at,
                user_name: r.user_name,
                mac: r.mac,
                method: r.method,
                accepted: r.accepted,
                reason: r.reason,
                vlan: r.vlan,
            })
            .collect(),
    }))
}

// ---- the document ---------------------------------------------------------------------------

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fdk_ token")
                    .description(Some(
                        "An API token from the console (Settings → API tokens) or `frontdesk token create`",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Frontdesk API",
        version = "1",
        description = "Members, plans, vouchers, sessions and explain for a Frontdesk site. \
            Authenticate with `Authorization: Bearer fdk_…`; each route names the scope it needs. \
            Errors are `{\"error\": {\"code\", \"message\"}}`. Lists page with `limit` and `offset`."
    ),
    paths(
        list_members, create_member, get_member, patch_member, member_credentials,
        rotate_member_password, list_plans, list_vouchers, create_vouchers, list_sessions,
        disconnect_session, explain, webhook::membership, door_events::door_event
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "members", description = "Members, their plans and Wi-Fi credentials"),
        (name = "plans", description = "The site's plans"),
        (name = "vouchers", description = "Guest vouchers"),
        (name = "sessions", description = "RADIUS sessions"),
        (name = "explain", description = "Why is someone (not) allowed"),
        (name = "webhooks", description = "Membership events from a billing system; door events from a door system"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document (no token needed: it describes, it reveals nothing).
async fn openapi() -> Response {
    let body = ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_string());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
