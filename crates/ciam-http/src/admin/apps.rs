//! `/apps`: client applications and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ciam_core::admin::AppInput;
use ciam_core::clock::to_rfc3339;
use ciam_core::model::{App, AppAccess, ClientType, SigningAlg};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::{AdminResult, Body, Ids};
use crate::AppState;
use crate::json::{present, some, some_whole};
use crate::openapi::AdminRefusals;

/// The fields of an app an operator sets; each may be left out (to
/// create, `name` is required).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppBody {
    /// A display name (not blank).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, min_length = 1, max_length = 128)]
    name: Option<String>,
    /// Disabled apps answer `PARAM.0003` as if unregistered (default true).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Whether logins check password age (default false).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    password_expiry_check: Option<bool>,
    /// Who may log in (default `all`).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    access: Option<AppAccess>,
    /// session_token lifetime, seconds (default 432000).
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 31_536_000)]
    session_ttl: Option<i64>,
    /// id_token lifetime, seconds (default 300).
    #[serde(default, deserialize_with = "some_whole")]
    #[schema(nullable = false, minimum = 1, maximum = 86_400)]
    id_token_ttl: Option<i64>,
    /// How id_tokens are signed: `RS256` (default, verified by every
    /// relying party) or `EdDSA` (Ed25519: cheaper, but not verified by
    /// every relying party; docs/oidc.md §12).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    id_token_alg: Option<SigningAlg>,
    /// OpenID Connect: `public` (default: no secret, PKCE required) or
    /// `confidential` (a `client_secret`, answered once).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    client_type: Option<ClientType>,
    /// OpenID Connect: where codes may be sent, matched exactly (but for
    /// the port of `http://127.0.0.1` and `http://[::1]`); `https`, or
    /// `http` on a loopback host; at most 20.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, max_items = 20)]
    redirect_uris: Option<Vec<String>>,
    /// OpenID Connect: where a logout may send the browser back; the same
    /// rules.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, max_items = 20)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// OpenID Connect: where an SSO ticket sends the browser, so the app
    /// starts its own login; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    initiate_login_uri: Option<Option<String>>,
    /// SMS (docs/sms.md): whether people may register through this app
    /// with a `REGISTER_SMS` code (default false).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    self_registration: Option<bool>,
    /// SMS: whether a `LOGIN_SMS` code also goes to unregistered numbers,
    /// and a good one creates the user with no password (default false).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    sms_auto_register: Option<bool>,
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
            id_token_alg: b.id_token_alg,
            client_type: b.client_type,
            redirect_uris: b.redirect_uris,
            post_logout_redirect_uris: b.post_logout_redirect_uris,
            initiate_login_uri: b.initiate_login_uri,
            self_registration: b.self_registration,
            sms_auto_register: b.sms_auto_register,
        }
    }
}

/// A new app: an [`AppBody`] with its `name`.
pub(crate) struct NewApp;

impl PartialSchema for NewApp {
    fn schema() -> RefOr<Schema> {
        let mut schema = AppBody::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.push("name".into());
            object.description = Some("A new app: a name, and any of the other fields.".into());
        }
        schema
    }
}

impl ToSchema for NewApp {}

/// The app a path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "a description only: the handler reads the path with `Ids`")]
pub(crate) struct AppPath {
    /// The app's client_id.
    client_id: String,
}

/// The app and user a membership path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "a description only: the handler reads the path with `Ids`")]
pub(crate) struct MemberPath {
    /// The app's client_id.
    client_id: String,
    /// The user's id.
    user_id: String,
}

/// An app as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppView {
    /// The `X-client-id` the app sends: 32 characters, made by the server.
    client_id: String,
    name: String,
    enabled: bool,
    password_expiry_check: bool,
    access: AppAccess,
    session_ttl: i64,
    id_token_ttl: i64,
    id_token_alg: SigningAlg,
    /// RFC 3339.
    created_at: String,
    client_type: ClientType,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initiate_login_uri: Option<String>,
    self_registration: bool,
    sms_auto_register: bool,
    /// A confidential client's secret: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
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
            id_token_alg: a.id_token_alg,
            created_at: to_rfc3339(a.created_at),
            client_type: a.oidc.client_type,
            redirect_uris: a.oidc.redirect_uris,
            post_logout_redirect_uris: a.oidc.post_logout_redirect_uris,
            initiate_login_uri: a.oidc.initiate_login_uri,
            self_registration: a.signup.self_registration,
            sms_auto_register: a.signup.sms_auto_register,
            client_secret: None,
        }
    }
}

/// Register an app; the server makes its client_id.
#[utoipa::path(
    post,
    path = "/apps",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = NewApp, content_type = "application/json"),
    responses((status = 201, body = AppView, description = "The app"), AdminRefusals),
)]
pub(crate) async fn create_app(State(s): State<AppState>, Body(body): Body<AppBody>) -> AdminResult<Response> {
    let (app, secret) = s.ciam.create_app(body.into()).await?;
    let view = AppView { client_secret: secret.map(|s| s.expose().to_owned()), ..AppView::from(app) };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A confidential client's new secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewSecret {
    /// 43 characters; shown only here, stored as a digest.
    client_secret: String,
}

/// Replace a confidential client's secret: the old one stops working.
#[utoipa::path(
    post,
    path = "/apps/{client_id}/secret",
    tag = "admin",
    security(("admin_token" = [])),
    params(AppPath),
    responses((status = 200, body = NewSecret, description = "The new secret, shown once"), AdminRefusals),
)]
pub(crate) async fn new_secret(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<NewSecret>> {
    let secret = s.ciam.new_client_secret(&id).await?;
    Ok(Json(NewSecret { client_secret: secret.expose().to_owned() }))
}

/// Every app, oldest first.
#[utoipa::path(
    get,
    path = "/apps",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = [AppView], description = "The apps"), AdminRefusals),
)]
pub(crate) async fn list_apps(State(s): State<AppState>) -> AdminResult<Json<Vec<AppView>>> {
    Ok(Json(s.ciam.apps().await?.into_iter().map(AppView::from).collect()))
}

/// One app, enabled or not.
#[utoipa::path(
    get,
    path = "/apps/{client_id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(AppPath),
    responses((status = 200, body = AppView, description = "The app"), AdminRefusals),
)]
pub(crate) async fn get_app(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<AppView>> {
    Ok(Json(s.ciam.app(&id).await?.into()))
}

/// Change the fields sent; the others are kept.
#[utoipa::path(
    patch,
    path = "/apps/{client_id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(AppPath),
    request_body(content = AppBody, content_type = "application/json"),
    responses((status = 200, body = AppView, description = "The app"), AdminRefusals),
)]
pub(crate) async fn update_app(
    State(s): State<AppState>,
    Ids(id): Ids<String>,
    Body(body): Body<AppBody>,
) -> AdminResult<Json<AppView>> {
    Ok(Json(s.ciam.update_app(&id, body.into()).await?.into()))
}

/// Delete an app with its sessions and members.
#[utoipa::path(
    delete,
    path = "/apps/{client_id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(AppPath),
    responses((status = 204, description = "Deleted"), AdminRefusals),
)]
pub(crate) async fn delete_app(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_app(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assign a user to an app (for `access: assigned`).
#[utoipa::path(
    put,
    path = "/apps/{client_id}/users/{user_id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(MemberPath),
    responses((status = 204, description = "Assigned"), AdminRefusals),
)]
pub(crate) async fn add_member(
    State(s): State<AppState>,
    Ids((client_id, user_id)): Ids<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unassign a user from an app.
#[utoipa::path(
    delete,
    path = "/apps/{client_id}/users/{user_id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(MemberPath),
    responses((status = 204, description = "Unassigned"), AdminRefusals),
)]
pub(crate) async fn remove_member(
    State(s): State<AppState>,
    Ids((client_id, user_id)): Ids<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
