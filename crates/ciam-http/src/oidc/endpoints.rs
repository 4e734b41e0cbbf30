//! The token, userinfo and revocation endpoints (docs/oidc.md): form
//! posts in, JSON out, errors as OAuth 2.0 has them (RFC 6749 §5.2).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ciam_core::oidc::clients::{ClientAuth, OAuthError};
use ciam_core::oidc::exchange::TokenParams;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::pages::forms;

/// An OAuth error as JSON, with `WWW-Authenticate: Basic` on a 401 for a
/// client that tried Basic.
fn oauth_error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": error.error, "error_description": error.description});
    let mut response = (status, Json(body)).into_response();
    if error.status == 401 && error.basic {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ciam\""));
    }
    response
}

/// A form's parameters, or `invalid_request`.
async fn form<T: for<'de> Deserialize<'de>>(body: axum::body::Body) -> Result<T, OAuthError> {
    let bytes =
        forms::read_form(body).await.map_err(|_| OAuthError::bad("invalid_request", "the body cannot be read"))?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| OAuthError::bad("invalid_request", "the body is not a form"))
}

/// The client id and secret of `Authorization: Basic`, each
/// form-urlencoded before base64 (RFC 6749 §2.3.1); `Err` for a header
/// that is not one.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::client(true))?;
    let text = String::from_utf8(decoded).map_err(|_| OAuthError::client(true))?;
    let (id, secret) = text.split_once(':').ok_or_else(|| OAuthError::client(true))?;
    let unescape = |part: &str| -> Result<String, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={}", part.replace('&', "%26")))
            .map_err(|_| OAuthError::client(true))?;
        Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// `POST /api/v1/oauth2/token`.
pub(super) async fn token(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let answer = async {
        let basic = basic(&parts.headers)?;
        let params: TokenParams = form(body).await?;
        state.ciam.token(&params, basic).await
    };
    match answer.await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            response.headers_mut().insert("pragma", HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => oauth_error(&e),
    }
}

#[derive(Deserialize)]
struct UserinfoForm {
    access_token: Option<String>,
}

/// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
fn invalid_token() -> Response {
    let body = json!({"error": "invalid_token", "error_description": "no live access token"});
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    response
}

/// `GET` or `POST /api/v1/oauth2/userinfo`: `Authorization: Bearer`, or
/// (POST) `access_token` in the form.
pub(super) async fn userinfo(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bearer = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
    });
    let token = match bearer {
        Some(token) => Some(token),
        None if parts.method == axum::http::Method::POST => {
            form::<UserinfoForm>(body).await.ok().and_then(|f| f.access_token)
        }
        None => None,
    };
    let Some(token) = token else {
        return invalid_token();
    };
    match state.ciam.userinfo(&token).await {
        Ok(Some(claims)) => Json(claims).into_response(),
        Ok(None) => invalid_token(),
        Err(e) => oauth_error(&e.into()),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /api/v1/oauth2/revoke` (RFC 7009).
pub(super) async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let answer = async {
        let basic = basic(&parts.headers)?;
        let form: RevokeForm = form(body).await?;
        let auth = ClientAuth { basic, client_id: form.client_id, client_secret: form.client_secret };
        state.ciam.revoke(form.token.as_deref(), &auth).await
    };
    match answer.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(&e),
    }
}
