//! The entities the domain works on and the store keeps: apps, users,
//! sessions, state grants, signing keys, lockout counters and audit events,
//! with identifier types that cannot be swapped for one another.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::mobile::Mobile;

pub use super::events::{
    Action, AuditEntry, AuditEvent, AuditQuery, Device, FailureAudit, Outcome, Status, audit_text,
};

/// Declares a text identifier: a `String` that only its own kind of value
/// can be, so a user id is never passed where a client id is wanted.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value of this kind (made by the server, or read back
            /// from the store).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A user's server-made identifier (the id_token's `sub`).
    UserId
);
text_id!(
    /// An app's `X-client-id` (32 characters, made by the server).
    ClientId
);
text_id!(
    /// The hex SHA-256 under which a session_token or state_token is stored.
    TokenDigest
);
text_id!(
    /// What a failure counter is kept under: an account, or an account seen
    /// from one address.
    LockKey
);
text_id!(
    /// What the address throttle and fair hashing count a client under: its
    /// IPv4 address, or the /64 network of its IPv6 address (one subscriber
    /// is handed a whole /64).
    AddressKey
);

impl AddressKey {
    /// The key of a client address.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::new(v4.to_string()),
            IpAddr::V6(v6) => {
                let net = ipnet::Ipv6Net::new(v6, 64).map(|n| n.trunc()).unwrap_or_else(|_| v6.into());
                AddressKey::new(net.to_string())
            }
        }
    }
}

impl LockKey {
    /// The key of an account: its E.164 number, whether or not it is
    /// registered.
    pub fn account(mobile: &Mobile) -> Self {
        LockKey::new(mobile.as_str())
    }

    /// The key of an account seen from one address.
    pub fn pair(account: &LockKey, address: &AddressKey) -> Self {
        LockKey::new(format!("{account}|{address}"))
    }
}

/// A failure counter an attempt counts against, and the count that locks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Where the count is kept.
    pub key: LockKey,
    /// The count that locks.
    pub limit: u32,
}

/// An address's window of failed password attempts (docs/api.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    /// When the window began (the first failure in it).
    pub window_start: UnixTime,
    /// Attempts counted in it, those under way included.
    pub failures: u32,
}

/// A password attempt counted in its address's window before the hash. It
/// stays counted as a failure unless the password turns out right, when it
/// is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The address it is counted under.
    pub key: AddressKey,
    /// The window it is counted in.
    pub window_start: UnixTime,
}

/// What an attempt reads before its hash, in one statement: the state of
/// each of its counters (in the order asked), its address's window, and
/// the user it is for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lookup {
    /// Each counter's state; `None` where nothing is counted.
    pub counts: Vec<Option<FailureState>>,
    /// The address's window, when one is open.
    pub throttle: Option<ThrottleState>,
    /// The user with the mobile asked for.
    pub user: Option<User>,
}

/// Who may log in through an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AppAccess {
    /// Every user.
    All,
    /// Only users assigned to the app.
    Assigned,
}

impl AppAccess {
    /// The stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppAccess::All => "all",
            AppAccess::Assigned => "assigned",
        }
    }

    /// Parses the stored / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(AppAccess::All),
            "assigned" => Some(AppAccess::Assigned),
            _ => None,
        }
    }
}

/// A registered client application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The `X-client-id` clients send.
    pub client_id: ClientId,
    /// A display name.
    pub name: String,
    /// Disabled apps are treated as unregistered.
    pub enabled: bool,
    /// Whether logins check password age (PASSWORD_WARN / PASSWORD_EXPIRED).
    pub password_expiry_check: bool,
    /// Who may log in.
    pub access: AppAccess,
    /// session_token lifetime in seconds.
    pub session_ttl: i64,
    /// id_token lifetime in seconds.
    pub id_token_ttl: i64,
    /// How its id_tokens are signed.
    pub id_token_alg: SigningAlg,
    /// When it was registered.
    pub created_at: UnixTime,
    /// What it is as an OpenID Connect client.
    pub oidc: OidcClient,
    /// Whether new users may sign up through it (docs/sms.md).
    pub signup: Signup,
}

/// Whether an app lets people create their own accounts with an SMS code
/// (docs/sms.md). Both off by default: accounts are made by operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signup {
    /// The register call (`REGISTER_SMS` codes) is open for this app.
    pub self_registration: bool,
    /// A `LOGIN_SMS` code goes to an unregistered number too, and a good
    /// one creates the user, with no password.
    pub sms_auto_register: bool,
}

/// Whether an OpenID Connect client can keep a secret (docs/oidc.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Native and single-page apps: no secret, PKCE required.
    #[default]
    Public,
    /// Server-side apps: authenticate with a secret at the token endpoint.
    Confidential,
}

impl ClientType {
    /// The stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
        }
    }

    /// Parses the stored / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(ClientType::Public),
            "confidential" => Some(ClientType::Confidential),
            _ => None,
        }
    }
}

/// An app as an OpenID Connect client (docs/oidc.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OidcClient {
    /// Public or confidential.
    pub client_type: ClientType,
    /// Where codes may be sent, matched exactly (but for a loopback port).
    pub redirect_uris: Vec<String>,
    /// Where a logout may send the browser back.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where an SSO ticket sends the browser to start the app's own login.
    pub initiate_login_uri: Option<String>,
    /// The hex SHA-256 of a confidential client's secret.
    pub secret_digest: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Server-made identifier (the id_token's `sub`).
    pub id: UserId,
    /// Mobile number, unique.
    pub mobile: Mobile,
    /// Login name, shown in the id_token.
    pub user_name: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// PHC string of the current password.
    pub password_hash: String,
    /// When the password was last set.
    pub password_changed_at: UnixTime,
    /// When the account was created.
    pub created_at: UnixTime,
    /// When the account was last changed.
    pub updated_at: UnixTime,
}

/// The failed-login state of one [`LockKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureState {
    /// Consecutive failures counted so far (including this one, when returned
    /// by [`crate::Store::record_failure`]).
    pub failures: u32,
    /// Until when the key is locked, if it is.
    pub locked_until: Option<UnixTime>,
}

/// What taking a place for a password check found (see
/// [`crate::Store::reserve_guess`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guess {
    /// The counter's state, its checks in flight not included.
    pub state: FailureState,
    /// Whether the check got its place.
    pub reserved: bool,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose.
    pub user_id: UserId,
    /// Through which app.
    pub client_id: ClientId,
    /// When it dies.
    pub expires_at: UnixTime,
}

/// The flow a state_token continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// PASSWORD_WARN: update or skip.
    PasswordWarn,
    /// PASSWORD_EXPIRED: update only.
    PasswordExpired,
}

impl Flow {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::PasswordWarn => "PASSWORD_WARN",
            Flow::PasswordExpired => "PASSWORD_EXPIRED",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PASSWORD_WARN" => Some(Flow::PasswordWarn),
            "PASSWORD_EXPIRED" => Some(Flow::PasswordExpired),
            _ => None,
        }
    }
}

/// A pending state_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateGrant {
    /// Bound to this user.
    pub user_id: UserId,
    /// Bound to this app.
    pub client_id: ClientId,
    /// Bound to this flow.
    pub flow: Flow,
    /// When it dies.
    pub expires_at: UnixTime,
}

/// How an app's id_tokens are signed (docs/oidc.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over an RSA-2048 key: what every
    /// relying party verifies.
    #[default]
    RS256,
    /// Ed25519 (RFC 8037): a fraction of RS256's cost, but not verified by
    /// every relying party.
    EdDSA,
}

impl SigningAlg {
    /// Every algorithm, in the order the JWKS lists their current keys.
    pub const ALL: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::EdDSA];

    /// The stored / wire name (the JWS `alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// Parses the stored / wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == s)
    }
}

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The JWK `kid`.
    pub kid: String,
    /// What it signs with.
    pub alg: SigningAlg,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key replaced it for signing.
    pub retired_at: Option<UnixTime>,
    /// Until when the JWKS keeps publishing it after retirement.
    pub publish_until: Option<UnixTime>,
}

/// One previous password of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Whose.
    pub user_id: UserId,
    /// The replaced hash.
    pub password_hash: String,
    /// When it was replaced.
    pub replaced_at: UnixTime,
}

/// A session with the digest it is stored under (for moving stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Digest of the session_token.
    pub digest: TokenDigest,
    /// The session.
    pub session: Session,
    /// When it was opened.
    pub created_at: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn addresses_are_counted_by_ipv4_address_or_ipv6_slash_64() {
        let key = |ip: &str| AddressKey::of(ip.parse().expect("ip")).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2::99"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn outcomes_and_actions_read_back_what_they_write() {
        for status in Status::ALL {
            assert_eq!(Outcome::parse(status.as_str()), Some(Outcome::Status(status)));
        }
        for code in ErrorCode::ALL {
            assert_eq!(Outcome::parse(code.as_str()), Some(Outcome::Refused(*code)));
        }
        assert_eq!(Outcome::parse("NOPE"), None);
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
    }
}
