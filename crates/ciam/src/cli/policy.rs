//! `ciam policy lockout|throttle`: shows a policy, or changes the fields
//! given, and prints it as JSON.

use ciam_core::Ciam;
use ciam_core::policy::{LockScope, LockoutPolicyPatch, ThrottlePolicyPatch};
use clap::{Args, Subcommand, ValueEnum};

use super::{CliError, print_serialized};

/// `ciam policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The lockout policy (docs/api.md §2, §7).
    Lockout(LockoutArgs),
    /// The address throttle (docs/api.md §7).
    Throttle(ThrottleArgs),
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
    }
}
