//! SDK calls in progress per client address (docs/api.md §7).
//!
//! Each address has at most `cap` calls in progress; the next waits for one
//! of them to end, at most [`WAIT`], then is refused with `REQ.0007`. A flood
//! from one address then waits in its own line, parked, instead of filling
//! the server's run queues with work that a full hashing pool would refuse
//! anyway: calls from other addresses keep their normal latency. Addresses
//! on the throttle's allowlist are not held to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::CiamError;
use crate::model::AddressKey;

/// The longest a call waits for its address's turn.
pub const WAIT: Duration = Duration::from_secs(2);

/// The refusal of a call that waited [`WAIT`] for its turn: `REQ.0007`,
/// to come back in a second.
pub fn waited_too_long() -> CiamError {
    CiamError::Throttled { retry_after: 1 }
}

/// The lines, one per address with calls in progress.
#[derive(Debug)]
pub(crate) struct InFlight {
    cap: usize,
    lines: Mutex<HashMap<AddressKey, Arc<Semaphore>>>,
}

/// A call's place among its address's calls in progress, given back on drop.
#[derive(Debug)]
pub struct Place {
    permit: Option<OwnedSemaphorePermit>,
    key: AddressKey,
    lines: Arc<InFlight>,
}

impl InFlight {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap: cap.max(1), lines: Mutex::new(HashMap::new()) })
    }

    /// A place for a call from `key`, once the address has fewer than `cap`
    /// in progress; refused after [`WAIT`].
    pub async fn enter(self: &Arc<Self>, key: AddressKey) -> Result<Place, CiamError> {
        let line = {
            let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(lines.entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.cap))))
        };
        let permit = match line.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(WAIT, line.acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    self.tidy(&key);
                    return Err(waited_too_long());
                }
            },
        };
        Ok(Place { permit: Some(permit), key, lines: Arc::clone(self) })
    }

    /// Forgets the line of `key` once nobody is in it.
    fn tidy(&self, key: &AddressKey) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.get(key).is_some_and(|line| Arc::strong_count(line) == 1 && line.available_permits() == self.cap) {
            lines.remove(key);
        }
    }

    /// Addresses with calls in progress or waiting.
    #[cfg(test)]
    fn lines(&self) -> usize {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.lines.tidy(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AddressKey {
        AddressKey::of(std::net::IpAddr::from([127, 0, 0, n]))
    }

    #[tokio::test]
    async fn an_address_waits_for_its_own_calls_and_others_do_not() {
        let lines = InFlight::new(2);
        let first = lines.enter(key(1)).await.expect("first");
        let _second = lines.enter(key(1)).await.expect("second");
        let _other = lines.enter(key(2)).await.expect("another address is not held up");
        let third = tokio::spawn({
            let lines = Arc::clone(&lines);
            async move { lines.enter(key(1)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "the third call waits its turn");
        drop(first);
        third.await.expect("join").expect("then goes in");
    }

    #[tokio::test]
    async fn a_call_that_waits_too_long_is_refused_and_lines_are_forgotten() {
        let lines = InFlight::new(1);
        let held = lines.enter(key(1)).await.expect("first");
        assert!(matches!(lines.enter(key(1)).await, Err(CiamError::Throttled { .. })));
        assert_eq!(lines.lines(), 1);
        drop(held);
        assert_eq!(lines.lines(), 0, "an empty line is forgotten");
    }
}
