//! A write and the audit event of its call, stored in one commit: a failed
//! attempt's count with its event, a new session with its event. One
//! durable write per attempt instead of two, and the two cannot disagree.
//!
//! Each group is one call to the database. On SQLite it is a `BEGIN
//! IMMEDIATE; …; COMMIT` group; on PostgreSQL one statement with
//! data-modifying `WITH` parts, which is a transaction of its own. The
//! parameters are the write's own first (those of [`RECORD_FAILURE`] or
//! [`INSERT_SESSION`]; a failure count adds the outcome of a failure that
//! locks), then the event's fields, in [`AUDIT_FIELDS`] order.

use std::sync::LazyLock;

use crate::rows::AUDIT_FIELDS;

/// Stores a session under the digest of its token.
pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_digest, user_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// Parameters of [`INSERT_SESSION`].
const SESSION_PARAMS: usize = 5;

/// Counts one more failure for a key, in one statement, so concurrent
/// failures are serialised by the database row lock. All SET expressions
/// read the row as it was before this update. Parameters: key, now,
/// max_failures, lock_seconds.
pub(crate) const RECORD_FAILURE: &str = "
INSERT INTO login_failures (lock_key, failures, locked_until)
VALUES ($1, 1, CASE WHEN 1 >= $3 THEN $2 + $4 END)
ON CONFLICT (lock_key) DO UPDATE SET
    failures = CASE
        WHEN login_failures.locked_until IS NOT NULL AND login_failures.locked_until <= $2 THEN 1
        ELSE login_failures.failures + 1
    END,
    locked_until = CASE
        WHEN login_failures.locked_until IS NOT NULL AND login_failures.locked_until <= $2
            THEN CASE WHEN 1 >= $3 THEN $2 + $4 END
        WHEN login_failures.failures + 1 >= $3 THEN $2 + $4
        ELSE NULL
    END
RETURNING failures, locked_until, CAST(NULL AS BIGINT) AS id";

/// Parameters of a failure group before the event's: those of
/// [`RECORD_FAILURE`] and the outcome of a failure that locks (`$5`).
const FAILURE_PARAMS: usize = 5;

/// The SQL of the grouped writes in one dialect.
#[derive(Debug)]
pub(crate) struct Grouped {
    /// A failure count and its event.
    pub failure: String,
    /// A session and its event.
    pub session: String,
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

/// The outcome of a failure: the lock's (`$5`) when this count reached the
/// limit, otherwise the event's own.
fn failure_outcome() -> String {
    let own = AUDIT_FIELDS.iter().position(|f| *f == "outcome").map_or(0, |i| FAILURE_PARAMS + 1 + i);
    format!("CASE WHEN f.failures >= $3 THEN $5 ELSE ${own} END")
}

fn fields() -> String {
    AUDIT_FIELDS.join(", ")
}

pub(crate) static SQLITE: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: format!(
        "BEGIN IMMEDIATE; {RECORD_FAILURE}; INSERT INTO audit_events ({}) SELECT {} \
         FROM login_failures f WHERE f.lock_key = $1 \
         RETURNING CAST(NULL AS BIGINT) AS failures, CAST(NULL AS BIGINT) AS locked_until, id; COMMIT",
        fields(),
        event_values(FAILURE_PARAMS + 1, Some(&failure_outcome())),
    ),
    session: format!(
        "BEGIN IMMEDIATE; {INSERT_SESSION}; INSERT INTO audit_events ({}) VALUES ({}) \
         RETURNING CAST(NULL AS BIGINT) AS failures, CAST(NULL AS BIGINT) AS locked_until, id; COMMIT",
        fields(),
        event_values(SESSION_PARAMS + 1, None),
    ),
});

pub(crate) static POSTGRES: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: format!(
        "WITH f AS ({RECORD_FAILURE}), \
         a AS (INSERT INTO audit_events ({}) SELECT {} FROM f RETURNING id) \
         SELECT f.failures, f.locked_until, a.id FROM f CROSS JOIN a",
        fields(),
        event_values(FAILURE_PARAMS + 1, Some(&failure_outcome())),
    ),
    session: format!(
        "WITH s AS ({INSERT_SESSION}) INSERT INTO audit_events ({}) VALUES ({}) \
         RETURNING CAST(NULL AS BIGINT) AS failures, CAST(NULL AS BIGINT) AS locked_until, id",
        fields(),
        event_values(SESSION_PARAMS + 1, None),
    ),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_follows_the_write_and_a_lock_names_its_own_outcome() {
        let values = event_values(6, Some("X"));
        let placeholders: Vec<&str> = values.split(", ").collect();
        assert_eq!(placeholders.len(), AUDIT_FIELDS.len());
        assert_eq!(placeholders[0], "$6");
        assert_eq!(placeholders[2], "X", "outcome is the third field");
        assert_eq!(placeholders.last().copied(), Some("$16"));
        assert_eq!(failure_outcome(), "CASE WHEN f.failures >= $3 THEN $5 ELSE $8 END");
    }
}
