//! The token endpoint (codes and refresh tokens), userinfo and revocation
//! (docs/oidc.md). Errors are OAuth 2.0's ([`OAuthError`]), not the SDK's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::CiamError;
use crate::keys::{IdTokenBase, OidcClaims, at_hash};
use crate::model::{App, TokenDigest, User};
use crate::service::Ciam;
use crate::store::{Grant, GrantKind};
use crate::token::constant_time_eq;

use super::clients::{ClientAuth, OAuthError};
use super::{CodeBody, NewGrant, TokenBody, body, has_scope, read_body};

/// A token request's parameters (RFC 6749 §4.1.3, §6).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[expect(missing_docs, reason = "the parameters of RFC 6749 §4.1.3 and §6")]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[expect(missing_docs, reason = "the fields of RFC 6749 §5.1 and OpenID Connect Core §3.1.3.3")]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::bad("invalid_grant", description)
}

/// Whether `verifier` answers the S256 `challenge` (RFC 7636 §4.6).
fn pkce_holds(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    well_formed && constant_time_eq(&URL_SAFE_NO_PAD.encode(digest.as_ref()), challenge)
}

impl Ciam {
    /// `POST /api/v1/oauth2/token`.
    pub async fn token(
        &self,
        params: &TokenParams,
        basic: Option<(String, String)>,
    ) -> Result<TokenAnswer, OAuthError> {
        let auth =
            ClientAuth { basic, client_id: params.client_id.clone(), client_secret: params.client_secret.clone() };
        let app = self.authenticate_client(&auth).await?;
        match params.grant_type.as_deref() {
            Some("authorization_code") => self.redeem_code(&app, params).await,
            Some("refresh_token") => self.rotate_refresh(&app, params).await,
            None => Err(OAuthError::bad("invalid_request", "grant_type is required")),
            Some(_) => Err(OAuthError::bad("unsupported_grant_type", "authorization_code or refresh_token")),
        }
    }

    /// A code for its tokens. Any redemption uses the code up; a second
    /// one revokes every token the first issued.
    async fn redeem_code(&self, app: &App, params: &TokenParams) -> Result<TokenAnswer, OAuthError> {
        let code = params.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 128);
        let code = code.ok_or_else(|| OAuthError::bad("invalid_request", "code is required"))?;
        let digest = Self::digest_of(code);
        let grant =
            self.store().use_grant(&digest, GrantKind::Code).await?.ok_or_else(|| invalid_grant("unknown code"))?;
        if grant.uses > 1 {
            self.store().revoke_family(digest.as_str()).await?;
            return Err(invalid_grant("the code was already used; what it issued is revoked"));
        }
        let code_body: CodeBody = read_body(&grant)?;
        let now = self.now();
        if grant.client_id.as_ref() != Some(&app.client_id) || now >= code_body.valid_until {
            return Err(invalid_grant("unknown or expired code"));
        }
        if params.redirect_uri.as_deref() != Some(code_body.redirect_uri.as_str()) {
            return Err(invalid_grant("redirect_uri differs from the authorization request's"));
        }
        match (&code_body.code_challenge, params.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_holds(verifier, challenge) => {}
            (None, None) => {}
            _ => return Err(invalid_grant("code_verifier does not match")),
        }
        let user = self.grant_owner(&grant).await?;
        let body = TokenBody { scope: code_body.scope, auth_time: code_body.auth_time };
        let family = digest.as_str().to_owned();
        let refresh = has_scope(&body.scope, "offline_access").then(|| (now + app.session_ttl, body.clone()));
        let answer = self.issue(app, &user, body, family, code_body.nonce, refresh).await?;
        self.still_first(&digest, GrantKind::Code, digest.as_str()).await?;
        Ok(answer)
    }

    /// After issuing from a code or refresh token: when it was redeemed
    /// again meanwhile (on any instance), that redemption revoked the
    /// family before these tokens were stored, so they are revoked here and
    /// refused. Whatever the order of the two, no token of a replayed grant
    /// lives.
    async fn still_first(&self, digest: &TokenDigest, kind: GrantKind, family: &str) -> Result<(), OAuthError> {
        let now = self.now();
        let used = self.store().get_grant(digest, kind, now).await?;
        if used.is_some_and(|g| g.uses > 1) {
            self.store().revoke_family(family).await?;
            return Err(invalid_grant("redeemed twice; what it issued is revoked"));
        }
        Ok(())
    }

    /// A refresh token for new tokens and its successor. Each is used once;
    /// a second use revokes its whole family.
    async fn rotate_refresh(&self, app: &App, params: &TokenParams) -> Result<TokenAnswer, OAuthError> {
        let token = params.refresh_token.as_deref().filter(|t| !t.is_empty() && t.len() <= 128);
        let token = token.ok_or_else(|| OAuthError::bad("invalid_request", "refresh_token is required"))?;
        let grant = self.store().use_grant(&Self::digest_of(token), GrantKind::Refresh).await?;
        let grant = grant.ok_or_else(|| invalid_grant("unknown refresh_token"))?;
        let family = grant.family.clone().unwrap_or_default();
        if grant.uses > 1 {
            self.store().revoke_family(&family).await?;
            return Err(invalid_grant("the refresh_token was already used; its family is revoked"));
        }
        if grant.client_id.as_ref() != Some(&app.client_id) || grant.expires_at <= self.now() {
            return Err(invalid_grant("unknown or expired refresh_token"));
        }
        let granted: TokenBody = read_body(&grant)?;
        // A narrower scope is for this access token only: the new refresh
        // token keeps what was granted (RFC 6749 §6).
        let mut body = granted.clone();
        if let Some(asked) = params.scope.as_deref().filter(|s| !s.trim().is_empty()) {
            if asked.split(' ').filter(|s| !s.is_empty()).any(|s| !has_scope(&granted.scope, s)) {
                return Err(OAuthError::bad("invalid_scope", "more scope than was granted"));
            }
            let kept: Vec<&str> = granted.scope.split(' ').filter(|s| has_scope(asked, s)).collect();
            body.scope = kept.join(" ");
        }
        let user = self.grant_owner(&grant).await?;
        let refresh = Some((grant.expires_at, granted));
        let answer = self.issue(app, &user, body, family.clone(), None, refresh).await?;
        self.still_first(&grant.digest, GrantKind::Refresh, &family).await?;
        Ok(answer)
    }

    /// The enabled user a code or refresh token was issued to.
    async fn grant_owner(&self, grant: &Grant) -> Result<User, OAuthError> {
        self.enabled_owner(grant).await?.ok_or_else(|| invalid_grant("the user can no longer sign in"))
    }

    /// An access token and an id_token for `body_kept`, and, when `refresh`
    /// says until when and for what, a refresh token; all of `family`.
    async fn issue(
        &self,
        app: &App,
        user: &User,
        body_kept: TokenBody,
        family: String,
        nonce: Option<String>,
        refresh: Option<(i64, TokenBody)>,
    ) -> Result<TokenAnswer, OAuthError> {
        let now = self.now();
        let kept = body(&body_kept)?;
        let grant = |kind, expires_at| NewGrant {
            kind,
            client_id: Some(app.client_id.clone()),
            user_id: Some(user.id.clone()),
            family: Some(family.clone()),
            expires_at,
        };
        let (access, access_grant) = grant(GrantKind::Access, now + app.id_token_ttl).make(kept)?;
        let mut grants = vec![access_grant];
        let refresh = match refresh.filter(|(until, _)| *until > now) {
            Some((until, granted)) => {
                let (token, refresh_grant) = grant(GrantKind::Refresh, until).make(body(&granted)?)?;
                grants.push(refresh_grant);
                Some(token.expose().to_owned())
            }
            None => None,
        };
        let issuer = self.config().issuer.as_str();
        let base = IdTokenBase::of(issuer, app, user, now);
        let hash = Some(at_hash(access.expose(), app.id_token_alg));
        let claims = OidcClaims { auth_time: body_kept.auth_time, nonce, at_hash: hash };
        let id_token = self.keys().sign_oidc_id_token(base, claims)?;
        self.store().insert_grants(&grants).await?;
        Ok(TokenAnswer {
            access_token: access.expose().to_owned(),
            token_type: "Bearer",
            expires_in: app.id_token_ttl,
            id_token,
            scope: body_kept.scope,
            refresh_token: refresh,
        })
    }

    /// `/api/v1/oauth2/userinfo`: the claims the access token's scopes
    /// open; `None` when the token is not a live one.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<serde_json::Value>, CiamError> {
        let Some(grant) = self.live_grant(access_token, GrantKind::Access).await? else {
            return Ok(None);
        };
        let body: TokenBody = read_body(&grant)?;
        let Some(user) = self.enabled_owner(&grant).await? else {
            return Ok(None);
        };
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), user.id.as_str().into());
        if has_scope(&body.scope, "phone") {
            claims.insert("phone_number".into(), user.mobile.as_str().into());
            claims.insert("phone_number_verified".into(), false.into());
        }
        if has_scope(&body.scope, "profile") {
            if let Some(name) = &user.name {
                claims.insert("name".into(), name.as_str().into());
            }
            if let Some(user_name) = &user.user_name {
                claims.insert("preferred_username".into(), user_name.as_str().into());
            }
        }
        if has_scope(&body.scope, "email")
            && let Some(email) = &user.email
        {
            claims.insert("email".into(), email.as_str().into());
            claims.insert("email_verified".into(), false.into());
        }
        Ok(Some(serde_json::Value::Object(claims)))
    }

    /// `/api/v1/oauth2/revoke` (RFC 7009): a refresh token ends with its
    /// family, an access token alone. A token that is unknown, or another
    /// client's, is answered the same (200) and changes nothing.
    pub async fn revoke(&self, token: Option<&str>, auth: &ClientAuth) -> Result<(), OAuthError> {
        let app = self.authenticate_client(auth).await?;
        let token =
            token.filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::bad("invalid_request", "token is required"))?;
        for kind in [GrantKind::Refresh, GrantKind::Access] {
            let Some(grant) = self.live_grant(token, kind).await? else {
                continue;
            };
            if grant.client_id.as_ref() != Some(&app.client_id) {
                return Ok(());
            }
            match (&grant.family, kind) {
                (Some(family), GrantKind::Refresh) => self.store().revoke_family(family).await?,
                _ => u64::from(self.store().delete_grant(&grant.digest, kind).await?),
            };
            return Ok(());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_answers_the_s256_challenge_made_from_it() {
        // The challenge as Python's hashlib and base64 make it.
        let verifier = "dBjftJeZ4CVP-mJ92IaHRgOlQmZc3Vuh1Ivm6cT0Y9I";
        assert!(pkce_holds(verifier, "S1ffuEi-L5AyLHhlDrbdSVjmILGB42U18BOaT1SVHiY"));
        assert!(!pkce_holds(verifier, "S1ffuEi-L5AyLHhlDrbdSVjmILGB42U18BOaT1SVHiZ"));
        assert!(!pkce_holds("short", "S1ffuEi-L5AyLHhlDrbdSVjmILGB42U18BOaT1SVHiY"));
    }
}
