//! The authorization request (docs/oidc.md): checked once, then answered at
//! once from a live browser session (single sign-on) or kept for the hosted
//! login page; and the code that ends a login.

use crate::clock::UnixTime;
use crate::error::{CiamError, Lang};
use crate::model::{App, AppAccess, ClientType, Flow, User};
use crate::service::Ciam;
use crate::store::{Grant, GrantKind};
use crate::token::OpaqueToken;

use super::clients::redirect_matches;
use super::{AuthRequest, BrowserBody, CODE_KEPT_SECONDS, CODE_SECONDS, CodeBody, NewGrant, REQUEST_SECONDS};
use super::{SCOPES, body, read_body};

/// The parameters of an authorization request, as sent (query or form).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[expect(missing_docs, reason = "the parameters of OpenID Connect Core §3.1.2.1")]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// How an authorization request is answered.
#[derive(Debug)]
pub enum Authorized {
    /// No app, or not its redirect URI: a page says so (400), and nothing
    /// is redirected anywhere.
    NoRedirect(NoRedirect),
    /// Back to the app: a code, or an error.
    Redirect(String),
    /// The hosted login page.
    Login(LoginPage),
}

/// Why an authorization request cannot be sent back to its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRedirect {
    /// `client_id` names no enabled app.
    UnknownClient,
    /// `redirect_uri` is missing or not registered for the app.
    UnknownRedirect,
}

/// What the hosted login page shows.
#[derive(Debug)]
pub struct LoginPage {
    /// Names the stored request; the page's forms carry it.
    pub request: OpaqueToken,
    /// The app's name.
    pub app_name: String,
    /// Fills the mobile field.
    pub login_hint: Option<String>,
    /// The language asked for.
    pub ui_locales: Option<String>,
}

/// The password change the page asks for before the login goes on.
#[derive(Debug)]
pub struct Change {
    /// PASSWORD_EXPIRED (must) or PASSWORD_WARN (may skip).
    pub flow: Flow,
    /// The state_token the change form carries.
    pub state_token: OpaqueToken,
    /// The password policy's tip.
    pub tip: String,
}

/// An OAuth error sent back to the app's redirect URI.
fn refuse(req: &AuthRequest, issuer: &str, error: &str, description: &str) -> Authorized {
    Authorized::Redirect(req.answer(issuer, &[("error", error), ("error_description", description)]))
}

/// The scopes granted: those of [`SCOPES`] asked for, in that order.
fn granted(scope: &str) -> String {
    SCOPES.iter().filter(|s| super::has_scope(scope, s)).copied().collect::<Vec<_>>().join(" ")
}

/// A PKCE challenge: 43 to 128 characters of base64url (RFC 7636 §4.2).
fn is_challenge(text: &str) -> bool {
    (43..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What `prompt` asks for.
#[derive(Debug, Clone, Copy, Default)]
struct Prompt {
    none: bool,
    login: bool,
}

/// The checks after the client and its redirect URI are known: each
/// failure goes back to the app.
fn check(params: &AuthorizeParams, app: &App, req: &mut AuthRequest) -> Result<Prompt, (&'static str, &'static str)> {
    if params.request.is_some() {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if params.request_uri.is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported"));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(("invalid_request", "response_type is required")),
        Some(_) => return Err(("unsupported_response_type", "only response_type=code is supported")),
    }
    let scope = params.scope.as_deref().unwrap_or_default();
    if !super::has_scope(scope, "openid") {
        return Err(("invalid_scope", "scope must include openid"));
    }
    req.scope = granted(scope);
    match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
        (Some(challenge), Some("S256")) if is_challenge(challenge) => req.code_challenge = Some(challenge.to_owned()),
        (Some(_), Some("S256")) => return Err(("invalid_request", "code_challenge is not a PKCE challenge")),
        (Some(_), _) => return Err(("invalid_request", "code_challenge_method must be S256")),
        (None, Some(_)) => return Err(("invalid_request", "code_challenge_method without code_challenge")),
        (None, None) if app.oidc.client_type == ClientType::Public => {
            return Err(("invalid_request", "a public client must send a PKCE code_challenge (S256)"));
        }
        (None, None) => {}
    }
    if let Some(max_age) = &params.max_age {
        req.max_age =
            Some(max_age.trim().parse::<u32>().map_err(|_| ("invalid_request", "max_age is not a number"))?.into());
    }
    let values: Vec<&str> = params.prompt.as_deref().unwrap_or_default().split(' ').filter(|v| !v.is_empty()).collect();
    if values.iter().any(|v| !["none", "login", "consent", "select_account"].contains(v)) {
        return Err(("invalid_request", "unknown prompt value"));
    }
    let prompt = Prompt { none: values.contains(&"none"), login: values.contains(&"login") };
    if prompt.none && values.len() > 1 {
        return Err(("invalid_request", "prompt=none cannot be combined with other values"));
    }
    Ok(prompt)
}

impl Ciam {
    /// An authorization request, with the browser's session cookie when it
    /// has one.
    pub async fn authorize(&self, params: &AuthorizeParams, browser: Option<&str>) -> Result<Authorized, CiamError> {
        let Some(app) = self.enabled_app(params.client_id.as_deref().unwrap_or_default()).await? else {
            return Ok(Authorized::NoRedirect(NoRedirect::UnknownClient));
        };
        let registered = params
            .redirect_uri
            .as_deref()
            .filter(|uri| app.oidc.redirect_uris.iter().any(|r| redirect_matches(r, uri)));
        let Some(redirect_uri) = registered else {
            return Ok(Authorized::NoRedirect(NoRedirect::UnknownRedirect));
        };
        let text =
            |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut req = AuthRequest {
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: String::new(),
            state: params.state.clone().filter(|s| !s.is_empty()),
            // Sent back exactly as it came (OpenID Connect Core §3.1.2.1).
            nonce: params.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: None,
            max_age: None,
            login_hint: text(&params.login_hint),
            ui_locales: text(&params.ui_locales),
        };
        let issuer = self.config().issuer.as_str();
        let prompt = match check(params, &app, &mut req) {
            Ok(prompt) => prompt,
            Err((error, description)) => return Ok(refuse(&req, issuer, error, description)),
        };
        let now = self.now();
        let session = match browser {
            Some(cookie) if !prompt.login => self.browser_session(cookie).await?,
            _ => None,
        };
        // `max_age=0` asks for a password now, as `prompt=login` does
        // (OpenID Connect Core §3.1.2.1).
        let fresh = |auth_time: UnixTime| req.max_age.is_none_or(|max| max > 0 && now - auth_time <= max);
        let session = session.filter(|(_, auth_time)| fresh(*auth_time));
        match session {
            Some((user, auth_time)) => self.single_sign_on(&app, req, &user, auth_time, prompt).await,
            None if prompt.none => Ok(refuse(&req, issuer, "login_required", "no one is signed in")),
            None => self.login_page(&app, &req).await.map(Authorized::Login),
        }
    }

    /// The user of a live browser session, with when they last typed a
    /// password.
    pub(crate) async fn browser_session(&self, cookie: &str) -> Result<Option<(User, UnixTime)>, CiamError> {
        let Some(grant) = self.live_grant(cookie, GrantKind::Browser).await? else {
            return Ok(None);
        };
        let Some(user_id) = &grant.user_id else {
            return Ok(None);
        };
        let session: BrowserBody = read_body(&grant)?;
        Ok(self.store().get_user(user_id).await?.map(|user| (user, session.auth_time)))
    }

    /// A request answered from the browser's session, after checking for
    /// this app and now what the password login checks after the password.
    async fn single_sign_on(
        &self,
        app: &App,
        req: AuthRequest,
        user: &User,
        auth_time: UnixTime,
        prompt: Prompt,
    ) -> Result<Authorized, CiamError> {
        let issuer = self.config().issuer.as_str();
        if user.disabled
            || (app.access == AppAccess::Assigned && !self.store().is_member(&app.client_id, &user.id).await?)
        {
            return Ok(refuse(&req, issuer, "access_denied", super::DENIED));
        }
        if self.password_change_due(app, user).await? {
            if prompt.none {
                return Ok(refuse(&req, issuer, "interaction_required", "the password must be changed"));
            }
            // The change is offered once the password is typed again: a
            // browser session alone does not let anyone set a new one.
            return self.login_page(app, &req).await.map(Authorized::Login);
        }
        let (redirect, grant) = self.code_for(&req, user, auth_time)?;
        self.store().insert_grants(&[grant]).await?;
        Ok(Authorized::Redirect(redirect))
    }

    /// Whether `app` would ask `user` to change the password first (it
    /// checks password age, and the password is old).
    async fn password_change_due(&self, app: &App, user: &User) -> Result<bool, CiamError> {
        if !app.password_expiry_check {
            return Ok(false);
        }
        let age = self.password_policy().await?.age(user.password_changed_at, self.now());
        Ok(age != crate::policy::PasswordAge::Fresh)
    }

    /// The change form's contents.
    pub(crate) async fn change(&self, flow: Flow, state_token: OpaqueToken, lang: Lang) -> Result<Change, CiamError> {
        let tip = self.password_policy().await?.tip.get(lang).to_owned();
        Ok(Change { flow, state_token, tip })
    }

    /// Keeps a request for the login page.
    async fn login_page(&self, app: &App, req: &AuthRequest) -> Result<LoginPage, CiamError> {
        let now = self.now();
        let (request, grant) = NewGrant {
            kind: GrantKind::Request,
            client_id: Some(app.client_id.clone()),
            user_id: None,
            family: None,
            expires_at: now + REQUEST_SECONDS,
        }
        .make(body(req)?)?;
        self.store().insert_grants(&[grant]).await?;
        Ok(LoginPage {
            request,
            app_name: app.name.clone(),
            login_hint: req.login_hint.clone(),
            ui_locales: req.ui_locales.clone(),
        })
    }

    /// A code for `user` answering `req`, and where it sends the browser.
    pub(crate) fn code_for(
        &self,
        req: &AuthRequest,
        user: &User,
        auth_time: UnixTime,
    ) -> Result<(String, Grant), CiamError> {
        let now = self.now();
        let code_body = CodeBody {
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            scope: req.scope.clone(),
            auth_time,
            valid_until: now + CODE_SECONDS,
        };
        let (code, grant) = NewGrant {
            kind: GrantKind::Code,
            client_id: Some(req.client_id.clone()),
            user_id: Some(user.id.clone()),
            family: None,
            expires_at: now + CODE_KEPT_SECONDS,
        }
        .make(body(&code_body)?)?;
        Ok((req.answer(&self.config().issuer, &[("code", code.expose())]), grant))
    }
}
