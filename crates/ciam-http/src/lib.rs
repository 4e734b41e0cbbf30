//! ciam's HTTP layer: the router, the SDK calls, the admin API, health and
//! key discovery. It turns requests into calls on [`ciam_core::Ciam`] and
//! answers into JSON; no domain rule lives here.

mod admin;
mod error;
mod headers;
mod json;
mod sdk;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ciam_core::{Ciam, CiamError, ErrorCode};
use ipnet::IpNet;
use serde::Serialize;

use crate::error::{Failure, render_errors};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain.
    pub ciam: Ciam,
    /// Proxies whose `X-Forwarded-For` is believed (CONTRACT §7).
    pub trusted_proxies: Arc<[IpNet]>,
    /// Failed admin authentications.
    pub(crate) auth_failures: Arc<admin::AuthFailures>,
}

/// How the HTTP layer is set up.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Networks of the proxies in front of the server, whose
    /// `X-Forwarded-For` names the client (`CIAM_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
}

/// Every request is answered within this, whatever waits it meets on the
/// way (database, hashing queue): past it the answer is
/// `IDAAS.SDK.COM.0002`. The contract's bound is 5 seconds.
pub const REQUEST_DEADLINE: Duration = Duration::from_millis(4500);

/// The whole HTTP API.
pub fn router(ciam: Ciam, options: HttpOptions) -> Router {
    let state = AppState { ciam, trusted_proxies: options.trusted_proxies.into(), auth_failures: Arc::default() };
    let sdk = Router::new()
        .route("/login/mobile-pwd", post(sdk::login_mobile_password))
        .route("/pwd/update", post(sdk::update_password))
        .route("/pwd/skip-update", get(sdk::skip_password_update))
        .route("/sso/session-token/id-token", post(sdk::refresh_id_token))
        .route("/logout", post(sdk::logout).get(sdk::logout));
    Router::new()
        .nest("/api/v2/sdk", sdk)
        .nest("/api/v2/admin", admin::routes(state.clone()))
        .route("/api/v1/oauth2/keys", get(jwks))
        .route("/.well-known/openid-configuration", get(openid_configuration))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn(render_errors))
        .layer(axum::middleware::from_fn(api_headers))
        .with_state(state)
}

/// Every answer under `/api/` carries `Cache-Control: no-store` (tokens and
/// account data must not be kept by caches) and `X-Content-Type-Options:
/// nosniff` (CONTRACT §8).
async fn api_headers(request: Request, next: axum::middleware::Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api {
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    response
}

/// The failure of a call that outlived its deadline.
pub(crate) fn deadline_exceeded() -> CiamError {
    CiamError::Internal("request deadline exceeded".into())
}

/// Answers `COM.0002` when a request outlives [`REQUEST_DEADLINE`]. Work
/// already handed off (a hash on its thread, a queued audit event) still
/// completes; only the wait is cut.
async fn deadline(request: Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Failure(deadline_exceeded()).into_response(),
    }
}

async fn not_found() -> Failure {
    ErrorCode::RouteNotFound.into()
}

async fn method_not_allowed() -> Failure {
    ErrorCode::MethodNotAllowed.into()
}

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// `GET /openapi.json`.
async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// The process is up.
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database takes a write (CONTRACT §8; checked at most every two
/// seconds).
async fn readyz(State(state): State<AppState>) -> Response {
    match state.ciam.ready().await {
        true => Json(Health { status: "ready" }).into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable" })).into_response(),
    }
}

/// `GET /api/v1/oauth2/keys`: the public keys that verify id_tokens.
async fn jwks(State(state): State<AppState>) -> Response {
    match state.ciam.jwks() {
        Ok(jwks) => Json(jwks.as_ref().clone()).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

#[derive(Serialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    id_token_signing_alg_values_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    response_types_supported: [&'static str; 1],
    claims_supported: [&'static str; 8],
}

/// `GET /.well-known/openid-configuration`.
async fn openid_configuration(State(state): State<AppState>) -> Json<Discovery> {
    let issuer = state.ciam.config().issuer.clone();
    Json(Discovery {
        jwks_uri: format!("{}/api/v1/oauth2/keys", issuer.trim_end_matches('/')),
        issuer,
        id_token_signing_alg_values_supported: ["RS256"],
        subject_types_supported: ["public"],
        response_types_supported: ["id_token"],
        claims_supported: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "api"],
    })
}
