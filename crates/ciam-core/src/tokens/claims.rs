//! What an id_token says: the SDK's claims (with the vendor's `api`
//! object) and what an OpenID Connect id_token has instead (docs/oidc.md).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::clock::UnixTime;
use crate::model::{App, ClientId, SigningAlg, User};
use crate::token::new_id;

/// Who an id_token is for, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenBase<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub client_id: &'a ClientId,
    /// `sub`.
    pub user: &'a User,
    /// `iat`.
    pub now: UnixTime,
    /// Lifetime, seconds.
    pub ttl: i64,
    /// What signs it.
    pub alg: SigningAlg,
}

impl<'a> IdTokenBase<'a> {
    /// An id_token of `app` for `user`, issued `now`: the app's audience,
    /// lifetime and algorithm.
    pub fn of(issuer: &'a str, app: &'a App, user: &'a User, now: UnixTime) -> Self {
        IdTokenBase { issuer, client_id: &app.client_id, user, now, ttl: app.id_token_ttl, alg: app.id_token_alg }
    }
}

/// What an OpenID Connect id_token adds (docs/oidc.md).
#[derive(Debug, Clone, Serialize)]
pub struct OidcClaims {
    /// When the user last typed a password.
    pub auth_time: UnixTime,
    /// The authorization request's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of the access token's hash, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
}

/// `at_hash` of an access token for an id_token signed with `alg` (OpenID
/// Connect Core §3.1.3.6): the left half of its SHA-256 for RS256, of its
/// SHA-512 for EdDSA (Ed25519 hashes with SHA-512, and that is what relying
/// parties check).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let hash = match alg {
        SigningAlg::RS256 => &aws_lc_rs::digest::SHA256,
        SigningAlg::EdDSA => &aws_lc_rs::digest::SHA512,
    };
    let digest = aws_lc_rs::digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The claims of an id_token.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Audience: the client id.
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Unique token id.
    pub jti: String,
    /// The vendor's user-info object, as a JSON string (not in OpenID
    /// Connect id_tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// What an OpenID Connect id_token adds.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcClaims>,
}

/// The vendor's user-info shape carried in `api`.
#[derive(Serialize)]
struct ApiUser<'a> {
    id: &'a str,
    #[serde(rename = "userName")]
    user_name: Option<&'a str>,
    name: Option<&'a str>,
    mobile: &'a str,
    email: Option<&'a str>,
}

impl IdTokenClaims {
    pub(crate) fn new(base: IdTokenBase<'_>) -> Self {
        let IdTokenBase { issuer, client_id, user, now, ttl, .. } = base;
        let api = ApiUser {
            id: user.id.as_str(),
            user_name: user.user_name.as_deref(),
            name: user.name.as_deref(),
            mobile: user.mobile.as_str(),
            email: user.email.as_deref(),
        };
        Self {
            iss: issuer.to_owned(),
            aud: client_id.to_string(),
            sub: user.id.to_string(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: new_id(),
            api: Some(serde_json::to_string(&api).unwrap_or_default()),
            oidc: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core's example access token and its RS256 at_hash.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
        let eddsa = at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::EdDSA);
        let sha512 =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        assert_eq!(URL_SAFE_NO_PAD.decode(&eddsa).expect("base64url"), &sha512.as_ref()[..32]);
    }
}
