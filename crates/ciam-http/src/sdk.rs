//! The client-facing calls under `/api/v2/sdk/`.
//!
//! Every call goes through [`SdkCall`]: device headers, then `X-client-id`,
//! then the app (CONTRACT §1), then the body; each answer, success or
//! refusal, is written to the audit log before it is sent.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ciam_core::login::{LoginOutcome, SessionGrant};
use ciam_core::store::{App, AuditEvent};
use ciam_core::{CiamError, ErrorCode, Lang, Password};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// The largest SDK request body accepted.
pub const SDK_BODY_LIMIT: usize = 16 * 1024;
/// The longest header value kept in the audit log.
const AUDIT_FIELD_MAX: usize = 256;

/// A header's value as text (lossy for non-UTF-8 bytes), trimmed; `None`
/// when absent or blank.
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn bounded(value: Option<String>) -> Option<String> {
    value.map(|v| ciam_core::store::audit_text(&v, AUDIT_FIELD_MAX))
}

/// The language an SDK or admin call asked for.
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_header(header_text(headers, "x-l").as_deref())
}

/// One SDK call in progress: its language and audit record.
pub(crate) struct SdkCall {
    pub lang: Lang,
    pub audit: AuditEvent,
}

impl SdkCall {
    pub fn new(state: &AppState, parts: &Parts, action: &str) -> Self {
        let headers = &parts.headers;
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Self {
            lang: lang_of(headers),
            audit: AuditEvent {
                id: 0,
                at: state.ciam.now(),
                action: action.to_owned(),
                outcome: String::new(),
                mobile: None,
                user_id: None,
                client_id: bounded(header_text(headers, "x-client-id")),
                os_version: bounded(header_text(headers, "x-operating-sys-version")),
                device_fingerprint: bounded(header_text(headers, "x-device-fingerprint")),
                device_ip: bounded(header_text(headers, "x-device-ip")),
                agent: bounded(header_text(headers, "x-agent")),
                peer_ip: peer,
            },
        }
    }

    /// CONTRACT §1 checks 1–3: device headers, client id, registered app.
    pub async fn app(&self, state: &AppState, headers: &HeaderMap) -> Result<App, CiamError> {
        let a = &self.audit;
        if a.os_version.is_none() || a.device_fingerprint.is_none() || a.agent.is_none() {
            return Err(CiamError::refused(ErrorCode::DeviceInfoIncomplete));
        }
        let Some(client_id) = header_text(headers, "x-client-id") else {
            return Err(CiamError::refused(ErrorCode::ClientIdEmpty));
        };
        state.ciam.enabled_app(&client_id).await?.ok_or_else(|| CiamError::refused(ErrorCode::AppNotRegistered))
    }

    /// Writes the audit event with the outcome, then answers. A failed
    /// audit write turns the answer into `IDAAS.SDK.COM.0002`. An event the
    /// call already stored with its last write (a failure count, a new
    /// session) is not written again, unless the answer changed after it.
    pub async fn finish<T: Serialize>(mut self, state: &AppState, result: Result<(String, T), CiamError>) -> Response {
        let (outcome, response) = match result {
            Ok((status, body)) => (status, (StatusCode::OK, Json(body)).into_response()),
            Err(error) => (error.code().as_str().to_owned(), ApiError::from_ciam(error, self.lang).into_response()),
        };
        if self.audit.id != 0 && self.audit.outcome == outcome {
            return response;
        }
        self.audit.id = 0;
        self.audit.outcome = outcome;
        if let Err(e) = state.ciam.audit(&self.audit).await {
            return ApiError::from_ciam(e, self.lang).into_response();
        }
        response
    }
}

/// How long an SDK call may work before it gives up with `COM.0002`; the
/// rest of [`crate::REQUEST_DEADLINE`] is left for writing its audit event.
const WORK_DEADLINE: Duration = Duration::from_secs(4);

/// Runs a call's work within [`WORK_DEADLINE`].
async fn within_deadline<T>(work: impl Future<Output = Result<T, CiamError>>) -> Result<T, CiamError> {
    tokio::time::timeout(WORK_DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(CiamError::Internal("request deadline exceeded".into())))
}

/// Reads a JSON object body: content type, size, syntax, shape.
pub(crate) async fn read_json<T: DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, CiamError> {
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(CiamError::refused(ErrorCode::ContentTypeInvalid));
    }
    let bytes =
        axum::body::to_bytes(body, SDK_BODY_LIMIT).await.map_err(|_| CiamError::refused(ErrorCode::BodyTooLarge))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| CiamError::refused(ErrorCode::BodyNotJson))?;
    // serde would read `[]` as a struct of defaults: insist on an object.
    if !value.is_object() {
        return Err(CiamError::refused(ErrorCode::BodyShapeInvalid));
    }
    serde_json::from_value(value).map_err(|_| CiamError::refused(ErrorCode::BodyShapeInvalid))
}

/// The answer of a call that ends in a login outcome, fields in the seed's
/// order; absent ones are left out.
#[derive(Serialize, Default)]
pub(crate) struct OutcomeBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

impl OutcomeBody {
    fn session(grant: SessionGrant, status: Option<&'static str>) -> Self {
        OutcomeBody {
            session_token: Some(grant.session_token.expose().to_owned()),
            expire: Some(grant.expire),
            status,
            id_token: Some(grant.id_token),
            ..Default::default()
        }
    }
}

fn outcome_body(outcome: LoginOutcome) -> (String, OutcomeBody) {
    let status = outcome.status();
    let body = match outcome {
        LoginOutcome::Success(grant) => OutcomeBody::session(grant, Some(status)),
        LoginOutcome::PasswordWarn { state_token, data } | LoginOutcome::PasswordExpired { state_token, data } => {
            OutcomeBody {
                status: Some(status),
                state_token: Some(state_token.expose().to_owned()),
                data: Some(data),
                ..Default::default()
            }
        }
        LoginOutcome::AccessDenied => OutcomeBody { status: Some(status), ..Default::default() },
    };
    (status.to_owned(), body)
}

/// `{"mobile", "password"}`; a missing or null field counts as empty.
#[derive(serde::Deserialize)]
struct LoginBody {
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/v2/sdk/login/mobile-pwd`.
pub(crate) async fn login_mobile_password(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut call = SdkCall::new(&state, &parts, "login.mobile_pwd");
    let result = within_deadline(async {
        let app = call.app(&state, &parts.headers).await?;
        let body: LoginBody = read_json(&parts, body).await?;
        let password = Password::new(body.password.unwrap_or_default());
        let mobile = body.mobile.unwrap_or_default();
        let outcome = state.ciam.login_mobile_password(&app, &mobile, &password, call.lang, &mut call.audit).await?;
        Ok(outcome_body(outcome))
    })
    .await;
    call.finish(&state, result).await
}

/// `{"old_password", "new_password"}`.
#[derive(serde::Deserialize)]
struct UpdateBody {
    #[serde(default)]
    old_password: Option<String>,
    #[serde(default)]
    new_password: Option<String>,
}

/// `POST /api/v2/sdk/pwd/update` with `X-state-token`.
pub(crate) async fn update_password(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut call = SdkCall::new(&state, &parts, "pwd.update");
    let result = within_deadline(async {
        let app = call.app(&state, &parts.headers).await?;
        let token = header_text(&parts.headers, "x-state-token")
            .ok_or_else(|| CiamError::refused(ErrorCode::StateTokenInvalid))?;
        let body: UpdateBody = read_json(&parts, body).await?;
        let old = Password::new(body.old_password.unwrap_or_default());
        let new = Password::new(body.new_password.unwrap_or_default());
        let outcome = state.ciam.update_password(&app, &token, &old, &new, &mut call.audit).await?;
        Ok(outcome_body(outcome))
    })
    .await;
    call.finish(&state, result).await
}

/// `GET /api/v2/sdk/pwd/skip-update` with `X-state-token`.
pub(crate) async fn skip_password_update(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let mut call = SdkCall::new(&state, &parts, "pwd.skip_update");
    let result = within_deadline(async {
        let app = call.app(&state, &parts.headers).await?;
        let token = header_text(&parts.headers, "x-state-token")
            .ok_or_else(|| CiamError::refused(ErrorCode::StateTokenInvalid))?;
        let outcome = state.ciam.skip_password_update(&app, &token, &mut call.audit).await?;
        Ok(outcome_body(outcome))
    })
    .await;
    call.finish(&state, result).await
}

/// `POST /api/v2/sdk/sso/session-token/id-token` with `session-token`.
pub(crate) async fn refresh_id_token(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let mut call = SdkCall::new(&state, &parts, "sso.id_token");
    let result = within_deadline(async {
        let app = call.app(&state, &parts.headers).await?;
        let token = header_text(&parts.headers, "session-token")
            .ok_or_else(|| CiamError::refused(ErrorCode::SessionTokenInvalid))?;
        let grant = state.ciam.refresh_id_token(&app, &token, &mut call.audit).await?;
        Ok(("SUCCESS".to_owned(), OutcomeBody::session(grant, None)))
    })
    .await;
    call.finish(&state, result).await
}

#[derive(Serialize)]
struct StatusBody {
    status: &'static str,
}

/// `POST` or `GET /api/v2/sdk/logout` with `session-token`.
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let call = SdkCall::new(&state, &parts, "logout");
    let result = within_deadline(async {
        call.app(&state, &parts.headers).await?;
        let token = header_text(&parts.headers, "session-token")
            .ok_or_else(|| CiamError::refused(ErrorCode::SessionTokenInvalid))?;
        state.ciam.logout(&token).await?;
        Ok(("SUCCESS".to_owned(), StatusBody { status: "SUCCESS" }))
    })
    .await;
    call.finish(&state, result).await
}
