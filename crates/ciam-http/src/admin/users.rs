//! `/users`: accounts, their passwords, locks and sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ciam_core::admin::{UserFilter, UserInput, invalid};
use ciam_core::clock::{from_rfc3339, to_rfc3339};
use ciam_core::model::User;
use ciam_core::{CiamError, Password, Reason};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminResult, Body, Ids, Params};
use crate::AppState;
use crate::json::{present, some};
use crate::openapi::AdminRefusals;

/// The fields of a user an operator sets; each may be left out, and
/// `null` clears `user_name`, `name` and `email`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserBody {
    /// The mobile number in any spelling; stored in E.164 (required to
    /// create).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, min_length = 1)]
    mobile: Option<String>,
    /// A password, checked against the password policy and stored as an
    /// argon2id hash (to create: this or `password_hash`).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, min_length = 1, format = Password)]
    password: Option<String>,
    /// A hash brought from another system, replaced by the server's
    /// argon2id at the next successful login: argon2 or scrypt or PBKDF2
    /// (`$pbkdf2-sha256$`, `$pbkdf2-sha512$`) PHC strings, bcrypt (`$2a$`,
    /// `$2b$`, `$2y$`), or Django's `pbkdf2_sha256$…`. Refused with 422,
    /// naming the parameter, beyond about a second of one core or four
    /// times the server's argon2 memory.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, min_length = 1)]
    password_hash: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128)]
    user_name: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128)]
    name: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254)]
    email: Option<Option<String>>,
    /// A disabled user's logins answer `USER.0039`.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false)]
    disabled: Option<bool>,
    /// When the password was last set (RFC 3339); for users brought in
    /// from elsewhere.
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, format = DateTime)]
    password_changed_at: Option<String>,
}

impl UserBody {
    fn into_input(self) -> Result<UserInput, CiamError> {
        let password_changed_at = match self.password_changed_at {
            Some(text) => Some(from_rfc3339(&text).ok_or_else(|| {
                invalid("password_changed_at", Reason::new("not an RFC 3339 time", "不是 RFC 3339 格式的时间"))
            })?),
            None => None,
        };
        Ok(UserInput {
            mobile: self.mobile,
            password: self.password.map(Password::new),
            password_hash: self.password_hash,
            user_name: self.user_name,
            name: self.name,
            email: self.email,
            disabled: self.disabled,
            password_changed_at,
        })
    }
}

/// The user a path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "a description only: the handler reads the path with `Ids`")]
pub(crate) struct UserPath {
    /// The user's id.
    id: String,
}

/// A user as the API shows it (never a hash).
#[derive(Serialize, ToSchema)]
pub(crate) struct UserView {
    id: String,
    /// E.164.
    mobile: String,
    disabled: bool,
    user_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    /// RFC 3339.
    password_changed_at: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id.to_string(),
            mobile: u.mobile.to_string(),
            disabled: u.disabled,
            user_name: u.user_name,
            name: u.name,
            email: u.email,
            password_changed_at: to_rfc3339(u.password_changed_at),
            created_at: to_rfc3339(u.created_at),
            updated_at: to_rfc3339(u.updated_at),
        }
    }
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/users",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = UserBody, content_type = "application/json"),
    responses((status = 201, body = UserView, description = "The user"), AdminRefusals),
)]
pub(crate) async fn create_user(State(s): State<AppState>, Body(body): Body<UserBody>) -> AdminResult<Response> {
    let user = s.ciam.create_user(body.into_input()?).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))).into_response())
}

/// `GET /users`: which users.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserQuery {
    /// Only the user with this mobile, in any spelling.
    mobile: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Skip this many, oldest first.
    #[param(minimum = 0, maximum = 2_147_483_647)]
    offset: Option<u32>,
}

/// Users, oldest first.
#[utoipa::path(
    get,
    path = "/users",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserQuery),
    responses((status = 200, body = [UserView], description = "The users"), AdminRefusals),
)]
pub(crate) async fn list_users(
    State(s): State<AppState>,
    Params(q): Params<UserQuery>,
) -> AdminResult<Json<Vec<UserView>>> {
    let users = s.ciam.users(&UserFilter { mobile: q.mobile, limit: q.limit, offset: q.offset }).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// One user.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserPath),
    responses((status = 200, body = UserView, description = "The user"), AdminRefusals),
)]
pub(crate) async fn get_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<UserView>> {
    Ok(Json(s.ciam.user(&id).await?.into()))
}

/// Change the fields sent; the others are kept. A new password (or hash),
/// or disabling, ends the user's sessions.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserPath),
    request_body(content = UserBody, content_type = "application/json"),
    responses((status = 200, body = UserView, description = "The user"), AdminRefusals),
)]
pub(crate) async fn update_user(
    State(s): State<AppState>,
    Ids(id): Ids<String>,
    Body(body): Body<UserBody>,
) -> AdminResult<Json<UserView>> {
    Ok(Json(s.ciam.update_user(&id, body.into_input()?).await?.into()))
}

/// Delete a user with their sessions.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserPath),
    responses((status = 204, description = "Deleted"), AdminRefusals),
)]
pub(crate) async fn delete_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the user's failure counts and lock.
#[utoipa::path(
    post,
    path = "/users/{id}/unlock",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserPath),
    responses((status = 204, description = "Unlocked"), AdminRefusals),
)]
pub(crate) async fn unlock_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.unlock_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(Serialize, ToSchema)]
pub(crate) struct Revoked {
    revoked: u64,
}

/// End every session of the user.
#[utoipa::path(
    delete,
    path = "/users/{id}/sessions",
    tag = "admin",
    security(("admin_token" = [])),
    params(UserPath),
    responses((status = 200, body = Revoked, description = "How many sessions ended"), AdminRefusals),
)]
pub(crate) async fn revoke_sessions(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<Revoked>> {
    Ok(Json(Revoked { revoked: s.ciam.revoke_sessions(&id).await? }))
}
