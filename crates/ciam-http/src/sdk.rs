//! The client-facing calls under `/api/v2/sdk/`.
//!
//! Every call goes through [`run`]: it opens the call in the domain (device
//! headers, `X-client-id`, the app: docs/api.md §1), runs the call's work
//! within the deadline, and closes it, which stores its audit event before
//! the answer is sent.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ciam_core::call::{Answered, Call, Line};
use ciam_core::login::{LoginOutcome, SessionGrant};
use ciam_core::model::{Action, Status};
use ciam_core::oidc::tickets::Ticket;
use ciam_core::{CiamError, ErrorCode, Password};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Failure, OutcomeCode};
use crate::headers::{caller, client_ip, header_text};
use crate::json;
use crate::openapi::SdkRefusals;
use crate::{AppState, Arrived};

/// The SDK routes, each with its part of the OpenAPI document.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login_mobile_password))
        .routes(routes!(update_password))
        .routes(routes!(skip_password_update))
        .routes(routes!(refresh_id_token))
        .routes(routes!(logout))
        .routes(routes!(sso_ticket))
        .merge(crate::sms::routes())
}

/// Where the SDK calls are served.
pub(crate) const SDK_PREFIX: &str = "/api/v2/sdk";

/// The metrics label of the SDK call served at `route` (a matched route).
pub(crate) fn call_of(route: &str) -> Option<&'static str> {
    // The hosted login page's forms run the same calls (docs/oidc.md §4).
    let page = match route {
        "/api/v1/login" => Some(Action::OidcLogin),
        "/api/v1/login/password" => Some(Action::OidcPasswordUpdate),
        "/api/v1/login/code/send" => Some(Action::SmsSend),
        "/api/v1/login/code/verify" => Some(Action::LoginCode),
        "/api/v1/login/code/reset" => Some(Action::PasswordReset),
        _ => None,
    };
    if let Some(action) = page {
        return Some(action.label());
    }
    let action = match route.strip_prefix(SDK_PREFIX)? {
        "/login/mobile-pwd" => Action::Login,
        "/pwd/update" => Action::PasswordUpdate,
        "/pwd/skip-update" => Action::PasswordSkip,
        "/sso/session-token/id-token" => Action::Refresh,
        "/logout" => Action::Logout,
        "/sso/session-token/sso-ticket" => Action::SsoTicket,
        "/sms/send" => Action::SmsSend,
        "/login/mobile-verify-code" => Action::LoginCode,
        "/register/mobile-verify-code" => Action::RegisterCode,
        "/pwd/update-by-mobile" => Action::PasswordReset,
        _ => return None,
    };
    Some(action.label())
}

/// The largest SDK request body accepted.
pub const SDK_BODY_LIMIT: usize = 16 * 1024;

/// How long an SDK call may work before it gives up with `COM.0002`; the
/// rest of [`crate::REQUEST_DEADLINE`] is left for writing its audit event.
const WORK_DEADLINE: Duration = Duration::from_secs(4);

/// Runs one SDK call: opens it (the checks every call starts with), runs
/// `work` on it within [`WORK_DEADLINE`], and closes it, which stores its
/// audit event; then answers.
pub(crate) async fn run<T>(
    state: &AppState,
    parts: &Parts,
    action: Action,
    work: impl AsyncFnOnce(&mut Call) -> Result<T, CiamError>,
) -> Response
where
    T: Answered + Into<SdkBody>,
{
    let deadline = Arrived::at(&parts.extensions) + WORK_DEADLINE;
    let line = parts.extensions.get::<Line>().copied().unwrap_or_default();
    let opening = state.ciam.open_call_in_line(caller(parts, &state.trusted_proxies), action, line);
    let mut call = match within(deadline, opening).await {
        Ok(call) => call,
        Err(refusal) => return Failure(refusal).into_response(),
    };
    let result = within(deadline, work(&mut call)).await;
    match state.ciam.close_call(call, result).await {
        Ok(answer) => {
            let status = answer.status().as_str();
            let mut response = (StatusCode::OK, Json(answer.into())).into_response();
            response.extensions_mut().insert(OutcomeCode(status));
            response
        }
        Err(error) => Failure(error).into_response(),
    }
}

/// Lines an SDK call up among its address's calls in progress
/// (docs/api.md §7) before any other middleware runs: a flood's calls
/// waiting their turn hold their requests and this, not the state of the
/// layers and the call they would run. The place is held until the call
/// has answered; a call that waited too long is refused as it opens,
/// audited like any other. Its deadlines count from its arrival.
pub(crate) async fn line_up(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.strip_prefix(SDK_PREFIX).is_some_and(|call| call.starts_with('/')) {
        return next.run(request).await;
    }
    let arrived = Arrived::now();
    request.extensions_mut().insert(arrived);
    let ip = client_ip(request.headers(), request.extensions(), &state.trusted_proxies);
    // Within the call's own deadline: past it, the call answers COM.0002
    // as it opens.
    let place = match tokio::time::timeout_at(arrived.0 + WORK_DEADLINE, state.ciam.line_up(ip)).await {
        Ok(Ok(place)) => {
            request.extensions_mut().insert(Line::Held);
            place
        }
        Ok(Err(CiamError::Throttled { .. })) => {
            request.extensions_mut().insert(Line::TimedOut);
            None
        }
        // Met again, and answered, as the call opens.
        Ok(Err(_)) | Err(_) => None,
    };
    let response = next.run(request).await;
    drop(place);
    response
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
pub(crate) async fn read_json<T: DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, CiamError> {
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
#[derive(Serialize, Default, ToSchema)]
pub(crate) struct SdkBody {
    /// The session: 32 characters `[A-Za-z0-9]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9]{32}$")]
    session_token: Option<String>,
    /// Seconds the session_token stays valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    expire: Option<i64>,
    /// `SUCCESS`, `PASSWORD_WARN`, `PASSWORD_EXPIRED` or `ACCESS_DENIED`
    /// (absent from a refresh, a ticket and the calls that answer `{}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SdkStatus>)]
    status: Option<&'static str>,
    /// An RS256 JWT; verify it with the key of its `kid` in the JWKS.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    /// For `pwd/update` or `pwd/skip-update` (`X-state-token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    state_token: Option<String>,
    /// A JSON string `{"maxLength", "minLength", "regEx", "tip"}`: the
    /// password policy, exactly as the vendor's page shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    /// An SSO ticket, single use, for `/api/v1/sso/ticket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9]{43}$")]
    sso_ticket: Option<String>,
}

/// The `status` of an SDK answer.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema only: the answer writes the status as text")]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
enum SdkStatus {
    Success,
    PasswordWarn,
    PasswordExpired,
    AccessDenied,
}

impl SdkBody {
    pub(crate) fn session(grant: SessionGrant, status: Option<Status>) -> Self {
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

/// A ticket answers the ticket and its lifetime.
impl From<Ticket> for SdkBody {
    fn from(ticket: Ticket) -> Self {
        SdkBody {
            sso_ticket: Some(ticket.sso_ticket.expose().to_owned()),
            expire: Some(ticket.expire),
            ..Default::default()
        }
    }
}

/// A logout answers only its status.
impl From<Status> for SdkBody {
    fn from(status: Status) -> Self {
        SdkBody { status: Some(status.as_str()), ..Default::default() }
    }
}

/// The device headers every SDK call sends (docs/api.md §1), checked in this
/// order: the three required ones (`PARAM.0001`), then `X-client-id`
/// (`PARAM.0002`, and `PARAM.0003` when it names no registered, enabled app).
#[derive(IntoParams, serde::Deserialize)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "a description only: the call reads the headers itself")]
pub(crate) struct DeviceHeaders {
    /// The client's OS version, e.g. `windows10.1.1`.
    #[serde(rename = "X-operating-sys-version")]
    #[param(min_length = 1)]
    os_version: String,
    /// The device's fingerprint, e.g. `156aysdna213sc50`.
    #[serde(rename = "X-device-fingerprint")]
    #[param(min_length = 1)]
    fingerprint: String,
    /// The client's user agent.
    #[serde(rename = "X-agent")]
    #[param(min_length = 1)]
    agent: String,
    /// The address the app claims (recorded, never trusted).
    #[serde(rename = "X-device-ip")]
    device_ip: Option<String>,
    /// The language of messages: `zh…` for Chinese, anything else English.
    #[serde(rename = "X-L")]
    lang: Option<String>,
    /// The app's 32-character client id.
    #[serde(rename = "X-client-id")]
    #[param(min_length = 1)]
    client_id: String,
    /// The request's id (1–64 of `[A-Za-z0-9._-]`); one is made otherwise.
    #[serde(rename = "X-Request-Id")]
    request_id: Option<String>,
}

/// `{"mobile", "password"}`; a missing or null field counts as empty.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct LoginBody {
    /// The mobile number in any spelling (`15200000000`, `+86 152 0000
    /// 0000`); missing or empty is `USER.0004`.
    #[serde(default)]
    mobile: Option<String>,
    /// The password; missing or empty is `USER.0006`.
    #[serde(default)]
    password: Option<String>,
}

/// Mobile number + password login (the vendor's call).
///
/// In order: empty fields (`USER.0004`, `USER.0006`), the address's
/// throttle (`REQ.0007`), the account's lock (`LOGIN.0001`), the password
/// (`LOGIN.0002` with the attempts left; the failure that uses up the last
/// one answers `LOGIN.0001`), a disabled user (`USER.0039`), the app's
/// members (`ACCESS_DENIED`), the password's age (`PASSWORD_WARN` /
/// `PASSWORD_EXPIRED`), then `SUCCESS`. An empty body `{}` answers
/// `USER.0004` by design: the vendor's page requires both fields.
#[utoipa::path(
    post,
    path = "/login/mobile-pwd",
    tag = "sdk",
    params(DeviceHeaders),
    request_body(content = LoginBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "SUCCESS, PASSWORD_WARN, PASSWORD_EXPIRED or ACCESS_DENIED"), SdkRefusals),
)]
pub(crate) async fn login_mobile_password(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::Login, async |call: &mut Call| {
        let body: LoginBody = read_json(&parts, body).await?;
        let password = Password::new(body.password.unwrap_or_default());
        state.ciam.login(call, &body.mobile.unwrap_or_default(), &password).await
    })
    .await
}

/// The state_token header of the password flows.
#[derive(IntoParams, serde::Deserialize)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "a description only: the call reads the header itself")]
pub(crate) struct StateTokenHeader {
    /// The state_token of a `PASSWORD_WARN` or `PASSWORD_EXPIRED` answer;
    /// missing, unknown, expired or used is `PARAM.0014`.
    #[serde(rename = "X-state-token")]
    state_token: String,
}

/// The session_token header of refresh and logout.
#[derive(IntoParams, serde::Deserialize)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "a description only: the call reads the header itself")]
pub(crate) struct SessionTokenHeader {
    /// The session_token of a `SUCCESS` answer; missing, unknown or ended
    /// is `PARAM.0023`.
    #[serde(rename = "session-token")]
    session_token: String,
}

/// `{"old_password", "new_password"}`.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct UpdateBody {
    /// The current password; missing or empty is `PWD.0005`, wrong is
    /// `PWD.0001` (counted against the same lock as logins).
    #[serde(default)]
    old_password: Option<String>,
    /// The new password; missing or empty is `PWD.0004`, against the policy
    /// `PWD.0002` (with its tip), recently used `PWD.0003`.
    #[serde(default)]
    new_password: Option<String>,
}

/// Change the password, from `PASSWORD_WARN` or `PASSWORD_EXPIRED`.
#[utoipa::path(
    post,
    path = "/pwd/update",
    tag = "sdk",
    params(DeviceHeaders, StateTokenHeader),
    request_body(content = UpdateBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "SUCCESS with a session, or ACCESS_DENIED"), SdkRefusals),
)]
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

/// Keep the password for now, from `PASSWORD_WARN` only (`PARAM.0014`
/// from `PASSWORD_EXPIRED`).
#[utoipa::path(
    get,
    path = "/pwd/skip-update",
    tag = "sdk",
    params(DeviceHeaders, StateTokenHeader),
    responses((status = 200, body = SdkBody, description = "SUCCESS with a session, or ACCESS_DENIED"), SdkRefusals),
)]
pub(crate) async fn skip_password_update(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::PasswordSkip, async |call: &mut Call| {
        let token = token(&parts, "x-state-token", ErrorCode::StateTokenInvalid)?;
        state.ciam.skip_password_update(call, &token).await
    })
    .await
}

/// A fresh id_token for a live session of the calling app; `expire` is the
/// session's remaining life.
#[utoipa::path(
    post,
    path = "/sso/session-token/id-token",
    tag = "sdk",
    params(DeviceHeaders, SessionTokenHeader),
    responses((status = 200, body = SdkBody, description = "session_token, expire and a fresh id_token"), SdkRefusals),
)]
pub(crate) async fn refresh_id_token(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::Refresh, async |call: &mut Call| {
        let token = token(&parts, "session-token", ErrorCode::SessionTokenInvalid)?;
        state.ciam.refresh_id_token(call, &token).await
    })
    .await
}

/// End a session of the calling app (every instance sees it at once). An
/// unknown or ended session answers `SUCCESS` too; another app's live
/// session is `PARAM.0023`.
#[utoipa::path(
    method(get, post),
    path = "/logout",
    tag = "sdk",
    params(DeviceHeaders, SessionTokenHeader),
    responses((status = 200, body = SdkBody, description = "{\"status\": \"SUCCESS\"}"), SdkRefusals),
)]
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    run(&state, &parts, Action::Logout, async |call: &mut Call| {
        let token = token(&parts, "session-token", ErrorCode::SessionTokenInvalid)?;
        state.ciam.logout(call, &token).await
    })
    .await
}

/// `{"client_id"}`: the web app the ticket is for.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct TicketBody {
    /// The target app's client_id; it needs an `initiate_login_uri`
    /// (`SSO.0001` otherwise).
    #[serde(default)]
    client_id: Option<String>,
}

/// Turn a session of the calling app into a single-use ticket (300 s)
/// that signs a browser into one web app (docs/oidc.md §11): the app
/// opens `/api/v1/sso/ticket?sso_ticket=…` in the browser.
#[utoipa::path(
    post,
    path = "/sso/session-token/sso-ticket",
    tag = "sdk",
    params(DeviceHeaders, SessionTokenHeader),
    request_body(content = TicketBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "sso_ticket and expire"), SdkRefusals),
)]
pub(crate) async fn sso_ticket(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::SsoTicket, async |call: &mut Call| {
        let token = token(&parts, "session-token", ErrorCode::SessionTokenInvalid)?;
        let body: TicketBody = read_json(&parts, body).await?;
        state.ciam.sso_ticket(call, &token, &body.client_id.unwrap_or_default()).await
    })
    .await
}
