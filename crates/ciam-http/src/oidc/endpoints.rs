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
use ciam_core::oidc::exchange::{TokenAnswer, TokenParams};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::docs::{OAuthErrorBody, OAuthRefusals, UserinfoClaims};
use crate::AppState;
use crate::pages::forms;

/// An OAuth error as JSON, with `WWW-Authenticate: Basic` on a 401 for a
/// client that tried Basic.
fn oauth_error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = OAuthErrorBody { error: error.error, error_description: error.description.clone() };
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

/// Codes and refresh tokens for tokens (RFC 6749 §4.1.3 and §6,
/// docs/oidc.md §6). A confidential client authenticates with HTTP Basic
/// or `client_id` + `client_secret` in the form; a public one sends its
/// `client_id` and `code_verifier`.
#[utoipa::path(
    post,
    path = "/api/v1/oauth2/token",
    tag = "oidc",
    request_body(content = TokenParams, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenAnswer, description = "The tokens"), OAuthRefusals),
)]
pub(crate) async fn token(State(state): State<AppState>, request: Request) -> Response {
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

/// The user's claims by the access token's scopes (docs/oidc.md §7):
/// `Authorization: Bearer`, or (POST) `access_token` in the form.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/oauth2/userinfo",
    tag = "oidc",
    security(("access_token" = [])),
    responses(
        (status = 200, body = UserinfoClaims, description = "The claims"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_token`: no live access token", headers(("WWW-Authenticate" = String, description = "`Bearer error=\"invalid_token\"`"))),
        (status = 500, body = OAuthErrorBody, description = "`server_error`"),
    ),
)]
pub(crate) async fn userinfo(State(state): State<AppState>, request: Request) -> Response {
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

/// A revocation request (RFC 7009 §2.1).
#[derive(Deserialize, ToSchema)]
pub(crate) struct RevokeForm {
    /// The token to revoke.
    token: Option<String>,
    /// Ignored: ciam looks the token up as both kinds.
    #[expect(dead_code, reason = "documented and accepted, not needed")]
    token_type_hint: Option<String>,
    /// The client, when it does not use HTTP Basic.
    client_id: Option<String>,
    /// A confidential client's secret, when it does not use HTTP Basic.
    client_secret: Option<String>,
}

/// Revoke a refresh token (with its family) or an access token (RFC 7009,
/// docs/oidc.md §6); an unknown token is answered 200 too.
#[utoipa::path(
    post,
    path = "/api/v1/oauth2/revoke",
    tag = "oidc",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke"), OAuthRefusals),
)]
pub(crate) async fn revoke(State(state): State<AppState>, request: Request) -> Response {
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
