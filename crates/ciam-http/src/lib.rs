//! ciam's HTTP layer: the router, the SDK calls, the admin API, health and
//! key discovery. It turns requests into calls on [`ciam_core::Ciam`] and
//! answers into JSON; no domain rule lives here.

mod admin;
mod console;
mod error;
mod headers;
mod json;
mod observe;
mod oidc;
mod openapi;
mod pages;
mod sdk;
mod sms;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ciam_core::{Ciam, CiamError, ErrorCode};
use ipnet::IpNet;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Failure, render_errors};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain.
    pub ciam: Ciam,
    /// Proxies whose `X-Forwarded-For` is believed (docs/api.md §7).
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
    let sampler = observe::Sampler::new(Arc::clone(&state.trusted_proxies));
    let (router, mut document) = api(state.clone());
    openapi::link_resources(&mut document);
    let document: Arc<str> = document.to_json().unwrap_or_default().into();
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], document.to_string()) }),
        )
        .nest(console::PREFIX, console::routes())
        .route(console::HOME, get(console::home))
        .route("/favicon.ico", get(pages::layout::favicon))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn(render_errors))
        .layer(axum::middleware::from_fn(observe::count_sdk_calls))
        .layer(axum::middleware::from_fn(api_headers))
        .layer(axum::middleware::from_fn(console::console_headers))
        .layer(axum::middleware::from_fn(move |request, next| Arc::clone(&sampler).sample(request, next)))
        .layer(observe::access_log(Arc::clone(&state.trusted_proxies)))
        .layer(observe::propagate_request_id())
        .layer(observe::set_request_id())
        .layer(axum::middleware::from_fn(observe::keep_valid_request_id))
        .layer(axum::middleware::from_fn_with_state(state.clone(), sdk::line_up))
        .with_state(state)
}

/// The routes and the OpenAPI document made from them.
fn api(state: AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::Frame::openapi())
        .nest(sdk::SDK_PREFIX, sdk::routes())
        .nest("/api/v2/admin", admin::routes(state))
        .routes(routes!(jwks))
        .routes(routes!(oidc::openid_configuration))
        .merge(oidc::routes())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .split_for_parts()
}

/// Every answer under `/api/` carries `Cache-Control: no-store` (tokens and
/// account data must not be kept by caches) and `X-Content-Type-Options:
/// nosniff` (docs/api.md §8).
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
    match tokio::time::timeout_at(Arrived::at(request.extensions()) + REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Failure(deadline_exceeded()).into_response(),
    }
}

/// When a request that waited its turn before the middleware (see
/// [`sdk::line_up`]) arrived: its deadlines count from then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrived(tokio::time::Instant);

impl Arrived {
    /// Arriving now.
    pub(crate) fn now() -> Self {
        Arrived(tokio::time::Instant::now())
    }

    /// When the request with these `extensions` arrived: as noted, or now.
    pub(crate) fn at(extensions: &axum::http::Extensions) -> tokio::time::Instant {
        extensions.get::<Arrived>().map_or_else(tokio::time::Instant::now, |a| a.0)
    }
}

async fn not_found() -> Failure {
    ErrorCode::RouteNotFound.into()
}

async fn method_not_allowed() -> Failure {
    ErrorCode::MethodNotAllowed.into()
}

/// A health answer.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
}

/// The process is up (liveness).
#[utoipa::path(get, path = "/healthz", tag = "discovery", responses((status = 200, body = Health, description = "`{\"status\": \"ok\"}`")))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database takes a write (readiness; checked at most every two
/// seconds) and the instance is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "discovery",
    responses(
        (status = 200, body = Health, description = "`{\"status\": \"ready\"}`"),
        (status = 503, body = Health, description = "`{\"status\": \"unavailable\"}`: no write taken, or shutting down"),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.ciam.ready().await {
        true => Json(Health { status: "ready" }).into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable" })).into_response(),
    }
}

/// The public keys that verify id_tokens (a JWK Set, RFC 7517).
#[utoipa::path(
    get,
    path = "/api/v1/oauth2/keys",
    tag = "discovery",
    responses((status = 200, body = ciam_core::keys::Jwks, description = "The current key of each algorithm, then retired keys still published"), (status = 500, body = openapi::ErrorBody, description = "`IDAAS.SDK.COM.0002`")),
)]
async fn jwks(State(state): State<AppState>) -> Response {
    match state.ciam.jwks() {
        Ok(jwks) => Json(jwks.as_ref().clone()).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}
