//! `/policies/sms`: the limits on verification codes (docs/sms.md). A `PUT`
//! changes the fields it sends and keeps the others.

use axum::Json;
use axum::extract::State;
use ciam_core::sms::{SmsPolicy, SmsPolicyPatch};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{AdminResult, Body};
use crate::AppState;
use crate::json::{some, some_whole};
use crate::openapi::AdminRefusals;

/// The SMS policy's fields an operator changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmsPolicyBody {
    /// Seconds a code stays good.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 60, maximum = 3600)]
    code_ttl_seconds: Option<i64>,
    /// Seconds between two codes to one number; 0: no interval.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 0, maximum = 3600)]
    resend_seconds: Option<i64>,
    /// Codes one number may receive in 24 hours.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    mobile_daily_max: Option<u32>,
    /// Codes one address (IPv6: its /64) may ask for in an hour.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 1_000_000)]
    ip_hourly_max: Option<u32>,
    /// Codes sent in all in an hour.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 100_000_000)]
    global_hourly_max: Option<u32>,
    /// Comparisons one code takes.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 10)]
    max_checks: Option<u32>,
    /// Wrong entries one number may have in 24 hours, across codes.
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    mobile_daily_max_checks: Option<u32>,
    /// E.164 prefixes codes may go to (`+86`); empty allows every number;
    /// replaces the list.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, max_items = 50)]
    allowed_prefixes: Option<Vec<String>>,
}

/// The SMS policy.
#[utoipa::path(
    get,
    path = "/policies/sms",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = SmsPolicy, description = "The SMS policy"), AdminRefusals),
)]
pub(crate) async fn get_sms_policy(State(s): State<AppState>) -> AdminResult<Json<SmsPolicy>> {
    Ok(Json(s.ciam.sms_policy().await?))
}

/// Change the fields sent; the others are kept.
#[utoipa::path(
    put,
    path = "/policies/sms",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = SmsPolicyBody, content_type = "application/json"),
    responses((status = 200, body = SmsPolicy, description = "The SMS policy as it now is"), AdminRefusals),
)]
pub(crate) async fn put_sms_policy(
    State(s): State<AppState>,
    Body(b): Body<SmsPolicyBody>,
) -> AdminResult<Json<SmsPolicy>> {
    let patch = SmsPolicyPatch {
        code_ttl_seconds: b.code_ttl_seconds,
        resend_seconds: b.resend_seconds,
        mobile_daily_max: b.mobile_daily_max,
        ip_hourly_max: b.ip_hourly_max,
        global_hourly_max: b.global_hourly_max,
        max_checks: b.max_checks,
        mobile_daily_max_checks: b.mobile_daily_max_checks,
        allowed_prefixes: b.allowed_prefixes,
    };
    Ok(Json(s.ciam.update_sms_policy(patch).await?))
}
