//! `/audit-events` and `/keys/rotate`.

use axum::Json;
use axum::extract::State;
use ciam_core::admin::AuditFilter;
use ciam_core::clock::to_rfc3339;
use ciam_core::model::AuditEntry;
use serde::{Deserialize, Serialize};

use super::{AdminResult, Params};
use crate::AppState;

/// `GET /audit-events`: which events.
#[derive(Deserialize)]
pub(crate) struct AuditParams {
    mobile: Option<String>,
    user_id: Option<String>,
    ip: Option<String>,
    limit: Option<u32>,
}

/// An audit event as the API shows it.
#[derive(Serialize)]
pub(crate) struct AuditView {
    id: i64,
    at: i64,
    time: String,
    action: &'static str,
    outcome: &'static str,
    mobile: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    os_version: Option<String>,
    device_fingerprint: Option<String>,
    device_ip: Option<String>,
    agent: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(AuditEntry { id, event: e }: AuditEntry) -> Self {
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
            os_version: e.device.os_version,
            device_fingerprint: e.device.fingerprint,
            device_ip: e.device.claimed_ip,
            agent: e.device.agent,
        }
    }
}

pub(crate) async fn list_audit(
    State(s): State<AppState>,
    Params(q): Params<AuditParams>,
) -> AdminResult<Json<Vec<AuditView>>> {
    let filter = AuditFilter { mobile: q.mobile, user_id: q.user_id, ip: q.ip, limit: q.limit };
    Ok(Json(s.ciam.audit_events(&filter).await?.into_iter().map(AuditView::from).collect()))
}

/// The key that signs from now on.
#[derive(Serialize)]
pub(crate) struct Rotated {
    kid: String,
}

pub(crate) async fn rotate_keys(State(s): State<AppState>) -> AdminResult<Json<Rotated>> {
    Ok(Json(Rotated { kid: s.ciam.rotate_keys().await? }))
}
