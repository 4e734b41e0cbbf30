//! The storage contract. Every backend (SQLite, PostgreSQL) implements
//! [`Store`]; every operation that must hold when several instances share one
//! database is a single method here, which the backend performs in one
//! statement or one transaction — never as a read followed by a write in
//! domain code.

mod events;
pub mod grants;
pub mod model;
pub mod sms;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::mobile::Mobile;
use crate::model::{
    AddressKey, App, AuditEntry, AuditEvent, AuditQuery, ClientId, Counter, FailureAudit, FailureState, Flow, Guess,
    HistoryEntry, LockKey, Lookup, Reservation, Session, SigningKeyRecord, StateGrant, StoredSession, ThrottleState,
    TokenDigest, User, UserId,
};
use crate::policy::{LockoutPolicy, ThrottlePolicy};
pub use grants::{Grant, GrantKind, GrantStore};
pub use sms::SmsStore;

impl From<StoreError> for crate::error::CiamError {
    /// Every failed database call becomes a `CiamError` here, and is
    /// counted on the way ([`crate::telemetry::DB_ERRORS`]).
    fn from(e: StoreError) -> Self {
        crate::telemetry::db_error();
        crate::error::CiamError::Internal(format!("store: {e}"))
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. a second user with one mobile).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or answered with an error.
    #[error("{0}")]
    Backend(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// What a retention purge deletes (docs/api.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Audit events from before this time.
    AuditBefore(UnixTime),
    /// Sessions expired at this time.
    Sessions(UnixTime),
    /// State tokens expired at this time.
    StateGrants(UnixTime),
    /// Failure counters that no longer matter at `now`: a lock that has run
    /// out, or a count last raised `reset_seconds` ago or more.
    Failures {
        /// Now.
        now: UnixTime,
        /// The lockout policy's `failure_reset_seconds`.
        reset_seconds: i64,
    },
    /// Address windows ended at `now`.
    Windows {
        /// Now.
        now: UnixTime,
        /// The throttle's `ip_window_seconds`.
        window_seconds: i64,
    },
    /// Console sessions expired at this time.
    ConsoleSessions(UnixTime),
    /// Places of password checks lapsed at this time.
    LapsedChecks(UnixTime),
    /// OpenID Connect grants expired at this time.
    Grants(UnixTime),
    /// SMS codes expired at this time.
    SmsCodes(UnixTime),
    /// SMS windows ended at this time.
    SmsWindows(UnixTime),
}

/// Login attempts in one hour with one outcome (the console's chart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    /// The hour: Unix seconds / 3600.
    pub hour: i64,
    /// The outcome, as stored.
    pub outcome: String,
    /// How many.
    pub count: i64,
}

/// Persistent state of the server. Implementations must be safe to share
/// between tasks and between server instances on the same database.
#[async_trait]
pub trait Store: GrantStore + SmsStore + Send + Sync + std::fmt::Debug {
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether the database takes a write: writes `value` to one row kept
    /// for that.
    async fn probe_write(&self, value: &str) -> StoreResult<()>;

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
    async fn get_app(&self, client_id: &ClientId) -> StoreResult<Option<App>>;
    /// All apps, oldest first.
    async fn list_apps(&self) -> StoreResult<Vec<App>>;
    /// Replaces an app's fields; false when it does not exist.
    async fn update_app(&self, app: &App) -> StoreResult<bool>;
    /// Deletes an app with its members and sessions; false when absent.
    async fn delete_app(&self, client_id: &ClientId) -> StoreResult<bool>;
    /// Assigns a user to an app (idempotent).
    async fn add_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<()>;
    /// Unassigns; false when the user was not assigned.
    async fn remove_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<bool>;
    /// Whether the user is assigned to the app.
    async fn is_member(&self, client_id: &ClientId, user_id: &UserId) -> StoreResult<bool>;

    // --- users ---

    /// Creates a user; [`StoreError::Conflict`] when the mobile is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Creates users in one write, skipping any whose mobile or id is
    /// taken; says of each whether it was stored.
    async fn insert_users(&self, users: &[User]) -> StoreResult<Vec<bool>>;
    /// One user by id.
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// Users whose id comes after `after`, in id order (an export's pages).
    async fn users_after(&self, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>>;
    /// Users, oldest first, optionally only the one with `mobile`.
    async fn list_users(&self, mobile: Option<&Mobile>, limit: u32, offset: u32) -> StoreResult<Vec<User>>;
    /// Replaces a user's profile fields and `password_changed_at` (not the
    /// hash); false when absent;
    /// [`StoreError::Conflict`] when the new mobile is taken.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;
    /// Deletes a user with sessions, memberships and history; false when absent.
    async fn delete_user(&self, id: &UserId) -> StoreResult<bool>;
    /// Sets a new password hash and its time in one transaction, moving the
    /// old hash into the history (keeping at most `keep` entries), and
    /// revoking all of the user's sessions and OpenID Connect grants. False when the user is absent.
    async fn set_password(&self, user_id: &UserId, hash: &str, changed_at: UnixTime, keep: u32) -> StoreResult<bool>;
    /// Replaces a hash with an upgraded one of the same password, only if it
    /// is still `old` (no history entry, no session change).
    async fn upgrade_password_hash(&self, user_id: &UserId, old: &str, new: &str) -> StoreResult<()>;
    /// The last `n` previous password hashes, newest first.
    async fn password_history(&self, user_id: &UserId, n: u32) -> StoreResult<Vec<String>>;

    // --- lockout and throttle ---

    /// The failure state of a key, if any failures are recorded.
    async fn failure_state(&self, key: &LockKey) -> StoreResult<Option<FailureState>>;
    /// What a password attempt reads before its hash, in one read: the
    /// state of each of `keys` (one or two), the window of `address`, and
    /// the user with `mobile` (each when given).
    async fn login_lookup(
        &self,
        keys: &[LockKey],
        address: Option<&AddressKey>,
        mobile: Option<&Mobile>,
    ) -> StoreResult<Lookup>;
    /// Atomically counts one more failure on each counter (one or two) and
    /// stores the attempt's audit event in the same commit, giving back the
    /// check's places (`place`); returns the new states, in the order of
    /// `counters`, and the event's id. A count whose lock has run out
    /// (`locked_until <= now`), or that was last raised
    /// `failure_reset_seconds` ago or more without a lock, starts again at 1.
    /// A counter that reaches its limit is locked for the policy's
    /// `lock_seconds`, and the event is stored with `audit.locked` as its
    /// outcome when any does. Concurrent calls never lose or double a count.
    async fn record_failure(
        &self,
        counters: &[Counter],
        now: UnixTime,
        policy: &LockoutPolicy,
        audit: FailureAudit<'_>,
        place: &str,
    ) -> StoreResult<(Vec<FailureState>, i64)>;
    /// Begins a password check, in one transaction: takes place `id` on each
    /// of `counters` (the lock bounds guesses, not answers), each only while
    /// its counter is not locked at `now` and its failures and live places
    /// together are below its limit (a count that would restart, as in
    /// [`Store::record_failure`], is restarted first); places lapse at
    /// `until`. When every place was taken and `address` is given (with its
    /// window's seconds), the attempt is counted in the address's window, as
    /// [`Store::reserve_attempt`] does. Returns each counter's state and
    /// whether its place was taken, and the window when counted. Exact under
    /// concurrent calls on every instance.
    async fn begin_check(
        &self,
        counters: &[Counter],
        now: UnixTime,
        reset_seconds: i64,
        until: UnixTime,
        id: &str,
        address: Option<(&AddressKey, i64)>,
    ) -> StoreResult<(Vec<Guess>, Option<ThrottleState>)>;
    /// Gives back the places of check `place` that was not counted (a hash
    /// that never ran, an attempt refused by another counter or its
    /// address); giving them back twice changes nothing.
    async fn release_place(&self, place: &str) -> StoreResult<()>;
    /// A right password: gives back the places of check `place` and forgets
    /// the failures of `keys`, unless a key was locked meanwhile (at `now`),
    /// in one transaction; returns the state of each key that has a counter.
    async fn settle_match(&self, keys: &[LockKey], place: &str, now: UnixTime) -> StoreResult<Vec<FailureState>>;
    /// Forgets the failures of an account: its own counter and those kept
    /// for it per address (an operator's unlock).
    async fn unlock_account(&self, account: &LockKey) -> StoreResult<()>;
    /// Atomically counts one password attempt in the window of `address`
    /// (a new window when the last ended at or before `now`) and returns the
    /// window, its count included this attempt. The attempt may go on when
    /// the count is at most the policy's `ip_max_failures`.
    async fn reserve_attempt(
        &self,
        address: &AddressKey,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> StoreResult<ThrottleState>;
    /// Gives a reserved attempt back (its password was right), if its window
    /// is still the address's.
    async fn release_attempt(&self, reservation: &Reservation) -> StoreResult<()>;

    // --- sessions ---

    /// Stores a session under the digest of its token.
    async fn insert_session(&self, digest: &TokenDigest, session: &Session, now: UnixTime) -> StoreResult<()>;
    /// Stores a session and the audit event of the call that opened it in
    /// one commit, giving back the call's reserved attempt (if any) in the
    /// same commit; returns the event's id.
    async fn insert_session_audited(
        &self,
        digest: &TokenDigest,
        session: &Session,
        now: UnixTime,
        event: &AuditEvent,
        reserved: Option<&Reservation>,
        place: Option<&str>,
    ) -> StoreResult<i64>;
    /// A session alive at `now` together with its user, in one read.
    async fn get_session_user(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<(Session, User)>>;
    /// Revokes one session of app `client_id`; false when the app has no
    /// such session.
    async fn delete_session(&self, digest: &TokenDigest, client_id: &ClientId) -> StoreResult<bool>;
    /// The app of a session alive at `now`.
    async fn session_app(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<ClientId>>;
    /// Revokes all of a user's sessions, with the user's OpenID Connect
    /// grants (browser sessions, codes, tokens); returns how many.
    async fn delete_user_sessions(&self, user_id: &UserId) -> StoreResult<u64>;

    // --- state tokens ---

    /// Stores a state_token grant under the digest of its token.
    async fn insert_state_grant(&self, digest: &TokenDigest, grant: &StateGrant) -> StoreResult<()>;
    /// A grant alive at `now`, without using it up.
    async fn get_state_grant(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<StateGrant>>;
    /// Atomically uses up a grant alive at `now` whose flow is one of
    /// `flows`; `None` when there is none (already used, expired, wrong flow).
    async fn take_state_grant(
        &self,
        digest: &TokenDigest,
        now: UnixTime,
        flows: &[Flow],
    ) -> StoreResult<Option<StateGrant>>;

    // --- signing keys ---

    /// All stored keys, newest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Retires every current key (publishing it until `publish_until`) and
    /// adds `keys` (one per algorithm) as the current ones, in one
    /// transaction.
    async fn rotate_signing_keys(
        &self,
        keys: &[SigningKeyRecord],
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<()>;
    /// Replaces the stored private key of `kid` (sealing keys kept in
    /// clear).
    async fn replace_private_key(&self, kid: &str, private_pkcs8: &[u8]) -> StoreResult<()>;
    /// Adds a key as current without retiring others (first start).
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Stores `key` as the first current signing key of its algorithm,
    /// unless another is current already (an instance that started at the same moment made
    /// one first); returns whether it was stored.
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool>;

    // --- audit ---

    /// Appends an event.
    async fn insert_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Counts a refusal that cost no hash: the first of its address and
    /// outcome in the minute of `event.at` is stored as an event with count
    /// 1, and each later one adds one to that event's count (on every
    /// instance: one row per address, outcome and minute).
    async fn count_refusal(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Stores an event that stands for `count` refusals that cost no hash,
    /// as [`Store::count_refusal`] keeps them (a copy of one).
    async fn insert_counted(&self, event: &AuditEvent, count: i64) -> StoreResult<()>;
    /// Reads events, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Login attempts since `since`, counted by hour and outcome.
    async fn login_activity(&self, since: UnixTime) -> StoreResult<Vec<ActivityCount>>;

    // --- the console ---

    /// Users whose account is locked for everyone at `now`, with when each
    /// lock ends, the latest first, then by mobile (at most `limit`).
    async fn locked_users(&self, now: UnixTime, limit: u32) -> StoreResult<Vec<(User, UnixTime)>>;
    /// The apps a user is assigned to.
    async fn user_apps(&self, user_id: &UserId) -> StoreResult<Vec<ClientId>>;
    /// The users assigned to an app, by mobile (at most `limit`).
    async fn app_members(&self, client_id: &ClientId, limit: u32) -> StoreResult<Vec<User>>;
    /// Stores a console session, opened with the admin token whose stored
    /// digest is `admin_digest`.
    async fn insert_console_session(
        &self,
        digest: &TokenDigest,
        admin_digest: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()>;
    /// A console session alive at `now`: when it ends, and the admin
    /// token's digest it was opened with.
    async fn console_session(&self, digest: &TokenDigest, now: UnixTime) -> StoreResult<Option<(UnixTime, String)>>;
    /// Ends a console session.
    async fn delete_console_session(&self, digest: &TokenDigest) -> StoreResult<()>;

    // --- export, for moving a deployment to another store ---

    /// Every setting.
    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>>;
    /// Every (client_id, user_id) membership.
    async fn list_members(&self) -> StoreResult<Vec<(ClientId, UserId)>>;
    /// Every password-history entry, oldest first.
    async fn list_password_history(&self) -> StoreResult<Vec<HistoryEntry>>;
    /// Adds a password-history entry as it is.
    async fn insert_password_history(&self, entry: &HistoryEntry) -> StoreResult<()>;
    /// Every session alive at `now`.
    async fn list_sessions(&self, now: UnixTime) -> StoreResult<Vec<StoredSession>>;
    /// Up to `limit` audit events with an id above `after`, oldest first.
    async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    // --- housekeeping ---

    /// Deletes at most `limit` rows that `what` no longer needs; returns how
    /// many went. A caller deletes in batches until fewer than `limit` go,
    /// so no statement holds the database for long.
    async fn purge(&self, what: Purge, limit: u32) -> StoreResult<u64>;
    /// Takes (or renews) the lease `name` for `holder` until `until`, if it
    /// is free, has run out at `now`, or is `holder`'s already; returns
    /// whether `holder` holds it.
    async fn take_lease(&self, name: &str, holder: &str, now: UnixTime, until: UnixTime) -> StoreResult<bool>;
}
