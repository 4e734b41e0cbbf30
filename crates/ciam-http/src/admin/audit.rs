//! `/audit-events` and `/keys/rotate`.

use axum::Json;
use axum::extract::State;
use ciam_core::admin::AuditFilter;
use ciam_core::clock::to_rfc3339;
use ciam_core::keys::Rotated;
use ciam_core::model::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminResult, Params};
use crate::AppState;
use crate::openapi::AdminRefusals;

/// `GET /audit-events`: which events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only events for this mobile, in any spelling.
    mobile: Option<String>,
    /// Only events for this user.
    user_id: Option<String>,
    /// Only events from this client address.
    ip: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An audit event as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditView {
    id: i64,
    /// Unix seconds.
    at: i64,
    /// RFC 3339.
    time: String,
    /// The call: `login.mobile_pwd`, `pwd.update`, `sms.send`, … (the list
    /// is in docs/api.md §8).
    action: &'static str,
    /// The answer's `status`, or its error code.
    outcome: &'static str,
    /// E.164, or `***` when what was typed is no phone number (people type
    /// passwords there).
    mobile: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    /// The client's address (docs/api.md §7).
    ip: Option<String>,
    /// The request's id (`X-Request-Id`).
    request_id: Option<String>,
    /// `X-operating-sys-version`.
    os_version: Option<String>,
    /// `X-device-fingerprint`.
    device_fingerprint: Option<String>,
    /// `X-device-ip`, as claimed.
    device_ip: Option<String>,
    /// `X-agent`.
    agent: Option<String>,
    /// How many calls the event stands for: 1, or for refusals that cost
    /// no hash (a body that does not parse, a throttled address), which
    /// are kept as one event per address and outcome a minute, how many
    /// there were in that minute.
    count: i64,
}

impl From<AuditEntry> for AuditView {
    fn from(AuditEntry { id, event: e, count }: AuditEntry) -> Self {
        AuditView {
            id,
            at: e.at,
            time: to_rfc3339(e.at),
            action: e.action.as_str(),
            outcome: e.outcome.as_str(),
            mobile: e.mobile,
            user_id: e.user_id.map(|id| id.to_string()),
            client_id: e.client_id,
            ip: e.ip,
            request_id: e.request_id,
            os_version: e.device.os_version,
            device_fingerprint: e.device.fingerprint,
            device_ip: e.device.claimed_ip,
            agent: e.device.agent,
            count,
        }
    }
}

/// Audit events, newest first.
#[utoipa::path(
    get,
    path = "/audit-events",
    tag = "admin",
    security(("admin_token" = [])),
    params(AuditParams),
    responses((status = 200, body = [AuditView], description = "The events"), AdminRefusals),
)]
pub(crate) async fn list_audit(
    State(s): State<AppState>,
    Params(q): Params<AuditParams>,
) -> AdminResult<Json<Vec<AuditView>>> {
    let filter =
        AuditFilter { mobile: q.mobile, user_id: q.user_id, ip: q.ip, limit: q.limit, ..AuditFilter::default() };
    Ok(Json(s.ciam.audit_events(&filter).await?.into_iter().map(AuditView::from).collect()))
}

/// Make a new signing key of each algorithm (RS256 and EdDSA); the old
/// ones stay in the JWKS to verify the id_tokens they signed.
#[utoipa::path(
    post,
    path = "/keys/rotate",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = Rotated, description = "The new keys' ids"), AdminRefusals),
)]
pub(crate) async fn rotate_keys(State(s): State<AppState>) -> AdminResult<Json<Rotated>> {
    Ok(Json(s.ciam.rotate_keys().await?))
}
