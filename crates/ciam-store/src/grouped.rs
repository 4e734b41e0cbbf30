//! A write and the audit event of its call, stored in one commit: a failed
//! attempt's counts with its event, a new session with its event. One
//! durable write per attempt instead of two, and the two cannot disagree.
//!
//! Each group is one call to the database. On SQLite it is a `BEGIN
//! IMMEDIATE; …; COMMIT` group; on PostgreSQL one statement with
//! data-modifying `WITH` parts, which is a transaction of its own. Both
//! return rows of [`crate::rows::GroupedRow`]: one per failure counter, in
//! order, then one with the event's id.
//!
//! Their parameters are named ([`Named`]): the text is written with names,
//! numbered `$1, $2, …` in the order they are first used, and the values
//! are bound by name. An audit column added to [`AUDIT_FIELDS`] is a new
//! named parameter, and nobody counts positions.

use std::sync::LazyLock;

use ciam_core::store::{StoreError, StoreResult};

use crate::exec::{Arg, Stmt};
use crate::rows::AUDIT_FIELDS;

/// A statement whose parameters are named: its SQL with `$1, $2, …`, and
/// the name of each position.
#[derive(Debug, Default)]
pub(crate) struct Named {
    sql: String,
    names: Vec<String>,
}

impl Named {
    /// Builds the SQL with `write`, which asks [`Params::p`] for the
    /// placeholder of each named value.
    fn build(write: impl FnOnce(&mut Params) -> String) -> Self {
        let mut params = Params::default();
        let sql = write(&mut params);
        Named { sql, names: params.0 }
    }

    /// The statement with `values` bound by name; a name without a value is
    /// refused (a value without a place is ignored).
    pub fn bind(&self, values: Vec<(String, Arg)>) -> StoreResult<Stmt> {
        let mut values = values;
        let mut args = Vec::with_capacity(self.names.len());
        for name in &self.names {
            let at = values
                .iter()
                .position(|(given, _)| given == name)
                .ok_or_else(|| StoreError::Backend(format!("no value for the parameter {name}")))?;
            args.push(values.swap_remove(at).1);
        }
        Ok(Stmt::new(self.sql.clone()).bind_all(args))
    }
}

/// The named parameters of a statement being written, in order of first use.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<String>);

impl Params {
    /// The placeholder of `name`: the same one each time it is used.
    pub fn p(&mut self, name: &str) -> String {
        let at = match self.0.iter().position(|n| n == name) {
            Some(at) => at,
            None => {
                self.0.push(name.to_owned());
                self.0.len() - 1
            }
        };
        format!("${}", at + 1)
    }
}

/// The names and values of an audit event's fields.
pub(crate) fn event_values(args: impl IntoIterator<Item = Arg>) -> impl Iterator<Item = (String, Arg)> {
    AUDIT_FIELDS.iter().map(|f| format!("event.{f}")).zip(args)
}

/// The names and values of a new session: its token's digest, user, app,
/// creation and expiry.
pub(crate) fn session_values(args: [Arg; 5]) -> impl Iterator<Item = (String, Arg)> {
    SESSION_FIELDS.iter().map(|f| format!("session.{f}")).zip(args)
}

/// The columns of a session, as [`session_values`] names them.
const SESSION_FIELDS: [&str; 5] = ["token_digest", "user_id", "client_id", "created_at", "expires_at"];

/// Stores a session under the digest of its token.
fn insert_session(p: &mut Params) -> String {
    let values: Vec<String> = SESSION_FIELDS.iter().map(|f| p.p(&format!("session.{f}"))).collect();
    format!("INSERT INTO sessions ({}) VALUES ({})", SESSION_FIELDS.join(", "), values.join(", "))
}

/// A session on its own.
pub(crate) static INSERT_SESSION: LazyLock<Named> = LazyLock::new(|| Named::build(insert_session));

/// Gives a reserved attempt back to its address's window.
fn release(p: &mut Params) -> String {
    let (ip, window) = (p.p("reserved.ip"), p.p("reserved.window"));
    format!(
        "UPDATE ip_throttle SET failures = failures - 1 \
         WHERE ip = {ip} AND window_start = {window} AND failures > 0"
    )
}

/// Counts one more failure for counter `i`, which locks at its limit, in
/// one statement, so concurrent failures are serialised by the database
/// row lock. All SET expressions read the row as it was before this
/// update. A count is forgotten `reset_seconds` after its last failure.
fn record_failure(p: &mut Params, i: usize) -> String {
    let (now, lock, reset) = (p.p("now"), p.p("lock_seconds"), p.p("reset_seconds"));
    let (key, limit) = (p.p(&format!("key{i}")), p.p(&format!("limit{i}")));
    let restart = restarts(&now, &reset);
    format!(
        "INSERT INTO login_failures (lock_key, failures, locked_until, last_failure_at) \
         VALUES ({key}, 1, CASE WHEN 1 >= {limit} THEN {now} + {lock} END, {now}) \
         ON CONFLICT (lock_key) DO UPDATE SET \
             failures = CASE WHEN {restart} THEN 1 ELSE login_failures.failures + 1 END, \
             locked_until = CASE \
                 WHEN {restart} THEN CASE WHEN 1 >= {limit} THEN {now} + {lock} END \
                 WHEN login_failures.failures + 1 >= {limit} THEN {now} + {lock} \
                 ELSE NULL END, \
             last_failure_at = {now}"
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

/// Takes the row lock of the counter named `key`, making its row when it
/// has none and starting its count again when it would restart (see
/// [`restarts`]). The first statement of a place's transaction: every
/// later statement of it sees what the counter's earlier holders
/// committed, and no one else takes a place meanwhile.
fn lock_counter(p: &mut Params, key: &str) -> String {
    let (key, now, reset) = (p.p(key), p.p("now"), p.p("reset_seconds"));
    let restart = restarts(&now, &reset);
    format!(
        "INSERT INTO login_failures (lock_key, failures, locked_until, last_failure_at) \
         VALUES ({key}, 0, NULL, NULL) \
         ON CONFLICT (lock_key) DO UPDATE SET \
             failures = CASE WHEN {restart} THEN 0 ELSE login_failures.failures END, \
             locked_until = CASE WHEN {restart} THEN NULL ELSE login_failures.locked_until END"
    )
}

/// Takes place `place` on the counter named `key` (which locks at the
/// value named `limit`) until `until`, only while the counter is not
/// locked at `now` and its failures and the live places together are below
/// the limit. Runs after [`lock_counter`] in one transaction.
fn take_place(p: &mut Params, key: &str, limit: &str) -> String {
    let (place, key, until, now, limit) = (p.p("place"), p.p(key), p.p("until"), p.p("now"), p.p(limit));
    format!(
        "INSERT INTO login_checks (id, lock_key, until) SELECT {place}, {key}, {until} \
         WHERE (SELECT COUNT(*) FROM login_checks WHERE lock_key = {key} AND until > {now}) \
             + (SELECT failures FROM login_failures WHERE lock_key = {key}) < {limit} \
         AND NOT EXISTS (SELECT 1 FROM login_failures WHERE lock_key = {key} AND locked_until > {now})"
    )
}

/// Gives back the places of check `place` (on every counter): a statement
/// that changes nothing the second time.
fn release_place(p: &mut Params) -> String {
    format!("DELETE FROM login_checks WHERE id = {}", p.p("place"))
}

/// Gives back the places of a check that was not counted.
pub(crate) static RELEASE_PLACE: LazyLock<Named> = LazyLock::new(|| Named::build(release_place));

/// A right password on counter `key` at `now`: forgets its failures unless
/// it was locked meanwhile; the lock, if any, comes back.
pub(crate) static SETTLE_COUNTER: LazyLock<Named> = LazyLock::new(|| {
    Named::build(|p| {
        let (key, now) = (p.p("key"), p.p("now"));
        let locked = format!("locked_until IS NOT NULL AND locked_until > {now}");
        format!(
            "UPDATE login_failures SET \
                 failures = CASE WHEN {locked} THEN failures ELSE 0 END, \
                 locked_until = CASE WHEN {locked} THEN locked_until END, \
                 last_failure_at = CASE WHEN {locked} THEN last_failure_at END \
             WHERE lock_key = {key} RETURNING failures, locked_until"
        )
    })
});

/// The grouped writes in one dialect.
#[derive(Debug)]
pub(crate) struct Grouped {
    /// Failure counts (one counter, two counters) and their event.
    failure: [Named; 2],
    /// A check's places and its address's attempt (see
    /// [`sqlite_check`]), for one or two counters, without and with an
    /// address.
    check: [[Named; 2]; 2],
    /// A session, the attempt and the places it gives back, and its event.
    pub session: Named,
}

impl Grouped {
    /// The failure group for `counters` counters (one or two).
    pub fn failure(&self, counters: usize) -> Option<&Named> {
        self.failure.get(counters.checked_sub(1)?)
    }

    /// The check group for `counters` counters (one or two), with the
    /// address's attempt when `address`.
    pub fn check(&self, counters: usize, address: bool) -> Option<&Named> {
        self.check.get(counters.checked_sub(1)?)?.get(usize::from(address))
    }
}

/// The placeholders of an event's fields, comma-separated; `outcome`
/// given replaces the outcome's with that expression.
fn event_placeholders(p: &mut Params, outcome: Option<&str>) -> String {
    AUDIT_FIELDS
        .iter()
        .map(|field| match outcome {
            Some(expr) if *field == "outcome" => expr.to_owned(),
            _ => p.p(&format!("event.{field}")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of a failure: the lock's when `locked` holds, otherwise the
/// event's own.
fn failure_outcome(p: &mut Params, locked: &str) -> String {
    format!("CASE WHEN {locked} THEN {} ELSE {} END", p.p("locked_outcome"), p.p("event.outcome"))
}

fn fields() -> String {
    AUDIT_FIELDS.join(", ")
}

const NO_COUNT: &str = "CAST(NULL AS BIGINT) AS failures, CAST(NULL AS BIGINT) AS locked_until";

fn sqlite_failure(p: &mut Params, n: usize) -> String {
    let release = release_place(p);
    let counts: Vec<String> = (0..n)
        .map(|i| format!("{} RETURNING failures, locked_until, CAST(NULL AS BIGINT) AS id", record_failure(p, i)))
        .collect();
    let reached: Vec<String> = (0..n)
        .map(|i| format!("(lock_key = {} AND failures >= {})", p.p(&format!("key{i}")), p.p(&format!("limit{i}"))))
        .collect();
    let locked = format!("EXISTS (SELECT 1 FROM login_failures WHERE {})", reached.join(" OR "));
    let outcome = failure_outcome(p, &locked);
    format!(
        "BEGIN IMMEDIATE; {release}; {}; INSERT INTO audit_events ({}) SELECT {} RETURNING {NO_COUNT}, id; COMMIT",
        counts.join("; "),
        fields(),
        event_placeholders(p, Some(&outcome)),
    )
}

fn postgres_failure(p: &mut Params, n: usize) -> String {
    let release = release_place(p);
    let counts: Vec<String> =
        (0..n).map(|i| format!("f{i} AS ({} RETURNING failures, locked_until)", record_failure(p, i))).collect();
    let reached: Vec<String> = (0..n).map(|i| format!("f{i}.failures >= {}", p.p(&format!("limit{i}")))).collect();
    let outcome = failure_outcome(p, &reached.join(" OR "));
    let from: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let rows: Vec<String> = (0..n)
        .map(|i| format!("SELECT {i} AS n, failures, locked_until, CAST(NULL AS BIGINT) AS id FROM f{i}"))
        .collect();
    format!(
        "WITH c AS ({release}), {}, a AS (INSERT INTO audit_events ({}) SELECT {} FROM {} RETURNING id) \
         SELECT failures, locked_until, id FROM ({} UNION ALL SELECT {n}, NULL, NULL, id FROM a) AS r ORDER BY n",
        counts.join(", "),
        fields(),
        event_placeholders(p, Some(&outcome)),
        from.join(" CROSS JOIN "),
        rows.join(" UNION ALL "),
    )
}

/// The places of a check on its `n` counters, each counter's row lock then
/// its place ([`lock_counter`], [`take_place`]), and with `address` the
/// attempt in its address's window ([`reserve_placed_attempt`]): one
/// transaction sent at once, which
/// `BEGIN IMMEDIATE` serialises with every other write. Each row says
/// which `part` it answers: `2i` counter `i`'s state, `2i + 1` its place
/// taken, `2n` the address's window.
fn sqlite_check(p: &mut Params, n: usize, address: bool) -> String {
    const NONE: &str = "CAST(NULL AS BIGINT)";
    let mut parts = Vec::with_capacity(2 * n + 1);
    for i in 0..n {
        let key = format!("key{i}");
        let (state, place) = (2 * i, 2 * i + 1);
        let lock = lock_counter(p, &key);
        parts.push(format!("{lock} RETURNING {state} AS part, failures, locked_until, {NONE} AS window_start"));
        let take = take_place(p, &key, &format!("limit{i}"));
        parts.push(format!(
            "{take} RETURNING {place} AS part, {NONE} AS failures, {NONE} AS locked_until, {NONE} AS window_start"
        ));
    }
    if address {
        let reserve = reserve_placed_attempt(p);
        parts.push(format!("{reserve} RETURNING {} AS part, failures, {NONE} AS locked_until, window_start", 2 * n));
    }
    format!("BEGIN IMMEDIATE; {}; COMMIT", parts.join("; "))
}

pub(crate) static SQLITE: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: [Named::build(|p| sqlite_failure(p, 1)), Named::build(|p| sqlite_failure(p, 2))],
    check: [1, 2].map(|n| [false, true].map(|address| Named::build(|p| sqlite_check(p, n, address)))),
    session: Named::build(|p| {
        format!(
            "BEGIN IMMEDIATE; {}; {}; {}; INSERT INTO audit_events ({}) VALUES ({}) RETURNING {NO_COUNT}, id; COMMIT",
            insert_session(p),
            release(p),
            release_place(p),
            fields(),
            event_placeholders(p, None),
        )
    }),
});

/// [`sqlite_check`] on PostgreSQL: a call of `take_check_places`
/// (migration 0012), which runs the same statements in one round trip,
/// each with a fresh snapshot, and answers the same rows. Its transaction
/// commits without waiting for the log to reach the disk
/// (`synchronous_commit` off for it alone), as a check's do on SQLite
/// (see `SqlStore::checks_on`): the commit that answers the attempt waits
/// for the log up to itself, this one's places included.
fn postgres_check(p: &mut Params, n: usize, address: bool) -> String {
    const NO_TEXT: &str = "CAST(NULL AS TEXT)";
    const NO_INT: &str = "CAST(NULL AS BIGINT)";
    let (key0, limit0) = (p.p("key0"), p.p("limit0"));
    let (key1, limit1) = if n == 2 { (p.p("key1"), p.p("limit1")) } else { (NO_TEXT.into(), NO_INT.into()) };
    let (now, reset, until, place) = (p.p("now"), p.p("reset_seconds"), p.p("until"), p.p("place"));
    let (ip, window) = if address { (p.p("ip"), p.p("window_seconds")) } else { (NO_TEXT.into(), NO_INT.into()) };
    format!(
        "SELECT o_part AS part, o_failures AS failures, o_locked_until AS locked_until, o_window_start AS window_start \
         FROM take_check_places({key0}, {limit0}, {key1}, {limit1}, {now}, {reset}, {until}, {place}, {ip}, {window}) \
         CROSS JOIN set_config('synchronous_commit', 'off', true) AS unsynced"
    )
}

pub(crate) static POSTGRES: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: [Named::build(|p| postgres_failure(p, 1)), Named::build(|p| postgres_failure(p, 2))],
    check: [1, 2].map(|n| [false, true].map(|address| Named::build(|p| postgres_check(p, n, address)))),
    session: Named::build(|p| {
        format!(
            "WITH s AS ({}), r AS ({}), c AS ({}) INSERT INTO audit_events ({}) VALUES ({}) RETURNING {NO_COUNT}, id",
            insert_session(p),
            release(p),
            release_place(p),
            fields(),
            event_placeholders(p, None),
        )
    }),
});

/// Counts one password attempt in the window of address `ip` at `now`
/// (a window of `window_seconds`); a window that has ended starts again.
/// Every attempt is counted, refused ones too.
pub(crate) static RESERVE_ATTEMPT: LazyLock<Named> = LazyLock::new(|| {
    Named::build(|p| {
        let (ip, now, seconds) = (p.p("ip"), p.p("now"), p.p("window_seconds"));
        let ended = format!("ip_throttle.window_start + {seconds} <= {now}");
        format!(
            "INSERT INTO ip_throttle (ip, window_start, failures) VALUES ({ip}, {now}, 1) \
             ON CONFLICT (ip) DO UPDATE SET \
                 window_start = CASE WHEN {ended} THEN {now} ELSE ip_throttle.window_start END, \
                 failures = CASE WHEN {ended} THEN 1 ELSE ip_throttle.failures + 1 END \
             RETURNING window_start, failures"
        )
    })
});

/// [`RESERVE_ATTEMPT`] in a check's transaction, only when check `place`
/// took its place on each of its `counters` counters (an attempt refused
/// by a counter is no attempt of its address).
fn reserve_placed_attempt(p: &mut Params) -> String {
    let (ip, now, seconds) = (p.p("ip"), p.p("now"), p.p("window_seconds"));
    let (place, counters) = (p.p("place"), p.p("counters"));
    let ended = format!("ip_throttle.window_start + {seconds} <= {now}");
    format!(
        "INSERT INTO ip_throttle (ip, window_start, failures) SELECT {ip}, {now}, 1 \
         WHERE (SELECT COUNT(*) FROM login_checks WHERE id = {place}) = {counters} \
         ON CONFLICT (ip) DO UPDATE SET \
             window_start = CASE WHEN {ended} THEN {now} ELSE ip_throttle.window_start END, \
             failures = CASE WHEN {ended} THEN 1 ELSE ip_throttle.failures + 1 END"
    )
}

/// Gives a reserved attempt back (`ip`, `window`).
pub(crate) static RELEASE_ATTEMPT: LazyLock<Named> = LazyLock::new(|| Named::build(release));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_place_and_values_bind_by_name() {
        let named = Named::build(|p| format!("{} {} {} {}", p.p("a"), p.p("b"), p.p("a"), p.p("c")));
        assert_eq!(named.sql, "$1 $2 $1 $3");
        let stmt = named.bind(vec![("c".into(), Arg::Int(3)), ("a".into(), Arg::Int(1)), ("b".into(), Arg::Int(2))]);
        assert_eq!(
            format!("{stmt:?}"),
            format!("{:?}", Ok::<_, ()>(Stmt::new("$1 $2 $1 $3").bind(1i64).bind(2i64).bind(3i64)))
        );
        assert!(named.bind(vec![("a".into(), Arg::Int(1))]).is_err(), "a value is missing");
    }

    #[test]
    fn every_group_names_each_audit_field_and_a_lock_names_its_own_outcome() {
        for grouped in [&*SQLITE, &*POSTGRES] {
            for named in [grouped.failure(1), grouped.failure(2), Some(&grouped.session)].into_iter().flatten() {
                for field in AUDIT_FIELDS {
                    assert!(named.names.contains(&format!("event.{field}")), "{field} in {}", named.sql);
                }
            }
            let two = grouped.failure(2).map(|n| n.names.clone()).unwrap_or_default();
            for name in
                ["place", "now", "lock_seconds", "reset_seconds", "locked_outcome", "key0", "limit0", "key1", "limit1"]
            {
                assert!(two.contains(&name.to_owned()), "{name}");
            }
            assert!(grouped.failure(3).is_none() && grouped.failure(0).is_none());
        }
        for grouped in [&*SQLITE, &*POSTGRES] {
            for (n, address) in [(1, false), (1, true), (2, false), (2, true)] {
                let names = grouped.check(n, address).map(|c| c.names.clone()).unwrap_or_default();
                let counters = (0..n).flat_map(|i| [format!("key{i}"), format!("limit{i}")]);
                for name in ["now", "reset_seconds", "until", "place"].map(str::to_owned).into_iter().chain(counters) {
                    assert!(names.contains(&name), "{name} in the check of {n} counters");
                }
                let unused = ["ip", "window_seconds", "key1"].map(str::to_owned);
                assert_eq!(names.contains(&unused[0]) && names.contains(&unused[1]), address);
                assert_eq!(names.contains(&unused[2]), n == 2);
            }
            assert!(grouped.check(3, false).is_none() && grouped.check(0, true).is_none());
        }
        for named in [SQLITE.failure(2), POSTGRES.failure(2)].into_iter().flatten() {
            let at = |name: &str| named.names.iter().position(|n| n == name).map(|i| format!("${}", i + 1));
            let (locked, own) = (at("locked_outcome").unwrap_or_default(), at("event.outcome").unwrap_or_default());
            assert!(named.sql.contains(&format!("THEN {locked} ELSE {own} END")), "{}", named.sql);
        }
    }
}
