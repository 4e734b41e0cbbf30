//! `/policies/*`: password, lockout and throttle policies. A `PUT` changes
//! the fields it sends and keeps the others.

use axum::Json;
use axum::extract::State;
use ciam_core::policy::{
    Localised, LockScope, LockoutPolicy, LockoutPolicyPatch, PasswordPolicy, PasswordPolicyPatch, ThrottlePolicy,
    ThrottlePolicyPatch,
};
use serde::Deserialize;

use super::{AdminResult, Body};
use crate::AppState;
use crate::json::{some, some_whole};

/// The password policy's fields an operator changes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordPolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    min_length: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    max_length: Option<u32>,
    #[serde(default, deserialize_with = "some")]
    regex: Option<String>,
    #[serde(default, deserialize_with = "some")]
    tip: Option<Localised>,
    #[serde(default, deserialize_with = "some_whole")]
    max_age_days: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    warn_days: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    history: Option<u32>,
}

pub(crate) async fn get_password_policy(State(s): State<AppState>) -> AdminResult<Json<PasswordPolicy>> {
    Ok(Json(s.ciam.password_policy().await?))
}

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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockoutPolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    lock_seconds: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    scope: Option<LockScope>,
    #[serde(default, deserialize_with = "some_whole")]
    account_max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    failure_reset_seconds: Option<i64>,
}

pub(crate) async fn get_lockout_policy(State(s): State<AppState>) -> AdminResult<Json<LockoutPolicy>> {
    Ok(Json(s.ciam.lockout_policy().await?))
}

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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrottlePolicyBody {
    #[serde(default, deserialize_with = "some_whole")]
    ip_max_failures: Option<u32>,
    #[serde(default, deserialize_with = "some_whole")]
    ip_window_seconds: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    ip_allowlist: Option<Vec<String>>,
}

pub(crate) async fn get_throttle_policy(State(s): State<AppState>) -> AdminResult<Json<ThrottlePolicy>> {
    Ok(Json(s.ciam.throttle_policy().await?))
}

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
