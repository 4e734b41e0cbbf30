//! A write and the audit event of its call, stored in one commit: a failed
//! attempt's counts with its event, a new session with its event. One
//! durable write per attempt instead of two, and the two cannot disagree.
//!
//! Each group is one call to the database. On SQLite it is a `BEGIN
//! IMMEDIATE; …; COMMIT` group; on PostgreSQL one statement with
//! data-modifying `WITH` parts, which is a transaction of its own. Both
//! return rows of [`crate::rows::GroupedRow`]: one per failure counter, in
//! order, then one with the event's id.

use std::sync::LazyLock;

use crate::rows::AUDIT_FIELDS;

/// Stores a session under the digest of its token.
pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_digest, user_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// Gives a reserved attempt back to its address's window: `$ip`, `$window`.
fn release(ip: usize, window: usize) -> String {
    format!(
        "UPDATE ip_throttle SET failures = failures - 1 \
         WHERE ip = ${ip} AND window_start = ${window} AND failures > 0"
    )
}

/// Counts one more failure for key `$key`, which locks at `$limit`, in one
/// statement, so concurrent failures are serialised by the database row
/// lock. All SET expressions read the row as it was before this update.
/// `$1` is now, `$2` the lock's seconds, `$3` the seconds after which a
/// count below the limit is forgotten.
fn record_failure(key: usize, limit: usize) -> String {
    let restart = restarts("$1", "$3");
    format!(
        "INSERT INTO login_failures (lock_key, failures, locked_until, last_failure_at) \
         VALUES (${key}, 1, CASE WHEN 1 >= ${limit} THEN $1 + $2 END, $1) \
         ON CONFLICT (lock_key) DO UPDATE SET \
             failures = CASE WHEN {restart} THEN 1 ELSE login_failures.failures + 1 END, \
             locked_until = CASE \
                 WHEN {restart} THEN CASE WHEN 1 >= ${limit} THEN $1 + $2 END \
                 WHEN login_failures.failures + 1 >= ${limit} THEN $1 + $2 \
                 ELSE NULL END, \
             last_failure_at = $1, \
             pending = CASE WHEN login_failures.pending > 0 THEN login_failures.pending - 1 ELSE 0 END"
    )
}

/// Whether the counter's row as it was before an update must start a new
/// count (`$now`): its lock has run out, or its last failure is older than
/// the reset (`$reset` seconds).
fn restarts(now: &str, reset: &str) -> String {
    format!(
        "((login_failures.locked_until IS NOT NULL AND login_failures.locked_until <= {now}) \
          OR (login_failures.locked_until IS NULL AND login_failures.last_failure_at IS NOT NULL \
              AND login_failures.last_failure_at + {reset} <= {now}))"
    )
}

/// Takes a place for one password check on counter `$1`, which locks at
/// `$2` failures, at `$3` now, with `$4` the seconds after which a count
/// below the limit is forgotten, `$5` when the place lapses and `$6` the
/// attempt's id. A place is taken only while the counter is not locked and
/// its failures and the checks in flight together are below the limit; the
/// row lock the upsert takes makes that exact under concurrent attempts,
/// on every instance. `reserved_by` comes back as `$6` when it was taken.
pub(crate) static RESERVE_GUESS: LazyLock<String> = LazyLock::new(|| {
    let restart = restarts("$3", "$4");
    let live = "(CASE WHEN login_failures.pending_until > $3 THEN login_failures.pending ELSE 0 END)";
    let open = format!(
        "(NOT (login_failures.locked_until IS NOT NULL AND login_failures.locked_until > $3) \
          AND (CASE WHEN {restart} THEN 0 ELSE login_failures.failures END) + {live} < $2)"
    );
    format!(
        "INSERT INTO login_failures (lock_key, failures, locked_until, last_failure_at, pending, pending_until, \
                                     reserved_by) \
         VALUES ($1, 0, NULL, NULL, CASE WHEN 0 < $2 THEN 1 ELSE 0 END, $5, $6) \
         ON CONFLICT (lock_key) DO UPDATE SET \
             failures = CASE WHEN {restart} THEN 0 ELSE login_failures.failures END, \
             locked_until = CASE WHEN {restart} THEN NULL ELSE login_failures.locked_until END, \
             pending = CASE WHEN {open} THEN {live} + 1 ELSE {live} END, \
             pending_until = CASE WHEN {open} THEN $5 ELSE login_failures.pending_until END, \
             reserved_by = CASE WHEN {open} THEN $6 ELSE login_failures.reserved_by END \
         RETURNING failures, locked_until, reserved_by"
    )
});

/// Gives back the place of a check that was not counted (`$1` the key).
pub(crate) const RELEASE_GUESS: &str = "UPDATE login_failures \
     SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END WHERE lock_key = $1";

/// Gives back the place of a right password's check on counter `$1` at `$2`
/// now, and forgets the counter's failures unless it was locked meanwhile;
/// the lock, if any, comes back.
pub(crate) const SETTLE_MATCH: &str = "UPDATE login_failures SET \
     pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END, \
     failures = CASE WHEN locked_until IS NOT NULL AND locked_until > $2 THEN failures ELSE 0 END, \
     locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until > $2 THEN locked_until END, \
     last_failure_at = CASE WHEN locked_until IS NOT NULL AND locked_until > $2 THEN last_failure_at END \
     WHERE lock_key = $1 RETURNING failures, locked_until";

/// The parameters of a failure group before its counters': now, the lock's
/// seconds, the reset's seconds, the outcome of a failure that locks.
const FAILURE_PARAMS: usize = 4;

/// The placeholders of counter `i`: its key and its limit.
fn counter_params(i: usize) -> (usize, usize) {
    (FAILURE_PARAMS + 1 + 2 * i, FAILURE_PARAMS + 2 + 2 * i)
}

/// The first placeholder of the event after `n` counters.
fn failure_event_first(n: usize) -> usize {
    FAILURE_PARAMS + 1 + 2 * n
}

/// The parameters of a session group before its event's: the session's
/// five, then the address and window of the attempt it gives back.
const SESSION_PARAMS: usize = 7;

/// The SQL of the grouped writes in one dialect.
#[derive(Debug)]
pub(crate) struct Grouped {
    /// Failure counts (one counter, two counters) and their event.
    failure: [String; 2],
    /// A session, the attempt it gives back, and its event.
    pub session: String,
}

impl Grouped {
    /// The failure group for `counters` counters (one or two).
    pub fn failure(&self, counters: usize) -> Option<&str> {
        self.failure.get(counters.checked_sub(1)?).map(String::as_str)
    }
}

/// `$first` … for each audit field, comma-separated; `outcome` given
/// replaces the outcome's placeholder with that expression.
fn event_values(first: usize, outcome: Option<&str>) -> String {
    AUDIT_FIELDS
        .iter()
        .enumerate()
        .map(|(i, field)| match outcome {
            Some(expr) if *field == "outcome" => expr.to_owned(),
            _ => format!("${}", first + i),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of a failure: the lock's (`$4`) when `locked` holds,
/// otherwise the event's own.
fn failure_outcome(n: usize, locked: &str) -> String {
    let own = AUDIT_FIELDS.iter().position(|f| *f == "outcome").map_or(0, |i| failure_event_first(n) + i);
    format!("CASE WHEN {locked} THEN $4 ELSE ${own} END")
}

fn fields() -> String {
    AUDIT_FIELDS.join(", ")
}

const NO_COUNT: &str = "CAST(NULL AS BIGINT) AS failures, CAST(NULL AS BIGINT) AS locked_until";

fn sqlite_failure(n: usize) -> String {
    let counts: Vec<String> = (0..n)
        .map(|i| {
            let (key, limit) = counter_params(i);
            format!("{} RETURNING failures, locked_until, CAST(NULL AS BIGINT) AS id", record_failure(key, limit))
        })
        .collect();
    let reached: Vec<String> = (0..n)
        .map(|i| {
            let (key, limit) = counter_params(i);
            format!("(lock_key = ${key} AND failures >= ${limit})")
        })
        .collect();
    let locked = format!("EXISTS (SELECT 1 FROM login_failures WHERE {})", reached.join(" OR "));
    format!(
        "BEGIN IMMEDIATE; {}; INSERT INTO audit_events ({}) SELECT {} RETURNING {NO_COUNT}, id; COMMIT",
        counts.join("; "),
        fields(),
        event_values(failure_event_first(n), Some(&failure_outcome(n, &locked))),
    )
}

fn postgres_failure(n: usize) -> String {
    let counts: Vec<String> = (0..n)
        .map(|i| {
            let (key, limit) = counter_params(i);
            format!("f{i} AS ({} RETURNING failures, locked_until)", record_failure(key, limit))
        })
        .collect();
    let reached: Vec<String> = (0..n).map(|i| format!("f{i}.failures >= ${}", counter_params(i).1)).collect();
    let from: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let rows: Vec<String> = (0..n)
        .map(|i| format!("SELECT {i} AS n, failures, locked_until, CAST(NULL AS BIGINT) AS id FROM f{i}"))
        .collect();
    format!(
        "WITH {}, a AS (INSERT INTO audit_events ({}) SELECT {} FROM {} RETURNING id) \
         SELECT failures, locked_until, id FROM ({} UNION ALL SELECT {n}, NULL, NULL, id FROM a) AS r ORDER BY n",
        counts.join(", "),
        fields(),
        event_values(failure_event_first(n), Some(&failure_outcome(n, &reached.join(" OR ")))),
        from.join(" CROSS JOIN "),
        rows.join(" UNION ALL "),
    )
}

pub(crate) static SQLITE: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: [sqlite_failure(1), sqlite_failure(2)],
    session: format!(
        "BEGIN IMMEDIATE; {INSERT_SESSION}; {}; INSERT INTO audit_events ({}) VALUES ({}) \
         RETURNING {NO_COUNT}, id; COMMIT",
        release(6, 7),
        fields(),
        event_values(SESSION_PARAMS + 1, None),
    ),
});

pub(crate) static POSTGRES: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: [postgres_failure(1), postgres_failure(2)],
    session: format!(
        "WITH s AS ({INSERT_SESSION}), r AS ({}) INSERT INTO audit_events ({}) VALUES ({}) RETURNING {NO_COUNT}, id",
        release(6, 7),
        fields(),
        event_values(SESSION_PARAMS + 1, None),
    ),
});

/// Counts one password attempt in its address's window: `$1` the address,
/// `$2` now, `$3` the window's seconds. A window that has ended starts
/// again. Every attempt is counted, refused ones too.
pub(crate) const RESERVE_ATTEMPT: &str = "
INSERT INTO ip_throttle (ip, window_start, failures) VALUES ($1, $2, 1)
ON CONFLICT (ip) DO UPDATE SET
    window_start = CASE WHEN ip_throttle.window_start + $3 <= $2 THEN $2 ELSE ip_throttle.window_start END,
    failures = CASE WHEN ip_throttle.window_start + $3 <= $2 THEN 1 ELSE ip_throttle.failures + 1 END
RETURNING window_start, failures";

/// Gives a reserved attempt back: `$1` the address, `$2` its window.
pub(crate) static RELEASE_ATTEMPT: LazyLock<String> = LazyLock::new(|| release(1, 2));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_follows_the_counters_and_a_lock_names_its_own_outcome() {
        let values = event_values(failure_event_first(2), Some("X"));
        let placeholders: Vec<&str> = values.split(", ").collect();
        assert_eq!(placeholders.len(), AUDIT_FIELDS.len());
        assert_eq!(placeholders[0], "$9", "now, lock, reset, locked outcome, two keys and two limits come first");
        assert_eq!(placeholders[2], "X", "outcome is the third field");
        assert_eq!(failure_outcome(1, "L"), "CASE WHEN L THEN $4 ELSE $9 END");
        assert_eq!(counter_params(1), (7, 8));
        assert!(POSTGRES.failure(2).is_some_and(|sql| sql.contains("f1.failures >= $8")));
        assert!(SQLITE.failure(3).is_none());
        assert!(SQLITE.failure(0).is_none());
    }
}
