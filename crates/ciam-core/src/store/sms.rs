//! What verification codes by SMS keep (docs/sms.md): the live code of
//! each number and purpose, as a keyed digest, and the windows that limit
//! sends and wrong entries. Every count is one conditional statement, so
//! the limits hold exactly on every instance sharing the database.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::mobile::Mobile;

use super::StoreResult;

/// One limit a send or a check counts against: at most `max` in a window
/// of `window_seconds` that starts with the first counted after the last
/// window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// What is counted, e.g. `resend:+8615200000000`.
    pub key: String,
    /// How long a window lasts.
    pub window_seconds: i64,
    /// The most a window holds.
    pub max: u32,
}

/// A window one more was counted in: its key and when it ends (to give it
/// back, if the call does not go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The window's key.
    pub key: String,
    /// When the window ends.
    pub ends_at: UnixTime,
}

/// A code to store in place of the number's live code of its purpose.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    /// The number it is sent to.
    pub mobile: &'a Mobile,
    /// Its purpose (`LOGIN_SMS`, …).
    pub kind: &'a str,
    /// The keyed digest of the code.
    pub digest: &'a str,
    /// When it stops being good.
    pub expires_at: UnixTime,
}

/// What a comparison of a typed code may be compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// The number's wrong entries for the day are used up: nothing is
    /// compared.
    NoneLeft,
    /// No live code with comparisons left: the entry is wrong whatever it
    /// is (it was counted as one).
    NoCode {
        /// The day's window of wrong entries, counted.
        day: Taken,
    },
    /// The live code's digest, its comparison counted.
    Live {
        /// The live code's digest.
        digest: String,
        /// The day's window of wrong entries, counted (given back when the
        /// code is spent).
        day: Taken,
    },
}

/// The codes and limits of SMS verification.
#[async_trait]
pub trait SmsStore: Send + Sync {
    /// Counts one more in each of `windows`, in one transaction: a window
    /// that ended at or before `now` starts again at 1, one that holds its
    /// `max` already is not counted. When every window took one, answers
    /// what was taken; otherwise the transaction is rolled back (nothing was
    /// ever counted, for any caller to see) and the answer is the first
    /// window that refused and the seconds until it ends.
    async fn take_windows(&self, windows: &[Window], now: UnixTime) -> StoreResult<Result<Vec<Taken>, (usize, i64)>>;
    /// Stores `code` as the number's live code of its purpose, replacing
    /// the one before (whose comparisons it does not inherit).
    async fn put_code(&self, code: &NewCode<'_>) -> StoreResult<()>;
    /// Begins the comparison of a typed code with the live code of
    /// (`mobile`, `kind`), in one transaction: counts the entry in the
    /// number's day of wrong entries (`day`), and, when that took it, one
    /// comparison of the live code, if it is alive at `now` and has had
    /// fewer than `max_checks`.
    async fn check_code(
        &self,
        mobile: &Mobile,
        kind: &str,
        day: &Window,
        now: UnixTime,
        max_checks: u32,
    ) -> StoreResult<CodeCheck>;
    /// Gives back what a matched code's comparison counted (its check, the
    /// entry's place on `day`), when the call that matched it was refused
    /// for another reason (a new password the policy refuses): the code
    /// stays good as it was.
    async fn unmatch_code(&self, mobile: &Mobile, kind: &str, digest: &str, day: &Taken) -> StoreResult<()>;
    /// Deletes every live code of `mobile` (its password was just set);
    /// answers how many.
    async fn forget_codes(&self, mobile: &Mobile) -> StoreResult<u64>;
    /// Spends the live code of (`mobile`, `kind`) if its digest is still
    /// `digest` (a code is good once, on every instance), giving back the
    /// entry's place in `day`; whether it was spent here.
    async fn spend_code(&self, mobile: &Mobile, kind: &str, digest: &str, day: &Taken) -> StoreResult<bool>;
}
