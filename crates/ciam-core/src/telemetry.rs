//! What the server counts for its operators (docs/api.md §9), through the
//! `metrics` facade. The binary installs the Prometheus recorder; without
//! one (tests, embedding) each count is a no-op.

/// SDK requests by call and outcome (label `call`: `login`, `pwd_update`,
/// `pwd_skip`, `refresh`, `logout`; label `outcome`: the answer's `status`
/// or its error code).
pub const SDK_REQUESTS: &str = "ciam_sdk_requests_total";
/// Seconds an SDK request took, by call (a histogram).
pub const SDK_REQUEST_DURATION: &str = "ciam_sdk_request_duration_seconds";
/// Password hashes running now.
pub const HASH_POOL_BUSY: &str = "ciam_hash_pool_busy";
/// Password hashes waiting for a worker.
pub const HASH_QUEUE_DEPTH: &str = "ciam_hash_queue_depth";
/// Password attempts the hashing pool refused, by `reason`.
pub const HASH_REJECTED: &str = "ciam_hash_rejected_total";
/// `IDAAS.SDK.REQ.0007` answers (an address throttled).
pub const THROTTLED: &str = "ciam_throttled_total";
/// Failures that locked an account (or an account and address).
pub const LOCKOUTS: &str = "ciam_lockouts_total";
/// Password hashes verified: every login attempt's (the dummy hash of an
/// unknown mobile included), and the old password and history checks of a
/// password update.
pub const PASSWORD_VERIFICATIONS: &str = "ciam_password_verifications_total";
/// Admin requests refused for a missing or wrong token.
pub const ADMIN_AUTH_FAILURES: &str = "ciam_admin_auth_failures_total";
/// Database calls that failed (unreachable, timed out, refused).
pub const DB_ERRORS: &str = "ciam_db_errors_total";
/// Database calls that only read (one statement each).
pub const DB_READS: &str = "ciam_db_reads_total";
/// Database calls that commit a write (a statement, a transaction or a
/// group of statements: one commit each).
pub const DB_WRITES: &str = "ciam_db_writes_total";
/// Statements sent to the database, inside transactions or not.
pub const DB_STATEMENTS: &str = "ciam_db_statements_total";
/// Audit events deleted by retention.
pub const AUDIT_PURGED: &str = "ciam_audit_purged_total";

/// Why the hashing pool refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The pool was full of work from addresses within their share.
    PoolFull,
    /// The address already held its share of a full pool.
    OverShare,
    /// A queued attempt gave way to an address under its share.
    Evicted,
    /// The attempt waited in the queue for longer than allowed.
    QueueWait,
}

impl Rejection {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::PoolFull => "pool_full",
            Rejection::OverShare => "over_share",
            Rejection::Evicted => "evicted",
            Rejection::QueueWait => "queue_wait",
        }
    }

    /// Every reason.
    pub const ALL: [Rejection; 4] =
        [Rejection::PoolFull, Rejection::OverShare, Rejection::Evicted, Rejection::QueueWait];
}

/// Counts one refusal of the hashing pool.
pub(crate) fn hash_rejected(reason: Rejection) {
    metrics::counter!(HASH_REJECTED, "reason" => reason.as_str()).increment(1);
}

/// Counts one lockout.
pub(crate) fn lockout() {
    metrics::counter!(LOCKOUTS).increment(1);
}

/// Counts one password hash verified.
pub(crate) fn password_verified() {
    metrics::counter!(PASSWORD_VERIFICATIONS).increment(1);
}

/// Counts one failed database call.
pub(crate) fn db_error() {
    metrics::counter!(DB_ERRORS).increment(1);
}

/// Counts audit events deleted by retention.
pub(crate) fn audit_purged(rows: u64) {
    metrics::counter!(AUDIT_PURGED).increment(rows);
}
