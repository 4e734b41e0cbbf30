//! What the HTTP layer reads from request headers: the language, and who is
//! calling an SDK API.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ciam_core::model::{Device, audit_text};
use ciam_core::{Caller, Lang};

/// The longest header value kept in the audit log.
const AUDIT_FIELD_MAX: usize = 256;

/// A header's value as text (lossy for non-UTF-8 bytes), trimmed; `None`
/// when absent or blank.
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A header's value made fit for the audit log.
fn audited(headers: &HeaderMap, name: &str) -> Option<String> {
    header_text(headers, name).map(|v| audit_text(&v, AUDIT_FIELD_MAX))
}

/// The language a call asked for (`X-L`).
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_header(header_text(headers, "x-l").as_deref())
}

/// Who is calling an SDK API, as the request says (CONTRACT §1).
pub(crate) fn caller(parts: &Parts) -> Caller {
    let headers = &parts.headers;
    Caller {
        client_id: header_text(headers, "x-client-id"),
        device: Device {
            os_version: audited(headers, "x-operating-sys-version"),
            fingerprint: audited(headers, "x-device-fingerprint"),
            claimed_ip: audited(headers, "x-device-ip"),
            agent: audited(headers, "x-agent"),
        },
        peer_ip: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
        lang: lang_of(headers),
    }
}
