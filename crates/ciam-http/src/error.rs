//! The one error type of the HTTP layer, and the one place that renders it.
//!
//! A handler that fails answers a [`Failure`]: the status of its code and,
//! in the response's extensions, the domain error itself. The
//! [`render_errors`] layer, in front of every route, writes the body
//! `{"error_code", "error_msg"}` in the caller's language (`X-L`).
//! Infrastructure causes are logged there and never sent.

use axum::Json;
use axum::extract::Request;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ciam_core::{CiamError, ErrorCode, Lang};

use crate::headers::{REQUEST_ID, header_text, lang_of};
use crate::openapi::ErrorBody;

/// A failed call on its way to the client.
#[derive(Debug, Clone)]
pub struct Failure(pub CiamError);

impl From<CiamError> for Failure {
    fn from(error: CiamError) -> Self {
        Failure(error)
    }
}

impl From<ErrorCode> for Failure {
    fn from(code: ErrorCode) -> Self {
        Failure(CiamError::refused(code))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The JSON body of `error` in `lang`, with its status; under the admin
/// API with the admin API's own code for the failures every call can meet.
pub(crate) fn error_response(error: &CiamError, lang: Lang, admin: bool, request_id: Option<String>) -> Response {
    match error {
        CiamError::Internal(cause) => tracing::error!(%cause, "request failed"),
        CiamError::Overloaded => tracing::warn!("password hashing pool saturated"),
        _ => {}
    }
    let own = error.code();
    let code = if admin { own.in_admin() } else { own };
    let error_msg = if code == own { error.message(lang) } else { code.message(lang, &[]) };
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody { error_code: code.as_str(), error_msg, request_id };
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(OutcomeCode(code.as_str()));
    let headers = response.headers_mut();
    if let CiamError::Throttled { retry_after } | CiamError::Wait { retry_after, .. } = error {
        if code == ErrorCode::AddressThrottled {
            metrics::counter!(ciam_core::telemetry::THROTTLED).increment(1);
        }
        headers.insert(RETRY_AFTER, HeaderValue::from((*retry_after).max(1)));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ciam\""));
    }
    response
}

/// Renders every [`Failure`] answered behind it in the caller's language,
/// with the request's id.
pub(crate) async fn render_errors(request: Request, next: Next) -> Response {
    let lang = lang_of(request.headers());
    let admin = request.uri().path().starts_with("/api/v2/admin");
    let request_id = header_text(request.headers(), REQUEST_ID);
    let mut response = next.run(request).await;
    match response.extensions_mut().remove::<Failure>() {
        Some(Failure(error)) => error_response(&error, lang, admin, request_id),
        None => response,
    }
}

/// The outcome an answer carries (its `status`, or its error code), for
/// the access log and the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutcomeCode(pub &'static str);
