//! The calls that take a code (docs/sms.md): a login, a registration and a
//! forgotten password. Each compares the code first (counted on the code,
//! the number's day and the caller's address) and spends it only when the
//! call can go through.

use crate::admin::UserInput;
use crate::call::Call;
use crate::error::{CiamError, ErrorCode, Localised, Refusal};
use crate::login::{LoginOutcome, audit_mobile};
use crate::mobile::Mobile;
use crate::model::{AppAccess, LockKey, User, UserId};
use crate::password::Password;
use crate::service::Ciam;
use crate::store::StoreError;
use crate::token::new_user_id;

use super::{GoodCode, Sent, SmsKind};

/// What a registration may set beside the number.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// A password (checked against the policy); none leaves the account
    /// with codes only.
    pub password: Option<Password>,
    /// Login name.
    pub user_name: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
}

/// A profile field refused by the admin checks, as an SDK refusal.
fn profile_refusal(error: CiamError) -> CiamError {
    match error {
        CiamError::Invalid(field) => CiamError::Refused(Refusal::with_args(
            ErrorCode::ProfileFieldInvalid,
            [Localised::same(field.field), field.why],
        )),
        other => other,
    }
}

fn wrong_code() -> CiamError {
    CiamError::refused(ErrorCode::SmsCodeWrong)
}

impl Ciam {
    /// The number of a call that takes a code: `USER.0004` when empty,
    /// `SMS.0005` when the code is; then the caller's address takes its
    /// attempt (`REQ.0007` when it is throttled); a number that is no phone
    /// number has no code (`CAPTCHA.0007`, a failure of the address).
    pub(crate) async fn code_mobile(&self, call: &mut Call, mobile: &str, code: &str) -> Result<Mobile, CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        if code.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::SmsCodeEmpty));
        }
        self.reserve_address(call).await?;
        let parsed = Mobile::parse(mobile, self.config().region);
        call.note_mobile(audit_mobile(parsed.as_ref()));
        parsed.ok_or_else(|| {
            // The attempt held in the address's window is this failure.
            drop(call.take_reservation());
            wrong_code()
        })
    }

    /// `POST /api/v2/sdk/login/mobile-verify-code`.
    pub async fn login_with_code(&self, call: &mut Call, mobile: &str, code: &str) -> Result<LoginOutcome, CiamError> {
        let user = self.code_user(call, mobile, code).await?;
        if !self.admits(call, &user).await? {
            return Ok(LoginOutcome::AccessDenied);
        }
        let now = self.now();
        Ok(LoginOutcome::Success(self.open_session(call, &user, now).await?))
    }

    /// The user a `LOGIN_SMS` code logs in, wherever it is typed (the SDK
    /// call, the hosted login page): the code spent, the user created when
    /// the app registers new numbers this way, and `USER.0039` for a
    /// disabled user.
    pub(crate) async fn code_user(&self, call: &mut Call, mobile: &str, code: &str) -> Result<User, CiamError> {
        let mobile = self.code_mobile(call, mobile, code).await?;
        let good = self.match_code(call, &mobile, SmsKind::Login, code).await?;
        let user = self.user_with(&mobile).await?;
        if user.is_none() && !call.app().signup.sms_auto_register {
            return Err(wrong_code());
        }
        self.spend_code(&mobile, SmsKind::Login, good).await?;
        let user = match user {
            Some(user) => user,
            None => self.sign_up(call, &mobile, &Registration::default(), String::new()).await?,
        };
        call.note_user(&user.id);
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        Ok(user)
    }

    /// `POST /api/v2/sdk/register/mobile-verify-code`: only for apps open
    /// to registration, checked before the code.
    pub async fn register_with_code(
        &self,
        call: &mut Call,
        mobile: &str,
        code: &str,
        registration: &Registration,
    ) -> Result<LoginOutcome, CiamError> {
        if !call.app().signup.self_registration {
            return Err(CiamError::refused(ErrorCode::SmsRegistrationClosed));
        }
        let mobile = self.code_mobile(call, mobile, code).await?;
        // The profile and the password are checked before the code, so a
        // refusal leaves the code good for the corrected call.
        self.new_user(&mobile, registration, String::new())?;
        let password = registration.password.as_ref().filter(|p| !p.is_empty());
        if let Some(password) = password {
            self.password_policy().await?.check(password)?;
        }
        let good = self.match_code(call, &mobile, SmsKind::Register, code).await?;
        // Hashed before the code is spent: a hash refused (a full pool)
        // leaves the code good.
        let hash = match password {
            Some(password) => match self.hasher().hash(password, call.owner()).await {
                Ok(hash) => hash,
                Err(e) => {
                    self.unmatch_code(&mobile, SmsKind::Register, good).await;
                    return Err(e);
                }
            },
            None => String::new(),
        };
        self.spend_code(&mobile, SmsKind::Register, good).await?;
        let user = self.sign_up(call, &mobile, registration, hash).await?;
        call.note_user(&user.id);
        let now = self.now();
        Ok(LoginOutcome::Success(self.open_session(call, &user, now).await?))
    }

    /// `POST /api/v2/sdk/pwd/update-by-mobile`: the code first, then the new
    /// password under the policy and history (a refusal leaves the code
    /// good); then the lock and failure counts are cleared and every
    /// session, browser session and token of the user ends.
    pub async fn reset_password_with_code(
        &self,
        call: &mut Call,
        mobile: &str,
        code: &str,
        password: &Password,
    ) -> Result<Sent, CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        if code.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::SmsCodeEmpty));
        }
        if password.is_empty() {
            return Err(CiamError::refused(ErrorCode::NewPasswordEmpty));
        }
        let mobile = self.code_mobile(call, mobile, code).await?;
        let good: GoodCode = self.match_code(call, &mobile, SmsKind::ForgetPassword, code).await?;
        let user = self.user_with(&mobile).await?.ok_or_else(wrong_code)?;
        call.note_user(&user.id);
        // Only the holder of the right code gets this far: whatever refuses
        // the call now gives the code's check back, so it stays good.
        let hash = match self.new_password_hash(call, &user, password).await {
            Ok(hash) => hash,
            Err(refusal) => {
                self.unmatch_code(&mobile, SmsKind::ForgetPassword, good).await;
                return Err(refusal);
            }
        };
        self.spend_code(&mobile, SmsKind::ForgetPassword, good).await?;
        let history = self.password_policy().await?.history;
        self.store().set_password(&user.id, &hash, self.now(), history).await?;
        self.store().unlock_account(&LockKey::account(&mobile)).await?;
        self.store().forget_codes(&mobile).await?;
        Ok(Sent)
    }

    /// The hash of a forgotten password's replacement for `user`, once a
    /// disabled user, the policy and the history have let it through.
    async fn new_password_hash(&self, call: &Call, user: &User, password: &Password) -> Result<String, CiamError> {
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        let policy = self.password_policy().await?;
        policy.check(password)?;
        if self.is_reused(call, user, password, policy.history).await? {
            return Err(CiamError::refused(ErrorCode::PasswordReused));
        }
        self.hasher().hash(password, call.owner()).await
    }

    /// A new user of `registration`'s fields, checked as an operator's are.
    fn new_user(&self, mobile: &Mobile, registration: &Registration, hash: String) -> Result<User, CiamError> {
        let input = UserInput {
            mobile: Some(mobile.as_str().to_owned()),
            user_name: Some(registration.user_name.clone()),
            name: Some(registration.name.clone()),
            email: Some(registration.email.clone()),
            ..Default::default()
        };
        self.user_from(&input, UserId::new(new_user_id()), hash, self.now()).map_err(profile_refusal)
    }

    /// Creates the user of a good registration or auto-registering login
    /// code (with `hash`, or no password when it is empty), assigned to the
    /// call's app when it admits only assigned users. A number registered
    /// meanwhile has no such code (`CAPTCHA.0007`).
    async fn sign_up(
        &self,
        call: &Call,
        mobile: &Mobile,
        registration: &Registration,
        hash: String,
    ) -> Result<User, CiamError> {
        let user = self.new_user(mobile, registration, hash)?;
        match self.store().insert_user(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(wrong_code()),
            Err(e) => return Err(e.into()),
        }
        let app = call.app();
        if app.access == AppAccess::Assigned {
            self.store().add_member(&app.client_id, &user.id).await?;
        }
        Ok(user)
    }
}
