//! The policies an operator sets, with the seed's defaults: passwords
//! ([`password`]), lockout ([`lockout`]) and the address throttle
//! ([`throttle`]); and the limits beside them: SDK calls in progress per
//! address ([`inflight`]) and the operators' sign-in throttle
//! ([`operator`]).

pub mod inflight;
mod lockout;
pub mod operator;
mod password;
mod throttle;

pub use crate::error::Localised;
pub use lockout::{LockScope, LockoutPolicy, LockoutPolicyPatch, MAX_POLICY_SECONDS};
pub use password::{
    MAX_AGE_DAYS, PasswordAge, PasswordPolicy, PasswordPolicyPatch, SEED_REGEX, SEED_TIP_EN, SEED_TIP_ZH,
};
pub use throttle::{MAX_ALLOWLIST, ThrottlePolicy, ThrottlePolicyPatch, parse_net};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, Lang};
    use crate::model::{AddressKey, Counter, LockKey, ThrottleState};
    use crate::password::Password;

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
