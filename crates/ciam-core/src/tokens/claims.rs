//! What an id_token says: the SDK's claims (with the vendor's `api`
//! object) and what an OpenID Connect id_token has instead (docs/oidc.md).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::clock::UnixTime;
use crate::model::{ClientId, User};
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
}

/// What an OpenID Connect id_token adds (docs/oidc.md).
#[derive(Debug, Clone, Serialize)]
pub struct OidcClaims {
    /// When the user last typed a password.
    pub auth_time: UnixTime,
    /// The authorization request's nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of the access token's SHA-256, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
}

/// `at_hash` of an access token (OpenID Connect Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
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
    pub(crate) fn new(issuer: &str, client_id: &ClientId, user: &User, now: UnixTime, ttl: i64) -> Self {
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
