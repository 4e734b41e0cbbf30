//! The calls around the login (docs/api.md §4): password update and skip with
//! a state_token, id_token refresh and logout with a session_token.

use crate::call::Call;
use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode};
use crate::keys::IdTokenBase;
use crate::login::{LoginOutcome, SessionGrant};
use crate::model::{Flow, LockKey, Session, StateGrant, Status, TokenDigest, User};
use crate::password::{Password, Verified};
use crate::service::Ciam;
use crate::token::OpaqueToken;

impl Ciam {
    /// `POST /api/v2/sdk/pwd/update`: from PASSWORD_WARN or
    /// PASSWORD_EXPIRED, with the old password and a new one.
    pub async fn update_password(
        &self,
        call: &mut Call,
        state_token: &str,
        old_password: &Password,
        new_password: &Password,
    ) -> Result<LoginOutcome, CiamError> {
        let now = self.now();
        let (digest, grant) = self.state_grant(call, state_token, now).await?;
        call.note_user(&grant.user_id);
        if old_password.is_empty() {
            return Err(CiamError::refused(ErrorCode::OldPasswordEmpty));
        }
        if new_password.is_empty() {
            return Err(CiamError::refused(ErrorCode::NewPasswordEmpty));
        }
        let user = self.grant_user(call, &grant).await?;

        // A state_token lets its holder guess the old password, so those
        // guesses count against the same locks and throttle as logins.
        let gate = self.throttle_gate(call).await?;
        let key = LockKey::account(&user.mobile);
        let (attempt, _) = self.begin_attempt(call, gate, key, None, ErrorCode::OldPasswordWrong).await?;
        let verified = self.hasher().verify(old_password, Some(&user.password_hash), call.owner()).await?;
        attempt.settle(self, call, (verified != Verified::Mismatch).then_some(())).await?;

        let password_policy = self.password_policy().await?;
        password_policy.check(new_password)?;
        if self.is_reused(call, &user, new_password, password_policy.history).await? {
            return Err(CiamError::refused(ErrorCode::PasswordReused));
        }
        let new_hash = self.hasher().hash(new_password, call.owner()).await?;
        let flows = [Flow::PasswordWarn, Flow::PasswordExpired];
        if self.store().take_state_grant(&digest, now, &flows).await?.is_none() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        self.store().set_password(&user.id, &new_hash, now, password_policy.history).await?;
        let user = User { password_hash: new_hash, password_changed_at: now, ..user };
        self.finish_flow(call, &user, now).await
    }

    /// Whether `candidate` is the current password or one of the last `history`.
    pub(crate) async fn is_reused(
        &self,
        call: &Call,
        user: &User,
        candidate: &Password,
        history: u32,
    ) -> Result<bool, CiamError> {
        let mut previous = vec![user.password_hash.clone()];
        if history > 0 {
            previous.extend(self.store().password_history(&user.id, history).await?);
        }
        // No password (a user made with an SMS code) is no previous one.
        previous.retain(|hash| !hash.is_empty());
        for hash in &previous {
            if matches!(self.hasher().verify(candidate, Some(hash), call.owner()).await?, Verified::Match { .. }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `GET /api/v2/sdk/pwd/skip-update`: only from PASSWORD_WARN.
    pub async fn skip_password_update(&self, call: &mut Call, state_token: &str) -> Result<LoginOutcome, CiamError> {
        let now = self.now();
        let (digest, grant) = self.state_grant(call, state_token, now).await?;
        call.note_user(&grant.user_id);
        if grant.flow != Flow::PasswordWarn {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        let user = self.grant_user(call, &grant).await?;
        if self.store().take_state_grant(&digest, now, &[Flow::PasswordWarn]).await?.is_none() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        self.finish_flow(call, &user, now).await
    }

    /// The grant behind a live state_token of the call's app.
    pub(crate) async fn state_grant(
        &self,
        call: &Call,
        state_token: &str,
        now: UnixTime,
    ) -> Result<(TokenDigest, StateGrant), CiamError> {
        let token = OpaqueToken::from_client(state_token);
        if token.expose().is_empty() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        let digest = token.digest();
        match self.store().get_state_grant(&digest, now).await? {
            Some(grant) if grant.client_id == call.app().client_id => Ok((digest, grant)),
            _ => Err(CiamError::refused(ErrorCode::StateTokenInvalid)),
        }
    }

    /// The user a grant is for, who must still exist and be enabled.
    pub(crate) async fn grant_user(&self, call: &mut Call, grant: &StateGrant) -> Result<User, CiamError> {
        let user = self
            .store()
            .get_user(&grant.user_id)
            .await?
            .ok_or_else(|| CiamError::refused(ErrorCode::StateTokenInvalid))?;
        call.note_mobile(user.mobile.as_str().to_owned());
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        Ok(user)
    }

    /// The end of an update or skip: admission to the app, then a session
    /// (the password's age was dealt with by the flow itself).
    async fn finish_flow(&self, call: &mut Call, user: &User, now: UnixTime) -> Result<LoginOutcome, CiamError> {
        if !self.admits(call, user).await? {
            return Ok(LoginOutcome::AccessDenied);
        }
        Ok(LoginOutcome::Success(self.open_session(call, user, now).await?))
    }

    /// `POST /api/v2/sdk/sso/session-token/id-token`: a fresh id_token for a
    /// live session of the call's app. `expire` is the session's remaining
    /// life.
    pub async fn refresh_id_token(&self, call: &mut Call, session_token: &str) -> Result<SessionGrant, CiamError> {
        let now = self.now();
        let token = OpaqueToken::from_client(session_token);
        let (session, user) = self.call_session(call, &token, now).await?;
        let app = call.app();
        let id_token = self.keys().sign_id_token(IdTokenBase::of(&self.config().issuer, app, &user, now))?;
        Ok(SessionGrant { session_token: token, expire: session.expires_at - now, id_token })
    }

    /// The live session `token` names, of the call's app, and its enabled
    /// user (noted on the call); `PARAM.0023` otherwise.
    pub(crate) async fn call_session(
        &self,
        call: &mut Call,
        token: &OpaqueToken,
        now: UnixTime,
    ) -> Result<(Session, User), CiamError> {
        let invalid = || CiamError::refused(ErrorCode::SessionTokenInvalid);
        if token.expose().is_empty() {
            return Err(invalid());
        }
        let (session, user) = self.store().get_session_user(&token.digest(), now).await?.ok_or_else(invalid)?;
        if session.client_id != call.app().client_id {
            return Err(invalid());
        }
        call.note_user(&user.id);
        if user.disabled {
            return Err(invalid());
        }
        Ok((session, user))
    }

    /// `/api/v2/sdk/logout`: revokes a session of the call's app. Idempotent:
    /// a session that is gone answers as one just ended; a live session of
    /// another app is refused, as refresh refuses it (docs/api.md §8).
    pub async fn logout(&self, call: &mut Call, session_token: &str) -> Result<Status, CiamError> {
        let token = OpaqueToken::from_client(session_token);
        let invalid = || CiamError::refused(ErrorCode::SessionTokenInvalid);
        if token.expose().is_empty() {
            return Err(invalid());
        }
        let digest = token.digest();
        if !self.store().delete_session(&digest, &call.app().client_id).await?
            && self.store().session_app(&digest, self.now()).await?.is_some()
        {
            return Err(invalid());
        }
        Ok(Status::Success)
    }
}
