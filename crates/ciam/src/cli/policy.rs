//! `ciam policy lockout|throttle|sms`: shows a policy, or changes the fields
//! given, and prints it as JSON.

use ciam_core::Ciam;
use ciam_core::policy::{LockScope, LockoutPolicyPatch, ThrottlePolicyPatch};
use ciam_core::sms::SmsPolicyPatch;
use clap::{Args, Subcommand, ValueEnum};

use super::{CliError, print_serialized};

/// `ciam policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The lockout policy (docs/api.md §2, §7).
    Lockout(LockoutArgs),
    /// The address throttle (docs/api.md §7).
    Throttle(ThrottleArgs),
    /// The limits on SMS verification codes (docs/sms.md).
    Sms(SmsArgs),
}

/// What a lock counts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scope {
    /// One count per account.
    Account,
    /// One count per account and address, and one per account with --account-max-failures.
    #[value(name = "account_ip", alias = "account-ip")]
    AccountIp,
}

/// `ciam policy lockout`
#[derive(Debug, Args)]
pub struct LockoutArgs {
    /// Consecutive failures that lock.
    #[arg(long)]
    pub max_failures: Option<u32>,
    /// How long a lock lasts, seconds.
    #[arg(long)]
    pub lock_seconds: Option<i64>,
    /// What a lock counts.
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
    /// With --scope account_ip: failures from all addresses that lock the account for everyone.
    #[arg(long)]
    pub account_max_failures: Option<u32>,
    /// Seconds after its last failure at which a count below the limit is forgotten.
    #[arg(long)]
    pub failure_reset_seconds: Option<i64>,
}

/// `ciam policy throttle`
#[derive(Debug, Args)]
pub struct ThrottleArgs {
    /// Failed password attempts one address may make in a window.
    #[arg(long)]
    pub ip_max_failures: Option<u32>,
    /// The window, seconds.
    #[arg(long)]
    pub ip_window_seconds: Option<i64>,
    /// Addresses or CIDR networks never throttled, comma-separated (an empty value clears the list).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub ip_allowlist: Option<Vec<String>>,
}

/// `ciam policy sms`
#[derive(Debug, Args)]
pub struct SmsArgs {
    /// Seconds a code stays good.
    #[arg(long)]
    pub code_ttl_seconds: Option<i64>,
    /// Seconds between two codes to one number (0: no interval).
    #[arg(long)]
    pub resend_seconds: Option<i64>,
    /// Codes one number may receive in 24 hours.
    #[arg(long)]
    pub mobile_daily_max: Option<u32>,
    /// Codes one address may ask for in an hour.
    #[arg(long)]
    pub ip_hourly_max: Option<u32>,
    /// Codes sent in all in an hour.
    #[arg(long)]
    pub global_hourly_max: Option<u32>,
    /// Comparisons one code takes.
    #[arg(long)]
    pub max_checks: Option<u32>,
    /// Wrong entries one number may have in 24 hours.
    #[arg(long)]
    pub mobile_daily_max_checks: Option<u32>,
    /// E.164 prefixes codes may go to, comma-separated (an empty value allows every number).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub allowed_prefixes: Option<Vec<String>>,
}

pub(super) async fn run(ciam: &Ciam, command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Lockout(a) => {
            let patch = LockoutPolicyPatch {
                max_failures: a.max_failures,
                lock_seconds: a.lock_seconds,
                scope: a.scope.map(|scope| match scope {
                    Scope::Account => LockScope::Account,
                    Scope::AccountIp => LockScope::AccountIp,
                }),
                account_max_failures: a.account_max_failures,
                failure_reset_seconds: a.failure_reset_seconds,
            };
            print_serialized(ciam.update_lockout_policy(patch).await?)
        }
        PolicyCommand::Throttle(a) => {
            let allowlist = a.ip_allowlist.map(|list| list.into_iter().filter(|e| !e.trim().is_empty()).collect());
            let patch = ThrottlePolicyPatch {
                ip_max_failures: a.ip_max_failures,
                ip_window_seconds: a.ip_window_seconds,
                ip_allowlist: allowlist,
            };
            print_serialized(ciam.update_throttle_policy(patch).await?)
        }
        PolicyCommand::Sms(a) => {
            let prefixes = a.allowed_prefixes.map(|list| list.into_iter().filter(|e| !e.trim().is_empty()).collect());
            let patch = SmsPolicyPatch {
                code_ttl_seconds: a.code_ttl_seconds,
                resend_seconds: a.resend_seconds,
                mobile_daily_max: a.mobile_daily_max,
                ip_hourly_max: a.ip_hourly_max,
                global_hourly_max: a.global_hourly_max,
                max_checks: a.max_checks,
                mobile_daily_max_checks: a.mobile_daily_max_checks,
                allowed_prefixes: prefixes,
            };
            print_serialized(ciam.update_sms_policy(patch).await?)
        }
    }
}
