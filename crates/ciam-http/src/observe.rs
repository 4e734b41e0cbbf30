//! What an operator sees of each request (docs/api.md §9): its id, one access
//! log line, and the SDK calls' counts and durations.
//!
//! A client's `X-Request-Id` of 1–64 characters `[A-Za-z0-9._-]` is kept;
//! any other is replaced by a new one. The id is echoed in the response,
//! written in error bodies, the audit event and the log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use ciam_core::ErrorCode;
use ciam_core::model::AddressKey;
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
        // How long it waited its turn (docs/api.md §7) before the duration
        // its line gives.
        let waited_ms = crate::Arrived::at(request.extensions()).elapsed().as_micros() as f64 / 1e3;
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %route,
            ip = %Shown(ip),
            waited_ms,
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

/// The line written when a response leaves: status, outcome, duration;
/// none for a refusal the [`Sampler`] leaves out, and for the first of a
/// new minute the number it left out in the last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLine;

impl<B> OnResponse<B> for LogLine {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let sampled = response.extensions().get::<Sampled>().copied();
        if sampled == Some(Sampled::LeftOut) {
            return;
        }
        let outcome = response.extensions().get::<OutcomeCode>().map_or("-", |code| code.0);
        let status = response.status().as_u16();
        let duration_ms = latency.as_micros() as f64 / 1e3;
        match sampled {
            Some(Sampled::Logged { left_out }) => tracing::info!(
                target: "ciam::access", parent: span, status, outcome = %outcome, duration_ms, sampled = true,
                left_out_last_minute = left_out, "request"
            ),
            _ => {
                tracing::info!(target: "ciam::access", parent: span, status, outcome = %outcome, duration_ms, "request")
            }
        }
    }
}

/// Whether the access log writes a refusal that cost no hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sampled {
    /// Written: the first of its address and outcome this minute, after
    /// `left_out` lines of the same were left out in the last minute it had.
    Logged { left_out: u64 },
    /// Left out: its address and outcome were already written this minute.
    LeftOut,
}

/// Samples the access log's lines of refusals that cost no hash (a body
/// that does not parse, a throttled address) as the audit log keeps them:
/// one line per address and outcome a minute, so that a flood of them
/// costs a line a minute, not one per request. Other lines are all written.
#[derive(Debug)]
pub(crate) struct Sampler {
    started: Instant,
    trusted: Arc<[IpNet]>,
    /// Per address and outcome: the minute last written, and the lines left
    /// out since; and the minute of the last sweep.
    windows: Mutex<(Windows, u64)>,
}

/// Per address and outcome: the minute last written, and the lines left out
/// since.
type Windows = HashMap<SampleKey, (u64, u64)>;

/// What the sampler counts lines under: the client's address (an IPv6
/// /64 counts as one, as for the address throttle) and the outcome.
type SampleKey = (Option<AddressKey>, &'static str);

/// Addresses and outcomes the sampler keeps; those of earlier minutes are
/// forgotten once a minute, and while it has no room every line is
/// written.
const SAMPLED_KEYS: usize = 10_000;

impl Sampler {
    pub fn new(trusted: Arc<[IpNet]>) -> Arc<Self> {
        Arc::new(Self { started: Instant::now(), trusted, windows: Mutex::default() })
    }

    /// Marks a refusal that cost no hash as written or left out.
    pub async fn sample(self: Arc<Self>, request: Request, next: Next) -> Response {
        let ip = client_ip(request.headers(), request.extensions(), &self.trusted);
        let mut response = next.run(request).await;
        let Some(code) = response.extensions().get::<OutcomeCode>().map(|code| code.0) else {
            return response;
        };
        if response.status().is_client_error() && ErrorCode::parse(code).is_some_and(ErrorCode::costs_no_hash) {
            let minute = self.started.elapsed().as_secs() / 60;
            let sampled = self.decide((ip.map(AddressKey::of), code), minute);
            response.extensions_mut().insert(sampled);
        }
        response
    }

    fn decide(&self, key: SampleKey, minute: u64) -> Sampled {
        let mut guard = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let (windows, swept) = &mut *guard;
        if *swept != minute {
            // Keys of the last minute are kept: their next line reports
            // what that minute left out.
            windows.retain(|_, (last, _)| *last + 1 >= minute);
            *swept = minute;
        }
        if windows.len() >= SAMPLED_KEYS && !windows.contains_key(&key) {
            return Sampled::Logged { left_out: 0 };
        }
        match windows.get_mut(&key) {
            Some((last, left_out)) if *last == minute => {
                *left_out += 1;
                Sampled::LeftOut
            }
            Some((last, left_out)) => {
                let before = std::mem::take(left_out);
                *last = minute;
                Sampled::Logged { left_out: before }
            }
            None => {
                windows.insert(key, (minute, 0));
                Sampled::Logged { left_out: 0 }
            }
        }
    }
}

/// Counts each SDK request by call and outcome and records its duration;
/// `call` maps a route to its call's label.
pub(crate) async fn count_sdk_calls(request: Request, next: Next) -> Response {
    let call = request.extensions().get::<MatchedPath>().and_then(|path| crate::sdk::call_of(path.as_str()));
    // From its arrival: the wait for its turn is part of what a client sees.
    let started = crate::Arrived::at(request.extensions());
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
    fn a_refusal_is_written_once_per_address_outcome_and_minute() {
        let sampler = Sampler::new(Arc::from([]));
        let ip = Some(AddressKey::of(IpAddr::from([127, 0, 0, 9])));
        let key = (ip.clone(), "IDAAS.SDK.REQ.0002");
        assert_eq!(sampler.decide(key.clone(), 0), Sampled::Logged { left_out: 0 });
        assert_eq!(sampler.decide(key.clone(), 0), Sampled::LeftOut);
        assert_eq!(sampler.decide(key.clone(), 0), Sampled::LeftOut);
        assert_eq!(
            sampler.decide((ip.clone(), "IDAAS.SDK.REQ.0007"), 0),
            Sampled::Logged { left_out: 0 },
            "another outcome"
        );
        assert_eq!(sampler.decide((None, "IDAAS.SDK.REQ.0002"), 0), Sampled::Logged { left_out: 0 }, "another address");
        assert_eq!(
            sampler.decide(key.clone(), 1),
            Sampled::Logged { left_out: 2 },
            "the next minute says what was left out"
        );
        // One /64 is one address.
        let v6 = |last: u16| Some(AddressKey::of(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last])));
        assert_eq!(sampler.decide((v6(1), "IDAAS.SDK.REQ.0002"), 1), Sampled::Logged { left_out: 0 });
        assert_eq!(sampler.decide((v6(2), "IDAAS.SDK.REQ.0002"), 1), Sampled::LeftOut, "same /64");
        for n in 0..SAMPLED_KEYS {
            let other = Some(AddressKey::of(IpAddr::from([10, 0, (n / 256) as u8, (n % 256) as u8])));
            sampler.decide((other, "IDAAS.SDK.REQ.0002"), 2);
        }
        let fresh = (Some(AddressKey::of(IpAddr::from([127, 0, 0, 10]))), "IDAAS.SDK.REQ.0002");
        assert_eq!(sampler.decide(fresh.clone(), 2), Sampled::Logged { left_out: 0 }, "no room: written");
        assert_eq!(sampler.decide(fresh.clone(), 2), Sampled::Logged { left_out: 0 }, "still no room: written");
        assert_eq!(sampler.decide(fresh, 4), Sampled::Logged { left_out: 0 }, "a new minute sweeps the old keys");
    }

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
