//! Verification codes by SMS (docs/sms.md): sending a code ([`send`]),
//! and the three calls that take one ([`calls`]): a login, a registration,
//! a forgotten password. Codes are 6 digits from the OS CSPRNG, stored
//! only as a digest keyed with the deployment's own secret and bound to the
//! number and purpose, one live code per number and purpose.

mod calls;
pub mod delivery;
mod policy;
mod send;
mod state;

pub use calls::Registration;
pub use policy::{MAX_PREFIXES, SmsPolicy, SmsPolicyPatch};
pub use send::Sent;
pub(crate) use state::SmsState;

use crate::call::Call;
use crate::error::{CiamError, ErrorCode};
use crate::mobile::Mobile;
use crate::model::Reservation;
use crate::service::Ciam;
use crate::store::sms::{CodeCheck, Taken, Window};
use crate::token::{constant_time_eq, keyed_digest};

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    /// `LOGIN_SMS`: a login with a code.
    Login,
    /// `REGISTER_SMS`: a registration.
    Register,
    /// `FORGET_PWD_SMS`: a forgotten password.
    ForgetPassword,
}

impl SmsKind {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Login => "LOGIN_SMS",
            SmsKind::Register => "REGISTER_SMS",
            SmsKind::ForgetPassword => "FORGET_PWD_SMS",
        }
    }

    /// Parses the wire name; anything else is `SMS.0004`.
    pub fn parse(text: Option<&str>) -> Result<Self, CiamError> {
        match text.map(str::trim) {
            Some("LOGIN_SMS") => Ok(SmsKind::Login),
            Some("REGISTER_SMS") => Ok(SmsKind::Register),
            Some("FORGET_PWD_SMS") => Ok(SmsKind::ForgetPassword),
            _ => Err(CiamError::refused(ErrorCode::SmsTypeInvalid)),
        }
    }
}

/// The digits of a code.
pub const CODE_DIGITS: usize = 6;

/// A new code: 6 digits, uniform, from the OS CSPRNG.
pub(crate) fn new_code() -> Result<zeroize::Zeroizing<String>, CiamError> {
    // 4_294_000_000 is the largest multiple of 10^6 below 2^32: drawing
    // again above it keeps every code equally likely.
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|e| CiamError::Internal(format!("random: {e}")))?;
        let n = u32::from_le_bytes(bytes);
        if n < 4_294_000_000 {
            return Ok(zeroize::Zeroizing::new(format!("{:06}", n % 1_000_000)));
        }
    }
}

/// The stored digest of `code` for (`mobile`, `kind`): keyed with the
/// deployment's secret, so the store holds nothing to try a million codes
/// against, and bound to the number and purpose.
pub(crate) fn code_digest(secret: &[u8], mobile: &Mobile, kind: SmsKind, code: &str) -> String {
    keyed_digest(secret, format!("{}|{}|{}", mobile.as_str(), kind.as_str(), code).as_bytes())
}

/// The day of a number's wrong entries.
fn checks_day(mobile: &Mobile, policy: &SmsPolicy) -> Window {
    Window { key: format!("checks:{}", mobile.as_str()), window_seconds: DAY, max: policy.mobile_daily_max_checks }
}

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// A typed code that matched the live one: spend it to use it.
#[derive(Debug)]
pub(crate) struct GoodCode {
    digest: String,
    day: Taken,
}

impl Ciam {
    /// Compares a typed code with the live code of (`mobile`, `kind`),
    /// counting the comparison on the code and the entry on the number's
    /// day; a wrong one also counts as a failure of the caller's address
    /// (docs/api.md §7), whose attempt [`Ciam::code_mobile`] holds. The
    /// right code is not spent yet: see [`Ciam::spend_code`] (or
    /// [`Ciam::unmatch_code`] when the call is refused after all).
    pub(crate) async fn match_code(
        &self,
        call: &mut Call,
        mobile: &Mobile,
        kind: SmsKind,
        typed: &str,
    ) -> Result<GoodCode, CiamError> {
        let policy = self.sms_policy().await?;
        let now = self.now();
        let day = checks_day(mobile, &policy);
        let found = match self.store().check_code(mobile, kind.as_str(), &day, now, policy.max_checks).await? {
            CodeCheck::Live { digest, day } => {
                let typed_digest = code_digest(self.sms_code_secret(), mobile, kind, typed.trim());
                constant_time_eq(&typed_digest, &digest).then_some(GoodCode { digest, day })
            }
            CodeCheck::NoCode { .. } | CodeCheck::NoneLeft => None,
        };
        match found {
            Some(good) => Ok(good),
            None => {
                // The attempt held in the address's window is this failure.
                drop(call.take_reservation());
                Err(CiamError::refused(ErrorCode::SmsCodeWrong))
            }
        }
    }

    /// The user with `mobile`, if there is one.
    pub(crate) async fn user_with(&self, mobile: &Mobile) -> Result<Option<crate::model::User>, CiamError> {
        Ok(self.store().list_users(Some(mobile), 1, 0).await?.into_iter().next())
    }

    /// Gives back what matching `good` counted: the call was refused for
    /// another reason, and the code stays good as it was.
    pub(crate) async fn unmatch_code(&self, mobile: &Mobile, kind: SmsKind, good: GoodCode) {
        if let Err(e) = self.store().unmatch_code(mobile, kind.as_str(), &good.digest, &good.day).await {
            tracing::warn!(error = %e, "a matched code's check was not given back");
        }
    }

    /// Spends a matched code: a code is good once, on every instance.
    pub(crate) async fn spend_code(&self, mobile: &Mobile, kind: SmsKind, good: GoodCode) -> Result<(), CiamError> {
        if self.store().spend_code(mobile, kind.as_str(), &good.digest, &good.day).await? {
            Ok(())
        } else {
            Err(CiamError::refused(ErrorCode::SmsCodeWrong))
        }
    }

    /// Counts the call's code entry in its address's window, as a password
    /// attempt is (given back when the code is right): `REQ.0007` when the
    /// window is closed.
    pub(crate) async fn reserve_address(&self, call: &mut Call) -> Result<(), CiamError> {
        let throttle = self.throttle_policy().await?;
        let Some(address) = throttle.counted(call.address()) else {
            return Ok(());
        };
        if let Some(retry_after) = self.recently_closed(&address) {
            return Err(CiamError::Throttled { retry_after });
        }
        let now = self.now();
        let window = self.store().reserve_attempt(&address, now, &throttle).await?;
        // Held by the call, which gives it back when it is refused here.
        call.reserve(Reservation { key: address.clone(), window_start: window.window_start });
        self.refuse_closed(&throttle, &address, window, now, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::parse_region;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| new_code().expect("code").as_str().to_owned()).collect();
        assert!(codes.len() > 190, "200 draws gave {} codes", codes.len());
        assert!(codes.iter().all(|c| c.len() == CODE_DIGITS && c.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn a_digest_is_bound_to_number_purpose_and_secret() {
        let cn = parse_region("CN").expect("CN");
        let a = Mobile::parse("15200000000", cn).expect("a");
        let b = Mobile::parse("15200000001", cn).expect("b");
        let d = code_digest(b"secret", &a, SmsKind::Login, "123456");
        assert_eq!(d, code_digest(b"secret", &a, SmsKind::Login, "123456"));
        assert_ne!(d, code_digest(b"secret", &b, SmsKind::Login, "123456"));
        assert_ne!(d, code_digest(b"secret", &a, SmsKind::ForgetPassword, "123456"));
        assert_ne!(d, code_digest(b"other", &a, SmsKind::Login, "123456"));
    }

    #[test]
    fn kinds_parse_only_their_names() {
        assert_eq!(SmsKind::parse(Some("LOGIN_SMS")).ok(), Some(SmsKind::Login));
        assert_eq!(SmsKind::parse(Some("FORGET_PWD_SMS")).ok(), Some(SmsKind::ForgetPassword));
        for bad in [None, Some(""), Some("login_sms"), Some("EMAIL")] {
            assert_eq!(SmsKind::parse(bad).map_err(|e| e.code()).err(), Some(ErrorCode::SmsTypeInvalid));
        }
    }
}
