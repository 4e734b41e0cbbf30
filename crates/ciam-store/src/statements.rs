//! The statements of the SQL store that are more than a line: the column
//! lists, the reads every login and refresh makes, the bulk insert of an
//! import, the audit log's filter and the retention purge, and the
//! arguments of the rows they write.

use std::sync::LazyLock;

use ciam_core::UnixTime;
use ciam_core::model::{App, AuditQuery, Reservation, Session, SigningKeyRecord, TokenDigest, User, UserId};
use ciam_core::store::Purge;

use crate::exec::{Arg, Stmt};
use crate::rows::AUDIT_FIELDS;

pub(crate) const APP_COLUMNS: &str = "client_id, name, enabled, password_expiry_check, access, session_ttl, \
     id_token_ttl, created_at, client_type, redirect_uris, post_logout_redirect_uris, initiate_login_uri, secret_digest, \
     self_registration, sms_auto_register, id_token_alg";
pub(crate) const USER_COLUMNS: &str =
    "id, mobile, user_name, name, email, disabled, password_hash, password_changed_at, created_at, updated_at";
pub(crate) const KEY_COLUMNS: &str = "kid, private_pkcs8, created_at, retired_at, publish_until, alg";
pub(crate) const GRANT_COLUMNS: &str = "user_id, client_id, flow, expires_at";

pub(crate) static SELECT_APP: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"));
pub(crate) static SELECT_USER: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"));
pub(crate) static AUDIT_COLUMNS: LazyLock<String> = LazyLock::new(|| format!("id, {}, count", AUDIT_FIELDS.join(", ")));

/// The user columns as `u.<column>`, for joins.
pub(crate) fn prefixed_user_columns() -> String {
    USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
}

/// A password attempt's first read (see [`LookupRow`]), in one statement
/// (built once: it runs on every login).
pub(crate) static LOGIN_LOOKUP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT f1.failures AS f1_failures, f1.locked_until AS f1_locked_until, \
         f2.failures AS f2_failures, f2.locked_until AS f2_locked_until, \
         t.window_start AS t_window_start, t.failures AS t_failures, {} FROM (SELECT 1 AS one) AS q \
         LEFT JOIN login_failures f1 ON f1.lock_key = $1 LEFT JOIN login_failures f2 ON f2.lock_key = $2 \
         LEFT JOIN ip_throttle t ON t.ip = $3 LEFT JOIN users u ON u.mobile = $4",
        prefixed_user_columns()
    )
});

/// A live session with its user (built once: it runs on every refresh).
pub(crate) static SESSION_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.client_id, s.expires_at, {} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_digest = $1 AND s.expires_at > $2",
        prefixed_user_columns()
    )
});

/// Users per statement of an import.
pub(crate) const INSERT_USERS_ROWS: usize = 20;

/// The placeholders `$first`, `$first + 1`, … for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// An app's fields from `client_id` to `id_token_ttl`, in [`APP_COLUMNS`] order.
pub(crate) fn app_args(app: &App) -> [Arg; 7] {
    [
        (&app.client_id).into(),
        (&app.name).into(),
        app.enabled.into(),
        app.password_expiry_check.into(),
        app.access.as_str().into(),
        app.session_ttl.into(),
        app.id_token_ttl.into(),
    ]
}

/// An app's fields as an OpenID client, from `client_type` to
/// `secret_digest`, in [`APP_COLUMNS`] order.
pub(crate) fn client_args(app: &App) -> [Arg; 5] {
    let uris = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    let oidc = &app.oidc;
    [
        oidc.client_type.as_str().into(),
        Arg::Text(uris(&oidc.redirect_uris)),
        Arg::Text(uris(&oidc.post_logout_redirect_uris)),
        (&oidc.initiate_login_uri).into(),
        (&oidc.secret_digest).into(),
    ]
}

/// An app's sign-up switches and id_token algorithm, last in
/// [`APP_COLUMNS`] order.
pub(crate) fn signup_args(app: &App) -> [Arg; 3] {
    [app.signup.self_registration.into(), app.signup.sms_auto_register.into(), app.id_token_alg.as_str().into()]
}

/// A user's fields from `id` to `disabled`, in [`USER_COLUMNS`] order.
pub(crate) fn profile_args(user: &User) -> [Arg; 6] {
    [
        (&user.id).into(),
        (&user.mobile).into(),
        (&user.user_name).into(),
        (&user.name).into(),
        (&user.email).into(),
        user.disabled.into(),
    ]
}

/// The attempt a call gives back to its address's window, by name (none:
/// nothing is given back).
pub(crate) fn reserved_values(reserved: Option<&Reservation>) -> Vec<(String, Arg)> {
    vec![
        ("reserved.ip".into(), Arg::from(reserved.map(|r| r.key.as_str()))),
        ("reserved.window".into(), Arg::from(reserved.map(|r| r.window_start))),
    ]
}

pub(crate) fn session_args(digest: &TokenDigest, session: &Session, now: UnixTime) -> [Arg; 5] {
    [digest.into(), (&session.user_id).into(), (&session.client_id).into(), now.into(), session.expires_at.into()]
}

/// One statement of an import: `chunk` users (at most
/// [`INSERT_USERS_ROWS`]); a taken mobile or id is skipped, and the ids
/// given back say which were stored.
pub(crate) fn insert_users(chunk: &[User]) -> Stmt {
    let rows: Vec<String> = (0..chunk.len()).map(|row| format!("({})", placeholders(row * 10 + 1, 10))).collect();
    let sql =
        format!("INSERT INTO users ({USER_COLUMNS}) VALUES {} ON CONFLICT DO NOTHING RETURNING id", rows.join(", "));
    let args = chunk.iter().flat_map(|user| {
        profile_args(user).into_iter().chain([
            (&user.password_hash).into(),
            user.password_changed_at.into(),
            user.created_at.into(),
            user.updated_at.into(),
        ])
    });
    // Full chunks share one text, kept prepared.
    let stmt = if chunk.len() == INSERT_USERS_ROWS { Stmt::new(sql) } else { Stmt::once(sql) };
    stmt.bind_all(args)
}

/// The audit log read by `q`, newest first.
pub(crate) fn list_audit(q: &AuditQuery) -> Stmt {
    let sql = format!(
        "SELECT {} FROM audit_events WHERE ($1 IS NULL OR mobile = $1) \
         AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR ip = $3) AND ($5 IS NULL OR outcome = $5) \
         AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) AND ($8 IS NULL OR id < $8) \
         ORDER BY id DESC LIMIT $4",
        AUDIT_COLUMNS.as_str()
    );
    Stmt::new(sql)
        .bind(&q.mobile)
        .bind(q.user_id.as_ref().map(UserId::as_str))
        .bind(&q.ip)
        .bind(q.limit)
        .bind(&q.outcome)
        .bind(q.since)
        .bind(q.until)
        .bind(q.before_id)
}

/// Deletes the rows of `table` past their time: at most `$2` of those whose
/// `column` is at or before `$1`, named by `key`.
fn expired(table: &str, key: &str, column: &str) -> String {
    format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {column} <= $1 LIMIT $2)")
}

/// One batch (`limit` rows) of what retention deletes.
pub(crate) fn purge(what: Purge, limit: u32) -> Stmt {
    // `$1` is the time that decides, `$2` the batch, `$3` a length of time.
    let (sql, at, seconds) = match what {
        Purge::AuditBefore(before) => (
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)"
                .to_owned(),
            before,
            None,
        ),
        Purge::Sessions(now) => (expired("sessions", "token_digest", "expires_at"), now, None),
        Purge::StateGrants(now) => (expired("state_grants", "token_digest", "expires_at"), now, None),
        Purge::Failures { now, reset_seconds } => (
            "DELETE FROM login_failures WHERE lock_key IN (SELECT lock_key FROM login_failures WHERE \
             (locked_until IS NOT NULL AND locked_until <= $1) \
             OR (locked_until IS NULL AND (last_failure_at IS NULL OR last_failure_at + $3 <= $1) \
                 AND NOT EXISTS (SELECT 1 FROM login_checks c \
                                 WHERE c.lock_key = login_failures.lock_key AND c.until > $1)) LIMIT $2)"
                .to_owned(),
            now,
            Some(reset_seconds),
        ),
        Purge::Windows { now, window_seconds } => {
            (expired("ip_throttle", "ip", "window_start + $3"), now, Some(window_seconds))
        }
        Purge::LapsedChecks(now) => (expired("login_checks", "id", "until"), now, None),
        Purge::Grants(now) => (expired("oauth_grants", "digest", "expires_at"), now, None),
        // A number's expired codes go together (three at most).
        Purge::SmsCodes(now) => {
            (format!("{} AND expires_at <= $1", expired("sms_codes", "mobile", "expires_at")), now, None)
        }
        Purge::SmsWindows(now) => (expired("sms_windows", "key", "ends_at"), now, None),
        Purge::ConsoleSessions(now) => (expired("console_sessions", "token_digest", "expires_at"), now, None),
    };
    let stmt = Stmt::new(sql).bind(at).bind(limit);
    match seconds {
        Some(seconds) => stmt.bind(seconds),
        None => stmt,
    }
}

/// Stores a signing key.
pub(crate) fn insert_key(key: &SigningKeyRecord) -> Stmt {
    insert_key_then(key, "")
}

/// Stores a signing key, the statement ending in `tail` (an `ON CONFLICT`
/// clause).
pub(crate) fn insert_key_then(key: &SigningKeyRecord, tail: &str) -> Stmt {
    Stmt::new(format!("INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6){tail}"))
        .bind(key.kid.as_str())
        .bind(key.private_pkcs8.as_slice())
        .bind(key.created_at)
        .bind(key.retired_at)
        .bind(key.publish_until)
        .bind(key.alg.as_str())
}
