//! RP-initiated logout (docs/oidc.md, OpenID Connect RP-Initiated Logout
//! 1.0): with an `id_token_hint` ciam signed for the signed-in user, the
//! browser session ends at once; without one, only after the browser
//! confirms with a POST bound to it, so a link on another site cannot sign
//! anyone out. Redirects go only to a URI the app registered.

use crate::error::CiamError;
use crate::model::UserId;
use crate::service::Ciam;
use crate::store::GrantKind;

use super::clients::redirect_matches;
use super::with_query;

/// A logout request's parameters.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[expect(missing_docs, reason = "the parameters of RP-Initiated Logout 1.0 §2")]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    /// The vendor's name for `post_logout_redirect_uri`.
    pub redirect_url: Option<String>,
    pub state: Option<String>,
}

/// How a logout is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedOut {
    /// "Sign out?": nothing ended yet; the page posts back to confirm.
    Confirm,
    /// Ended (or no one was signed in): back to the app.
    Redirect(String),
    /// Ended (or no one was signed in): a page says so.
    SignedOut,
}

impl Ciam {
    /// A logout, from the browser with session cookie `browser`;
    /// `confirmed` when it comes from the "Sign out?" page's form.
    pub async fn end_session(
        &self,
        params: &LogoutParams,
        browser: Option<&str>,
        confirmed: bool,
    ) -> Result<LoggedOut, CiamError> {
        let issuer = self.config().issuer.as_str();
        let hint = params.id_token_hint.as_deref().and_then(|hint| self.keys().verify_hint(hint, issuer));
        let claim = |name: &str| hint.as_ref().and_then(|h| h.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
        let (hint_sub, hint_aud) = (claim("sub"), claim("aud"));
        let signed_in = match browser {
            Some(cookie) => self.live_grant(cookie, GrantKind::Browser).await?,
            None => None,
        };
        let signed_in_user = signed_in.as_ref().and_then(|g| g.user_id.clone());
        // A hint for someone else than the signed-in user proves nothing
        // about this browser: it must confirm.
        let hinted = hint_sub.is_some() && (signed_in_user.is_none() || signed_in_user == hint_sub.map(UserId::new));
        if !hinted && !confirmed && signed_in.is_some() {
            return Ok(LoggedOut::Confirm);
        }
        if let Some(grant) = &signed_in {
            self.store().delete_grant(&grant.digest, GrantKind::Browser).await?;
        }
        // The app the redirect is for: the hint's audience, which a
        // `client_id` sent beside it must equal; else the `client_id`.
        let client_id = match (&hint_aud, &params.client_id) {
            (Some(aud), Some(id)) if aud != id => None,
            (Some(aud), _) => Some(aud.clone()),
            (None, id) => id.clone(),
        };
        let target = params.post_logout_redirect_uri.as_ref().or(params.redirect_url.as_ref());
        if let (Some(client_id), Some(target)) = (client_id, target)
            && let Some(app) = self.enabled_app(&client_id).await?
            && app.oidc.post_logout_redirect_uris.iter().any(|r| redirect_matches(r, target))
        {
            let state = params.state.as_deref().filter(|s| !s.is_empty());
            let params: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
            return Ok(LoggedOut::Redirect(with_query(target, &params)));
        }
        Ok(LoggedOut::SignedOut)
    }
}
