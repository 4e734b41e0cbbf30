//! OpenID Connect (docs/oidc.md): apps as clients, the authorization code
//! flow with PKCE, the hosted login page's logins, browser sessions for
//! single sign-on, tokens, userinfo, revocation and logout.
//!
//! Every step keeps what the next one needs as a [`Grant`] in the store, so
//! any instance answers any step. The modules, by step:
//! - [`clients`]: redirect URIs, secrets, client authentication;
//! - [`authorize`]: the authorization request, single sign-on, codes;
//! - [`page`]: the hosted login page's password login and change;
//! - [`exchange`]: the token endpoint, userinfo and revocation;
//! - [`logout`]: RP-initiated logout;
//! - [`tickets`]: SSO tickets from a native app's session to a web app.

pub mod authorize;
pub mod clients;
pub mod exchange;
pub mod logout;
pub mod page;
mod page_codes;
pub mod tickets;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::{ClientId, TokenDigest, User, UserId};
use crate::service::Ciam;
use crate::store::{Grant, GrantKind};
use crate::token::OpaqueToken;

/// Length of codes, access and refresh tokens, browser sessions, tickets and
/// stored requests: 43 characters of `[A-Za-z0-9]`, 256 bits.
pub const GRANT_TOKEN_LEN: usize = 43;
/// A code is valid this long.
pub const CODE_SECONDS: i64 = 60;
/// A spent code is remembered this long, so a replay still revokes what it
/// issued.
pub const CODE_KEPT_SECONDS: i64 = 86_400;
/// A stored authorization request waits this long for its login.
pub const REQUEST_SECONDS: i64 = 1_800;
/// An SSO ticket is valid this long.
pub const TICKET_SECONDS: i64 = 300;

/// Why an answer is `access_denied`.
pub(crate) const DENIED: &str = "this user may not use this app";

/// The scopes ciam knows; others are ignored.
pub const SCOPES: [&str; 5] = ["openid", "profile", "phone", "email", "offline_access"];

/// A validated authorization request, kept while the login page is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The app.
    pub client_id: ClientId,
    /// Where the answer goes, as the client sent it.
    pub redirect_uri: String,
    /// The granted scopes, of [`SCOPES`], space-separated.
    pub scope: String,
    /// Sent back unchanged.
    pub state: Option<String>,
    /// Put in the id_token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// Fills the page's mobile field.
    pub login_hint: Option<String>,
    /// The page's language, as asked.
    pub ui_locales: Option<String>,
}

impl AuthRequest {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        has_scope(&self.scope, scope)
    }

    /// The answer to this request at its redirect URI: `params` (a code, or
    /// an error), then its `state` and `iss` (RFC 9207).
    pub(crate) fn answer(&self, issuer: &str, params: &[(&str, &str)]) -> String {
        let mut all = params.to_vec();
        if let Some(state) = &self.state {
            all.push(("state", state));
        }
        all.push(("iss", issuer));
        with_query(&self.redirect_uri, &all)
    }
}

/// Whether space-separated `scopes` holds `scope`.
pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// What a code keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CodeBody {
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: UnixTime,
    /// The code's own end (the row is kept longer, [`CODE_KEPT_SECONDS`]).
    pub valid_until: UnixTime,
}

/// What an access or refresh token keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenBody {
    pub scope: String,
    pub auth_time: UnixTime,
}

/// What a browser session keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BrowserBody {
    pub auth_time: UnixTime,
}

/// A grant's body as JSON.
pub(crate) fn body<T: Serialize>(value: &T) -> Result<String, CiamError> {
    serde_json::to_string(value).map_err(|e| CiamError::Internal(format!("grant body: {e}")))
}

/// A grant's body read back.
pub(crate) fn read_body<T: for<'de> Deserialize<'de>>(grant: &Grant) -> Result<T, CiamError> {
    serde_json::from_str(&grant.body).map_err(|e| CiamError::Internal(format!("grant body: {e}")))
}

/// A new grant of `kind` named by a fresh token: the token and the grant.
pub(crate) struct NewGrant {
    pub kind: GrantKind,
    pub client_id: Option<ClientId>,
    pub user_id: Option<UserId>,
    pub family: Option<String>,
    pub expires_at: UnixTime,
}

impl NewGrant {
    /// Draws the token and makes the grant with `body`.
    pub fn make(self, body: String) -> Result<(OpaqueToken, Grant), CiamError> {
        let token = OpaqueToken::generate(GRANT_TOKEN_LEN)?;
        let grant = Grant {
            digest: token.digest(),
            kind: self.kind,
            client_id: self.client_id,
            user_id: self.user_id,
            family: self.family,
            body,
            uses: 0,
            expires_at: self.expires_at,
        };
        Ok((token, grant))
    }
}

/// `uri` with `params` added to its query (`application/x-www-form-urlencoded`,
/// OAuth 2.0 §4.1.2).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let encoded = serde_urlencoded::to_string(params).unwrap_or_default();
    if encoded.is_empty() {
        return uri.to_owned();
    }
    // Registered URIs have no fragment (see `clients::check_uri`).
    let joiner = match uri.find('?') {
        None => "?",
        Some(_) if uri.ends_with('?') || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{joiner}{encoded}")
}

impl Ciam {
    /// The grant of `kind` a token a browser or client presented names,
    /// alive now.
    pub(crate) async fn live_grant(&self, token: &str, kind: GrantKind) -> Result<Option<Grant>, CiamError> {
        let token = OpaqueToken::from_client(token);
        if token.expose().is_empty() || token.expose().len() > 128 {
            return Ok(None);
        }
        Ok(self.store().get_grant(&token.digest(), kind, self.now()).await?)
    }

    /// A new browser session for `user`, signed in at `now`: its token and
    /// its grant, to store.
    pub(crate) fn browser_grant(&self, user: &User, now: UnixTime) -> Result<(OpaqueToken, Grant), CiamError> {
        NewGrant {
            kind: GrantKind::Browser,
            client_id: None,
            user_id: Some(user.id.clone()),
            family: None,
            expires_at: now + self.config().sso_session_seconds,
        }
        .make(body(&BrowserBody { auth_time: now })?)
    }

    /// The enabled user a grant was made for, when there is one.
    pub(crate) async fn enabled_owner(&self, grant: &Grant) -> Result<Option<User>, CiamError> {
        Ok(match &grant.user_id {
            Some(id) => self.store().get_user(id).await?.filter(|u| !u.disabled),
            None => None,
        })
    }

    /// The digest a presented token is stored under.
    pub(crate) fn digest_of(token: &str) -> TokenDigest {
        OpaqueToken::from_client(token).digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_added_to_the_redirect_uris_query() {
        assert_eq!(
            with_query("https://a.test/cb", &[("code", "x y"), ("state", "s&")]),
            "https://a.test/cb?code=x+y&state=s%26"
        );
        assert_eq!(with_query("https://a.test/cb?app=1", &[("code", "c")]), "https://a.test/cb?app=1&code=c");
        assert_eq!(with_query("https://a.test/cb?", &[("code", "c")]), "https://a.test/cb?code=c");
        assert!(has_scope("openid phone", "phone"));
        assert!(!has_scope("openid phone", "phon"));
    }
}
