//! What an operator sees of each request (CONTRACT §9): its id, one access
//! log line, and the SDK calls' counts and durations.
//!
//! A client's `X-Request-Id` of 1–64 characters `[A-Za-z0-9._-]` is kept;
//! any other is replaced by a new one. The id is echoed in the response,
//! written in error bodies, the audit event and the log line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use ciam_core::telemetry::{SDK_REQUEST_DURATION, SDK_REQUESTS};
use ipnet::IpNet;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

use crate::error::OutcomeCode;
use crate::headers::{REQUEST_ID, client_ip};

/// The longest request id kept.
const REQUEST_ID_MAX: usize = 64;

/// Whether a client's request id is kept.
pub(crate) fn valid_request_id(id: &[u8]) -> bool {
    (1..=REQUEST_ID_MAX).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a request id that is not kept, so that one is made in its place.
pub(crate) async fn keep_valid_request_id(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let ids = headers.get_all(REQUEST_ID).iter().count();
    if ids > 1 || headers.get(REQUEST_ID).is_some_and(|id| !valid_request_id(id.as_bytes())) {
        headers.remove(REQUEST_ID);
    }
    next.run(request).await
}

/// Makes an id for a request without one.
pub(crate) fn set_request_id() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(HeaderName::from_static(REQUEST_ID), MakeRequestUuid)
}

/// Echoes the request's id in its response.
pub(crate) fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(HeaderName::from_static(REQUEST_ID))
}

/// The access log: one line per request, at the end of it.
pub(crate) type AccessLog = TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), LogLine, (), (), ()>;

/// The access log layer; `trusted` are the proxies whose
/// `X-Forwarded-For` names the client.
pub(crate) fn access_log(trusted: Arc<[IpNet]>) -> AccessLog {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan { trusted })
        .on_request(())
        .on_response(LogLine)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// The span of a request: its id, method, route and client address.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpan {
    trusted: Arc<[IpNet]>,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        let route = request.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str);
        let ip = client_ip(request.headers(), request.extensions(), &self.trusted);
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %route,
            ip = %Shown(ip),
        )
    }
}

/// An address, or `-`.
struct Shown(Option<IpAddr>);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// The line written when a response leaves: status, outcome, duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLine;

impl<B> OnResponse<B> for LogLine {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let outcome = response.extensions().get::<OutcomeCode>().map_or("-", |code| code.0);
        tracing::info!(
            target: "ciam::access",
            parent: span,
            status = response.status().as_u16(),
            outcome = %outcome,
            duration_ms = latency.as_micros() as f64 / 1e3,
            "request"
        );
    }
}

/// Counts each SDK request by call and outcome and records its duration;
/// `call` maps a route to its call's label.
pub(crate) async fn count_sdk_calls(request: Request, next: Next) -> Response {
    let call = request.extensions().get::<MatchedPath>().and_then(|path| crate::sdk::call_of(path.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(call) = call {
        let outcome = response.extensions().get::<OutcomeCode>().map_or("-", |code| code.0);
        metrics::counter!(SDK_REQUESTS, "call" => call, "outcome" => outcome).increment(1);
        metrics::histogram!(SDK_REQUEST_DURATION, "call" => call).record(started.elapsed().as_secs_f64());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_of_the_allowed_shape_are_kept() {
        assert!(valid_request_id(b"a"));
        assert!(valid_request_id(b"req-1.2_3"));
        assert!(valid_request_id(&[b'x'; 64]));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(&[b'x'; 65]));
        assert!(!valid_request_id(b"has space"));
        assert!(!valid_request_id(b"quote\""));
        assert!(!valid_request_id("caf\u{e9}".as_bytes()));
    }
}
