//! `/policies/*`: password, lockout and throttle policies. A `PUT` changes
//! the fields it sends and keeps the others.

use axum::Json;
use axum::extract::State;
use ciam_core::policy::{
    Localised, LockScope, LockoutPolicy, LockoutPolicyPatch, PasswordPolicy, PasswordPolicyPatch, ThrottlePolicy,
    ThrottlePolicyPatch,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AdminResult, Body};
use crate::AppState;
use crate::json::{some, some_whole};
use crate::openapi::AdminRefusals;

/// The password policy's fields an operator changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordPolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Minimum length in characters.
    #[schema(minimum = 1, maximum = 1024)]
    min_length: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Maximum length in characters (at least `min_length`).
    #[schema(minimum = 1, maximum = 1024)]
    max_length: Option<u32>,
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    /// A regular expression (look-around allowed) new passwords must match.
    #[schema(max_length = 4096)]
    regex: Option<String>,
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    /// What the rule asks for, in both languages; shown with `PWD.0002`.
    tip: Option<Localised>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Days after a change at which a password expires; 0 = never.
    #[schema(minimum = 0, maximum = 36_500)]
    max_age_days: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Days before expiry during which logins answer `PASSWORD_WARN` (less
    /// than `max_age_days`).
    #[schema(minimum = 0, maximum = 36_500)]
    warn_days: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Previous passwords that may not be reused.
    #[schema(minimum = 0, maximum = 24)]
    history: Option<u32>,
}

/// The password policy.
#[utoipa::path(
    get,
    path = "/policies/password",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = PasswordPolicy, description = "The password policy"), AdminRefusals),
)]
pub(crate) async fn get_password_policy(State(s): State<AppState>) -> AdminResult<Json<PasswordPolicy>> {
    Ok(Json(s.ciam.password_policy().await?))
}

/// Change the fields sent; the others are kept.
#[utoipa::path(
    put,
    path = "/policies/password",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = PasswordPolicyBody, content_type = "application/json"),
    responses((status = 200, body = PasswordPolicy, description = "The password policy as it now is"), AdminRefusals),
)]
pub(crate) async fn put_password_policy(
    State(s): State<AppState>,
    Body(b): Body<PasswordPolicyBody>,
) -> AdminResult<Json<PasswordPolicy>> {
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

/// The lockout policy's fields an operator changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockoutPolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Consecutive failures that lock the account (per address with
    /// `account_ip`).
    #[schema(minimum = 1, maximum = 1000)]
    max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// How long a lock lasts.
    #[schema(minimum = 1, maximum = 2_678_400)]
    lock_seconds: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    /// What a counter is kept for.
    scope: Option<LockScope>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// With `account_ip`: failures from all addresses that lock the account.
    #[schema(minimum = 1, maximum = 100_000)]
    account_max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// A count below the limit is forgotten this long after its last failure.
    #[schema(minimum = 1, maximum = 2_678_400)]
    failure_reset_seconds: Option<i64>,
}

/// The lockout policy.
#[utoipa::path(
    get,
    path = "/policies/lockout",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = LockoutPolicy, description = "The lockout policy"), AdminRefusals),
)]
pub(crate) async fn get_lockout_policy(State(s): State<AppState>) -> AdminResult<Json<LockoutPolicy>> {
    Ok(Json(s.ciam.lockout_policy().await?))
}

/// Change the fields sent; the others are kept.
#[utoipa::path(
    put,
    path = "/policies/lockout",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = LockoutPolicyBody, content_type = "application/json"),
    responses((status = 200, body = LockoutPolicy, description = "The lockout policy as it now is"), AdminRefusals),
)]
pub(crate) async fn put_lockout_policy(
    State(s): State<AppState>,
    Body(b): Body<LockoutPolicyBody>,
) -> AdminResult<Json<LockoutPolicy>> {
    let patch = LockoutPolicyPatch {
        max_failures: b.max_failures,
        lock_seconds: b.lock_seconds,
        scope: b.scope,
        account_max_failures: b.account_max_failures,
        failure_reset_seconds: b.failure_reset_seconds,
    };
    Ok(Json(s.ciam.update_lockout_policy(patch).await?))
}

/// The address throttle's fields an operator changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrottlePolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// Failed password attempts from one address that close its window.
    #[schema(minimum = 1, maximum = 1_000_000)]
    ip_max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false)]
    /// The window, in seconds from the address's first failure in it.
    #[schema(minimum = 1, maximum = 2_678_400)]
    ip_window_seconds: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    /// Addresses and networks (CIDR) never throttled; replaces the list.
    #[schema(max_items = 100)]
    ip_allowlist: Option<Vec<String>>,
}

/// The address throttle.
#[utoipa::path(
    get,
    path = "/policies/throttle",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = ThrottlePolicy, description = "The address throttle"), AdminRefusals),
)]
pub(crate) async fn get_throttle_policy(State(s): State<AppState>) -> AdminResult<Json<ThrottlePolicy>> {
    Ok(Json(s.ciam.throttle_policy().await?))
}

/// Change the fields sent; the others are kept.
#[utoipa::path(
    put,
    path = "/policies/throttle",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = ThrottlePolicyBody, content_type = "application/json"),
    responses((status = 200, body = ThrottlePolicy, description = "The address throttle as it now is"), AdminRefusals),
)]
pub(crate) async fn put_throttle_policy(
    State(s): State<AppState>,
    Body(b): Body<ThrottlePolicyBody>,
) -> AdminResult<Json<ThrottlePolicy>> {
    let patch = ThrottlePolicyPatch {
        ip_max_failures: b.ip_max_failures,
        ip_window_seconds: b.ip_window_seconds,
        ip_allowlist: b.ip_allowlist,
    };
    Ok(Json(s.ciam.update_throttle_policy(patch).await?))
}
