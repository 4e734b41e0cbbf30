//! The SMS policy (docs/sms.md): how long a code lives, how often it may be
//! sent, how many times it may be tried, and where.

use serde::{Deserialize, Serialize};

use crate::error::Reason;
use crate::mobile::Mobile;

/// Limits on verification codes, shared by every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SmsPolicy {
    /// Seconds a code stays good.
    pub code_ttl_seconds: i64,
    /// Seconds between two codes to one number (0: no interval).
    pub resend_seconds: i64,
    /// Codes one number may receive in 24 hours.
    pub mobile_daily_max: u32,
    /// Codes one client address (IPv6: its /64) may ask for in an hour.
    pub ip_hourly_max: u32,
    /// Codes sent in all in an hour: the most an SMS-pumping attack can
    /// cost.
    pub global_hourly_max: u32,
    /// Comparisons one code takes; after them even the right digits fail.
    pub max_checks: u32,
    /// Wrong entries one number may have in 24 hours, across codes.
    pub mobile_daily_max_checks: u32,
    /// E.164 prefixes codes may be sent to (`+86`, `+4420`); empty allows
    /// every number.
    pub allowed_prefixes: Vec<String>,
}

impl Default for SmsPolicy {
    fn default() -> Self {
        Self {
            code_ttl_seconds: 300,
            resend_seconds: 60,
            mobile_daily_max: 10,
            ip_hourly_max: 20,
            global_hourly_max: 1000,
            max_checks: 5,
            mobile_daily_max_checks: 10,
            allowed_prefixes: vec!["+86".into()],
        }
    }
}

/// The most prefixes a policy lists.
pub const MAX_PREFIXES: usize = 50;

fn between(field: &'static str, value: i64, low: i64, high: i64) -> Result<(), (&'static str, Reason)> {
    if (low..=high).contains(&value) { Ok(()) } else { Err((field, Reason::between(low, high))) }
}

impl SmsPolicy {
    /// Checks the fields an operator sets.
    pub fn validate(&self) -> Result<(), (&'static str, Reason)> {
        between("code_ttl_seconds", self.code_ttl_seconds, 60, 3600)?;
        between("resend_seconds", self.resend_seconds, 0, 3600)?;
        between("mobile_daily_max", self.mobile_daily_max.into(), 1, 1000)?;
        between("ip_hourly_max", self.ip_hourly_max.into(), 1, 1_000_000)?;
        between("global_hourly_max", self.global_hourly_max.into(), 1, 100_000_000)?;
        between("max_checks", self.max_checks.into(), 1, 10)?;
        between("mobile_daily_max_checks", self.mobile_daily_max_checks.into(), 1, 1000)?;
        if self.allowed_prefixes.len() > MAX_PREFIXES {
            return Err(("allowed_prefixes", Reason::at_most(MAX_PREFIXES)));
        }
        for prefix in &self.allowed_prefixes {
            let digits = prefix.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                let en = format!("{prefix:?} is not an E.164 prefix such as +86");
                return Err(("allowed_prefixes", Reason::new(en, format!("{prefix:?} 不是 +86 这样的 E.164 前缀"))));
            }
        }
        Ok(())
    }

    /// Whether codes may be sent to `mobile`.
    pub fn allows(&self, mobile: &Mobile) -> bool {
        self.allowed_prefixes.is_empty() || self.allowed_prefixes.iter().any(|p| mobile.as_str().starts_with(p))
    }
}

/// The fields of an [`SmsPolicy`] an operator changes; `None` keeps the
/// current value.
#[derive(Debug, Clone, Default)]
pub struct SmsPolicyPatch {
    /// See [`SmsPolicy::code_ttl_seconds`].
    pub code_ttl_seconds: Option<i64>,
    /// See [`SmsPolicy::resend_seconds`].
    pub resend_seconds: Option<i64>,
    /// See [`SmsPolicy::mobile_daily_max`].
    pub mobile_daily_max: Option<u32>,
    /// See [`SmsPolicy::ip_hourly_max`].
    pub ip_hourly_max: Option<u32>,
    /// See [`SmsPolicy::global_hourly_max`].
    pub global_hourly_max: Option<u32>,
    /// See [`SmsPolicy::max_checks`].
    pub max_checks: Option<u32>,
    /// See [`SmsPolicy::mobile_daily_max_checks`].
    pub mobile_daily_max_checks: Option<u32>,
    /// See [`SmsPolicy::allowed_prefixes`].
    pub allowed_prefixes: Option<Vec<String>>,
}

impl SmsPolicyPatch {
    /// `current` with the fields this patch sets replaced (prefixes trimmed).
    pub fn apply(self, current: SmsPolicy) -> SmsPolicy {
        SmsPolicy {
            code_ttl_seconds: self.code_ttl_seconds.unwrap_or(current.code_ttl_seconds),
            resend_seconds: self.resend_seconds.unwrap_or(current.resend_seconds),
            mobile_daily_max: self.mobile_daily_max.unwrap_or(current.mobile_daily_max),
            ip_hourly_max: self.ip_hourly_max.unwrap_or(current.ip_hourly_max),
            global_hourly_max: self.global_hourly_max.unwrap_or(current.global_hourly_max),
            max_checks: self.max_checks.unwrap_or(current.max_checks),
            mobile_daily_max_checks: self.mobile_daily_max_checks.unwrap_or(current.mobile_daily_max_checks),
            allowed_prefixes: match self.allowed_prefixes {
                Some(list) => list.iter().map(|p| p.trim().to_owned()).collect(),
                None => current.allowed_prefixes,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::parse_region;

    #[test]
    fn defaults_are_valid_and_allow_only_china() {
        let policy = SmsPolicy::default();
        assert!(policy.validate().is_ok());
        let cn = parse_region("CN").expect("CN");
        let china = Mobile::parse("15200000000", cn).expect("number");
        let uk = Mobile::parse("+447911123456", cn).expect("number");
        assert!(policy.allows(&china));
        assert!(!policy.allows(&uk));
        let open = SmsPolicy { allowed_prefixes: Vec::new(), ..policy };
        assert!(open.allows(&uk));
    }

    #[test]
    fn bad_fields_are_named() {
        let patch = |p: SmsPolicyPatch| p.apply(SmsPolicy::default()).validate().map_err(|e| e.0);
        assert_eq!(patch(SmsPolicyPatch { max_checks: Some(0), ..Default::default() }), Err("max_checks"));
        assert_eq!(patch(SmsPolicyPatch { code_ttl_seconds: Some(30), ..Default::default() }), Err("code_ttl_seconds"));
        let bad_prefix = SmsPolicyPatch { allowed_prefixes: Some(vec!["86".into()]), ..Default::default() };
        assert_eq!(patch(bad_prefix), Err("allowed_prefixes"));
        let good = SmsPolicyPatch { allowed_prefixes: Some(vec![" +44 ".into(), "+1".into()]), ..Default::default() };
        assert_eq!(good.apply(SmsPolicy::default()).allowed_prefixes, vec!["+44", "+1"]);
    }
}
