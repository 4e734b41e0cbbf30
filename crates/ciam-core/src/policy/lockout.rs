//! The lockout policy: how many consecutive failures lock an account (or
//! an account and address), for how long, and when failures are forgotten.

use serde::{Deserialize, Serialize};

use crate::error::Reason;
use crate::model::{AddressKey, Counter, LockKey};

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

pub(super) fn check_seconds(field: &'static str, value: i64) -> Result<(), (&'static str, Reason)> {
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
