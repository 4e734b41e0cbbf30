//! Password and lockout policies, with the seed's defaults.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Lang, Reason, Refusal};
use crate::model::{AddressKey, Counter, LockKey, ThrottleState};
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

pub use crate::error::Localised;

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

/// What a failure counter is kept for (docs/api.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LockScope {
    /// One counter per account, whoever fails (docs/api.md §2).
    #[default]
    Account,
    /// One counter per account and address, so a lock made from one
    /// address does not stop the owner logging in from another; and one per
    /// account with `account_max_failures`, which locks it for everyone.
    AccountIp,
}

impl LockScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Account => "account",
            LockScope::AccountIp => "account_ip",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [LockScope::Account, LockScope::AccountIp].into_iter().find(|scope| scope.as_str() == s)
    }
}

/// How many consecutive failures lock an account, for how long, and when
/// failures are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account (the pair, with
    /// [`LockScope::AccountIp`]).
    pub max_failures: u32,
    /// How long a lock lasts, in seconds.
    pub lock_seconds: i64,
    /// What a counter is kept for.
    #[serde(default)]
    pub scope: LockScope,
    /// With [`LockScope::AccountIp`]: consecutive failures from all
    /// addresses together that lock the account for everyone.
    #[serde(default = "default_account_max_failures")]
    pub account_max_failures: u32,
    /// A failure count below the limit is forgotten this long after its
    /// last failure, in seconds.
    #[serde(default = "default_failure_reset_seconds")]
    pub failure_reset_seconds: i64,
}

fn default_account_max_failures() -> u32 {
    100
}

fn default_failure_reset_seconds() -> i64 {
    86_400
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            lock_seconds: 1800,
            scope: LockScope::Account,
            account_max_failures: default_account_max_failures(),
            failure_reset_seconds: default_failure_reset_seconds(),
        }
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
    /// See [`LockoutPolicy::scope`].
    pub scope: Option<LockScope>,
    /// See [`LockoutPolicy::account_max_failures`].
    pub account_max_failures: Option<u32>,
    /// See [`LockoutPolicy::failure_reset_seconds`].
    pub failure_reset_seconds: Option<i64>,
}

impl LockoutPolicyPatch {
    /// `current` with the fields this patch sets replaced.
    pub fn apply(self, current: LockoutPolicy) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: self.max_failures.unwrap_or(current.max_failures),
            lock_seconds: self.lock_seconds.unwrap_or(current.lock_seconds),
            scope: self.scope.unwrap_or(current.scope),
            account_max_failures: self.account_max_failures.unwrap_or(current.account_max_failures),
            failure_reset_seconds: self.failure_reset_seconds.unwrap_or(current.failure_reset_seconds),
        }
    }
}

/// The longest lock, reset time or throttle window an operator may set: 31 days.
pub const MAX_POLICY_SECONDS: i64 = 31 * 86_400;

fn check_seconds(field: &'static str, value: i64) -> Result<(), (&'static str, Reason)> {
    if (1..=MAX_POLICY_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err((field, Reason::between(1, MAX_POLICY_SECONDS)))
    }
}

impl LockoutPolicy {
    /// The counters a password attempt on `account` from `address` counts
    /// toward under this policy's scope.
    pub fn counters(&self, account: LockKey, address: Option<&AddressKey>) -> Vec<Counter> {
        match (self.scope, address) {
            (LockScope::AccountIp, Some(address)) => vec![
                Counter { key: LockKey::pair(&account, address), limit: self.max_failures },
                Counter { key: account, limit: self.account_max_failures },
            ],
            _ => vec![Counter { key: account, limit: self.max_failures }],
        }
    }

    /// Checks the fields an operator sets.
    pub fn validate(&self) -> Result<(), (&'static str, Reason)> {
        if self.max_failures == 0 || self.max_failures > 1000 {
            return Err(("max_failures", Reason::between(1, 1000)));
        }
        check_seconds("lock_seconds", self.lock_seconds)?;
        if self.account_max_failures == 0 || self.account_max_failures > 100_000 {
            return Err(("account_max_failures", Reason::between(1, 100_000)));
        }
        check_seconds("failure_reset_seconds", self.failure_reset_seconds)
    }
}

/// How many failed password attempts one address may make in a window
/// before its password attempts are refused (docs/api.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThrottlePolicy {
    /// Failed password attempts from one address that close its window.
    pub ip_max_failures: u32,
    /// The window, in seconds from the address's first failure in it.
    pub ip_window_seconds: i64,
    /// Addresses and networks (CIDR) that are never throttled.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub ip_allowlist: Vec<IpNet>,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self { ip_max_failures: 100, ip_window_seconds: 3600, ip_allowlist: Vec::new() }
    }
}

/// The most networks an allowlist holds.
pub const MAX_ALLOWLIST: usize = 100;

impl ThrottlePolicy {
    /// Checks the fields an operator sets.
    pub fn validate(&self) -> Result<(), (&'static str, Reason)> {
        if self.ip_max_failures == 0 || self.ip_max_failures > 1_000_000 {
            return Err(("ip_max_failures", Reason::between(1, 1_000_000)));
        }
        check_seconds("ip_window_seconds", self.ip_window_seconds)?;
        if self.ip_allowlist.len() > MAX_ALLOWLIST {
            return Err((
                "ip_allowlist",
                Reason::new(
                    format!("must hold at most {MAX_ALLOWLIST} networks"),
                    format!("最多 {MAX_ALLOWLIST} 个网络"),
                ),
            ));
        }
        Ok(())
    }

    /// Seconds until `window` ends, while it is open and the attempts in it
    /// with `pending` more would be over [`ThrottlePolicy::ip_max_failures`]; `None`
    /// when an attempt may go on.
    pub fn closed(&self, window: ThrottleState, now: UnixTime, pending: u32) -> Option<i64> {
        let ends = window.window_start + self.ip_window_seconds;
        (ends > now && window.failures.saturating_add(pending) > self.ip_max_failures).then_some(ends - now)
    }

    /// Whether `ip` is never throttled.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.ip_allowlist.iter().any(|net| net.contains(&ip))
    }
}

/// The fields of a [`ThrottlePolicy`] an operator changes; `None` keeps the
/// current value.
#[derive(Debug, Clone, Default)]
pub struct ThrottlePolicyPatch {
    /// See [`ThrottlePolicy::ip_max_failures`].
    pub ip_max_failures: Option<u32>,
    /// See [`ThrottlePolicy::ip_window_seconds`].
    pub ip_window_seconds: Option<i64>,
    /// See [`ThrottlePolicy::ip_allowlist`]: addresses or CIDR networks.
    pub ip_allowlist: Option<Vec<String>>,
}

impl ThrottlePolicyPatch {
    /// `current` with the fields this patch sets replaced; an allowlist
    /// entry that is no address or network is named.
    pub fn apply(self, current: ThrottlePolicy) -> Result<ThrottlePolicy, (&'static str, Reason)> {
        let ip_allowlist = match self.ip_allowlist {
            Some(entries) => entries.iter().map(|e| parse_net(e)).collect::<Result<_, _>>()?,
            None => current.ip_allowlist,
        };
        Ok(ThrottlePolicy {
            ip_max_failures: self.ip_max_failures.unwrap_or(current.ip_max_failures),
            ip_window_seconds: self.ip_window_seconds.unwrap_or(current.ip_window_seconds),
            ip_allowlist,
        })
    }
}

/// An address (a network of one) or a CIDR network.
pub fn parse_net(text: &str) -> Result<IpNet, (&'static str, Reason)> {
    let text = text.trim();
    text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map(|net| net.trunc()).map_err(|_| {
        let en = format!("{text:?} is not an IP address or CIDR network");
        ("ip_allowlist", Reason::new(en, format!("{text:?} 不是 IP 地址或 CIDR 网络")))
    })
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
        assert!(LockoutPolicy { max_failures: 0, ..Default::default() }.validate().is_err());
        assert!(LockoutPolicy { failure_reset_seconds: 0, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn a_stored_lockout_policy_from_before_the_scope_reads_with_its_defaults() {
        let old: LockoutPolicy = serde_json::from_str(r#"{"max_failures":5,"lock_seconds":60}"#).expect("json");
        assert_eq!(old, LockoutPolicy { max_failures: 5, lock_seconds: 60, ..Default::default() });
        assert_eq!(old.scope, LockScope::Account);
    }

    #[test]
    fn an_address_window_closes_past_its_limit_until_it_ends() {
        let policy = ThrottlePolicy { ip_max_failures: 3, ip_window_seconds: 60, ..Default::default() };
        let window = |failures| ThrottleState { window_start: 100, failures };
        assert_eq!(policy.closed(window(2), 110, 1), None, "the third may go on");
        assert_eq!(policy.closed(window(3), 110, 1), Some(50), "a fourth may not");
        assert_eq!(policy.closed(window(3), 110, 0), None, "the third, counted, goes on");
        assert_eq!(policy.closed(window(4), 110, 0), Some(50));
        assert_eq!(policy.closed(window(9), 160, 1), None, "a window that ended is no bar");
    }

    #[test]
    fn the_scope_decides_the_counters() {
        let account = LockKey::new("+8615200000000");
        let address = AddressKey::new("192.0.2.7");
        let one = LockoutPolicy::default().counters(account.clone(), Some(&address));
        assert_eq!(one, vec![Counter { key: account.clone(), limit: 10 }]);
        let scoped = LockoutPolicy { scope: LockScope::AccountIp, ..Default::default() };
        let two = scoped.counters(account.clone(), Some(&address));
        assert_eq!(two[0], Counter { key: LockKey::new("+8615200000000|192.0.2.7"), limit: 10 });
        assert_eq!(two[1], Counter { key: account, limit: 100 });
    }

    #[test]
    fn allowlists_take_addresses_and_networks() {
        let patch = ThrottlePolicyPatch {
            ip_allowlist: Some(vec!["10.0.0.0/8".into(), " 192.0.2.7 ".into(), "2001:db8::/32".into()]),
            ..Default::default()
        };
        let policy = patch.apply(ThrottlePolicy::default()).expect("valid");
        for inside in ["10.1.2.3", "192.0.2.7", "2001:db8:1::5"] {
            assert!(policy.allows(inside.parse().expect("ip")), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.8", "2001:db9::1"] {
            assert!(!policy.allows(outside.parse().expect("ip")), "{outside}");
        }
        let bad = ThrottlePolicyPatch { ip_allowlist: Some(vec!["10.0.0.0/33".into()]), ..Default::default() };
        assert_eq!(bad.apply(ThrottlePolicy::default()).map_err(|e| e.0), Err("ip_allowlist"));
        let too_many =
            ThrottlePolicy { ip_allowlist: vec![parse_net("10.0.0.1").expect("net"); 101], ..Default::default() };
        assert_eq!(too_many.validate().map_err(|e| e.0), Err("ip_allowlist"));
    }
}
