//! The SDK calls of verification codes by SMS (docs/sms.md), run like every
//! SDK call ([`crate::sdk`]): the headers and app first, an audit event and
//! metrics for each.

use axum::extract::{Request, State};
use axum::response::Response;
use ciam_core::Password;
use ciam_core::call::Call;
use ciam_core::model::Action;
use ciam_core::sms::{Registration, Sent};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::openapi::SdkRefusals;
use crate::sdk::{DeviceHeaders, SdkBody, read_json, run};

/// The SMS routes, under the SDK's prefix.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_code))
        .routes(routes!(login_with_code))
        .routes(routes!(register_with_code))
        .routes(routes!(reset_password))
}

/// A send answers `{}`.
impl From<Sent> for SdkBody {
    fn from(_: Sent) -> Self {
        SdkBody::default()
    }
}

/// `{"mobile", "type", "captcha_token"}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SendBody {
    /// The number in any spelling; missing or empty is `USER.0004`, no
    /// phone number or a country not allowed `SMS.0003`.
    #[serde(default)]
    mobile: Option<String>,
    /// `LOGIN_SMS`, `REGISTER_SMS` or `FORGET_PWD_SMS`; anything else is
    /// `SMS.0004`.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// The human verification's token, when the server checks one
    /// (`SMS.0006` when it fails).
    #[serde(default)]
    captcha_token: Option<String>,
}

/// Send a verification code (the vendor's call).
///
/// In order: `USER.0004`, `SMS.0004`, `SMS.0003`, `SMS.0008` (a
/// registration code for an app closed to registration), `CAPTCHA.0006`
/// (no provider), `SMS.0006` (captcha), then the limits: `SMS.0001` (too
/// soon for the number, or the address's hour is full; with
/// `Retry-After`), `SMS.0002` (the number's day), `SMS.0007` (the hour of
/// all sends). A number the code cannot serve answers exactly like one it
/// can, and nothing is delivered.
#[utoipa::path(
    post,
    path = "/sms/send",
    tag = "sdk",
    params(DeviceHeaders),
    request_body(content = SendBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "`{}`: the code is stored and handed to delivery"), SdkRefusals),
)]
pub(crate) async fn send_code(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::SmsSend, async |call: &mut Call| {
        let body: SendBody = read_json(&parts, body).await?;
        let mobile = body.mobile.unwrap_or_default();
        state.ciam.send_code(call, &mobile, body.kind.as_deref(), body.captcha_token.as_deref()).await
    })
    .await
}

/// `{"mobile", "verify_code"}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CodeBody {
    /// The number the code was sent to; missing or empty is `USER.0004`.
    #[serde(default)]
    mobile: Option<String>,
    /// The 6 digits; missing or empty is `SMS.0005`, wrong, expired, used
    /// up or for another number `CAPTCHA.0007`.
    #[serde(default)]
    verify_code: Option<String>,
}

/// Log in with a `LOGIN_SMS` code (the vendor's call).
///
/// Answers as the password login: `SUCCESS` with a session and an
/// id_token, `ACCESS_DENIED`, `USER.0039`; never a password flow.
#[utoipa::path(
    post,
    path = "/login/mobile-verify-code",
    tag = "sdk",
    params(DeviceHeaders),
    request_body(content = CodeBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "SUCCESS or ACCESS_DENIED"), SdkRefusals),
)]
pub(crate) async fn login_with_code(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::LoginCode, async |call: &mut Call| {
        let body: CodeBody = read_json(&parts, body).await?;
        let (mobile, code) = (body.mobile.unwrap_or_default(), body.verify_code.unwrap_or_default());
        state.ciam.login_with_code(call, &mobile, &code).await
    })
    .await
}

/// `{"mobile", "verify_code", "password"?, "user_name"?, "name"?, "email"?}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RegisterBody {
    /// The number the code was sent to.
    #[serde(default)]
    mobile: Option<String>,
    /// The `REGISTER_SMS` code.
    #[serde(default)]
    verify_code: Option<String>,
    /// A password, checked against the policy (`PWD.0002`); without one the
    /// account logs in with codes only.
    #[serde(default)]
    password: Option<String>,
    /// Login name (at most 128 characters).
    #[serde(default)]
    user_name: Option<String>,
    /// Display name (at most 128 characters).
    #[serde(default)]
    name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    email: Option<String>,
}

/// Register with a `REGISTER_SMS` code (the vendor's call).
///
/// Only for apps with `self_registration` (`SMS.0008`, checked first);
/// the profile (`SMS.0009`) and the password (`PWD.0002`) are checked
/// before the code, so a refusal leaves it good. Answers `SUCCESS` with a
/// session.
#[utoipa::path(
    post,
    path = "/register/mobile-verify-code",
    tag = "sdk",
    params(DeviceHeaders),
    request_body(content = RegisterBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "SUCCESS"), SdkRefusals),
)]
pub(crate) async fn register_with_code(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::RegisterCode, async |call: &mut Call| {
        let body: RegisterBody = read_json(&parts, body).await?;
        let registration = Registration {
            password: body.password.map(Password::new),
            user_name: body.user_name.filter(|t| !t.trim().is_empty()),
            name: body.name.filter(|t| !t.trim().is_empty()),
            email: body.email.filter(|t| !t.trim().is_empty()),
        };
        let (mobile, code) = (body.mobile.unwrap_or_default(), body.verify_code.unwrap_or_default());
        state.ciam.register_with_code(call, &mobile, &code, &registration).await
    })
    .await
}

/// `{"mobile", "verify_code", "password"}`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ResetBody {
    /// The number the code was sent to.
    #[serde(default)]
    mobile: Option<String>,
    /// The `FORGET_PWD_SMS` code.
    #[serde(default)]
    verify_code: Option<String>,
    /// The new password; missing or empty is `PWD.0004`.
    #[serde(default)]
    password: Option<String>,
}

/// Set a forgotten password with a `FORGET_PWD_SMS` code (the vendor's
/// call).
///
/// The code is checked first, so the call tells nothing about passwords
/// to someone without it; then the policy (`PWD.0002`) and history
/// (`PWD.0003`), whose refusal leaves the code good. Then the lock and
/// failure counts are cleared and every session, browser session and
/// token of the user ends.
#[utoipa::path(
    post,
    path = "/pwd/update-by-mobile",
    tag = "sdk",
    params(DeviceHeaders),
    request_body(content = ResetBody, content_type = "application/json"),
    responses((status = 200, body = SdkBody, description = "`{}`: the password is set"), SdkRefusals),
)]
pub(crate) async fn reset_password(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    run(&state, &parts, Action::PasswordReset, async |call: &mut Call| {
        let body: ResetBody = read_json(&parts, body).await?;
        let password = Password::new(body.password.unwrap_or_default());
        let (mobile, code) = (body.mobile.unwrap_or_default(), body.verify_code.unwrap_or_default());
        state.ciam.reset_password_with_code(call, &mobile, &code, &password).await
    })
    .await
}
