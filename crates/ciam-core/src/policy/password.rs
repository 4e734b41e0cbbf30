//! The password policy: what a new password must satisfy (the seed's rule
//! and tip by default), and when passwords expire.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Lang, Localised, Reason, Refusal};
use crate::password::Password;

/// The seed's password rule: at least three of digits, upper case, lower case
/// and special characters, from a fixed alphabet. It uses look-ahead, so it is
/// evaluated with `fancy-regex`, and sent to clients verbatim.
pub const SEED_REGEX: &str = r"^(?![a-zA-Z]+$)(?![A-Z0-9]+$)(?![A-Z~!#$%&+\-,*:;<=>@_?^、`~\./]+$)(?![a-z0-9]+$)(?![a-z~!#$%&+\-,*:;<=>@_?^、`~\./]+$)(?![0-9~!#$%&+\-,*:;<=>@_?^、`~\./]+$)[a-zA-Z0-9~!#$%&+\-,*:;<=>@_?^、`~\./]{1,}$";

/// The seed's tip, in Chinese (verbatim) and English.
pub const SEED_TIP_ZH: &str = "至少包含数字、大写字母、小写字母和特殊字符中的3种";
/// The English counterpart of [`SEED_TIP_ZH`].
pub const SEED_TIP_EN: &str =
    "At least 3 of the following: digits, uppercase letters, lowercase letters and special characters";

/// What a new password must satisfy, and when passwords expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_length: u32,
    /// Maximum length in characters.
    pub max_length: u32,
    /// A regular expression (look-around allowed) the password must match.
    pub regex: String,
    /// What the rule asks for, in both languages.
    pub tip: Localised,
    /// Days after a change at which the password expires; 0 = never.
    pub max_age_days: u32,
    /// Days before expiry during which logins answer `PASSWORD_WARN`.
    pub warn_days: u32,
    /// How many previous passwords may not be reused (the current one never may).
    pub history: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 18,
            regex: SEED_REGEX.to_owned(),
            tip: Localised { zh: SEED_TIP_ZH.to_owned(), en: SEED_TIP_EN.to_owned() },
            max_age_days: 90,
            warn_days: 7,
            history: 0,
        }
    }
}

/// Where a password stands against the expiry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAge {
    /// Fine.
    Fresh,
    /// Within the warn window before expiry.
    Warn,
    /// Past its maximum age.
    Expired,
}

/// The `data` string of PASSWORD_WARN / PASSWORD_EXPIRED, in the seed's shape
/// and key order.
#[derive(Serialize)]
struct PolicyData<'a> {
    #[serde(rename = "maxLength")]
    max_length: u32,
    #[serde(rename = "minLength")]
    min_length: u32,
    #[serde(rename = "regEx")]
    reg_ex: &'a str,
    tip: &'a str,
}

/// The longest password age a policy sets (a hundred years).
pub const MAX_AGE_DAYS: u32 = 36_500;

impl PasswordPolicy {
    /// Checks the fields an operator sets; returns the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, Reason)> {
        if self.min_length == 0 || self.min_length > 1024 {
            return Err(("min_length", Reason::between(1, 1024)));
        }
        if self.max_length < self.min_length || self.max_length > 1024 {
            return Err(("max_length", Reason::between(format!("min_length ({})", self.min_length), 1024)));
        }
        if self.regex.len() > 4096 {
            return Err(("regex", Reason::new("must be at most 4096 bytes", "不能超过 4096 字节")));
        }
        fancy_regex::Regex::new(&self.regex)
            .map_err(|e| ("regex", Reason::new(e.to_string(), format!("不是有效的正则表达式:{e}"))))?;
        if self.tip.zh.trim().is_empty() || self.tip.en.trim().is_empty() {
            return Err(("tip", Reason::new("needs both zh and en", "中英文都要填写")));
        }
        if self.max_age_days > MAX_AGE_DAYS {
            return Err(("max_age_days", Reason::at_most(MAX_AGE_DAYS)));
        }
        if self.warn_days > MAX_AGE_DAYS {
            return Err(("warn_days", Reason::at_most(MAX_AGE_DAYS)));
        }
        if self.max_age_days > 0 && self.warn_days >= self.max_age_days {
            return Err(("warn_days", Reason::new("must be less than max_age_days", "必须小于 max_age_days")));
        }
        if self.history > 24 {
            return Err(("history", Reason::at_most(24)));
        }
        Ok(())
    }

    /// The JSON string sent as `data` with PASSWORD_WARN / PASSWORD_EXPIRED.
    pub fn data_string(&self, lang: Lang) -> String {
        let data = PolicyData {
            max_length: self.max_length,
            min_length: self.min_length,
            reg_ex: &self.regex,
            tip: self.tip.get(lang),
        };
        serde_json::to_string(&data).unwrap_or_default()
    }

    /// Checks a new password against length and pattern. The refusal carries
    /// the tip in both languages.
    pub fn check(&self, password: &Password) -> Result<(), CiamError> {
        let chars = password.expose().chars().count();
        let fits = chars >= self.min_length as usize
            && chars <= self.max_length as usize
            && fancy_regex::Regex::new(&self.regex)
                .ok()
                .and_then(|re| re.is_match(password.expose()).ok())
                .unwrap_or(false);
        if fits {
            Ok(())
        } else {
            Err(CiamError::Refused(Refusal::with_args(
                ErrorCode::PasswordPolicyViolated,
                [Localised::new(self.describe(Lang::En), self.describe(Lang::Zh))],
            )))
        }
    }

    fn describe(&self, lang: Lang) -> String {
        match lang {
            Lang::En => format!("{} to {} characters; {}", self.min_length, self.max_length, self.tip.en),
            Lang::Zh => format!("长度{}到{}位;{}", self.min_length, self.max_length, self.tip.zh),
        }
    }

    /// Where a password changed at `changed_at` stands at `now`.
    pub fn age(&self, changed_at: UnixTime, now: UnixTime) -> PasswordAge {
        if self.max_age_days == 0 {
            return PasswordAge::Fresh;
        }
        let expires_at = changed_at + i64::from(self.max_age_days) * 86_400;
        let warn_from = expires_at - i64::from(self.warn_days) * 86_400;
        if now >= expires_at {
            PasswordAge::Expired
        } else if now >= warn_from {
            PasswordAge::Warn
        } else {
            PasswordAge::Fresh
        }
    }
}

/// The fields of a [`PasswordPolicy`] an operator changes; `None` keeps the
/// current value.
#[derive(Debug, Clone, Default)]
pub struct PasswordPolicyPatch {
    /// See [`PasswordPolicy::min_length`].
    pub min_length: Option<u32>,
    /// See [`PasswordPolicy::max_length`].
    pub max_length: Option<u32>,
    /// See [`PasswordPolicy::regex`].
    pub regex: Option<String>,
    /// See [`PasswordPolicy::tip`].
    pub tip: Option<Localised>,
    /// See [`PasswordPolicy::max_age_days`].
    pub max_age_days: Option<u32>,
    /// See [`PasswordPolicy::warn_days`].
    pub warn_days: Option<u32>,
    /// See [`PasswordPolicy::history`].
    pub history: Option<u32>,
}

impl PasswordPolicyPatch {
    /// `current` with the fields this patch sets replaced.
    pub fn apply(self, current: PasswordPolicy) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.min_length.unwrap_or(current.min_length),
            max_length: self.max_length.unwrap_or(current.max_length),
            regex: self.regex.unwrap_or(current.regex),
            tip: self.tip.unwrap_or(current.tip),
            max_age_days: self.max_age_days.unwrap_or(current.max_age_days),
            warn_days: self.warn_days.unwrap_or(current.warn_days),
            history: self.history.unwrap_or(current.history),
        }
    }
}
