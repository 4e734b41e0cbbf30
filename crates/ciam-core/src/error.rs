//! Stable error codes and the one message catalogue.
//!
//! Every answer the server refuses carries an [`ErrorCode`]. Its text is looked
//! up by (code, [`Lang`]) in [`ErrorCode::template`]; placeholders `{0}`, `{1}`
//! are filled by [`ErrorCode::message`]. The vendor's codes keep the vendor's
//! words verbatim, ours follow the same style.

use std::fmt;

/// The language of a response, chosen by the `X-L` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English, the default.
    #[default]
    En,
    /// Chinese, for any `X-L` value starting with `zh`.
    Zh,
}

impl Lang {
    /// `X-L` starting with `zh` (any case) means Chinese; anything else English.
    pub fn from_header(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.trim().get(..2).is_some_and(|p| p.eq_ignore_ascii_case("zh")) => Lang::Zh,
            _ => Lang::En,
        }
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $en:literal, $zh:literal; )*) => {
        /// Every error code the server can answer with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// All codes, in catalogue order (for documentation and tests).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as clients see it, e.g. `IDAAS.SDK.LOGIN.0002`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that carries this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The message template in `lang`, with `{0}`, `{1}` placeholders.
            pub fn template(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((ErrorCode::$variant, Lang::En) => $en,
                      (ErrorCode::$variant, Lang::Zh) => $zh,)*
                }
            }
        }
    };
}

error_codes! {
    // --- vendor codes of the login page (seed), words verbatim ---
    /// A required device header is missing or blank.
    DeviceInfoIncomplete = "IDAAS.SDK.PARAM.0001", 400,
        "Device information is incomplete", "设备信息不完整";
    /// `X-client-id` is missing or blank.
    ClientIdEmpty = "IDAAS.SDK.PARAM.0002", 400,
        "clientId cannot be empty", "clientId不能为空";
    /// `X-client-id` names no registered, enabled app.
    AppNotRegistered = "IDAAS.SDK.PARAM.0003", 400,
        "The app is not registered, please register the app first", "应用未注册,请先注册应用";
    /// `mobile` missing or empty.
    MobileEmpty = "IDAAS.SDK.USER.0004", 400,
        "Mobile number cannot be empty", "手机号不能为空";
    /// `password` missing or empty.
    PasswordEmpty = "IDAAS.SDK.USER.0006", 400,
        "Password cannot be empty", "密码不能为空";
    /// The account is locked: `{0}` minutes and `{1}` seconds left.
    AccountLocked = "IDAAS.SDK.LOGIN.0001", 400,
        "User has been locked out due to multiple login failures. It will be unlocked in {0} minutes and {1} seconds",
        "由于多次登录失败,用户已被锁定。 它将在 {0} 分钟和 {1} 秒内解锁";
    /// Wrong password or unknown account: `{0}` attempts left.
    InvalidCredentials = "IDAAS.SDK.LOGIN.0002", 400,
        "Invalid account or password. Remaining times: {0}", "无效的账号或密码。 剩余次数:{0}";
    /// Any internal failure.
    SystemBusy = "IDAAS.SDK.COM.0002", 500,
        "System busy, please try again later", "系统繁忙,请稍后再试";
    /// Right password, disabled user.
    UserDisabled = "IDAAS.SDK.USER.0039", 400,
        "User is disabled", "用户已被禁用";
    // --- vendor codes of the calls around the login ---
    /// The state_token is missing, unknown, expired, used, or from the wrong flow.
    StateTokenInvalid = "IDAAS.SDK.PARAM.0014", 400,
        "The state_token is invalid or has expired", "state_token无效或已过期";
    /// The session_token is missing, unknown, expired or revoked.
    SessionTokenInvalid = "IDAAS.SDK.PARAM.0023", 400,
        "The session_token is invalid or has expired", "session_token无效或已过期";
    /// An SSO ticket's `client_id` names no enabled app with an
    /// `initiate_login_uri` (docs/oidc.md §11).
    SsoTargetInvalid = "IDAAS.SDK.SSO.0001", 400,
        "The target app does not exist or cannot be signed into with a ticket",
        "目标应用不存在或不支持票据登录";
    // --- vendor codes of the SMS calls (docs/sms.md), words verbatim ---
    /// The verification code is wrong, expired, used up, or for another
    /// number or purpose.
    SmsCodeWrong = "IDAAS.SDK.CAPTCHA.0007", 400,
        "Incorrect verification code", "验证码错误";
    /// No SMS provider is configured, or the delivery queue is full.
    SmsSendFailed = "IDAAS.SDK.CAPTCHA.0006", 400,
        "Failed to send verification code", "验证码发送失败";
    // --- local codes: SMS ---
    /// Too soon after the last code to this number, or too many sends from
    /// the caller's address (with `Retry-After`).
    SmsTooSoon = "IDAAS.SDK.SMS.0001", 429,
        "Too many verification codes requested, please try again later", "验证码请求过于频繁,请稍后再试";
    /// This number's codes for the day are used up.
    SmsDailyLimit = "IDAAS.SDK.SMS.0002", 429,
        "This number has received too many verification codes today", "该手机号今日接收验证码次数已达上限";
    /// Codes cannot be sent to this number (not a phone number, or its
    /// country is not allowed).
    SmsNumberRefused = "IDAAS.SDK.SMS.0003", 400,
        "Verification codes cannot be sent to this number", "无法向该手机号发送验证码";
    /// `type` missing or not one of the supported kinds.
    SmsTypeInvalid = "IDAAS.SDK.SMS.0004", 400,
        "The type must be LOGIN_SMS, REGISTER_SMS or FORGET_PWD_SMS", "type必须为LOGIN_SMS、REGISTER_SMS或FORGET_PWD_SMS";
    /// `verify_code` missing or empty.
    SmsCodeEmpty = "IDAAS.SDK.SMS.0005", 400,
        "Verification code cannot be empty", "验证码不能为空";
    /// The human verification (captcha) failed.
    SmsCaptchaFailed = "IDAAS.SDK.SMS.0006", 400,
        "Human verification failed, please try again", "人机验证失败,请重试";
    /// The hourly ceiling on all sends is reached (with `Retry-After`).
    SmsServiceLimit = "IDAAS.SDK.SMS.0007", 429,
        "Verification codes are temporarily unavailable, please try again later", "验证码服务暂时不可用,请稍后再试";
    /// The app does not take registrations.
    SmsRegistrationClosed = "IDAAS.SDK.SMS.0008", 400,
        "This app does not accept registrations", "该应用不支持注册";
    /// A profile field of a registration is not valid: `{0}` names it,
    /// `{1}` says why.
    ProfileFieldInvalid = "IDAAS.SDK.SMS.0009", 400,
        "Invalid value for field '{0}': {1}", "字段 '{0}' 的值无效:{1}";
    // --- local codes: request shape ---
    /// The body is not declared as JSON.
    ContentTypeInvalid = "IDAAS.SDK.REQ.0001", 400,
        "Content-Type must be application/json", "Content-Type必须为application/json";
    /// The body is not valid JSON (or not UTF-8).
    BodyNotJson = "IDAAS.SDK.REQ.0002", 400,
        "The request body is not valid JSON", "请求体不是有效的JSON";
    /// The body is JSON but not an object with the expected field types.
    BodyShapeInvalid = "IDAAS.SDK.REQ.0003", 400,
        "The request body must be a JSON object whose fields are strings",
        "请求体必须是字段为字符串的JSON对象";
    /// The body exceeds the size limit.
    BodyTooLarge = "IDAAS.SDK.REQ.0004", 413,
        "The request body is too large", "请求体过大";
    /// No such API.
    RouteNotFound = "IDAAS.SDK.REQ.0005", 404,
        "The requested API does not exist", "请求的接口不存在";
    /// The API exists, but not with this method.
    MethodNotAllowed = "IDAAS.SDK.REQ.0006", 405,
        "The request method is not supported by this API", "该接口不支持此请求方法";
    /// Too many failed password attempts from the caller's address, or more
    /// than its fair share of the hashing pool while the pool is full.
    AddressThrottled = "IDAAS.SDK.REQ.0007", 429,
        "Too many attempts from your network, please try again later", "您所在网络的尝试次数过多,请稍后再试";
    /// The request body stopped arriving before it was complete.
    BodyTimeout = "IDAAS.SDK.REQ.0008", 408,
        "The request body did not arrive in time", "请求体未按时到达";
    /// The request could not be read: bad chunked framing, a path that is
    /// not UTF-8, and the like.
    RequestUnreadable = "IDAAS.SDK.REQ.0009", 400,
        "The request could not be read", "无法读取该请求";
    // --- local codes: password change ---
    /// `old_password` is wrong: `{0}` attempts left.
    OldPasswordWrong = "IDAAS.SDK.PWD.0001", 400,
        "The old password is incorrect. Remaining times: {0}", "旧密码不正确。 剩余次数:{0}";
    /// The new password fails the policy; `{0}` is the policy tip.
    PasswordPolicyViolated = "IDAAS.SDK.PWD.0002", 400,
        "The new password does not meet the password policy: {0}", "新密码不符合密码策略:{0}";
    /// The new password is the current one or one of the last `history` ones.
    PasswordReused = "IDAAS.SDK.PWD.0003", 400,
        "The new password was used recently, please choose another one", "新密码近期已使用过,请更换其他密码";
    /// `new_password` missing or empty.
    NewPasswordEmpty = "IDAAS.SDK.PWD.0004", 400,
        "New password cannot be empty", "新密码不能为空";
    /// `old_password` missing or empty.
    OldPasswordEmpty = "IDAAS.SDK.PWD.0005", 400,
        "Old password cannot be empty", "旧密码不能为空";
    // --- local codes: administration ---
    /// No or wrong `Authorization: Bearer` admin token.
    AdminUnauthorized = "IDAAS.ADMIN.AUTH.0001", 401,
        "A valid admin token is required", "需要有效的管理员令牌";
    /// The addressed resource does not exist; `{0}` names its kind in
    /// English, `{1}` in Chinese.
    AdminNotFound = "IDAAS.ADMIN.RES.0001", 404,
        "{0} not found", "{0}不存在";
    /// Another user already has this mobile number.
    AdminMobileTaken = "IDAAS.ADMIN.USER.0001", 409,
        "A user with this mobile number already exists", "该手机号已被其他用户使用";
    /// A field has an invalid value; `{0}` names it, `{1}` says why in
    /// English, `{2}` in Chinese.
    AdminFieldInvalid = "IDAAS.ADMIN.PARAM.0001", 422,
        "Invalid value for field '{0}': {1}", "字段 '{0}' 的值无效:{1}";
    /// The admin request body is not a JSON object of the documented shape.
    AdminBodyInvalid = "IDAAS.ADMIN.REQ.0001", 400,
        "The request body is not a valid JSON object for this call", "请求体不是此接口所需的JSON对象";
    /// An admin body not declared as JSON.
    AdminContentType = "IDAAS.ADMIN.REQ.0002", 415,
        "Content-Type must be application/json", "Content-Type必须为application/json";
    /// An admin body over the size limit.
    AdminBodyTooLarge = "IDAAS.ADMIN.REQ.0003", 413,
        "The request body is too large", "请求体过大";
    /// An admin body that stopped arriving.
    AdminBodyTimeout = "IDAAS.ADMIN.REQ.0004", 408,
        "The request body did not arrive in time", "请求体未按时到达";
    /// An admin request that could not be read.
    AdminRequestUnreadable = "IDAAS.ADMIN.REQ.0005", 400,
        "The request could not be read", "无法读取该请求";
    /// No such admin API.
    AdminRouteNotFound = "IDAAS.ADMIN.REQ.0006", 404,
        "The requested API does not exist", "请求的接口不存在";
    /// The admin API exists, but not with this method.
    AdminMethodNotAllowed = "IDAAS.ADMIN.REQ.0007", 405,
        "The request method is not supported by this API", "该接口不支持此请求方法";
    /// Too many wrong admin tokens from the caller's address: refused, even
    /// with the right token, until the window ends.
    AdminThrottled = "IDAAS.ADMIN.REQ.0008", 429,
        "Too many failed sign-ins from your address, please try again later", "您的地址登录失败次数过多,请稍后再试";
    /// An internal failure in an admin call.
    AdminInternal = "IDAAS.ADMIN.COM.0001", 500,
        "The server could not complete the request, please try again later", "服务器暂时无法完成请求,请稍后再试";
}

impl ErrorCode {
    /// Whether the code refuses a request before any password hash: a body
    /// that cannot be read, a throttled address, an SMS limit (a pumping
    /// attack's thousands of refused sends). Such refusals cost an
    /// attacker nothing, so they are audited one event per address and
    /// outcome a minute, with a count, and their log lines sampled alike.
    pub fn costs_no_hash(self) -> bool {
        matches!(
            self,
            ErrorCode::ContentTypeInvalid
                | ErrorCode::BodyNotJson
                | ErrorCode::BodyShapeInvalid
                | ErrorCode::BodyTooLarge
                | ErrorCode::RouteNotFound
                | ErrorCode::MethodNotAllowed
                | ErrorCode::AddressThrottled
                | ErrorCode::SmsTooSoon
                | ErrorCode::SmsDailyLimit
                | ErrorCode::SmsServiceLimit
                | ErrorCode::BodyTimeout
                | ErrorCode::RequestUnreadable
        )
    }

    /// The code with this text, if there is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|code| code.as_str() == text)
    }

    /// The code an admin call answers in place of this one: the admin API
    /// has its own codes for the failures every call can meet.
    pub fn in_admin(self) -> ErrorCode {
        match self {
            ErrorCode::ContentTypeInvalid => ErrorCode::AdminContentType,
            ErrorCode::BodyNotJson | ErrorCode::BodyShapeInvalid => ErrorCode::AdminBodyInvalid,
            ErrorCode::BodyTooLarge => ErrorCode::AdminBodyTooLarge,
            ErrorCode::BodyTimeout => ErrorCode::AdminBodyTimeout,
            ErrorCode::RequestUnreadable => ErrorCode::AdminRequestUnreadable,
            ErrorCode::RouteNotFound => ErrorCode::AdminRouteNotFound,
            ErrorCode::MethodNotAllowed => ErrorCode::AdminMethodNotAllowed,
            ErrorCode::SystemBusy => ErrorCode::AdminInternal,
            ErrorCode::AddressThrottled => ErrorCode::AdminThrottled,
            other => other,
        }
    }

    /// The message in `lang` with `{0}`, `{1}`, … replaced by `args`.
    pub fn message(self, lang: Lang, args: &[String]) -> String {
        let mut text = self.template(lang).to_owned();
        for (i, arg) in args.iter().enumerate() {
            text = text.replace(&format!("{{{i}}}"), arg);
        }
        text
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text in both languages: a policy's tip, why a value is refused, a
/// kind of resource. Every translated placeholder of a message is one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Localised {
    /// Chinese.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub zh: String,
    /// English.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub en: String,
}

impl Localised {
    /// A text in both languages.
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self { zh: zh.into(), en: en.into() }
    }

    /// The same text in both languages (a number, a name, an identifier).
    pub fn same(text: impl Into<String>) -> Self {
        let text = text.into();
        Self { zh: text.clone(), en: text }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }

    /// "must be between `low` and `high`".
    pub fn between(low: impl fmt::Display, high: impl fmt::Display) -> Self {
        Self::new(format!("must be between {low} and {high}"), format!("必须在 {low} 到 {high} 之间"))
    }

    /// "must be at most `most`".
    pub fn at_most(most: impl fmt::Display) -> Self {
        Self::new(format!("must be at most {most}"), format!("不能超过 {most}"))
    }

    /// "is required".
    pub fn required() -> Self {
        Self::new("is required", "必填")
    }
}

/// Why a value is refused.
pub type Reason = Localised;

/// A refusal with its code and the values for its placeholders, each in
/// both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What went wrong.
    pub code: ErrorCode,
    /// Values for `{0}`, `{1}`, … in the message.
    pub args: Vec<Localised>,
}

impl Refusal {
    /// A refusal without placeholders.
    pub fn new(code: ErrorCode) -> Self {
        Self { code, args: Vec::new() }
    }

    /// A refusal with placeholder values.
    pub fn with_args(code: ErrorCode, args: impl IntoIterator<Item = Localised>) -> Self {
        Self { code, args: args.into_iter().collect() }
    }

    /// The message in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        let args: Vec<String> = self.args.iter().map(|arg| arg.get(lang).to_owned()).collect();
        self.code.message(lang, &args)
    }
}

/// A field of an operator's request refused (`ADMIN.PARAM.0001`): which,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRefusal {
    /// The field, as the request names it.
    pub field: String,
    /// Why its value is refused.
    pub why: Localised,
}

/// What can go wrong in a domain operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CiamError {
    /// A refusal the client is told about, in its language.
    #[error("refused: {}", .0.code)]
    Refused(Refusal),
    /// A field of an operator's request refused (`ADMIN.PARAM.0001`).
    #[error("invalid field {}", .0.field)]
    Invalid(FieldRefusal),
    /// An infrastructure failure: logged, answered with `IDAAS.SDK.COM.0002`.
    #[error("internal: {0}")]
    Internal(String),
    /// The hashing pool and its queue are full: answered with
    /// `IDAAS.SDK.COM.0002` at once.
    #[error("overloaded")]
    Overloaded,
    /// The caller's address may not make password attempts for now:
    /// answered with `IDAAS.SDK.REQ.0007` and `Retry-After`.
    /// A limit that lifts with time: `code` (a 429) with `Retry-After`.
    #[error("{code}: wait {retry_after} s")]
    Wait {
        /// The code answered (429, with `Retry-After`).
        code: ErrorCode,
        /// Seconds until a retry may succeed.
        retry_after: i64,
    },
    #[error("throttled for {retry_after} s")]
    Throttled {
        /// Seconds until the address may try again.
        retry_after: i64,
    },
}

impl CiamError {
    /// Shorthand for a refusal without placeholders.
    pub fn refused(code: ErrorCode) -> Self {
        CiamError::Refused(Refusal::new(code))
    }

    /// The error code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            CiamError::Refused(r) => r.code,
            CiamError::Invalid(_) => ErrorCode::AdminFieldInvalid,
            CiamError::Internal(_) | CiamError::Overloaded => ErrorCode::SystemBusy,
            CiamError::Throttled { .. } => ErrorCode::AddressThrottled,
            CiamError::Wait { code, .. } => *code,
        }
    }

    /// The field an admin call refused and why (`ADMIN.PARAM.0001`), for a
    /// form that shows it next to the field.
    pub fn invalid_field(&self) -> Option<&FieldRefusal> {
        match self {
            CiamError::Invalid(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// The message the client sees, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            CiamError::Refused(r) => r.message(lang),
            CiamError::Invalid(FieldRefusal { field, why }) => {
                ErrorCode::AdminFieldInvalid.message(lang, &[field.clone(), why.get(lang).to_owned()])
            }
            CiamError::Internal(_) | CiamError::Overloaded | CiamError::Throttled { .. } | CiamError::Wait { .. } => {
                self.code().message(lang, &[])
            }
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
