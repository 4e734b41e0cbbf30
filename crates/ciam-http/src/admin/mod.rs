//! The operator API under `/api/v2/admin/` (docs/api.md §5), behind
//! `Authorization: Bearer`. Each resource has its module; this one holds the
//! token check and the extractors every handler uses, so that whatever a
//! request gets wrong is answered with the admin API's own codes.

mod apps;
mod audit;
mod policies;
mod sms_policy;
mod users;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ciam_core::ErrorCode;
use ciam_core::admin::invalid;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Failure;
use crate::headers::{client_ip, header_text};
use crate::json;

/// The largest admin request body accepted.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// What an admin handler answers.
type AdminResult<T> = Result<T, Failure>;

/// The admin routes, each with its part of the OpenAPI document, and the
/// token check in front of all of them.
pub(crate) fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(apps::create_app, apps::list_apps))
        .routes(routes!(apps::get_app, apps::update_app, apps::delete_app))
        .routes(routes!(apps::add_member, apps::remove_member))
        .routes(routes!(apps::new_secret))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user, users::update_user, users::delete_user))
        .routes(routes!(users::unlock_user))
        .routes(routes!(users::revoke_sessions))
        .routes(routes!(policies::get_password_policy, policies::put_password_policy))
        .routes(routes!(policies::get_lockout_policy, policies::put_lockout_policy))
        .routes(routes!(policies::get_throttle_policy, policies::put_throttle_policy))
        .routes(routes!(sms_policy::get_sms_policy, sms_policy::put_sms_policy))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::rotate_keys))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// The token of `Authorization: Bearer <token>`; the scheme's case does not
/// matter (RFC 7235).
fn bearer(parts: &Request) -> Option<String> {
    let value = header_text(parts.headers(), AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// 401 unless the bearer token is the admin token (constant-time compare);
/// 429 for an address with too many wrong tokens of late, whatever it
/// presents ([`ciam_core::operator`]).
async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = client_ip(request.headers(), request.extensions(), &state.trusted_proxies);
    let verdict = match bearer(&request) {
        Some(token) => {
            let ciam = &state.ciam;
            ciam.operator_attempt(ip, async || Ok(ciam.is_admin_token(&token).await?.then_some(()))).await
        }
        None => Ok(None),
    };
    match verdict {
        Ok(Some(())) => next.run(request).await,
        Ok(None) => {
            state.auth_failures.record(ip.map(|ip| ip.to_string()));
            Failure::from(ErrorCode::AdminUnauthorized).into_response()
        }
        Err(e) => Failure(e).into_response(),
    }
}

/// Failed admin authentications: counted, and logged at most once every
/// [`AuthFailures::LOG_EVERY`] with how many there were, so a flood of bad
/// tokens cannot flood the log.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    unlogged: AtomicU64,
    logged_at: Mutex<Option<Instant>>,
}

impl AuthFailures {
    const LOG_EVERY: Duration = Duration::from_secs(10);

    /// Counts one failure from `address`.
    pub fn record(&self, address: Option<String>) {
        metrics::counter!(ciam_core::telemetry::ADMIN_AUTH_FAILURES).increment(1);
        let unlogged = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut logged_at) = self.logged_at.lock() else {
            return;
        };
        if logged_at.is_none_or(|at| at.elapsed() >= Self::LOG_EVERY) {
            *logged_at = Some(Instant::now());
            self.unlogged.fetch_sub(unlogged, Ordering::Relaxed);
            tracing::warn!(
                failures = unlogged,
                last_from = address.as_deref().unwrap_or("?"),
                "admin authentication failed"
            );
        }
    }
}

/// An admin request body: `application/json`, at most [`ADMIN_BODY_LIMIT`],
/// a JSON object of `T`'s shape.
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, _: &S) -> Result<Self, Failure> {
        let (parts, body) = request.into_parts();
        let object = json::object(&parts, body, ADMIN_BODY_LIMIT).await?;
        Ok(Body(json::fields(object)?))
    }
}

/// The identifiers in a request's path. A path that is not UTF-8, or not
/// of the route's shape, is answered in JSON like any other refusal.
pub(crate) struct Ids<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(ids)) => Ok(Ids(ids)),
            Err(_) => Err(ErrorCode::RequestUnreadable.into()),
        }
    }
}

/// A request's query parameters; one that does not parse is answered 422
/// naming the parameter.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(params)) => Ok(Params(params)),
            Err(rejection) => {
                // "Failed to deserialize query string: limit: invalid digit …"
                let text = rejection.body_text();
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, rest)| rest);
                let (field, why) = detail.split_once(": ").unwrap_or(("query", detail));
                Err(Failure(invalid(field, json::reason(why))))
            }
        }
    }
}
