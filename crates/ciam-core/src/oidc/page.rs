//! The hosted login page's two forms (docs/oidc.md): the password login,
//! which runs the very login of the SDK call for the requesting app, and
//! the password change that an old password leads to. Both end, when all
//! is well, in a browser session and a code.

use crate::call::{Answered, Call, Caller};
use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode};
use crate::login::LoginOutcome;
use crate::model::{Action, App, Flow, Status, User};
use crate::password::Password;
use crate::service::Ciam;
use crate::store::{Grant, GrantKind};
use crate::token::OpaqueToken;

use super::authorize::Change;
use super::{AuthRequest, DENIED, read_body};

/// How a form of the login page is answered.
#[derive(Debug)]
pub enum PageOutcome {
    /// Signed in: the browser goes back to the app with a code, and keeps
    /// `browser` as its session.
    SignedIn {
        /// The app's redirect URI with the code.
        redirect: String,
        /// The browser session's token, for its cookie.
        browser: OpaqueToken,
        /// Seconds the cookie lives.
        max_age: i64,
    },
    /// The password must (or may) change first.
    Change(Change),
    /// The user may not use the app: back to it with `access_denied`.
    Denied(String),
    /// The stored request is gone (used, expired): the app must start again.
    Expired,
}

impl Answered for PageOutcome {
    fn status(&self) -> Status {
        match self {
            PageOutcome::SignedIn { .. } | PageOutcome::Expired => Status::Success,
            PageOutcome::Change(change) if change.flow == Flow::PasswordWarn => Status::PasswordWarn,
            PageOutcome::Change(_) => Status::PasswordExpired,
            PageOutcome::Denied(_) => Status::AccessDenied,
        }
    }
}

/// A stored request read once for a form of the login page: what the page
/// shows of it, and what the form's login then runs with.
#[derive(Debug, Clone)]
pub struct PendingPage {
    pub(super) req: AuthRequest,
    pub(super) app: App,
}

impl PendingPage {
    /// The app's name.
    pub fn app_name(&self) -> &str {
        &self.app.name
    }

    /// Fills the mobile field.
    pub fn login_hint(&self) -> Option<&str> {
        self.req.login_hint.as_deref()
    }

    /// The language asked for.
    pub fn ui_locales(&self) -> Option<&str> {
        self.req.ui_locales.as_deref()
    }

    /// Where the app's answer goes.
    pub fn redirect_uri(&self) -> &str {
        &self.req.redirect_uri
    }
}

/// A form of the login page, as posted.
#[derive(Debug)]
pub struct PageForm<'a> {
    /// Names the stored request.
    pub request: &'a str,
    /// The stored request, as [`Ciam::pending_page`] read it.
    pub pending: PendingPage,
    /// Who is posting.
    pub caller: Caller,
    /// The browser's session cookie, if it has one (replaced by a login).
    pub browser: Option<&'a str>,
}

impl Ciam {
    /// The stored request `request` names, with its app (enabled); `None`
    /// when the request is gone. Read once per form: the page draws from it
    /// and the form's login runs with it.
    pub async fn pending_page(&self, request: &str) -> Result<Option<PendingPage>, CiamError> {
        let Some(grant) = self.live_grant(request, GrantKind::Request).await? else {
            return Ok(None);
        };
        let req: AuthRequest = read_body(&grant)?;
        Ok(self.enabled_app(req.client_id.as_str()).await?.map(|app| PendingPage { req, app }))
    }

    /// The change form's contents again (after a refusal).
    pub async fn change_form(
        &self,
        flow: Flow,
        state_token: &str,
        lang: crate::error::Lang,
    ) -> Result<Change, CiamError> {
        self.change(flow, OpaqueToken::from_client(state_token), lang).await
    }

    /// The login form: mobile and password.
    pub async fn page_login(
        &self,
        form: PageForm<'_>,
        mobile: &str,
        password: &Password,
    ) -> Result<PageOutcome, CiamError> {
        let PendingPage { req, app } = form.pending;
        let lang = form.caller.lang;
        let caller = Caller { client_id: Some(app.client_id.to_string()), ..form.caller };
        let mut call = self.open_page_call(caller, app, Action::OidcLogin).await?;
        let result = async {
            let (user, now) = self.check_login(&mut call, mobile, password).await?;
            self.after_password(&mut call, &req, &user, now, form.request, form.browser, lang).await
        }
        .await;
        self.close_call(call, result).await
    }

    /// What follows a right password: the app's access rule, the password's
    /// age, then the browser session and the code.
    #[expect(clippy::too_many_arguments, reason = "the steps' state, passed on as it is")]
    async fn after_password(
        &self,
        call: &mut Call,
        req: &AuthRequest,
        user: &User,
        now: UnixTime,
        request: &str,
        browser: Option<&str>,
        lang: crate::error::Lang,
    ) -> Result<PageOutcome, CiamError> {
        if !self.admits(call, user).await? {
            return Ok(PageOutcome::Denied(self.denied(req)));
        }
        let (flow, state_token) = match self.password_age_flow(call, user, now).await? {
            Some(LoginOutcome::PasswordWarn { state_token, .. }) => (Flow::PasswordWarn, state_token),
            Some(LoginOutcome::PasswordExpired { state_token, .. }) => (Flow::PasswordExpired, state_token),
            _ => return self.sign_in(call, req, user, now, request, browser).await,
        };
        // The change form's state_token is this request's, and only the
        // page's: an SDK state_token cannot be used on it.
        let bound = Grant {
            digest: state_token.digest(),
            kind: GrantKind::Change,
            client_id: Some(req.client_id.clone()),
            user_id: Some(user.id.clone()),
            family: Some(Self::digest_of(request).to_string()),
            body: "{}".into(),
            uses: 0,
            expires_at: now + self.config().state_token_ttl,
        };
        self.store().insert_grants(&[bound]).await?;
        Ok(PageOutcome::Change(self.change(flow, state_token, lang).await?))
    }

    /// Whether `state_token` is a change the page offered for `request`.
    async fn offered(&self, state_token: &str, request: &str) -> Result<bool, CiamError> {
        let offered = self.live_grant(state_token, GrantKind::Change).await?;
        Ok(offered.is_some_and(|g| g.family.as_deref() == Some(Self::digest_of(request).as_str())))
    }

    /// The change form: a new password (or, from PASSWORD_WARN, a skip).
    pub async fn page_change_password(
        &self,
        form: PageForm<'_>,
        state_token: &str,
        new_password: Option<&Password>,
    ) -> Result<PageOutcome, CiamError> {
        let PendingPage { req, app } = form.pending;
        let action = if new_password.is_some() { Action::OidcPasswordUpdate } else { Action::PasswordSkip };
        let caller = Caller { client_id: Some(app.client_id.to_string()), ..form.caller };
        let mut call = self.open_page_call(caller, app, action).await?;
        let result = async {
            let now = self.now();
            if !self.offered(state_token, form.request).await? {
                return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
            }
            let (digest, grant) = self.state_grant(&call, state_token, now).await?;
            call.note_user(&grant.user_id);
            let user = self.grant_user(&mut call, &grant).await?;
            let Some(new_password) = new_password else {
                if grant.flow != Flow::PasswordWarn
                    || self.store().take_state_grant(&digest, now, &[Flow::PasswordWarn]).await?.is_none()
                {
                    return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
                }
                return self.sign_in(&mut call, &req, &user, now, form.request, form.browser).await;
            };
            let user = self.change_password(&call, user, &digest, new_password, now).await?;
            self.sign_in(&mut call, &req, &user, now, form.request, form.browser).await
        }
        .await;
        self.close_call(call, result).await
    }

    /// Sets a new password from a state_token's flow: the policy and the
    /// history apply, the state_token is used up, and every session and
    /// grant of the user ends.
    async fn change_password(
        &self,
        call: &Call,
        user: User,
        digest: &crate::model::TokenDigest,
        new_password: &Password,
        now: UnixTime,
    ) -> Result<User, CiamError> {
        if new_password.is_empty() {
            return Err(CiamError::refused(ErrorCode::NewPasswordEmpty));
        }
        let policy = self.password_policy().await?;
        policy.check(new_password)?;
        if self.is_reused(call, &user, new_password, policy.history).await? {
            return Err(CiamError::refused(ErrorCode::PasswordReused));
        }
        let new_hash = self.hasher().hash(new_password, call.owner()).await?;
        let flows = [Flow::PasswordWarn, Flow::PasswordExpired];
        if self.store().take_state_grant(digest, now, &flows).await?.is_none() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        self.store().set_password(&user.id, &new_hash, now, policy.history).await?;
        Ok(User { password_hash: new_hash, password_changed_at: now, ..user })
    }

    /// Back to the app with `access_denied`.
    pub(super) fn denied(&self, req: &AuthRequest) -> String {
        req.answer(&self.config().issuer, &[("error", "access_denied"), ("error_description", DENIED)])
    }

    /// A login that went through: the request used up (or `Expired`, when
    /// another post used it first); then a new browser session (replacing
    /// the browser's old one) and the code stored, and the login's reserved
    /// attempt and check places given back, in one commit.
    pub(super) async fn sign_in(
        &self,
        call: &mut Call,
        req: &AuthRequest,
        user: &User,
        now: UnixTime,
        request: &str,
        old_browser: Option<&str>,
    ) -> Result<PageOutcome, CiamError> {
        let max_age = self.config().sso_session_seconds;
        let (browser, session) = self.browser_grant(user, now)?;
        let (redirect, code) = self.code_for(req, user, now)?;
        // The request is used up first, on its own: of two posts of one
        // form at once (on any instances), one signs in.
        if !self.store().delete_grant(&Self::digest_of(request), GrantKind::Request).await? {
            return Ok(PageOutcome::Expired);
        }
        let spent: Vec<_> = old_browser.map(|old| (Self::digest_of(old), GrantKind::Browser)).into_iter().collect();
        let (reserved, places) = (call.take_reservation(), call.take_places());
        let stored = self.store().commit_sign_in(&[session, code], &spent, reserved.as_ref(), places.as_deref()).await;
        if stored.is_err() {
            // Left for `close_call` to give back.
            if let Some(reserved) = reserved {
                call.reserve(reserved);
            }
            if let Some(places) = places {
                call.hold_places(places);
            }
        }
        stored?;
        Ok(PageOutcome::SignedIn { redirect, browser, max_age })
    }
}
