//! The login state machine (docs/api.md §2) and the steps the flows around it
//! share: admission to the app and the session. The password check's
//! attempt against the locks is in [`attempt`]; the SDK call it runs in is
//! [`call`], the flows after it [`flows`].
//!
//! Order of a mobile + password login: empty fields → lock → password (a
//! dummy hash for unknown mobiles, so both take as long and count down
//! alike) → disabled → app membership → password age → session.

pub mod attempt;
pub mod call;
pub mod flows;

use crate::call::{Answered, Call};
use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Localised, Refusal};
use crate::keys::IdTokenBase;
use crate::mobile::Mobile;
use crate::model::{AppAccess, Flow, LockKey, Outcome, Session, StateGrant, Status, User};
use crate::password::{Password, Verified};
use crate::policy::PasswordAge;
use crate::service::Ciam;
use crate::token::{OpaqueToken, SESSION_TOKEN_LEN, STATE_TOKEN_LEN, keyed_digest};

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

impl Answered for SessionGrant {
    fn status(&self) -> Status {
        Status::Success
    }
}

/// What a successful login, password update or skip answers (HTTP 200).
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

impl Answered for LoginOutcome {
    fn status(&self) -> Status {
        match self {
            LoginOutcome::Success(_) => Status::Success,
            LoginOutcome::PasswordWarn { .. } => Status::PasswordWarn,
            LoginOutcome::PasswordExpired { .. } => Status::PasswordExpired,
            LoginOutcome::AccessDenied => Status::AccessDenied,
        }
    }
}

impl LockKey {
    /// The key of what a user typed: the account's, or for input that is no
    /// phone number (people type passwords there) a digest of it keyed with
    /// the deployment's `secret`, so the store holds nothing a dictionary
    /// could be run against.
    pub fn typed(parsed: Option<&Mobile>, typed: &str, secret: &[u8]) -> Self {
        match parsed {
            Some(m) => LockKey::account(m),
            None => LockKey::new(format!("x:{}", &keyed_digest(secret, typed.trim().as_bytes())[..32])),
        }
    }
}

/// `LOGIN.0001` with the minutes and seconds left.
pub fn locked_refusal(seconds_left: i64) -> CiamError {
    let left = seconds_left.max(1);
    CiamError::Refused(Refusal::with_args(
        ErrorCode::AccountLocked,
        [Localised::same((left / 60).to_string()), Localised::same((left % 60).to_string())],
    ))
}

/// What the audit log keeps of a typed mobile: the number in E.164, or a
/// mask for input that is no phone number (never the text: people type
/// passwords there).
pub(crate) fn audit_mobile(parsed: Option<&Mobile>) -> String {
    match parsed {
        Some(m) => m.as_str().to_owned(),
        None => NOT_A_NUMBER.to_owned(),
    }
}

/// How the audit log shows a mobile that is no phone number.
pub const NOT_A_NUMBER: &str = "***";

impl Ciam {
    /// `POST /api/v2/sdk/login/mobile-pwd`, after the checks of
    /// [`Ciam::open_call`].
    pub async fn login(&self, call: &mut Call, mobile: &str, password: &Password) -> Result<LoginOutcome, CiamError> {
        let (user, now) = self.check_login(call, mobile, password).await?;
        if !self.admits(call, &user).await? {
            return Ok(LoginOutcome::AccessDenied);
        }
        if let Some(flow) = self.password_age_flow(call, &user, now).await? {
            return Ok(flow);
        }
        Ok(LoginOutcome::Success(self.open_session(call, &user, now).await?))
    }

    /// Steps 1–5 of a login, wherever it is typed (the SDK call, the hosted
    /// login page): empty fields, the lock and the throttle, the password,
    /// a disabled user. Answers the user and when the check began.
    pub(crate) async fn check_login(
        &self,
        call: &mut Call,
        mobile: &str,
        password: &Password,
    ) -> Result<(User, UnixTime), CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        if password.is_empty() {
            return Err(CiamError::refused(ErrorCode::PasswordEmpty));
        }
        let gate = self.throttle_gate(call).await?;
        let parsed = Mobile::parse(mobile, self.config().region);
        call.note_mobile(audit_mobile(parsed.as_ref()));
        let key = LockKey::typed(parsed.as_ref(), mobile, self.lock_key_secret());
        let (attempt, user) =
            self.begin_attempt(call, gate, key, parsed.as_ref(), ErrorCode::InvalidCredentials).await?;
        let now = attempt.now;
        if let Some(user) = &user {
            call.note_user(&user.id);
        }
        // A user made with an SMS code may have no password: the dummy hash
        // is checked instead, and fails, in the same time.
        let stored = user.as_ref().map(|u| u.password_hash.as_str()).filter(|h| !h.is_empty());
        let verified = self.hasher().verify(password, stored, call.owner()).await?;
        let matched = match (verified, user) {
            (Verified::Match { needs_rehash }, Some(user)) => Some((user, needs_rehash)),
            _ => None,
        };
        let (user, needs_rehash) = attempt.settle(self, call, matched).await?;
        if needs_rehash {
            self.upgrade_hash(call, &user, password).await;
        }
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        Ok((user, now))
    }

    /// Replaces a weaker stored hash after a successful login. Best effort:
    /// a failure leaves the old hash, which still verifies.
    async fn upgrade_hash(&self, call: &Call, user: &User, password: &Password) {
        match self.hasher().hash(password, call.owner()).await {
            Ok(new) => {
                if let Err(e) = self.store().upgrade_password_hash(&user.id, &user.password_hash, &new).await {
                    tracing::warn!(error = %e, "password hash upgrade not stored");
                }
            }
            Err(e) => tracing::warn!(error = %e, "password hash upgrade skipped"),
        }
    }

    /// Whether the call's app lets `user` in (step 6).
    pub(crate) async fn admits(&self, call: &Call, user: &User) -> Result<bool, CiamError> {
        let app = call.app();
        Ok(app.access == AppAccess::All || self.store().is_member(&app.client_id, &user.id).await?)
    }

    /// Step 7: `PASSWORD_WARN` or `PASSWORD_EXPIRED` with a state_token when
    /// the app checks password age and the password is old; `None` when it
    /// is not.
    pub(crate) async fn password_age_flow(
        &self,
        call: &Call,
        user: &User,
        now: UnixTime,
    ) -> Result<Option<LoginOutcome>, CiamError> {
        if !call.app().password_expiry_check {
            return Ok(None);
        }
        let policy = self.password_policy().await?;
        let flow = match policy.age(user.password_changed_at, now) {
            PasswordAge::Fresh => return Ok(None),
            PasswordAge::Warn => Flow::PasswordWarn,
            PasswordAge::Expired => Flow::PasswordExpired,
        };
        let state_token = OpaqueToken::generate(STATE_TOKEN_LEN)?;
        let grant = StateGrant {
            user_id: user.id.clone(),
            client_id: call.app().client_id.clone(),
            flow,
            expires_at: now + self.config().state_token_ttl,
        };
        self.store().insert_state_grant(&state_token.digest(), &grant).await?;
        let data = policy.data_string(call.lang());
        Ok(Some(match flow {
            Flow::PasswordWarn => LoginOutcome::PasswordWarn { state_token, data },
            Flow::PasswordExpired => LoginOutcome::PasswordExpired { state_token, data },
        }))
    }

    /// Step 8, the last of a successful call: the session and the call's
    /// audit event are stored in one commit.
    pub(crate) async fn open_session(
        &self,
        call: &mut Call,
        user: &User,
        now: UnixTime,
    ) -> Result<SessionGrant, CiamError> {
        let app = call.app();
        let session_token = OpaqueToken::generate(SESSION_TOKEN_LEN)?;
        let session =
            Session { user_id: user.id.clone(), client_id: app.client_id.clone(), expires_at: now + app.session_ttl };
        let id_token = self.keys().sign_id_token(IdTokenBase::of(&self.config().issuer, app, user, now))?;
        let expire = app.session_ttl;
        let success = Outcome::Status(Status::Success);
        let event = call.event(success);
        // The attempt held in the address's window and the check's places
        // are given back in the session's own commit.
        let (reserved, places) = (call.take_reservation(), call.take_places());
        let stored = self
            .store()
            .insert_session_audited(
                &session_token.digest(),
                &session,
                now,
                &event,
                reserved.as_ref(),
                places.as_deref(),
            )
            .await;
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
        call.stored(success);
        Ok(SessionGrant { session_token, expire, id_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;
    use crate::mobile::parse_region;
    use crate::token::sha256_hex;

    #[test]
    fn lock_keys() {
        let cn = parse_region("CN").expect("CN");
        let m = Mobile::parse("15200000000", cn);
        assert_eq!(LockKey::typed(m.as_ref(), "15200000000", b"k").as_str(), "+8615200000000");
        let junk = LockKey::typed(None, " not a phone ", b"k");
        assert!(junk.as_str().starts_with("x:") && junk.as_str().len() == 34);
        assert_eq!(junk, LockKey::typed(None, "not a phone", b"k"));
        assert_ne!(junk, LockKey::typed(None, "not a phone", b"another deployment"));
        assert!(!junk.as_str().contains(&sha256_hex(b"not a phone")[..32]), "keyed, not a plain digest");
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
}
