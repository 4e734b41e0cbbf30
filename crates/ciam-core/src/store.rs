//! The storage contract. Every backend (SQLite, PostgreSQL) implements
//! [`Store`]; every operation that must hold when several instances share one
//! database is a single method here, which the backend performs in one
//! statement or one transaction — never as a read followed by a write in
//! domain code.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. a second user with one mobile).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or answered with an error.
    #[error("database: {0}")]
    Backend(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Who may log in through an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The `X-client-id` clients send (32 characters).
    pub client_id: String,
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
    /// When it was registered.
    pub created_at: UnixTime,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Server-made identifier (the id_token's `sub`).
    pub id: String,
    /// E.164 mobile number, unique.
    pub mobile: String,
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

/// The failed-login state of one lockout key (a normalised mobile, or a
/// digest of input that is no phone number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureState {
    /// Consecutive failures counted so far (including this one, when returned
    /// by [`Store::record_failure`]).
    pub failures: u32,
    /// Until when the key is locked, if it is.
    pub locked_until: Option<UnixTime>,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whose.
    pub user_id: String,
    /// Through which app.
    pub client_id: String,
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
    pub user_id: String,
    /// Bound to this app.
    pub client_id: String,
    /// Bound to this flow.
    pub flow: Flow,
    /// When it dies.
    pub expires_at: UnixTime,
}

/// A stored RS256 signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The JWK `kid`.
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key replaced it for signing.
    pub retired_at: Option<UnixTime>,
    /// Until when the JWKS keeps publishing it after retirement.
    pub publish_until: Option<UnixTime>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number, assigned by the store; 0 until the event is stored.
    #[serde(default)]
    pub id: i64,
    /// When.
    pub at: UnixTime,
    /// What was attempted, e.g. `login.mobile_pwd`.
    pub action: String,
    /// `SUCCESS`, `PASSWORD_WARN`, … or the error code.
    pub outcome: String,
    /// The mobile as typed or normalised (never a password).
    pub mobile: Option<String>,
    /// The user, when known.
    pub user_id: Option<String>,
    /// The `X-client-id`.
    pub client_id: Option<String>,
    /// `X-operating-sys-version`.
    pub os_version: Option<String>,
    /// `X-device-fingerprint`.
    pub device_fingerprint: Option<String>,
    /// `X-device-ip`.
    pub device_ip: Option<String>,
    /// `X-agent`.
    pub agent: Option<String>,
    /// The TCP peer address.
    pub peer_ip: Option<String>,
}

/// A failed attempt's audit event, stored in the same commit as the failure
/// it counts (one durable write per attempt instead of two).
#[derive(Debug, Clone, Copy)]
pub struct FailureAudit<'a> {
    /// The event; its `outcome` is the one for a failure that does not lock.
    pub event: &'a AuditEvent,
    /// The outcome for the failure that locks the key.
    pub locked: &'a str,
}

/// Untrusted text made fit for the audit log: control characters (which
/// PostgreSQL refuses in text, or which forge log lines) dropped, at most
/// `max` characters kept.
pub fn audit_text(text: &str, max: usize) -> String {
    text.trim().chars().filter(|c| !c.is_control()).take(max).collect()
}

/// One previous password of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Whose.
    pub user_id: String,
    /// The replaced hash.
    pub password_hash: String,
    /// When it was replaced.
    pub replaced_at: UnixTime,
}

/// A session with the digest it is stored under (for moving stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 of the session_token.
    pub digest: String,
    /// The session.
    pub session: Session,
    /// When it was opened.
    pub created_at: UnixTime,
}

/// Filters for reading the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events for this mobile.
    pub mobile: Option<String>,
    /// Only events for this user.
    pub user_id: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Persistent state of the server. Implementations must be safe to share
/// between tasks and between server instances on the same database.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // --- settings (policies, admin token digest) ---

    /// A named setting, as JSON text.
    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Writes a named setting.
    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Writes a setting only when it does not exist yet; returns whether it
    /// was written (first start of several instances at once).
    async fn put_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool>;

    // --- apps ---

    /// Registers an app.
    async fn insert_app(&self, app: &App) -> StoreResult<()>;
    /// One app.
    async fn get_app(&self, client_id: &str) -> StoreResult<Option<App>>;
    /// All apps, oldest first.
    async fn list_apps(&self) -> StoreResult<Vec<App>>;
    /// Replaces an app's fields; false when it does not exist.
    async fn update_app(&self, app: &App) -> StoreResult<bool>;
    /// Deletes an app with its members and sessions; false when absent.
    async fn delete_app(&self, client_id: &str) -> StoreResult<bool>;
    /// Assigns a user to an app (idempotent).
    async fn add_member(&self, client_id: &str, user_id: &str) -> StoreResult<()>;
    /// Unassigns; false when the user was not assigned.
    async fn remove_member(&self, client_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Whether the user is assigned to the app.
    async fn is_member(&self, client_id: &str, user_id: &str) -> StoreResult<bool>;

    // --- users ---

    /// Creates a user; [`StoreError::Conflict`] when the mobile is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// One user by id.
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// Users, oldest first, optionally only the one with `mobile`.
    async fn list_users(&self, mobile: Option<&str>, limit: u32, offset: u32) -> StoreResult<Vec<User>>;
    /// Replaces a user's profile fields and `password_changed_at` (not the
    /// hash); false when absent;
    /// [`StoreError::Conflict`] when the new mobile is taken.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;
    /// Deletes a user with sessions, memberships and history; false when absent.
    async fn delete_user(&self, id: &str) -> StoreResult<bool>;
    /// Sets a new password hash and its time in one transaction, moving the
    /// old hash into the history (keeping at most `keep` entries), and
    /// revoking all of the user's sessions. False when the user is absent.
    async fn set_password(&self, user_id: &str, hash: &str, changed_at: UnixTime, keep: u32) -> StoreResult<bool>;
    /// Replaces a hash with an upgraded one of the same password, only if it
    /// is still `old` (no history entry, no session change).
    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> StoreResult<()>;
    /// The last `n` previous password hashes, newest first.
    async fn password_history(&self, user_id: &str, n: u32) -> StoreResult<Vec<String>>;

    // --- lockout ---

    /// The failure state of a key, if any failures are recorded.
    async fn failure_state(&self, key: &str) -> StoreResult<Option<FailureState>>;
    /// What a login needs first, in one read: the failure state of `key` and
    /// the user with E.164 `mobile` (when given).
    async fn login_lookup(&self, key: &str, mobile: Option<&str>) -> StoreResult<(Option<FailureState>, Option<User>)>;
    /// Atomically counts one more failure for `key` and stores the attempt's
    /// audit event in the same commit; returns the new state and the event's
    /// id. A lock that has run out (`locked_until <= now`) starts a new count
    /// at 1. When the count reaches `max_failures` the key is locked until
    /// `now + lock_seconds`, and the event is stored with `audit.locked` as
    /// its outcome. Concurrent calls never lose or double a count.
    async fn record_failure(
        &self,
        key: &str,
        now: UnixTime,
        max_failures: u32,
        lock_seconds: i64,
        audit: FailureAudit<'_>,
    ) -> StoreResult<(FailureState, i64)>;
    /// Forgets the failures of a key (success, or an operator's unlock).
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;

    // --- sessions ---

    /// Stores a session under the digest of its token.
    async fn insert_session(&self, digest: &str, session: &Session, now: UnixTime) -> StoreResult<()>;
    /// Stores a session and the audit event of the call that opened it in
    /// one commit; returns the event's id.
    async fn insert_session_audited(
        &self,
        digest: &str,
        session: &Session,
        now: UnixTime,
        event: &AuditEvent,
    ) -> StoreResult<i64>;
    /// A session alive at `now` together with its user, in one read.
    async fn get_session_user(&self, digest: &str, now: UnixTime) -> StoreResult<Option<(Session, User)>>;
    /// Revokes one session; false when it was not there.
    async fn delete_session(&self, digest: &str) -> StoreResult<bool>;
    /// Revokes all of a user's sessions; returns how many.
    async fn delete_user_sessions(&self, user_id: &str) -> StoreResult<u64>;

    // --- state tokens ---

    /// Stores a state_token grant under the digest of its token.
    async fn insert_state_grant(&self, digest: &str, grant: &StateGrant) -> StoreResult<()>;
    /// A grant alive at `now`, without using it up.
    async fn get_state_grant(&self, digest: &str, now: UnixTime) -> StoreResult<Option<StateGrant>>;
    /// Atomically uses up a grant alive at `now` whose flow is one of
    /// `flows`; `None` when there is none (already used, expired, wrong flow).
    async fn take_state_grant(&self, digest: &str, now: UnixTime, flows: &[Flow]) -> StoreResult<Option<StateGrant>>;

    // --- signing keys ---

    /// All stored keys, newest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Retires every current key (publishing it until `publish_until`) and
    /// adds `key` as the current one, in one transaction.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<()>;
    /// Adds a key as current without retiring others (first start).
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;

    // --- audit ---

    /// Appends an event.
    async fn insert_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Reads events, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;

    // --- export, for moving a deployment to another store ---

    /// Every setting.
    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>>;
    /// Every (client_id, user_id) membership.
    async fn list_members(&self) -> StoreResult<Vec<(String, String)>>;
    /// Every password-history entry, oldest first.
    async fn list_password_history(&self) -> StoreResult<Vec<HistoryEntry>>;
    /// Adds a password-history entry as it is.
    async fn insert_password_history(&self, entry: &HistoryEntry) -> StoreResult<()>;
    /// Every session alive at `now`.
    async fn list_sessions(&self, now: UnixTime) -> StoreResult<Vec<StoredSession>>;
    /// Up to `limit` audit events with an id above `after`, oldest first.
    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;

    // --- housekeeping ---

    /// Deletes expired sessions and state grants, and failure counters whose
    /// lock ran out before `now`; returns how many rows went.
    async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64>;
}
