//! The operator API under `/api/v2/admin/`, behind `Authorization: Bearer`.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ciam_core::admin::{AppInput, AuditFilter, UserFilter, UserInput, invalid};
use ciam_core::clock::{from_rfc3339, to_rfc3339};
use ciam_core::model::{App, AppAccess, AuditEntry, User};
use ciam_core::policy::{
    Localised, LockScope, LockoutPolicy, LockoutPolicyPatch, PasswordPolicy, PasswordPolicyPatch, ThrottlePolicy,
    ThrottlePolicyPatch,
};
use ciam_core::{CiamError, ErrorCode, Password};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::AppState;
use crate::error::Failure;
use crate::headers::header_text;

/// The largest admin request body accepted.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

type AdminResult<T> = Result<T, Failure>;

/// The admin routes, with the token check in front of all of them.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/apps", post(create_app).get(list_apps))
        .route("/apps/{client_id}", get(get_app).patch(update_app).delete(delete_app))
        .route("/apps/{client_id}/users/{user_id}", put(add_member).delete(remove_member))
        .route("/users", post(create_user).get(list_users))
        .route("/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/users/{id}/unlock", post(unlock_user))
        .route("/users/{id}/sessions", axum::routing::delete(revoke_sessions))
        .route("/policies/password", get(get_password_policy).put(put_password_policy))
        .route("/policies/lockout", get(get_lockout_policy).put(put_lockout_policy))
        .route("/policies/throttle", get(get_throttle_policy).put(put_throttle_policy))
        .route("/audit-events", get(list_audit))
        .route("/keys/rotate", post(rotate_keys))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// 401 unless the bearer token is the admin token (constant-time compare).
async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = header_text(request.headers(), AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
        .filter(|t| !t.is_empty());
    let Some(token) = presented else {
        return Failure::from(ErrorCode::AdminUnauthorized).into_response();
    };
    match state.ciam.is_admin_token(&token).await {
        Ok(true) => next.run(request).await,
        Ok(false) => Failure::from(ErrorCode::AdminUnauthorized).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

/// Parses an admin body: 400 when it is not JSON, 422 naming the problem
/// when it is JSON of the wrong shape.
async fn admin_json<T: DeserializeOwned>(body: Body) -> AdminResult<T> {
    let bytes = axum::body::to_bytes(body, ADMIN_BODY_LIMIT).await.map_err(|_| ErrorCode::BodyTooLarge)?;
    serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Failure(invalid("body", e.to_string())),
        _ => ErrorCode::AdminBodyInvalid.into(),
    })
}

/// A query string that does not parse: 422 naming it.
fn bad_query(e: axum::extract::rejection::QueryRejection) -> Failure {
    Failure(invalid("query", e.body_text()))
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`) in PATCH bodies.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// --- apps ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppBody {
    name: Option<String>,
    enabled: Option<bool>,
    password_expiry_check: Option<bool>,
    access: Option<AppAccess>,
    session_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
}

impl From<AppBody> for AppInput {
    fn from(b: AppBody) -> Self {
        AppInput {
            name: b.name,
            enabled: b.enabled,
            password_expiry_check: b.password_expiry_check,
            access: b.access,
            session_ttl: b.session_ttl,
            id_token_ttl: b.id_token_ttl,
        }
    }
}

#[derive(Serialize)]
struct AppView {
    client_id: String,
    name: String,
    enabled: bool,
    password_expiry_check: bool,
    access: AppAccess,
    session_ttl: i64,
    id_token_ttl: i64,
    created_at: String,
}

impl From<App> for AppView {
    fn from(a: App) -> Self {
        AppView {
            client_id: a.client_id.to_string(),
            name: a.name,
            enabled: a.enabled,
            password_expiry_check: a.password_expiry_check,
            access: a.access,
            session_ttl: a.session_ttl,
            id_token_ttl: a.id_token_ttl,
            created_at: to_rfc3339(a.created_at),
        }
    }
}

async fn create_app(State(s): State<AppState>, body: Body) -> AdminResult<Response> {
    let input: AppBody = admin_json(body).await?;
    let app = s.ciam.create_app(input.into()).await?;
    Ok((StatusCode::CREATED, Json(AppView::from(app))).into_response())
}

async fn list_apps(State(s): State<AppState>) -> AdminResult<Json<Vec<AppView>>> {
    let apps = s.ciam.apps().await?;
    Ok(Json(apps.into_iter().map(AppView::from).collect()))
}

async fn get_app(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<Json<AppView>> {
    Ok(Json(s.ciam.app(&id).await?.into()))
}

async fn update_app(State(s): State<AppState>, Path(id): Path<String>, body: Body) -> AdminResult<Json<AppView>> {
    let input: AppBody = admin_json(body).await?;
    Ok(Json(s.ciam.update_app(&id, input.into()).await?.into()))
}

async fn delete_app(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_app(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    State(s): State<AppState>,
    Path((client_id, user_id)): Path<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(s): State<AppState>,
    Path((client_id, user_id)): Path<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- users ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    mobile: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    #[serde(default, deserialize_with = "present")]
    user_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    disabled: Option<bool>,
    password_changed_at: Option<String>,
}

impl UserBody {
    fn into_input(self) -> Result<UserInput, CiamError> {
        let password_changed_at = match self.password_changed_at {
            Some(text) => {
                Some(from_rfc3339(&text).ok_or_else(|| invalid("password_changed_at", "not an RFC 3339 time"))?)
            }
            None => None,
        };
        Ok(UserInput {
            mobile: self.mobile,
            password: self.password.map(Password::new),
            password_hash: self.password_hash,
            user_name: self.user_name,
            name: self.name,
            email: self.email,
            disabled: self.disabled,
            password_changed_at,
        })
    }
}

#[derive(Serialize)]
struct UserView {
    id: String,
    mobile: String,
    disabled: bool,
    user_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    password_changed_at: String,
    created_at: String,
    updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id.to_string(),
            mobile: u.mobile.to_string(),
            disabled: u.disabled,
            user_name: u.user_name,
            name: u.name,
            email: u.email,
            password_changed_at: to_rfc3339(u.password_changed_at),
            created_at: to_rfc3339(u.created_at),
            updated_at: to_rfc3339(u.updated_at),
        }
    }
}

async fn create_user(State(s): State<AppState>, body: Body) -> AdminResult<Response> {
    let input = admin_json::<UserBody>(body).await?.into_input()?;
    let user = s.ciam.create_user(input).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))).into_response())
}

#[derive(Deserialize)]
struct UserQuery {
    mobile: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list_users(
    State(s): State<AppState>,
    query: Result<Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<Vec<UserView>>> {
    let Query(q) = query.map_err(bad_query)?;
    let users = s.ciam.users(&UserFilter { mobile: q.mobile, limit: q.limit, offset: q.offset }).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

async fn get_user(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<Json<UserView>> {
    Ok(Json(s.ciam.user(&id).await?.into()))
}

async fn update_user(State(s): State<AppState>, Path(id): Path<String>, body: Body) -> AdminResult<Json<UserView>> {
    let input = admin_json::<UserBody>(body).await?.into_input()?;
    Ok(Json(s.ciam.update_user(&id, input).await?.into()))
}

async fn delete_user(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unlock_user(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<StatusCode> {
    s.ciam.unlock_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Revoked {
    revoked: u64,
}

async fn revoke_sessions(State(s): State<AppState>, Path(id): Path<String>) -> AdminResult<Json<Revoked>> {
    let revoked = s.ciam.revoke_sessions(&id).await?;
    Ok(Json(Revoked { revoked }))
}

// --- policies ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordPolicyBody {
    min_length: Option<u32>,
    max_length: Option<u32>,
    regex: Option<String>,
    tip: Option<Localised>,
    max_age_days: Option<u32>,
    warn_days: Option<u32>,
    history: Option<u32>,
}

async fn get_password_policy(State(s): State<AppState>) -> AdminResult<Json<PasswordPolicy>> {
    Ok(Json(s.ciam.password_policy().await?))
}

async fn put_password_policy(State(s): State<AppState>, body: Body) -> AdminResult<Json<PasswordPolicy>> {
    let b: PasswordPolicyBody = admin_json(body).await?;
    let patch = PasswordPolicyPatch {
        min_length: b.min_length,
        max_length: b.max_length,
        regex: b.regex,
        tip: b.tip,
        max_age_days: b.max_age_days,
        warn_days: b.warn_days,
        history: b.history,
    };
    Ok(Json(s.ciam.update_password_policy(patch).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockoutPolicyBody {
    max_failures: Option<u32>,
    lock_seconds: Option<i64>,
    scope: Option<LockScope>,
    account_max_failures: Option<u32>,
    failure_reset_seconds: Option<i64>,
}

async fn get_lockout_policy(State(s): State<AppState>) -> AdminResult<Json<LockoutPolicy>> {
    Ok(Json(s.ciam.lockout_policy().await?))
}

async fn put_lockout_policy(State(s): State<AppState>, body: Body) -> AdminResult<Json<LockoutPolicy>> {
    let b: LockoutPolicyBody = admin_json(body).await?;
    let patch = LockoutPolicyPatch {
        max_failures: b.max_failures,
        lock_seconds: b.lock_seconds,
        scope: b.scope,
        account_max_failures: b.account_max_failures,
        failure_reset_seconds: b.failure_reset_seconds,
    };
    Ok(Json(s.ciam.update_lockout_policy(patch).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottlePolicyBody {
    ip_max_failures: Option<u32>,
    ip_window_seconds: Option<i64>,
    ip_allowlist: Option<Vec<String>>,
}

async fn get_throttle_policy(State(s): State<AppState>) -> AdminResult<Json<ThrottlePolicy>> {
    Ok(Json(s.ciam.throttle_policy().await?))
}

async fn put_throttle_policy(State(s): State<AppState>, body: Body) -> AdminResult<Json<ThrottlePolicy>> {
    let b: ThrottlePolicyBody = admin_json(body).await?;
    let patch = ThrottlePolicyPatch {
        ip_max_failures: b.ip_max_failures,
        ip_window_seconds: b.ip_window_seconds,
        ip_allowlist: b.ip_allowlist,
    };
    Ok(Json(s.ciam.update_throttle_policy(patch).await?))
}

// --- audit and keys ---

#[derive(Deserialize)]
struct AuditParams {
    mobile: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    limit: Option<u32>,
}

/// An audit event as the API shows it.
#[derive(Serialize)]
struct AuditView {
    id: i64,
    at: i64,
    action: &'static str,
    outcome: &'static str,
    mobile: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    os_version: Option<String>,
    device_fingerprint: Option<String>,
    device_ip: Option<String>,
    agent: Option<String>,
    ip: Option<String>,
    time: String,
}

impl From<AuditEntry> for AuditView {
    fn from(AuditEntry { id, event: e }: AuditEntry) -> Self {
        AuditView {
            id,
            at: e.at,
            action: e.action.as_str(),
            outcome: e.outcome.as_str(),
            mobile: e.mobile,
            user_id: e.user_id.map(|id| id.to_string()),
            client_id: e.client_id,
            os_version: e.device.os_version,
            device_fingerprint: e.device.fingerprint,
            device_ip: e.device.claimed_ip,
            agent: e.device.agent,
            ip: e.ip,
            time: to_rfc3339(e.at),
        }
    }
}

async fn list_audit(
    State(s): State<AppState>,
    query: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Json<Vec<AuditView>>> {
    let Query(q) = query.map_err(bad_query)?;
    let filter = AuditFilter { mobile: q.mobile, user_id: q.user_id, ip: q.ip, limit: q.limit };
    let events = s.ciam.audit_events(&filter).await?;
    Ok(Json(events.into_iter().map(AuditView::from).collect()))
}

#[derive(Serialize)]
struct Rotated {
    kid: String,
}

async fn rotate_keys(State(s): State<AppState>) -> AdminResult<Json<Rotated>> {
    Ok(Json(Rotated { kid: s.ciam.rotate_keys().await? }))
}
