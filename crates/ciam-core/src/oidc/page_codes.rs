//! Verification codes on the hosted login page (docs/sms.md, docs/oidc.md
//! §4): a code sent to the number, then a login with it or a new password
//! with it, each running the very SDK call for the requesting app (limits,
//! counts, audit and metrics included). A login with a code ends, as a
//! password login does, in a browser session and a code for the app.

use crate::call::Caller;
use crate::error::{CiamError, ErrorCode};
use crate::model::Action;
use crate::password::Password;
use crate::service::Ciam;
use crate::sms::{Sent, SmsKind};

use super::page::{PageForm, PageOutcome, PendingPage};

impl Ciam {
    /// Whether the login page offers codes: a provider is configured, and
    /// no captcha (its widget needs the captcha provider's script, which
    /// the page's policy does not load).
    pub fn page_offers_codes(&self) -> bool {
        let sms = self.sms().config();
        sms.provider.is_some() && sms.captcha.is_none()
    }

    /// Sends a code of `kind` (a login or a forgotten password) from the
    /// page, as `POST /api/v2/sdk/sms/send` would for the app.
    pub async fn page_send_code(&self, form: PageForm<'_>, mobile: &str, kind: SmsKind) -> Result<Sent, CiamError> {
        if kind == SmsKind::Register {
            return Err(CiamError::refused(ErrorCode::SmsTypeInvalid));
        }
        let PendingPage { app, .. } = form.pending;
        let caller = Caller { client_id: Some(app.client_id.to_string()), ..form.caller };
        let mut call = self.open_page_call(caller, app, Action::SmsSend).await?;
        let result = self.send_code(&mut call, mobile, Some(kind.as_str()), None).await;
        self.close_call(call, result).await
    }

    /// A login with a code: the checks of the SDK call, then the app's
    /// access rule, the browser session and the code for the app.
    pub async fn page_code_login(
        &self,
        form: PageForm<'_>,
        mobile: &str,
        code: &str,
    ) -> Result<PageOutcome, CiamError> {
        let PendingPage { req, app } = form.pending;
        let caller = Caller { client_id: Some(app.client_id.to_string()), ..form.caller };
        let mut call = self.open_page_call(caller, app, Action::LoginCode).await?;
        let result = async {
            let user = self.code_user(&mut call, mobile, code).await?;
            if !self.admits(&call, &user).await? {
                return Ok(PageOutcome::Denied(self.denied(&req)));
            }
            let now = self.now();
            self.sign_in(&mut call, &req, &user, now, form.request, form.browser).await
        }
        .await;
        self.close_call(call, result).await
    }

    /// A new password with a `FORGET_PWD_SMS` code, as
    /// `POST /api/v2/sdk/pwd/update-by-mobile` sets it.
    pub async fn page_reset_password(
        &self,
        form: PageForm<'_>,
        mobile: &str,
        code: &str,
        password: &Password,
    ) -> Result<Sent, CiamError> {
        let PendingPage { app, .. } = form.pending;
        let caller = Caller { client_id: Some(app.client_id.to_string()), ..form.caller };
        let mut call = self.open_page_call(caller, app, Action::PasswordReset).await?;
        let result = self.reset_password_with_code(&mut call, mobile, code, password).await;
        self.close_call(call, result).await
    }
}
