//! What the audit log keeps of each call: its action, its outcome (a
//! status or an error code), the device headers, the client's address,
//! and how the log is read back.

use std::fmt;

use crate::clock::UnixTime;
use crate::error::ErrorCode;

use super::model::UserId;

/// The `status` of a call that answers HTTP 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A session was opened (or, for refresh and logout, the call did what it was asked).
    Success,
    /// The password expires soon: update or skip.
    PasswordWarn,
    /// The password has expired: update.
    PasswordExpired,
    /// The app admits only assigned users.
    AccessDenied,
}

impl Status {
    /// The `status` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::PasswordWarn => "PASSWORD_WARN",
            Status::PasswordExpired => "PASSWORD_EXPIRED",
            Status::AccessDenied => "ACCESS_DENIED",
        }
    }

    /// Every status.
    pub const ALL: [Status; 4] = [Status::Success, Status::PasswordWarn, Status::PasswordExpired, Status::AccessDenied];
}

/// How a call ended: a `status`, or the error code it was refused with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered 200 with this status.
    Status(Status),
    /// Refused with this code.
    Refused(ErrorCode),
}

impl Outcome {
    /// The stored and wire text: the status, or the error code.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Status(s) => s.as_str(),
            Outcome::Refused(code) => code.as_str(),
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .map(Outcome::Status)
            .or_else(|| ErrorCode::parse(s).map(Outcome::Refused))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SDK calls, as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /api/v2/sdk/login/mobile-pwd`.
    Login,
    /// `POST /api/v2/sdk/pwd/update`.
    PasswordUpdate,
    /// `GET /api/v2/sdk/pwd/skip-update`.
    PasswordSkip,
    /// `POST /api/v2/sdk/sso/session-token/id-token`.
    Refresh,
    /// `/api/v2/sdk/logout`.
    Logout,
    /// A password login on the hosted login page (docs/oidc.md).
    OidcLogin,
    /// A password change on the hosted login page.
    OidcPasswordUpdate,
    /// `POST /api/v2/sdk/sso/session-token/sso-ticket`.
    SsoTicket,
    /// `POST /api/v2/sdk/sms/send` (docs/sms.md).
    SmsSend,
    /// `POST /api/v2/sdk/login/mobile-verify-code`.
    LoginCode,
    /// `POST /api/v2/sdk/register/mobile-verify-code`.
    RegisterCode,
    /// `POST /api/v2/sdk/pwd/update-by-mobile`.
    PasswordReset,
}

impl Action {
    pub(crate) const ALL: [Action; 12] = [
        Action::Login,
        Action::PasswordUpdate,
        Action::PasswordSkip,
        Action::Refresh,
        Action::Logout,
        Action::OidcLogin,
        Action::OidcPasswordUpdate,
        Action::SsoTicket,
        Action::SmsSend,
        Action::LoginCode,
        Action::RegisterCode,
        Action::PasswordReset,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login.mobile_pwd",
            Action::PasswordUpdate => "pwd.update",
            Action::PasswordSkip => "pwd.skip_update",
            Action::Refresh => "sso.id_token",
            Action::Logout => "logout",
            Action::OidcLogin => "oidc.login",
            Action::OidcPasswordUpdate => "oidc.pwd_update",
            Action::SsoTicket => "sso.ticket",
            Action::SmsSend => "sms.send",
            Action::LoginCode => "login.mobile_verify_code",
            Action::RegisterCode => "register.mobile_verify_code",
            Action::PasswordReset => "pwd.update_by_mobile",
        }
    }

    /// The call's name in metrics (docs/api.md §9).
    pub fn label(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::PasswordUpdate => "pwd_update",
            Action::PasswordSkip => "pwd_skip",
            Action::Refresh => "refresh",
            Action::Logout => "logout",
            Action::OidcLogin => "oidc_login",
            Action::OidcPasswordUpdate => "oidc_pwd_update",
            Action::SsoTicket => "sso_ticket",
            Action::SmsSend => "sms_send",
            Action::LoginCode => "login_code",
            Action::RegisterCode => "register_code",
            Action::PasswordReset => "pwd_reset",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What an SDK request says about the device it came from (docs/api.md §1),
/// made fit for the audit log by [`audit_text`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// `X-operating-sys-version`.
    pub os_version: Option<String>,
    /// `X-device-fingerprint`.
    pub fingerprint: Option<String>,
    /// `X-device-ip`: what the app claims; recorded, never trusted.
    pub claimed_ip: Option<String>,
    /// `X-agent`.
    pub agent: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: UnixTime,
    /// Which call.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// The mobile: E.164 when it is a phone number (never a password).
    pub mobile: Option<String>,
    /// The user, when known.
    pub user_id: Option<UserId>,
    /// The `X-client-id` as sent.
    pub client_id: Option<String>,
    /// The device headers.
    pub device: Device,
    /// The client's address (docs/api.md §7).
    pub ip: Option<String>,
    /// The request's id (docs/api.md §9).
    pub request_id: Option<String>,
}

/// A stored audit event with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store, increasing.
    pub id: i64,
    /// The event.
    pub event: AuditEvent,
    /// How many calls it stands for: 1, or for refusals that cost no hash
    /// (kept one event per address and outcome a minute) how many there
    /// were.
    pub count: i64,
}

/// A failed attempt's audit event, stored in the same commit as the failure
/// it counts (one durable write per attempt instead of two).
#[derive(Debug, Clone, Copy)]
pub struct FailureAudit<'a> {
    /// The event; its `outcome` is the one for a failure that does not lock.
    pub event: &'a AuditEvent,
    /// The outcome for the failure that locks the key.
    pub locked: Outcome,
}

/// Untrusted text made fit for the audit log: control characters (which
/// PostgreSQL refuses in text, or which forge log lines) dropped, at most
/// `max` characters kept.
pub fn audit_text(text: &str, max: usize) -> String {
    text.trim().chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Filters for reading the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events for this mobile.
    pub mobile: Option<String>,
    /// Only events for this user.
    pub user_id: Option<UserId>,
    /// Only events from this address.
    pub ip: Option<String>,
    /// Only events with this outcome (a status or an error code).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<UnixTime>,
    /// Only events before this time.
    pub until: Option<UnixTime>,
    /// Only events with an id below this (the next page).
    pub before_id: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}
