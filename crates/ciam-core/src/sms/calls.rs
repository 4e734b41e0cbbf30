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
    /// `SMS.0005` when the code is; a number that is no phone number has no
    /// code (`CAPTCHA.0007`).
    fn code_mobile(&self, call: &mut Call, mobile: &str, code: &str) -> Result<Mobile, CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        if code.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::SmsCodeEmpty));
        }
        let parsed = Mobile::parse(mobile, self.config().region);
        call.note_mobile(audit_mobile(parsed.as_ref()));
        parsed.ok_or_else(wrong_code)
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
        let mobile = self.code_mobile(call, mobile, code)?;
        let good = self.match_code(call, &mobile, SmsKind::Login, code).await?;
        let user = self.user_with(&mobile).await?;
        if user.is_none() && !call.app().signup.sms_auto_register {
            return Err(wrong_code());
        }
        self.spend_code(&mobile, SmsKind::Login, good).await?;
        let user = match user {
            Some(user) => user,
            None => self.sign_up(call, &mobile, &Registration::default()).await?,
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
        let mobile = self.code_mobile(call, mobile, code)?;
        // The profile and the password are checked before the code, so a
        // refusal leaves the code good for the corrected call.
        self.new_user(&mobile, registration, String::new())?;
        if let Some(password) = registration.password.as_ref().filter(|p| !p.is_empty()) {
            self.password_policy().await?.check(password)?;
        }
        let good = self.match_code(call, &mobile, SmsKind::Register, code).await?;
        self.spend_code(&mobile, SmsKind::Register, good).await?;
        let user = self.sign_up(call, &mobile, registration).await?;
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
        if password.is_empty() {
            self.code_mobile(call, mobile, code)?;
            return Err(CiamError::refused(ErrorCode::NewPasswordEmpty));
        }
        let mobile = self.code_mobile(call, mobile, code)?;
        let good: GoodCode = self.match_code(call, &mobile, SmsKind::ForgetPassword, code).await?;
        let user = self.user_with(&mobile).await?.ok_or_else(wrong_code)?;
        call.note_user(&user.id);
        if user.disabled {
            return Err(CiamError::refused(ErrorCode::UserDisabled));
        }
        let policy = self.password_policy().await?;
        policy.check(password)?;
        if self.is_reused(call, &user, password, policy.history).await? {
            return Err(CiamError::refused(ErrorCode::PasswordReused));
        }
        let hash = self.hasher().hash(password, call.owner()).await?;
        self.spend_code(&mobile, SmsKind::ForgetPassword, good).await?;
        self.store().set_password(&user.id, &hash, self.now(), policy.history).await?;
        self.store().unlock_account(&LockKey::account(&mobile)).await?;
        Ok(Sent)
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
    /// code (with no password unless one was given), assigned to the
    /// call's app when it admits only assigned users. A number registered
    /// meanwhile has no such code (`CAPTCHA.0007`).
    async fn sign_up(&self, call: &Call, mobile: &Mobile, registration: &Registration) -> Result<User, CiamError> {
        let hash = match registration.password.as_ref().filter(|p| !p.is_empty()) {
            Some(password) => self.hasher().hash(password, call.owner()).await?,
            None => String::new(),
        };
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
