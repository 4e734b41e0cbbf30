//! A password check against the locks it counts toward (docs/api.md §2,
//! §7): the address throttle's gate, the lock, a place on each failure
//! counter (so checks in flight count against the attempts left), and the
//! settling of the check once the hash has answered.

use crate::call::Call;
use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, Localised, Refusal};
use crate::mobile::Mobile;
use crate::model::{
    AddressKey, Counter, FailureAudit, FailureState, LockKey, Outcome, Reservation, ThrottleState, User,
};
use crate::policy::{LockoutPolicy, ThrottlePolicy};
use crate::service::Ciam;
use crate::telemetry;
use crate::token::OpaqueToken;

use super::locked_refusal;

/// The address throttle as one call meets it (see [`Ciam::throttle_gate`]).
#[derive(Debug)]
pub(crate) struct Gate {
    policy: ThrottlePolicy,
    counted: Option<AddressKey>,
}

/// One password check against the locks it counts toward: a login's, or
/// the old password's in a password update. Begun by
/// [`Ciam::begin_attempt`] before the hash, settled after it.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// The counters it counts against, each with its state when it began.
    counters: Vec<(Counter, Option<FailureState>)>,
    /// The lockout policy in force.
    policy: LockoutPolicy,
    /// When the attempt began.
    pub(super) now: UnixTime,
    /// The refusal for a wrong password while attempts are left.
    miss: ErrorCode,
}

impl Attempt {
    /// The counters it counts against.
    fn counters(&self) -> Vec<Counter> {
        self.counters.iter().map(|(c, _)| c.clone()).collect()
    }

    /// The keys of the counters it counts against.
    fn keys(&self) -> Vec<LockKey> {
        self.counters.iter().map(|(c, _)| c.key.clone()).collect()
    }

    /// `LOGIN.0001` while any of its counters is locked; checked before any
    /// hash.
    fn check_lock(&self) -> Result<(), CiamError> {
        let locked = self.counters.iter().filter_map(|(_, state)| state.and_then(|s| s.locked_until)).max();
        match locked.filter(|until| *until > self.now) {
            Some(until) => Err(locked_refusal(until - self.now)),
            None => Ok(()),
        }
    }

    /// The answer to a failure just counted: the lock when a counter reached
    /// its limit, otherwise the attempts left before the first lock.
    fn refusal(&self, counted: &[FailureState]) -> CiamError {
        let mut locked_until = None;
        let mut left = u32::MAX;
        for ((counter, _), state) in self.counters.iter().zip(counted) {
            if state.failures >= counter.limit {
                let until = state.locked_until.unwrap_or(self.now + self.policy.lock_seconds);
                locked_until = locked_until.max(Some(until));
            } else {
                left = left.min(counter.limit - state.failures);
            }
        }
        match locked_until {
            Some(until) => locked_refusal(until - self.now),
            None => CiamError::Refused(Refusal::with_args(self.miss, [Localised::same(left.to_string())])),
        }
    }

    /// Settles the password check: a miss is counted and refused (with
    /// attempts left, or with the lock when it used up the last one), its
    /// audit event stored in the same commit as the count; a match forgets
    /// earlier failures and hands back what matched.
    pub async fn settle<T>(self, ciam: &Ciam, call: &mut Call, matched: Option<T>) -> Result<T, CiamError> {
        // A right password on counters that had no failures has nothing to
        // forget: a read tells whether a lock landed meanwhile, and its
        // places go back with the session's commit (or when the call ends).
        if matched.is_some() && self.counters.iter().all(|(_, state)| state.is_none_or(|s| s.failures == 0)) {
            return self.check_unlocked(ciam, matched).await;
        }
        // Taken out of the call before the write that ends them, and put
        // back if it fails: a call cut short after the write committed must
        // not give them back a second time. A miss's attempt in the
        // address's window is its failure; a match's is given back later.
        let place = call.take_places().unwrap_or_default();
        let reserved = if matched.is_none() { call.take_reservation() } else { None };
        let settled = self.settle_places(ciam, call, matched, &place).await;
        if settled.as_ref().is_err_and(|e| matches!(e, CiamError::Internal(_))) {
            if let Some(reserved) = reserved {
                call.reserve(reserved);
            }
            call.hold_places(place);
        }
        settled
    }

    /// `matched`, unless one of the counters was locked meanwhile.
    async fn check_unlocked<T>(&self, ciam: &Ciam, matched: Option<T>) -> Result<T, CiamError> {
        let now = ciam.now();
        let keys = self.keys();
        let states = ciam.store().login_lookup(&keys, None, None).await?.counts;
        if let Some(until) = states.iter().flatten().filter_map(|s| s.locked_until).filter(|u| *u > now).max() {
            return Err(locked_refusal(until - now));
        }
        matched.ok_or_else(|| CiamError::Internal("a match without what matched".into()))
    }

    async fn settle_places<T>(
        &self,
        ciam: &Ciam,
        call: &mut Call,
        matched: Option<T>,
        place: &str,
    ) -> Result<T, CiamError> {
        let Some(matched) = matched else {
            // The attempt held in the address's window, and the places on
            // the counters, are this failure.
            let event = call.event(Outcome::Refused(self.miss));
            let audit = FailureAudit { event: &event, locked: Outcome::Refused(ErrorCode::AccountLocked) };
            let counters = self.counters();
            let (counted, _) = ciam.store().record_failure(&counters, self.now, &self.policy, audit, place).await?;
            let refusal = self.refusal(&counted);
            if refusal.code() == ErrorCode::AccountLocked {
                telemetry::lockout();
            }
            call.stored(Outcome::Refused(refusal.code()));
            return Err(refusal);
        };
        // A right password whose check ends after a burst locked the
        // counter is refused like any attempt on a locked account.
        let now = ciam.now();
        let keys = self.keys();
        let states = ciam.store().settle_match(&keys, place, now).await?;
        match states.iter().filter_map(|s| s.locked_until).filter(|until| *until > now).max() {
            Some(until) => Err(locked_refusal(until - now)),
            None => Ok(matched),
        }
    }

    /// Takes a place for the password check on each counter, so that checks
    /// in flight count against the attempts left: at most a counter's limit
    /// of passwords is ever verified per countdown, however many attempts
    /// arrive at once. An attempt that finds no place is refused with the
    /// lock (its time left, or the whole `lock_seconds` when the places are
    /// all taken by checks in flight), before any hash. In the same
    /// transaction the attempt is counted in its address's window (when it
    /// is counted there); that window comes back. The places, one id on
    /// every counter, are held by the call (see [`Ciam::close_call`]).
    async fn take_places(
        &self,
        ciam: &Ciam,
        call: &mut Call,
        address: Option<(&AddressKey, i64)>,
    ) -> Result<Option<ThrottleState>, CiamError> {
        let id = OpaqueToken::generate(PLACE_ID_LEN)?.expose().to_owned();
        call.hold_places(id.clone());
        let counters = self.counters();
        let until = self.now + GUESS_HOLD_SECONDS;
        let reset = self.policy.failure_reset_seconds;
        let (guesses, window) = ciam.store().begin_check(&counters, self.now, reset, until, &id, address).await?;
        if let Some(refused) = guesses.iter().find(|g| !g.reserved) {
            let left = refused.state.locked_until.filter(|u| *u > self.now).map(|u| u - self.now);
            return Err(locked_refusal(left.unwrap_or(self.policy.lock_seconds)));
        }
        Ok(window)
    }
}

/// How long a password check's place on a failure counter lasts unless it
/// is counted or given back first: the longest a check could still be
/// running (an instance that died mid-hash never gives its place back).
pub const GUESS_HOLD_SECONDS: i64 = 30;

/// Characters of the random id of a check's places.
const PLACE_ID_LEN: usize = 16;

impl Ciam {
    /// The address throttle as it applies to the call: the policy, and the
    /// key its attempts are counted under (none for an allowlisted address
    /// or one not known). An address this instance saw throttled within
    /// [`crate::service::POLICY_CACHE`], or that a full hashing pool would
    /// refuse, is refused at once, with no read.
    pub(crate) async fn throttle_gate(&self, call: &Call) -> Result<Gate, CiamError> {
        let policy = self.throttle_policy().await?;
        let counted = policy.counted(call.address());
        if let Some(retry_after) = counted.as_ref().and_then(|key| self.recently_closed(key)) {
            return Err(CiamError::Throttled { retry_after });
        }
        // A full pool refuses an address over its share before any read, so
        // a flood costs the database nothing beyond its refusals' events.
        self.hasher().check(&call.owner())?;
        Ok(Gate { policy, counted })
    }

    /// Begins a password attempt on `account` for the call: reads its
    /// counters, its address's window and the user with `mobile` (when
    /// given) in one read; refuses a throttled address, then a lock; then,
    /// in one transaction, takes the check's places on the counters (the
    /// lock bounds guesses) and counts the attempt in the address's window.
    /// All before any hash. Returns the attempt and the user.
    pub(crate) async fn begin_attempt(
        &self,
        call: &mut Call,
        gate: Gate,
        account: LockKey,
        mobile: Option<&Mobile>,
        miss: ErrorCode,
    ) -> Result<(Attempt, Option<User>), CiamError> {
        let now = self.now();
        let Gate { policy: throttle, counted } = gate;
        let policy = self.lockout_policy().await?;
        let counters = policy.counters(account, call.address().map(AddressKey::of).as_ref());
        let keys: Vec<LockKey> = counters.iter().map(|c| c.key.clone()).collect();
        let lookup = self.store().login_lookup(&keys, counted.as_ref(), mobile).await?;
        if let (Some(address), Some(window)) = (&counted, lookup.throttle) {
            self.refuse_closed(&throttle, address, window, now, 1)?;
        }
        let states = lookup.counts.into_iter().chain(std::iter::repeat(None));
        let attempt = Attempt { counters: counters.into_iter().zip(states).collect(), policy, now, miss };
        attempt.check_lock()?;
        let window = attempt.take_places(self, call, counted.as_ref().map(|a| (a, throttle.ip_window_seconds))).await?;
        if let (Some(address), Some(window)) = (counted, window) {
            self.refuse_closed(&throttle, &address, window, now, 0)?;
            call.reserve(Reservation { key: address, window_start: window.window_start });
        }
        Ok((attempt, lookup.user))
    }

    /// `REQ.0007` when `window` is closed to one more attempt, remembered for
    /// the next attempts from the address.
    pub(crate) fn refuse_closed(
        &self,
        throttle: &ThrottlePolicy,
        address: &AddressKey,
        window: ThrottleState,
        now: UnixTime,
        pending: u32,
    ) -> Result<(), CiamError> {
        match throttle.closed(window, now, pending) {
            Some(retry_after) => {
                self.remember_closed(address, now + retry_after);
                Err(CiamError::Throttled { retry_after })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Lang;

    fn attempt(before: Option<FailureState>) -> Attempt {
        let counter = Counter { key: LockKey::new("+8615200000000"), limit: 10 };
        Attempt {
            counters: vec![(counter, before)],
            policy: LockoutPolicy::default(),
            now: 0,
            miss: ErrorCode::InvalidCredentials,
        }
    }

    fn state(failures: u32, locked_until: Option<i64>) -> FailureState {
        FailureState { failures, locked_until }
    }

    #[test]
    fn a_lock_holds_until_its_time() {
        assert!(attempt(None).check_lock().is_ok());
        let locked = attempt(Some(state(10, Some(60))));
        assert_eq!(locked.check_lock().map_err(|e| e.code()), Err(ErrorCode::AccountLocked));
        let run_out = Attempt { now: 60, ..locked };
        assert!(run_out.check_lock().is_ok());
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks() {
        let ninth = attempt(None).refusal(&[state(9, None)]);
        assert_eq!(ninth.message(Lang::En), "Invalid account or password. Remaining times: 1");
        let tenth = attempt(None).refusal(&[state(10, Some(1800))]);
        assert_eq!(tenth.code(), ErrorCode::AccountLocked);
        assert!(tenth.message(Lang::En).ends_with("30 minutes and 0 seconds"));
    }

    #[test]
    fn with_two_counters_the_nearer_limit_speaks() {
        let pair = Counter { key: LockKey::new("+8615200000000|127.0.0.1"), limit: 10 };
        let account = Counter { key: LockKey::new("+8615200000000"), limit: 100 };
        let both = Attempt { counters: vec![(pair, None), (account, None)], ..attempt(None) };
        let left = both.refusal(&[state(3, None), state(98, None)]);
        assert_eq!(left.message(Lang::En), "Invalid account or password. Remaining times: 2");
        let account_locked = both.refusal(&[state(4, None), state(100, Some(1800))]);
        assert_eq!(account_locked.code(), ErrorCode::AccountLocked);
        let locked = Attempt {
            counters: vec![(both.counters[0].0.clone(), Some(state(100, Some(90)))), both.counters[1].clone()],
            ..attempt(None)
        };
        assert!(locked.check_lock().is_err(), "either counter's lock holds");
    }
}
