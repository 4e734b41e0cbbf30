//! What the HTTP layer reads from request headers: the language, and who is
//! calling an SDK API.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ciam_core::model::{Device, audit_text};
use ciam_core::{Caller, Lang};
use ipnet::IpNet;

/// The header that carries a request's id (docs/api.md §9).
pub(crate) const REQUEST_ID: &str = "x-request-id";

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

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(|ip| ip.to_canonical())
}

/// The client's address (docs/api.md §7): the TCP peer; or, when the peer is
/// a trusted proxy, the right-most `X-Forwarded-For` address that is not
/// itself trusted, or the peer when there is none. An entry that is no
/// address ends the walk: nothing left of it can be trusted.
pub(crate) fn client_ip(headers: &HeaderMap, extensions: &Extensions, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| String::from_utf8_lossy(value.as_bytes()).split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    for entry in forwarded.iter().rev() {
        match forwarded_address(entry) {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return Some(ip),
            None => break,
        }
    }
    Some(peer)
}

/// Who is calling an SDK API, as the request says (docs/api.md §1).
pub(crate) fn caller(parts: &Parts, trusted: &[IpNet]) -> Caller {
    let headers = &parts.headers;
    Caller {
        client_id: header_text(headers, "x-client-id"),
        device: Device {
            os_version: audited(headers, "x-operating-sys-version"),
            fingerprint: audited(headers, "x-device-fingerprint"),
            claimed_ip: audited(headers, "x-device-ip"),
            agent: audited(headers, "x-agent"),
        },
        ip: client_ip(&parts.headers, &parts.extensions, trusted),
        lang: lang_of(headers),
        request_id: header_text(headers, REQUEST_ID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut request = axum::http::Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).expect("request").into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().expect("peer")));
        parts
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let spoofed = parts("203.0.113.9:5000", &["198.51.100.1"]);
        assert_eq!(client_ip(&spoofed.headers, &spoofed.extensions, &[]), ip("203.0.113.9"));
        assert_eq!(client_ip(&spoofed.headers, &spoofed.extensions, &nets(&["10.0.0.0/8"])), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        let chain = parts("10.0.0.2:443", &["198.51.100.7, 203.0.113.5", "192.168.1.1"]);
        assert_eq!(
            client_ip(&chain.headers, &chain.extensions, &trusted),
            ip("203.0.113.5"),
            "the client's own claim (left) is ignored"
        );
        let ported = parts("10.0.0.2:443", &["203.0.113.5:61000"]);
        assert_eq!(client_ip(&ported.headers, &ported.extensions, &trusted), ip("203.0.113.5"));
        let v6 = parts("[::ffff:10.0.0.2]:443", &["[2001:db8::7]"]);
        assert_eq!(client_ip(&v6.headers, &v6.extensions, &trusted), ip("2001:db8::7"));
        let all_trusted = parts("10.0.0.2:443", &["10.1.1.1, 192.168.5.5"]);
        assert_eq!(
            client_ip(&all_trusted.headers, &all_trusted.extensions, &trusted),
            ip("10.0.0.2"),
            "the peer when none is untrusted"
        );
        let garbled = parts("10.0.0.2:443", &["203.0.113.5, not-an-address, 10.9.9.9"]);
        assert_eq!(
            client_ip(&garbled.headers, &garbled.extensions, &trusted),
            ip("10.0.0.2"),
            "nothing left of garbage is trusted"
        );
        let none = parts("10.0.0.2:443", &[]);
        assert_eq!(client_ip(&none.headers, &none.extensions, &trusted), ip("10.0.0.2"));
    }
}
