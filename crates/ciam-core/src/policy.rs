//! Password and lockout policies, with the seed's defaults.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Lang};
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

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localised {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Localised {
    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// What a new password must satisfy, and when passwords expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl PasswordPolicy {
    /// Checks the fields an operator sets; returns the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.min_length == 0 || self.min_length > 1024 {
            return Err(("min_length", "must be between 1 and 1024".into()));
        }
        if self.max_length < self.min_length || self.max_length > 1024 {
            return Err(("max_length", "must be between min_length and 1024".into()));
        }
        if self.regex.len() > 4096 {
            return Err(("regex", "must be at most 4096 bytes".into()));
        }
        fancy_regex::Regex::new(&self.regex).map_err(|e| ("regex", e.to_string()))?;
        if self.tip.zh.trim().is_empty() || self.tip.en.trim().is_empty() {
            return Err(("tip", "needs both zh and en".into()));
        }
        if self.max_age_days > 0 && self.warn_days >= self.max_age_days {
            return Err(("warn_days", "must be less than max_age_days".into()));
        }
        if self.history > 24 {
            return Err(("history", "must be at most 24".into()));
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
            Err(CiamError::RefusedLocalised {
                code: ErrorCode::PasswordPolicyViolated,
                en: self.describe(Lang::En),
                zh: self.describe(Lang::Zh),
            })
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

/// How many consecutive failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account.
    pub max_failures: u32,
    /// How long a lock lasts, in seconds.
    pub lock_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 10, lock_seconds: 1800 }
    }
}

/// The fields of a [`LockoutPolicy`] an operator changes; `None` keeps the
/// current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockoutPolicyPatch {
    /// See [`LockoutPolicy::max_failures`].
    pub max_failures: Option<u32>,
    /// See [`LockoutPolicy::lock_seconds`].
    pub lock_seconds: Option<i64>,
}

impl LockoutPolicyPatch {
    /// `current` with the fields this patch sets replaced.
    pub fn apply(self, current: LockoutPolicy) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: self.max_failures.unwrap_or(current.max_failures),
            lock_seconds: self.lock_seconds.unwrap_or(current.lock_seconds),
        }
    }
}

impl LockoutPolicy {
    /// Checks the fields an operator sets.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_failures == 0 || self.max_failures > 1000 {
            return Err(("max_failures", "must be between 1 and 1000".into()));
        }
        if self.lock_seconds <= 0 || self.lock_seconds > 31 * 86_400 {
            return Err(("lock_seconds", "must be between 1 and 2678400".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `data` line of the seed's PASSWORD_WARN example, as printed there.
    const SEED_DATA_LINE: &str = r#"{"data": "{\"maxLength\":18,\"minLength\":8,\"regEx\":\"^(?![a-zA-Z]+$)(?![A-Z0-9]+$)(?![A-Z~!#$%&+\\\\-,*:;<=>@_?^、`~\\\\./]+$)(?![a-z0-9]+$)(?![a-z~!#$%&+\\\\-,*:;<=>@_?^、`~\\\\./]+$)(?![0-9~!#$%&+\\\\-,*:;<=>@_?^、`~\\\\./]+$)[a-zA-Z0-9~!#$%&+\\\\-,*:;<=>@_?^、`~\\\\./]{1,}$\",\"tip\":\"至少包含数字、大写字母、小写字母和特殊字符中的3种\"}"}"#;

    #[test]
    fn default_data_is_the_seed_data_to_the_byte() {
        let outer: serde_json::Value = serde_json::from_str(SEED_DATA_LINE).expect("seed line");
        let seed_data = outer["data"].as_str().expect("string");
        assert_eq!(PasswordPolicy::default().data_string(Lang::Zh), seed_data);
        let parsed: serde_json::Value = serde_json::from_str(seed_data).expect("inner");
        assert_eq!(parsed["regEx"], SEED_REGEX);
    }

    #[test]
    fn seed_regex_needs_three_kinds() {
        let policy = PasswordPolicy::default();
        for good in ["Passw0rd", "passw0rd!", "PASSW0RD!", "Abcdefg!", "aB3~aB3~aB3~"] {
            assert!(policy.check(&Password::new(good.into())).is_ok(), "{good} refused");
        }
        for bad in [
            "password",
            "PASSWORD1",
            "12345678",
            "abcd1234",
            "ABCD!!!!",
            "abc!!!!!",
            "1234!!!!",
            "Pa1!",
            "Passw0rd!Passw0rd!x",
            "Passw0rd 1",
        ] {
            assert!(policy.check(&Password::new(bad.into())).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn policy_refusal_carries_the_tip() {
        let err = PasswordPolicy::default().check(&Password::new("short".into())).expect_err("refused");
        assert_eq!(err.code(), ErrorCode::PasswordPolicyViolated);
        assert!(err.message(Lang::Zh).contains(SEED_TIP_ZH));
        assert!(err.message(Lang::En).contains(SEED_TIP_EN));
    }

    #[test]
    fn age_windows() {
        let p = PasswordPolicy::default();
        let day = 86_400;
        assert_eq!(p.age(0, 82 * day), PasswordAge::Fresh);
        assert_eq!(p.age(0, 83 * day), PasswordAge::Warn);
        assert_eq!(p.age(0, 90 * day - 1), PasswordAge::Warn);
        assert_eq!(p.age(0, 90 * day), PasswordAge::Expired);
        let never = PasswordPolicy { max_age_days: 0, ..p };
        assert_eq!(never.age(0, 9_999 * day), PasswordAge::Fresh);
    }

    #[test]
    fn operator_input_is_validated() {
        assert!(PasswordPolicy::default().validate().is_ok());
        let bad_re = PasswordPolicy { regex: "(".into(), ..Default::default() };
        assert_eq!(bad_re.validate().map_err(|e| e.0), Err("regex"));
        let inverted = PasswordPolicy { min_length: 10, max_length: 9, ..Default::default() };
        assert_eq!(inverted.validate().map_err(|e| e.0), Err("max_length"));
        assert!(LockoutPolicy::default().validate().is_ok());
        assert!(LockoutPolicy { max_failures: 0, lock_seconds: 1 }.validate().is_err());
    }
}
