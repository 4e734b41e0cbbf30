//! `/apps`: client applications and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ciam_core::admin::AppInput;
use ciam_core::clock::to_rfc3339;
use ciam_core::model::{App, AppAccess};
use serde::{Deserialize, Serialize};

use super::{AdminResult, Body, Ids};
use crate::AppState;
use crate::json::{some, some_whole};

/// The fields of an app an operator sets; each may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppBody {
    #[serde(default, deserialize_with = "some")]
    name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    password_expiry_check: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    access: Option<AppAccess>,
    #[serde(default, deserialize_with = "some_whole")]
    session_ttl: Option<i64>,
    #[serde(default, deserialize_with = "some_whole")]
    id_token_ttl: Option<i64>,
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
        }
    }
}

/// An app as the API shows it.
#[derive(Serialize)]
pub(crate) struct AppView {
    client_id: String,
    name: String,
    enabled: bool,
    password_expiry_check: bool,
    access: AppAccess,
    session_ttl: i64,
    id_token_ttl: i64,
    created_at: String,
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
            created_at: to_rfc3339(a.created_at),
        }
    }
}

pub(crate) async fn create_app(State(s): State<AppState>, Body(body): Body<AppBody>) -> AdminResult<Response> {
    let app = s.ciam.create_app(body.into()).await?;
    Ok((StatusCode::CREATED, Json(AppView::from(app))).into_response())
}

pub(crate) async fn list_apps(State(s): State<AppState>) -> AdminResult<Json<Vec<AppView>>> {
    Ok(Json(s.ciam.apps().await?.into_iter().map(AppView::from).collect()))
}

pub(crate) async fn get_app(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<Json<AppView>> {
    Ok(Json(s.ciam.app(&id).await?.into()))
}

pub(crate) async fn update_app(
    State(s): State<AppState>,
    Ids(id): Ids<String>,
    Body(body): Body<AppBody>,
) -> AdminResult<Json<AppView>> {
    Ok(Json(s.ciam.update_app(&id, body.into()).await?.into()))
}

pub(crate) async fn delete_app(State(s): State<AppState>, Ids(id): Ids<String>) -> AdminResult<StatusCode> {
    s.ciam.delete_app(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn add_member(
    State(s): State<AppState>,
    Ids((client_id, user_id)): Ids<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn remove_member(
    State(s): State<AppState>,
    Ids((client_id, user_id)): Ids<(String, String)>,
) -> AdminResult<StatusCode> {
    s.ciam.set_member(&client_id, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
