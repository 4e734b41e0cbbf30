//! The login state machine and the flows that continue it: password update
//! and skip with a state_token, id_token refresh and logout with a
//! session_token.
//!
//! Order of a mobile + password login (CONTRACT §2): empty fields → lock →
//! password (a dummy hash for unknown mobiles, so both take as long and count
//! down alike) → disabled → app membership → password age → session.

use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Lang, Refusal};
use crate::mobile::Mobile;
use crate::password::{Password, Verified};
use crate::policy::{LockoutPolicy, PasswordAge};
use crate::service::Ciam;
use crate::store::{App, AppAccess, AuditEvent, FailureAudit, FailureState, Flow, Session, StateGrant, User};
use crate::token::{OpaqueToken, SESSION_TOKEN_LEN, STATE_TOKEN_LEN, sha256_hex};

/// A session handed to the client.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    /// The session_token (shown once; stored as a digest).
    pub session_token: OpaqueToken,
    /// Seconds the session_token stays valid.
    pub expire: i64,
    /// A fresh id_token.
    pub id_token: String,
}

/// What a successful call (HTTP 200) answers.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// `SUCCESS` with a session.
    Success(SessionGrant),
    /// `PASSWORD_WARN`: may update or skip.
    PasswordWarn {
        /// The state_token for the next call.
        state_token: OpaqueToken,
        /// The policy as the seed's JSON string.
        data: String,
    },
    /// `PASSWORD_EXPIRED`: must update.
    PasswordExpired {
        /// The state_token for the next call.
        state_token: OpaqueToken,
        /// The policy as the seed's JSON string.
        data: String,
    },
    /// `ACCESS_DENIED`: the app admits only assigned users.
    AccessDenied,
}

impl LoginOutcome {
    /// The `status` of a successful login.
    pub const SUCCESS: &'static str = "SUCCESS";

    /// The `status` string of the answer.
    pub fn status(&self) -> &'static str {
        match self {
            LoginOutcome::Success(_) => Self::SUCCESS,
            LoginOutcome::PasswordWarn { .. } => "PASSWORD_WARN",
            LoginOutcome::PasswordExpired { .. } => "PASSWORD_EXPIRED",
            LoginOutcome::AccessDenied => "ACCESS_DENIED",
        }
    }
}

/// The lockout key of what a user typed: the E.164 number, or for input
/// that is no phone number a digest of it (bounded, and never stored raw).
pub fn lockout_key(parsed: Option<&Mobile>, typed: &str) -> String {
    match parsed {
        Some(m) => m.as_str().to_owned(),
        None => format!("x:{}", &sha256_hex(typed.trim().as_bytes())[..32]),
    }
}

/// `LOGIN.0001` with the minutes and seconds left.
pub fn locked_refusal(seconds_left: i64) -> CiamError {
    let left = seconds_left.max(1);
    CiamError::Refused(Refusal::with_args(
        ErrorCode::AccountLocked,
        vec![(left / 60).to_string(), (left % 60).to_string()],
    ))
}

/// `LOGIN.0001` while `before` holds a lock that has not run out; checked
/// before any hash is computed.
fn refuse_if_locked(before: Option<FailureState>, now: UnixTime) -> Result<(), CiamError> {
    match before.and_then(|s| s.locked_until).filter(|until| *until > now) {
        Some(until) => Err(locked_refusal(until - now)),
        None => Ok(()),
    }
}

/// The answer to a failure just counted: attempts left, or the lock.
fn failure_refusal(state: FailureState, policy: LockoutPolicy, now: UnixTime, code: ErrorCode) -> CiamError {
    if state.failures >= policy.max_failures {
        locked_refusal(state.locked_until.unwrap_or(now + policy.lock_seconds) - now)
    } else {
        CiamError::Refused(Refusal::with_args(code, vec![(policy.max_failures - state.failures).to_string()]))
    }
}

/// A bounded, printable form of what was typed, for the audit log.
fn audit_mobile(parsed: Option<&Mobile>, typed: &str) -> String {
    match parsed {
        Some(m) => m.as_str().to_owned(),
        None => crate::store::audit_text(typed, 40),
    }
}

impl Ciam {
    /// `POST /api/v2/sdk/login/mobile-pwd` after the header checks. Fills
    /// `audit` with what it learns; the caller writes the event.
    pub async fn login_mobile_password(
        &self,
        app: &App,
        mobile: &str,
        password: &Password,
        lang: Lang,
        audit: &mut AuditEvent,
    ) -> Result<LoginOutcome, CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        if password.is_empty() {
            return Err(CiamError::refused(ErrorCode::PasswordEmpty));
        }
        let now = self.now();
        let parsed = Mobile::parse(mobile, self.config().region);
        audit.mobile = Some(audit_mobile(parsed.as_ref(), mobile));
        let key = lockout_key(parsed.as_ref(), mobile);

        let policy = self.lockout_policy().await?;
        let (before, user) = self.store().login_lookup(&key, parsed.as_ref().map(Mobile::as_str)).await?;
        refuse_if_locked(before, now)?;
        audit.user_id = user.as_ref().map(|u| u.id.clone());
        let verified = self.hasher().verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let matched = match (verified, user) {
            (Verified::Match { needs_rehash }, Some(user)) => Some((user, needs_rehash)),
            _ => None,
        };
        let (user, needs_rehash) =
            self.settle_attempt(&key, before, policy, matched, ErrorCode::InvalidCredentials, now, audit).await?;
        if needs_rehash {
            self.upgrade_hash(&user, password).await;
        }
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        self.admit(app, &user, lang, now, true, audit).await
    }

    /// Counts the outcome of one password check against `key`'s lock: a
    /// miss is counted and refused with `wrong` (or with the lock, when it
    /// used up the last attempt), and its audit event is stored with the
    /// count; a match forgets earlier failures and hands back what matched.
    #[expect(clippy::too_many_arguments, reason = "one step of two flows, each argument theirs")]
    async fn settle_attempt<T>(
        &self,
        key: &str,
        before: Option<FailureState>,
        policy: LockoutPolicy,
        matched: Option<T>,
        wrong: ErrorCode,
        now: UnixTime,
        audit: &mut AuditEvent,
    ) -> Result<T, CiamError> {
        let Some(matched) = matched else {
            audit.outcome = wrong.as_str().to_owned();
            let stored = FailureAudit { event: audit, locked: ErrorCode::AccountLocked.as_str() };
            let (state, id) =
                self.store().record_failure(key, now, policy.max_failures, policy.lock_seconds, stored).await?;
            let refusal = failure_refusal(state, policy, now, wrong);
            audit.outcome = refusal.code().as_str().to_owned();
            audit.id = id;
            return Err(refusal);
        };
        if before.is_some_and(|s| s.failures > 0) {
            self.store().clear_failures(key).await?;
        }
        Ok(matched)
    }

    /// Replaces a weaker stored hash after a successful login. Best effort:
    /// a failure leaves the old hash, which still verifies.
    async fn upgrade_hash(&self, user: &User, password: &Password) {
        match self.hasher().hash(password).await {
            Ok(new) => {
                if let Err(e) = self.store().upgrade_password_hash(&user.id, &user.password_hash, &new).await {
                    tracing::warn!(error = %e, "password hash upgrade not stored");
                }
            }
            Err(e) => tracing::warn!(error = %e, "password hash upgrade skipped"),
        }
    }

    /// Steps 6–8 of the login: membership, password age, session.
    async fn admit(
        &self,
        app: &App,
        user: &User,
        lang: Lang,
        now: UnixTime,
        check_age: bool,
        audit: &mut AuditEvent,
    ) -> Result<LoginOutcome, CiamError> {
        if app.access == AppAccess::Assigned && !self.store().is_member(&app.client_id, &user.id).await? {
            return Ok(LoginOutcome::AccessDenied);
        }
        if check_age && app.password_expiry_check {
            let policy = self.password_policy().await?;
            let flow = match policy.age(user.password_changed_at, now) {
                PasswordAge::Fresh => None,
                PasswordAge::Warn => Some(Flow::PasswordWarn),
                PasswordAge::Expired => Some(Flow::PasswordExpired),
            };
            if let Some(flow) = flow {
                let state_token = OpaqueToken::generate(STATE_TOKEN_LEN)?;
                let grant = StateGrant {
                    user_id: user.id.clone(),
                    client_id: app.client_id.clone(),
                    flow,
                    expires_at: now + self.config().state_token_ttl,
                };
                self.store().insert_state_grant(&state_token.digest(), &grant).await?;
                let data = policy.data_string(lang);
                return Ok(match flow {
                    Flow::PasswordWarn => LoginOutcome::PasswordWarn { state_token, data },
                    Flow::PasswordExpired => LoginOutcome::PasswordExpired { state_token, data },
                });
            }
        }
        Ok(LoginOutcome::Success(self.open_session(app, user, now, audit).await?))
    }

    /// The last step of a successful call: the session and the call's audit
    /// event are stored in one commit.
    async fn open_session(
        &self,
        app: &App,
        user: &User,
        now: UnixTime,
        audit: &mut AuditEvent,
    ) -> Result<SessionGrant, CiamError> {
        let session_token = OpaqueToken::generate(SESSION_TOKEN_LEN)?;
        let session =
            Session { user_id: user.id.clone(), client_id: app.client_id.clone(), expires_at: now + app.session_ttl };
        let id_token = self.keys().sign_id_token(&self.config().issuer, &app.client_id, user, now, app.id_token_ttl)?;
        audit.outcome = LoginOutcome::SUCCESS.to_owned();
        audit.id = self.store().insert_session_audited(&session_token.digest(), &session, now, audit).await?;
        Ok(SessionGrant { session_token, expire: app.session_ttl, id_token })
    }

    /// The user and grant behind a live state_token of this app.
    async fn state_grant(
        &self,
        app: &App,
        state_token: &str,
        now: UnixTime,
    ) -> Result<(String, StateGrant), CiamError> {
        let token = OpaqueToken::from_client(state_token);
        if token.expose().is_empty() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        let digest = token.digest();
        match self.store().get_state_grant(&digest, now).await? {
            Some(grant) if grant.client_id == app.client_id => Ok((digest, grant)),
            _ => Err(CiamError::refused(ErrorCode::StateTokenInvalid)),
        }
    }

    /// The user a grant is for, who must still exist and be enabled.
    async fn grant_user(&self, grant: &StateGrant, audit: &mut AuditEvent) -> Result<User, CiamError> {
        let user = self
            .store()
            .get_user(&grant.user_id)
            .await?
            .ok_or_else(|| CiamError::refused(ErrorCode::StateTokenInvalid))?;
        audit.mobile = Some(user.mobile.clone());
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        Ok(user)
    }

    /// `POST /api/v2/sdk/pwd/update`.
    pub async fn update_password(
        &self,
        app: &App,
        state_token: &str,
        old_password: &Password,
        new_password: &Password,
        audit: &mut AuditEvent,
    ) -> Result<LoginOutcome, CiamError> {
        let now = self.now();
        let (digest, grant) = self.state_grant(app, state_token, now).await?;
        audit.user_id = Some(grant.user_id.clone());
        if old_password.is_empty() {
            return Err(CiamError::refused(ErrorCode::OldPasswordEmpty));
        }
        if new_password.is_empty() {
            return Err(CiamError::refused(ErrorCode::NewPasswordEmpty));
        }
        let user = self.grant_user(&grant, audit).await?;

        // A state_token lets its holder guess the old password, so those
        // guesses count against the same lock as logins.
        let policy = self.lockout_policy().await?;
        let key = user.mobile.clone();
        let before = self.store().failure_state(&key).await?;
        refuse_if_locked(before, now)?;
        let matched =
            (self.hasher().verify(old_password, Some(&user.password_hash)).await? != Verified::Mismatch).then_some(());
        self.settle_attempt(&key, before, policy, matched, ErrorCode::OldPasswordWrong, now, audit).await?;

        let password_policy = self.password_policy().await?;
        password_policy.check(new_password)?;
        if self.is_reused(&user, new_password, password_policy.history).await? {
            return Err(CiamError::refused(ErrorCode::PasswordReused));
        }
        let new_hash = self.hasher().hash(new_password).await?;
        if self.store().take_state_grant(&digest, now, &[Flow::PasswordWarn, Flow::PasswordExpired]).await?.is_none() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        self.store().set_password(&user.id, &new_hash, now, password_policy.history).await?;
        let user = User { password_hash: new_hash, password_changed_at: now, ..user };
        self.admit(app, &user, Lang::En, now, false, audit).await
    }

    /// Whether `candidate` is the current password or one of the last `history`.
    pub(crate) async fn is_reused(&self, user: &User, candidate: &Password, history: u32) -> Result<bool, CiamError> {
        let mut previous = vec![user.password_hash.clone()];
        if history > 0 {
            previous.extend(self.store().password_history(&user.id, history).await?);
        }
        for hash in &previous {
            if matches!(self.hasher().verify(candidate, Some(hash)).await?, Verified::Match { .. }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `GET /api/v2/sdk/pwd/skip-update`: only from PASSWORD_WARN.
    pub async fn skip_password_update(
        &self,
        app: &App,
        state_token: &str,
        audit: &mut AuditEvent,
    ) -> Result<LoginOutcome, CiamError> {
        let now = self.now();
        let (digest, grant) = self.state_grant(app, state_token, now).await?;
        audit.user_id = Some(grant.user_id.clone());
        if grant.flow != Flow::PasswordWarn {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        let user = self.grant_user(&grant, audit).await?;
        if self.store().take_state_grant(&digest, now, &[Flow::PasswordWarn]).await?.is_none() {
            return Err(CiamError::refused(ErrorCode::StateTokenInvalid));
        }
        self.admit(app, &user, Lang::En, now, false, audit).await
    }

    /// `POST /api/v2/sdk/sso/session-token/id-token`: a fresh id_token for a
    /// live session of this app. `expire` is the session's remaining life.
    pub async fn refresh_id_token(
        &self,
        app: &App,
        session_token: &str,
        audit: &mut AuditEvent,
    ) -> Result<SessionGrant, CiamError> {
        let now = self.now();
        let token = OpaqueToken::from_client(session_token);
        let invalid = || CiamError::refused(ErrorCode::SessionTokenInvalid);
        if token.expose().is_empty() {
            return Err(invalid());
        }
        let (session, user) = self.store().get_session_user(&token.digest(), now).await?.ok_or_else(invalid)?;
        if session.client_id != app.client_id {
            return Err(invalid());
        }
        audit.user_id = Some(user.id.clone());
        if user.disabled {
            return Err(invalid());
        }
        let id_token =
            self.keys().sign_id_token(&self.config().issuer, &app.client_id, &user, now, app.id_token_ttl)?;
        Ok(SessionGrant { session_token: token, expire: session.expires_at - now, id_token })
    }

    /// `/api/v2/sdk/logout`: revokes the session (idempotent).
    pub async fn logout(&self, session_token: &str) -> Result<(), CiamError> {
        let token = OpaqueToken::from_client(session_token);
        if token.expose().is_empty() {
            return Err(CiamError::refused(ErrorCode::SessionTokenInvalid));
        }
        self.store().delete_session(&token.digest()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::parse_region;

    #[test]
    fn lockout_keys() {
        let cn = parse_region("CN").expect("CN");
        let m = Mobile::parse("15200000000", cn);
        assert_eq!(lockout_key(m.as_ref(), "15200000000"), "+8615200000000");
        let junk = lockout_key(None, " not a phone ");
        assert!(junk.starts_with("x:") && junk.len() == 34);
        assert_eq!(junk, lockout_key(None, "not a phone"));
    }

    #[test]
    fn locked_refusal_splits_minutes_and_seconds() {
        let e = locked_refusal(1799);
        assert_eq!(
            e.message(Lang::En),
            "User has been locked out due to multiple login failures. It will be unlocked in 29 minutes and 59 seconds"
        );
        assert_eq!(locked_refusal(0).message(Lang::En), locked_refusal(1).message(Lang::En));
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks() {
        let policy = LockoutPolicy::default();
        let ninth =
            failure_refusal(FailureState { failures: 9, locked_until: None }, policy, 0, ErrorCode::InvalidCredentials);
        assert_eq!(ninth.message(Lang::En), "Invalid account or password. Remaining times: 1");
        let tenth = failure_refusal(
            FailureState { failures: 10, locked_until: Some(1800) },
            policy,
            0,
            ErrorCode::InvalidCredentials,
        );
        assert_eq!(tenth.code(), ErrorCode::AccountLocked);
        assert!(tenth.message(Lang::En).ends_with("30 minutes and 0 seconds"));
    }
}
