//! `POST /api/v2/sdk/sms/send` (docs/sms.md): checks, limits, a new code,
//! and its hand-over to delivery. A send that must not reach anyone (a
//! login code for an unregistered number, a registration code for a
//! registered one) does everything a real one does and is dropped by
//! delivery, so the answer tells nothing about the number.

use crate::call::{Answered, Call};
use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode};
use crate::login::audit_mobile;
use crate::mobile::Mobile;
use crate::model::{AddressKey, Outcome, Status, User};
use crate::service::Ciam;
use crate::store::sms::{NewCode, Window};

use super::delivery::{Message, human};
use super::{DAY, HOUR, SmsKind, SmsPolicy, code_digest, new_code};

/// A code stored and handed to delivery (200 `{}`).
#[derive(Debug, Clone, Copy)]
pub struct Sent;

impl Answered for Sent {
    fn status(&self) -> Status {
        Status::Success
    }
}

/// Which limit a window stands for, in the order they are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Resend,
    Address,
    Day,
    All,
}

impl Limit {
    fn refusal(self, retry_after: i64) -> CiamError {
        let code = match self {
            Limit::Resend | Limit::Address => ErrorCode::SmsTooSoon,
            Limit::Day => ErrorCode::SmsDailyLimit,
            Limit::All => ErrorCode::SmsServiceLimit,
        };
        CiamError::Wait { code, retry_after }
    }
}

/// The windows a send to `mobile` from `address` counts in.
fn send_windows(mobile: &Mobile, address: Option<&AddressKey>, policy: &SmsPolicy) -> Vec<(Limit, Window)> {
    let mut windows = Vec::with_capacity(4);
    if policy.resend_seconds > 0 {
        let key = format!("resend:{}", mobile.as_str());
        windows.push((Limit::Resend, Window { key, window_seconds: policy.resend_seconds, max: 1 }));
    }
    if let Some(address) = address {
        let key = format!("ip:{address}");
        windows.push((Limit::Address, Window { key, window_seconds: HOUR, max: policy.ip_hourly_max }));
    }
    let key = format!("day:{}", mobile.as_str());
    windows.push((Limit::Day, Window { key, window_seconds: DAY, max: policy.mobile_daily_max }));
    windows.push((Limit::All, Window { key: "all".into(), window_seconds: HOUR, max: policy.global_hourly_max }));
    windows
}

/// What a refusal by `limit` is remembered under: the address for its
/// hour, the address and the number for the number's own limits.
fn memory_key(address: Option<&AddressKey>, mobile: Option<&Mobile>, limit: Limit) -> Option<AddressKey> {
    match (limit, address, mobile) {
        (Limit::Address, Some(address), _) => Some(address.clone()),
        (Limit::Resend | Limit::Day, Some(address), Some(mobile)) => {
            Some(AddressKey::new(format!("{address}|{}|{limit:?}", mobile.as_str())))
        }
        _ => None,
    }
}

/// Whether a code of `kind` for a number whose account is `user` reaches
/// anyone.
fn reaches(kind: SmsKind, user: Option<&User>, auto_register: bool) -> bool {
    match kind {
        SmsKind::Login => user.map_or(auto_register, |u| !u.disabled),
        SmsKind::ForgetPassword => user.is_some_and(|u| !u.disabled),
        SmsKind::Register => user.is_none(),
    }
}

impl Ciam {
    /// `POST /api/v2/sdk/sms/send`, after the checks of [`Ciam::open_call`].
    pub async fn send_code(
        &self,
        call: &mut Call,
        mobile: &str,
        kind: Option<&str>,
        captcha_token: Option<&str>,
    ) -> Result<Sent, CiamError> {
        if mobile.trim().is_empty() {
            return Err(CiamError::refused(ErrorCode::MobileEmpty));
        }
        let kind = SmsKind::parse(kind)?;
        // An address this instance saw over its hour a moment ago is refused
        // before anything else is read or asked (a pumping attack's
        // thousands of sends cost no parsing, no captcha, no statement).
        let now = self.now();
        let address = self.sms_address(call).await?;
        self.refused_from_memory(address.as_ref(), None, now)?;
        let parsed = Mobile::parse(mobile, self.config().region);
        call.note_mobile(audit_mobile(parsed.as_ref()));
        let policy = self.sms_policy().await?;
        let mobile = parsed.filter(|m| policy.allows(m)).ok_or(CiamError::refused(ErrorCode::SmsNumberRefused))?;
        self.refused_from_memory(address.as_ref(), Some(&mobile), now)?;
        if kind == SmsKind::Register && !call.app().signup.self_registration {
            return Err(CiamError::refused(ErrorCode::SmsRegistrationClosed));
        }
        let delivery = self.sms().delivery().ok_or(CiamError::refused(ErrorCode::SmsSendFailed))?.clone();
        self.check_human(call, captcha_token).await?;
        let place = delivery.place().ok_or(CiamError::refused(ErrorCode::SmsSendFailed))?;
        let user = self.user_with(&mobile).await?;
        let deliver = reaches(kind, user.as_ref(), call.app().signup.sms_auto_register);
        self.count_send(&mobile, address.as_ref(), &policy, now).await?;
        let code = new_code()?;
        let digest = code_digest(self.sms_code_secret(), &mobile, kind, &code);
        let stored = NewCode {
            mobile: &mobile,
            kind: kind.as_str(),
            digest: &digest,
            expires_at: now + policy.code_ttl_seconds,
        };
        self.store().put_code(&stored).await?;
        let minutes = (policy.code_ttl_seconds + 59) / 60;
        let event = call.event(Outcome::Status(Status::Success));
        place.send(Message { to: mobile, kind, code, lang: call.lang(), minutes, deliver, event });
        Ok(Sent)
    }

    /// Counts a send in its windows, all or none; a refusal by the
    /// address's hour, or by the number's interval or day, is remembered
    /// for the next moment (see [`Ciam::refused_from_memory`]).
    async fn count_send(
        &self,
        mobile: &Mobile,
        address: Option<&AddressKey>,
        policy: &SmsPolicy,
        now: UnixTime,
    ) -> Result<(), CiamError> {
        let windows = send_windows(mobile, address, policy);
        let counted: Vec<Window> = windows.iter().map(|(_, w)| w.clone()).collect();
        let Err((at, retry_after)) = self.store().take_windows(&counted, now).await? else {
            return Ok(());
        };
        let limit = windows[at].0;
        if let Some(key) = memory_key(address, Some(mobile), limit) {
            self.sms().closed.put(&key, now + retry_after);
        }
        Err(limit.refusal(retry_after))
    }

    /// A refusal this instance gave a moment ago, given again with no
    /// statement: for `address` over its hour (with no `mobile`), or for
    /// `mobile` asked again from `address` after its interval or its day
    /// refused it.
    fn refused_from_memory(
        &self,
        address: Option<&AddressKey>,
        mobile: Option<&Mobile>,
        now: UnixTime,
    ) -> Result<(), CiamError> {
        let limits: &[Limit] = if mobile.is_some() { &[Limit::Resend, Limit::Day] } else { &[Limit::Address] };
        for limit in limits {
            if let Some(retry_after) = memory_key(address, mobile, *limit).and_then(|k| self.sms().closed.get(&k, now))
            {
                return Err(limit.refusal(retry_after));
            }
        }
        Ok(())
    }

    /// The address a send is counted under: none for one the throttle
    /// never limits (docs/api.md §7) or one not known.
    async fn sms_address(&self, call: &Call) -> Result<Option<AddressKey>, CiamError> {
        let throttle = self.throttle_policy().await?;
        Ok(throttle.counted(call.address()))
    }

    /// `SMS.0006` unless the captcha service, when one is configured, says
    /// `captcha_token` is a person's.
    async fn check_human(&self, call: &Call, captcha_token: Option<&str>) -> Result<(), CiamError> {
        let config = self.sms().config();
        let (Some(captcha), Some(outbound)) = (&config.captcha, &config.outbound) else {
            return Ok(());
        };
        let token = captcha_token.map(str::trim).unwrap_or_default();
        let remote = call.address().map(|ip| ip.to_canonical().to_string());
        if token.is_empty() || !human(outbound.as_ref(), captcha, token, remote).await {
            return Err(CiamError::refused(ErrorCode::SmsCaptchaFailed));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile::parse_region;

    #[test]
    fn a_send_counts_four_windows_in_a_fixed_order() {
        let cn = parse_region("CN").expect("CN");
        let mobile = Mobile::parse("15200000000", cn).expect("number");
        let address = AddressKey::new("192.0.2.7");
        let windows = send_windows(&mobile, Some(&address), &SmsPolicy::default());
        let limits: Vec<Limit> = windows.iter().map(|(l, _)| *l).collect();
        assert_eq!(limits, [Limit::Resend, Limit::Address, Limit::Day, Limit::All]);
        assert_eq!(windows[0].1, Window { key: "resend:+8615200000000".into(), window_seconds: 60, max: 1 });
        assert_eq!(windows[1].1.key, "ip:192.0.2.7");
        let no_interval = SmsPolicy { resend_seconds: 0, ..SmsPolicy::default() };
        assert_eq!(send_windows(&mobile, None, &no_interval).len(), 2);
    }

    #[test]
    fn only_numbers_a_code_can_serve_are_sent_to() {
        assert!(!reaches(SmsKind::Login, None, false));
        assert!(reaches(SmsKind::Login, None, true));
        assert!(!reaches(SmsKind::ForgetPassword, None, true));
        assert!(reaches(SmsKind::Register, None, false));
    }
}
