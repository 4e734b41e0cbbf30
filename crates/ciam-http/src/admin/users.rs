//! `/users`: accounts, their passwords, locks and sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ciam_core::admin::{UserFilter, UserInput, invalid};
use ciam_core::clock::{from_rfc3339, to_rfc3339};
use ciam_core::model::User;
use ciam_core::{CiamError, Password};
use serde::{Deserialize, Serialize};

use super::{AdminResult, Body, Ids, Params};
use crate::AppState;
use crate::json::{present, some};

/// The fields of a user an operator sets; each may be left out, and
/// `null` clears `user_name`, `name` and `email`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserBody {
    #[serde(default, deserialize_with = "some")]
    mobile: Option<String>,
    #[serde(default, deserialize_with = "some")]
    password: Option<String>,
    #[serde(default, deserialize_with = "some")]
    password_hash: Option<String>,
    #[serde(default, deserialize_with = "present")]
    user_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    password_changed_at: Option<String>,
}

impl UserBody {
    fn into_input(self) -> Result<UserInput, CiamError> {
        let password_changed_at = match self.password_changed_at {
            Some(text) => {
                Some(from_rfc3339(&text).ok_or_else(|| invalid("password_changed_at", "not an RFC 3339 time"))?)
            }
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

/// A user as the API shows it (never a hash).
#[derive(Serialize)]
pub(crate) struct UserView {
    id: String,
    mobile: String,
    disabled: bool,
    user_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    password_changed_at: String,
    created_at: String,
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

pub(crate) async fn create_user(State(s): State<AppState>, Body(body): Body<UserBody>) -> AdminResult<Response> {
    let user = s.ciam.create_user(body.into_input()?).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))).into_response())
}

/// `GET /users`: which users.
#[derive(Deserialize)]
pub(crate) struct UserQuery {
    mobile: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub(crate) async fn list_users(
    State(s): State<AppState>,
    Params(q): Params<UserQuery>,
) -> AdminResult<Json<Vec<UserView>>> {
    let users = s.ciam.users(&UserFilter { mobile: q.mobile, limit: q.limit, offset: q.offset }).await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

pub(crate) async fn get_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<UserView>> {
    Ok(Json(s.ciam.user(&id).await?.into()))
}

pub(crate) async fn update_user(
    State(s): State<AppState>,
    Ids(id): Ids<String>,
    Body(body): Body<UserBody>,
) -> AdminResult<Json<UserView>> {
    Ok(Json(s.ciam.update_user(&id, body.into_input()?).await?.into()))
}

pub(crate) async fn delete_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unlock_user(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.unlock_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(Serialize)]
pub(crate) struct Revoked {
    revoked: u64,
}

pub(crate) async fn revoke_sessions(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<Revoked>> {
    Ok(Json(Revoked { revoked: s.ciam.revoke_sessions(&id).await? }))
}
