//! Operator sign-in, throttled like the login: wrong admin tokens, on the
//! admin API and the console's sign-in alike, are counted per client
//! address in the store, so the count is exact across instances. After
//! [`OPERATOR_MAX_FAILURES`] within [`OPERATOR_WINDOW_SECONDS`] the address
//! is refused (429, `Retry-After`) even with the right token, until the
//! window ends. Every presented token counts before it is checked, so a
//! burst of guesses gets no more answers than the limit; a right one gives
//! its count back. Addresses on the throttle policy's allowlist are not
//! counted.

use std::net::IpAddr;

use crate::error::CiamError;
use crate::model::AddressKey;
use crate::policy::ThrottlePolicy;
use crate::service::Ciam;

/// Wrong admin tokens one address may present within the window.
pub const OPERATOR_MAX_FAILURES: u32 = 10;
/// The window, in seconds from the address's first failure in it.
pub const OPERATOR_WINDOW_SECONDS: i64 = 15 * 60;

/// The window's rules, in the address throttle's terms.
fn policy() -> ThrottlePolicy {
    ThrottlePolicy {
        ip_max_failures: OPERATOR_MAX_FAILURES,
        ip_window_seconds: OPERATOR_WINDOW_SECONDS,
        ip_allowlist: Vec::new(),
    }
}

impl AddressKey {
    /// The key operator sign-ins from `ip` are counted under (apart from
    /// the SDK's password attempts from the same address).
    pub fn operator(ip: IpAddr) -> Self {
        AddressKey::new(format!("operator|{}", AddressKey::of(ip)))
    }
}

impl Ciam {
    /// Runs `check` (an admin token check: `Some` when the token is right)
    /// for a caller at `ip`, counted in the address's window first; refused
    /// with [`CiamError::Throttled`] once the window holds more than
    /// [`OPERATOR_MAX_FAILURES`]. A caller with no known address is not
    /// counted.
    pub async fn operator_attempt<T>(
        &self,
        ip: Option<IpAddr>,
        check: impl AsyncFnOnce() -> Result<Option<T>, CiamError>,
    ) -> Result<Option<T>, CiamError> {
        // A caller with no known address, or on the throttle's allowlist
        // (a trusted network), is not counted.
        let allowlist = self.throttle_policy().await?;
        let Some(ip) = ip.filter(|ip| !allowlist.allows(*ip)) else {
            return check().await;
        };
        let key = AddressKey::operator(ip);
        let now = self.now();
        let window = self.store().reserve_attempt(&key, now, &policy()).await?;
        if let Some(retry_after) = policy().closed(window, now, 0) {
            return Err(CiamError::Throttled { retry_after });
        }
        let checked = check().await?;
        if checked.is_some() {
            let reservation = crate::model::Reservation { key, window_start: window.window_start };
            self.store().release_attempt(&reservation).await?;
        }
        Ok(checked)
    }
}
