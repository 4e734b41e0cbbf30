//! The client-facing calls under `/api/v2/sdk/`.
//!
//! Every call goes through [`run`]: it opens the call in the domain (device
//! headers, `X-client-id`, the app: CONTRACT §1), runs the call's work
//! within the deadline, and closes it, which stores its audit event before
//! the answer is sent.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ciam_core::call::{Answered, Call};
use ciam_core::login::{LoginOutcome, SessionGrant};
use ciam_core::model::{Action, Status};
use ciam_core::{CiamError, ErrorCode, Password};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::Failure;
use crate::headers::{caller, header_text};
use crate::json;

/// The largest SDK request body accepted.
pub const SDK_BODY_LIMIT: usize = 16 * 1024;

/// How long an SDK call may work before it gives up with `COM.0002`; the
/// rest of [`crate::REQUEST_DEADLINE`] is left for writing its audit event.
const WORK_DEADLINE: Duration = Duration::from_secs(4);

/// Runs one SDK call: opens it (the checks every call starts with), runs
/// `work` on it within [`WORK_DEADLINE`], and closes it, which stores its
/// audit event; then answers.
async fn run<T>(
    state: &AppState,
    parts: &Parts,
    action: Action,
    work: impl AsyncFnOnce(&mut Call) -> Result<T, CiamError>,
) -> Response
where
    T: Answered + Into<SdkBody>,
{
    let deadline = tokio::time::Instant::now() + WORK_DEADLINE;
    let mut call = match within(deadline, state.ciam.open_call(caller(parts, &state.trusted_proxies), action)).await {
        Ok(call) => call,
        Err(refusal) => return Failure(refusal).into_response(),
    };
    let result = within(deadline, work(&mut call)).await;
    match state.ciam.close_call(call, result).await {
        Ok(answer) => (StatusCode::OK, Json(answer.into())).into_response(),
        Err(error) => Failure(error).into_response(),
    }
}

/// `work`, or `COM.0002` once `deadline` has passed.
async fn within<T>(
    deadline: tokio::time::Instant,
    work: impl Future<Output = Result<T, CiamError>>,
) -> Result<T, CiamError> {
    tokio::time::timeout_at(deadline, work).await.unwrap_or_else(|_| Err(crate::deadline_exceeded()))
}

/// Reads a JSON object body of the call's shape: content type, size,
/// time, framing, syntax, shape.
async fn read_json<T: DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, CiamError> {
    let object = json::object(parts, body, SDK_BODY_LIMIT).await?;
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|_| CiamError::refused(ErrorCode::BodyShapeInvalid))
}

/// A token header the call needs; missing or blank is refused with `code`.
fn token(parts: &Parts, name: &str, code: ErrorCode) -> Result<String, CiamError> {
    header_text(&parts.headers, name).ok_or_else(|| CiamError::refused(code))
}

/// The answer of an SDK call, fields in the seed's order; absent ones are
/// left out.
#[derive(Serialize, Default)]
pub(crate) struct SdkBody {
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

impl SdkBody {
    fn session(grant: SessionGrant, status: Option<Status>) -> Self {
        SdkBody {
            session_token: Some(grant.session_token.expose().to_owned()),
            expire: Some(grant.expire),
            status: status.map(Status::as_str),
            id_token: Some(grant.id_token),
            ..Default::default()
        }
    }
}

impl From<LoginOutcome> for SdkBody {
    fn from(outcome: LoginOutcome) -> Self {
        let status = Some(outcome.status().as_str());
        match outcome {
            LoginOutcome::Success(grant) => SdkBody::session(grant, Some(Status::Success)),
            LoginOutcome::PasswordWarn { state_token, data } | LoginOutcome::PasswordExpired { state_token, data } => {
                SdkBody {
                    status,
                    state_token: Some(state_token.expose().to_owned()),
                    data: Some(data),
                    ..Default::default()
                }
            }
            LoginOutcome::AccessDenied => SdkBody { status, ..Default::default() },
        }
    }
}

/// A refresh answers the session without a `status`.
impl From<SessionGrant> for SdkBody {
    fn from(grant: SessionGrant) -> Self {
        SdkBody::session(grant, None)
    }
}

/// A logout answers only its status.
impl From<Status> for SdkBody {
    fn from(status: Status) -> Self {
        SdkBody { status: Some(status.as_str()), ..Default::default() }
    }
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
    run(&state, &parts, Action::Login, async |call: &mut Call| {
        let body: LoginBody = read_json(&parts, body).await?;
        let password = Password::new(body.password.unwrap_or_default());
        state.ciam.login(call, &body.mobile.unwrap_or_default(), &password).await
    })
    .await
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
    run(&state, &parts, Action::PasswordUpdate, async |call: &mut Call| {
        let token = token(&parts, "x-state-token", ErrorCode::StateTokenInvalid)?;
        let body: UpdateBody = read_json(&parts, body).await?;
        let old = Password::new(body.old_password.unwrap_or_default());
        let new = Password::new(body.new_password.unwrap_or_default());
        state.ciam.update_password(call, &token, &old, &new).await
    })
    .await
}

/// `GET /api/v2/sdk/pwd/skip-update` with `X-state-token`.
pub(crate) async fn skip_password_update(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::PasswordSkip, async |call: &mut Call| {
        let token = token(&parts, "x-state-token", ErrorCode::StateTokenInvalid)?;
        state.ciam.skip_password_update(call, &token).await
    })
    .await
}

/// `POST /api/v2/sdk/sso/session-token/id-token` with `session-token`.
pub(crate) async fn refresh_id_token(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::Refresh, async |call: &mut Call| {
        let token = token(&parts, "session-token", ErrorCode::SessionTokenInvalid)?;
        state.ciam.refresh_id_token(call, &token).await
    })
    .await
}

/// `POST` or `GET /api/v2/sdk/logout` with `session-token`.
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::Logout, async |call: &mut Call| {
        let token = token(&parts, "session-token", ErrorCode::SessionTokenInvalid)?;
        state.ciam.logout(call, &token).await
    })
    .await
}
