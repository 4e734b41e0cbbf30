//! The one SQL implementation of [`Store`], shared by SQLite and PostgreSQL.
//!
//! Both databases accept the same statements here: `$N` placeholders,
//! `INSERT … ON CONFLICT … DO UPDATE … RETURNING`, `DELETE … RETURNING`.
//! Only the DDL (`migrations/<backend>/`) and connection set-up differ. The
//! implementation is written once, in a macro, and stamped out for each
//! concrete database type, so both run exactly the same statements.

use std::sync::LazyLock;

use async_trait::async_trait;
use ciam_core::UnixTime;
use ciam_core::store::{
    App, AppAccess, AuditEvent, AuditQuery, FailureAudit, FailureState, Flow, HistoryEntry, Session, SigningKeyRecord,
    StateGrant, Store, StoreError, StoreResult, StoredSession, User,
};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Connection, Postgres, Row, Sqlite};
use tokio::sync::{mpsc, oneshot};

use crate::conns::Conns;

/// An audit event waiting for its commit, and who to tell.
type AuditJob = (AuditEvent, oneshot::Sender<StoreResult<()>>);

/// Audit events written per statement (and commit) at most.
const AUDIT_BATCH: usize = 256;

/// A [`Store`] on a SQL database.
#[derive(Debug)]
pub struct SqlStore<DB: sqlx::Database> {
    /// Where the store's statements run.
    conns: Conns<DB>,
    /// Feeds the audit writer (see [`SqlStore::new`]).
    audit: mpsc::Sender<AuditJob>,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { conns: self.conns.clone(), audit: self.audit.clone() }
    }
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Closes the store's connections.
    pub async fn close(&self) {
        self.conns.close().await;
    }
}

/// Maps a driver error: uniqueness → [`StoreError::Conflict`], the rest is
/// a backend failure (unreachable database, timeout, …).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        _ => StoreError::Backend(e.to_string()),
    }
}

const APP_COLUMNS: &str =
    "client_id, name, enabled, password_expiry_check, access, session_ttl, id_token_ttl, created_at";
const USER_COLUMNS: &str =
    "id, mobile, user_name, name, email, disabled, password_hash, password_changed_at, created_at, updated_at";
const AUDIT_COLUMNS: &str =
    "id, at, action, outcome, mobile, user_id, client_id, os_version, device_fingerprint, device_ip, agent, peer_ip";
/// The columns a new audit event fills, in the order they are bound.
const AUDIT_FIELDS: &str =
    "at, action, outcome, mobile, user_id, client_id, os_version, device_fingerprint, device_ip, agent, peer_ip";
const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_digest, user_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// The counting statement behind [`Store::record_failure`]: one statement,
/// so concurrent failures are serialised by the database row lock. All SET
/// expressions read the row as it was before this update.
const RECORD_FAILURE: &str = "
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
RETURNING failures, locked_until";

macro_rules! sql_store {
    ($db:ty, $grouped:expr) => {
        impl SqlStore<$db> {
            /// Binds an audit event's fields (`AUDIT_FIELDS`, in order) after
            /// the parameters already bound.
            fn bind_event(
                query: Query<'static, $db, <$db as sqlx::Database>::Arguments<'static>>,
                e: &AuditEvent,
            ) -> Query<'static, $db, <$db as sqlx::Database>::Arguments<'static>> {
                query
                    .bind(e.at)
                    .bind(e.action.clone())
                    .bind(e.outcome.clone())
                    .bind(e.mobile.clone())
                    .bind(e.user_id.clone())
                    .bind(e.client_id.clone())
                    .bind(e.os_version.clone())
                    .bind(e.device_fingerprint.clone())
                    .bind(e.device_ip.clone())
                    .bind(e.agent.clone())
                    .bind(e.peer_ip.clone())
            }

            /// Runs one statement on one of the store's connections; returns how
            /// many rows it touched.
            async fn affected<'q>(
                &self,
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            ) -> StoreResult<u64> {
                Ok(query.execute(&mut *self.conns.get().await?).await.map_err(db_err)?.rows_affected())
            }

            /// Wraps migrated connections and starts the audit writer: events from
            /// concurrent calls are committed together, one transaction (and
            /// one fsync) for all that arrived while the previous one ran.
            /// Every caller still waits for its own commit, so no answer goes
            /// out before its event is stored.
            pub(crate) fn new(conns: Conns<$db>) -> Self {
                let (audit, jobs) = mpsc::channel(4 * AUDIT_BATCH);
                tokio::spawn(Self::write_audit(conns.clone(), jobs));
                Self { conns, audit }
            }

            async fn write_audit(conns: Conns<$db>, mut jobs: mpsc::Receiver<AuditJob>) {
                let mut batch = Vec::with_capacity(AUDIT_BATCH);
                while jobs.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
                    let events: Vec<&AuditEvent> = batch.iter().map(|(e, _)| e).collect();
                    match Self::insert_audit_rows(&conns, &events).await {
                        Ok(()) => {
                            for (_, done) in batch.drain(..) {
                                let _ = done.send(Ok(()));
                            }
                        }
                        Err(e) if batch.len() == 1 => {
                            if let Some((_, done)) = batch.pop() {
                                let _ = done.send(Err(e));
                            }
                        }
                        // One bad event must not sink the others: retry alone.
                        Err(_) => {
                            for (event, done) in batch.drain(..) {
                                let _ = done.send(Self::insert_audit_rows(&conns, &[&event]).await);
                            }
                        }
                    }
                }
            }

            /// Inserts `events` with one statement: one round trip and one
            /// commit for the whole batch.
            async fn insert_audit_rows(conns: &Conns<$db>, events: &[&AuditEvent]) -> StoreResult<()> {
                let mut insert = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO audit_events ({AUDIT_FIELDS}) "));
                insert.push_values(events, |mut row, e| {
                    row.push_bind(e.at)
                        .push_bind(&e.action)
                        .push_bind(&e.outcome)
                        .push_bind(&e.mobile)
                        .push_bind(&e.user_id)
                        .push_bind(&e.client_id)
                        .push_bind(&e.os_version)
                        .push_bind(&e.device_fingerprint)
                        .push_bind(&e.device_ip)
                        .push_bind(&e.agent)
                        .push_bind(&e.peer_ip);
                });
                // A single event's statement is the common one: keep it prepared.
                let query = insert.build().persistent(events.len() == 1);
                query.execute(&mut *conns.get().await?).await.map_err(db_err)?;
                Ok(())
            }

            fn app_from(row: &<$db as sqlx::Database>::Row) -> Result<App, sqlx::Error> {
                let access: String = row.try_get("access")?;
                Ok(App {
                    client_id: row.try_get("client_id")?,
                    name: row.try_get("name")?,
                    enabled: row.try_get("enabled")?,
                    password_expiry_check: row.try_get("password_expiry_check")?,
                    access: AppAccess::parse(&access).unwrap_or(AppAccess::Assigned),
                    session_ttl: row.try_get("session_ttl")?,
                    id_token_ttl: row.try_get("id_token_ttl")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn user_from(row: &<$db as sqlx::Database>::Row) -> Result<User, sqlx::Error> {
                Ok(User {
                    id: row.try_get("id")?,
                    mobile: row.try_get("mobile")?,
                    user_name: row.try_get("user_name")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    disabled: row.try_get("disabled")?,
                    password_hash: row.try_get("password_hash")?,
                    password_changed_at: row.try_get("password_changed_at")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn grant_from(row: &<$db as sqlx::Database>::Row) -> Result<StateGrant, sqlx::Error> {
                let flow: String = row.try_get("flow")?;
                Ok(StateGrant {
                    user_id: row.try_get("user_id")?,
                    client_id: row.try_get("client_id")?,
                    flow: Flow::parse(&flow).ok_or_else(|| sqlx::Error::Decode(format!("unknown flow {flow}").into()))?,
                    expires_at: row.try_get("expires_at")?,
                })
            }

            fn audit_from(row: &<$db as sqlx::Database>::Row) -> Result<AuditEvent, sqlx::Error> {
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    action: row.try_get("action")?,
                    outcome: row.try_get("outcome")?,
                    mobile: row.try_get("mobile")?,
                    user_id: row.try_get("user_id")?,
                    client_id: row.try_get("client_id")?,
                    os_version: row.try_get("os_version")?,
                    device_fingerprint: row.try_get("device_fingerprint")?,
                    device_ip: row.try_get("device_ip")?,
                    agent: row.try_get("agent")?,
                    peer_ip: row.try_get("peer_ip")?,
                })
            }

            fn key_from(row: &<$db as sqlx::Database>::Row) -> Result<SigningKeyRecord, sqlx::Error> {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    private_pkcs8: row.try_get("private_pkcs8")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                    publish_until: row.try_get("publish_until")?,
                })
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            async fn ping(&self) -> StoreResult<()> {
                self.affected(sqlx::query("SELECT 1")).await?;
                Ok(())
            }

            async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
                let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                row.map(|r| r.try_get("value")).transpose().map_err(db_err)
            }

            async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
                self.affected(sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2")
                    .bind(name)
                    .bind(value)).await?;
                Ok(())
            }

            async fn put_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
                let done = self.affected(sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(value)).await?;
                Ok(done == 1)
            }

            async fn insert_app(&self, app: &App) -> StoreResult<()> {
                self.affected(sqlx::query(&format!("INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(&app.client_id)
                    .bind(&app.name)
                    .bind(app.enabled)
                    .bind(app.password_expiry_check)
                    .bind(app.access.as_str())
                    .bind(app.session_ttl)
                    .bind(app.id_token_ttl)
                    .bind(app.created_at)).await?;
                Ok(())
            }

            async fn get_app(&self, client_id: &str) -> StoreResult<Option<App>> {
                let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"))
                    .bind(client_id)
                    .fetch_optional(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::app_from).transpose().map_err(db_err)
            }

            async fn list_apps(&self) -> StoreResult<Vec<App>> {
                let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, client_id"))
                    .fetch_all(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::app_from).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn update_app(&self, app: &App) -> StoreResult<bool> {
                let done = self.affected(sqlx::query(
                    "UPDATE apps SET name = $2, enabled = $3, password_expiry_check = $4, access = $5, \
                     session_ttl = $6, id_token_ttl = $7 WHERE client_id = $1",
                )
                .bind(&app.client_id)
                .bind(&app.name)
                .bind(app.enabled)
                .bind(app.password_expiry_check)
                .bind(app.access.as_str())
                .bind(app.session_ttl)
                .bind(app.id_token_ttl)).await?;
                Ok(done == 1)
            }

            async fn delete_app(&self, client_id: &str) -> StoreResult<bool> {
                let done = self.affected(sqlx::query("DELETE FROM apps WHERE client_id = $1")
                    .bind(client_id)).await?;
                Ok(done == 1)
            }

            async fn add_member(&self, client_id: &str, user_id: &str) -> StoreResult<()> {
                self.affected(sqlx::query("INSERT INTO app_members (client_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(client_id)
                    .bind(user_id)).await?;
                Ok(())
            }

            async fn remove_member(&self, client_id: &str, user_id: &str) -> StoreResult<bool> {
                let done = self.affected(sqlx::query("DELETE FROM app_members WHERE client_id = $1 AND user_id = $2")
                    .bind(client_id)
                    .bind(user_id)).await?;
                Ok(done == 1)
            }

            async fn is_member(&self, client_id: &str, user_id: &str) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 AS one FROM app_members WHERE client_id = $1 AND user_id = $2")
                    .bind(client_id)
                    .bind(user_id)
                    .fetch_optional(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                Ok(row.is_some())
            }

            async fn insert_user(&self, user: &User) -> StoreResult<()> {
                self.affected(sqlx::query(&format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(&user.id)
                .bind(&user.mobile)
                .bind(&user.user_name)
                .bind(&user.name)
                .bind(&user.email)
                .bind(user.disabled)
                .bind(&user.password_hash)
                .bind(user.password_changed_at)
                .bind(user.created_at)
                .bind(user.updated_at)).await?;
                Ok(())
            }

            async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::user_from).transpose().map_err(db_err)
            }

            async fn list_users(&self, mobile: Option<&str>, limit: u32, offset: u32) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR mobile = $1) \
                     ORDER BY created_at, id LIMIT $2 OFFSET $3"
                ))
                .bind(mobile)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::user_from).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn update_user(&self, user: &User) -> StoreResult<bool> {
                let done = self.affected(sqlx::query(
                    "UPDATE users SET mobile = $2, user_name = $3, name = $4, email = $5, disabled = $6, \
                     password_changed_at = $7, updated_at = $8 WHERE id = $1",
                )
                .bind(&user.id)
                .bind(&user.mobile)
                .bind(&user.user_name)
                .bind(&user.name)
                .bind(&user.email)
                .bind(user.disabled)
                .bind(user.password_changed_at)
                .bind(user.updated_at)).await?;
                Ok(done == 1)
            }

            async fn delete_user(&self, id: &str) -> StoreResult<bool> {
                let done = self.affected(sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)).await?;
                Ok(done == 1)
            }

            async fn set_password(&self, user_id: &str, hash: &str, changed_at: UnixTime, keep: u32) -> StoreResult<bool> {
                let mut conn = self.conns.get().await?;
                let mut tx = conn.begin().await.map_err(db_err)?;
                // The write comes first so SQLite takes its write lock at once.
                let moved = sqlx::query(
                    "INSERT INTO password_history (user_id, password_hash, replaced_at) \
                     SELECT id, password_hash, $2 FROM users WHERE id = $1",
                )
                .bind(user_id)
                .bind(changed_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
                    .bind(user_id)
                    .bind(hash)
                    .bind(changed_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query(
                    "DELETE FROM password_history WHERE user_id = $1 AND id NOT IN \
                     (SELECT id FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
                )
                .bind(user_id)
                .bind(i64::from(keep))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> StoreResult<()> {
                self.affected(sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                    .bind(user_id)
                    .bind(old)
                    .bind(new)).await?;
                Ok(())
            }

            async fn password_history(&self, user_id: &str, n: u32) -> StoreResult<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(user_id)
                .bind(i64::from(n))
                .fetch_all(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                rows.iter().map(|r| r.try_get("password_hash")).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn failure_state(&self, key: &str) -> StoreResult<Option<FailureState>> {
                let row = sqlx::query("SELECT failures, locked_until FROM login_failures WHERE lock_key = $1")
                    .bind(key)
                    .fetch_optional(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                row.map(|r| failure_from(r.try_get("failures")?, r.try_get("locked_until")?))
                    .transpose()
                    .map_err(db_err)
            }

            async fn login_lookup(
                &self,
                key: &str,
                mobile: Option<&str>,
            ) -> StoreResult<(Option<FailureState>, Option<User>)> {
                let row = sqlx::query(&LOGIN_LOOKUP)
                .bind(key)
                .bind(mobile)
                .fetch_one(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                let failures: Option<i64> = row.try_get("failures").map_err(db_err)?;
                let state = match failures {
                    Some(n) => Some(failure_from(n, row.try_get("locked_until").map_err(db_err)?).map_err(db_err)?),
                    None => None,
                };
                let user = match row.try_get::<Option<String>, _>("id").map_err(db_err)? {
                    Some(_) => Some(Self::user_from(&row).map_err(db_err)?),
                    None => None,
                };
                Ok((state, user))
            }

            async fn record_failure(
                &self,
                key: &str,
                now: UnixTime,
                max_failures: u32,
                lock_seconds: i64,
                audit: FailureAudit<'_>,
            ) -> StoreResult<(FailureState, i64)> {
                let query = sqlx::query($grouped.failure.as_str())
                    .bind(key.to_owned())
                    .bind(now)
                    .bind(i64::from(max_failures))
                    .bind(lock_seconds)
                    .bind(audit.locked.to_owned());
                let rows = self.fetch_grouped(Self::bind_event(query, audit.event)).await?;
                // The count comes in the first row, the event's id in the last.
                let (Some(count), Some(event)) = (rows.first(), rows.last()) else {
                    return Err(StoreError::Backend("failure count returned no row".into()));
                };
                let state = failure_from(count.try_get("failures").map_err(db_err)?, count.try_get("locked_until").map_err(db_err)?)
                    .map_err(db_err)?;
                Ok((state, event.try_get("id").map_err(db_err)?))
            }

            async fn clear_failures(&self, key: &str) -> StoreResult<()> {
                self.affected(sqlx::query("DELETE FROM login_failures WHERE lock_key = $1")
                    .bind(key)).await?;
                Ok(())
            }

            async fn insert_session(&self, digest: &str, session: &Session, now: UnixTime) -> StoreResult<()> {
                self.affected(sqlx::query(INSERT_SESSION)
                .bind(digest)
                .bind(&session.user_id)
                .bind(&session.client_id)
                .bind(now)
                .bind(session.expires_at)).await?;
                Ok(())
            }

            async fn insert_session_audited(
                &self,
                digest: &str,
                session: &Session,
                now: UnixTime,
                event: &AuditEvent,
            ) -> StoreResult<i64> {
                let query = sqlx::query($grouped.session.as_str())
                    .bind(digest.to_owned())
                    .bind(session.user_id.clone())
                    .bind(session.client_id.clone())
                    .bind(now)
                    .bind(session.expires_at);
                let rows = self.fetch_grouped(Self::bind_event(query, event)).await?;
                let Some(event) = rows.last() else {
                    return Err(StoreError::Backend("session insert returned no row".into()));
                };
                event.try_get("id").map_err(db_err)
            }

            async fn get_session_user(&self, digest: &str, now: UnixTime) -> StoreResult<Option<(Session, User)>> {
                let row = sqlx::query(&SESSION_USER)
                .bind(digest)
                .bind(now)
                .fetch_optional(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                row.map(|r| -> Result<(Session, User), sqlx::Error> {
                    let user = Self::user_from(&r)?;
                    let session =
                        Session { user_id: user.id.clone(), client_id: r.try_get("client_id")?, expires_at: r.try_get("expires_at")? };
                    Ok((session, user))
                })
                .transpose()
                .map_err(db_err)
            }

            async fn delete_session(&self, digest: &str) -> StoreResult<bool> {
                let done = self.affected(sqlx::query("DELETE FROM sessions WHERE token_digest = $1")
                    .bind(digest)).await?;
                Ok(done == 1)
            }

            async fn delete_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
                let done = self.affected(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)).await?;
                Ok(done)
            }

            async fn insert_state_grant(&self, digest: &str, grant: &StateGrant) -> StoreResult<()> {
                self.affected(sqlx::query(
                    "INSERT INTO state_grants (token_digest, user_id, client_id, flow, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(digest)
                .bind(&grant.user_id)
                .bind(&grant.client_id)
                .bind(grant.flow.as_str())
                .bind(grant.expires_at)).await?;
                Ok(())
            }

            async fn get_state_grant(&self, digest: &str, now: UnixTime) -> StoreResult<Option<StateGrant>> {
                let row = sqlx::query(
                    "SELECT user_id, client_id, flow, expires_at FROM state_grants WHERE token_digest = $1 AND expires_at > $2",
                )
                .bind(digest)
                .bind(now)
                .fetch_optional(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::grant_from).transpose().map_err(db_err)
            }

            async fn take_state_grant(&self, digest: &str, now: UnixTime, flows: &[Flow]) -> StoreResult<Option<StateGrant>> {
                let (Some(first), last) = (flows.first(), flows.last()) else {
                    return Ok(None);
                };
                let last = last.unwrap_or(first);
                let row = sqlx::query(
                    "DELETE FROM state_grants WHERE token_digest = $1 AND expires_at > $2 AND flow IN ($3, $4) \
                     RETURNING user_id, client_id, flow, expires_at",
                )
                .bind(digest)
                .bind(now)
                .bind(first.as_str())
                .bind(last.as_str())
                .fetch_optional(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::grant_from).transpose().map_err(db_err)
            }

            async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let rows = sqlx::query(
                    "SELECT kid, private_pkcs8, created_at, retired_at, publish_until FROM signing_keys \
                     ORDER BY created_at DESC, kid DESC",
                )
                .fetch_all(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::key_from).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn rotate_signing_key(&self, key: &SigningKeyRecord, now: UnixTime, publish_until: UnixTime) -> StoreResult<()> {
                let mut conn = self.conns.get().await?;
                let mut tx = conn.begin().await.map_err(db_err)?;
                sqlx::query("UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL")
                    .bind(now)
                    .bind(publish_until)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at, publish_until) VALUES ($1, $2, $3, NULL, NULL)",
                )
                .bind(&key.kid)
                .bind(&key.private_pkcs8)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(())
            }

            async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
                self.affected(sqlx::query(
                    "INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at, publish_until) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&key.kid)
                .bind(&key.private_pkcs8)
                .bind(key.created_at)
                .bind(key.retired_at)
                .bind(key.publish_until)).await?;
                Ok(())
            }

            async fn insert_audit(&self, e: &AuditEvent) -> StoreResult<()> {
                let (done, committed) = oneshot::channel();
                self.audit
                    .send((e.clone(), done))
                    .await
                    .map_err(|_| StoreError::Backend("audit writer stopped".into()))?;
                committed.await.map_err(|_| StoreError::Backend("audit writer stopped".into()))?
            }

            async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
                let rows = sqlx::query(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE ($1 IS NULL OR mobile = $1) \
                     AND ($2 IS NULL OR user_id = $2) ORDER BY id DESC LIMIT $3"
                ))
                .bind(&q.mobile)
                .bind(&q.user_id)
                .bind(i64::from(q.limit))
                .fetch_all(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::audit_from).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn list_settings(&self) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query("SELECT name, value FROM settings ORDER BY name")
                    .fetch_all(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("value")?))).collect::<Result<_, sqlx::Error>>().map_err(db_err)
            }

            async fn list_members(&self) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query("SELECT client_id, user_id FROM app_members ORDER BY client_id, user_id")
                    .fetch_all(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((r.try_get("client_id")?, r.try_get("user_id")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_err)
            }

            async fn list_password_history(&self) -> StoreResult<Vec<HistoryEntry>> {
                let rows = sqlx::query("SELECT user_id, password_hash, replaced_at FROM password_history ORDER BY id")
                    .fetch_all(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(HistoryEntry {
                            user_id: r.try_get("user_id")?,
                            password_hash: r.try_get("password_hash")?,
                            replaced_at: r.try_get("replaced_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_err)
            }

            async fn insert_password_history(&self, entry: &HistoryEntry) -> StoreResult<()> {
                self.affected(sqlx::query("INSERT INTO password_history (user_id, password_hash, replaced_at) VALUES ($1, $2, $3)")
                    .bind(&entry.user_id)
                    .bind(&entry.password_hash)
                    .bind(entry.replaced_at)).await?;
                Ok(())
            }

            async fn list_sessions(&self, now: UnixTime) -> StoreResult<Vec<StoredSession>> {
                let rows = sqlx::query(
                    "SELECT token_digest, user_id, client_id, created_at, expires_at FROM sessions \
                     WHERE expires_at > $1 ORDER BY created_at, token_digest",
                )
                .bind(now)
                .fetch_all(&mut *self.conns.get().await?)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(StoredSession {
                            digest: r.try_get("token_digest")?,
                            session: Session {
                                user_id: r.try_get("user_id")?,
                                client_id: r.try_get("client_id")?,
                                expires_at: r.try_get("expires_at")?,
                            },
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_err)
            }

            async fn audit_page(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
                let rows = sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.conns.get().await?)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::audit_from).collect::<Result<_, _>>().map_err(db_err)
            }

            async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64> {
                let mut total = 0;
                for sql in [
                    "DELETE FROM sessions WHERE expires_at <= $1",
                    "DELETE FROM state_grants WHERE expires_at <= $1",
                    "DELETE FROM login_failures WHERE locked_until IS NOT NULL AND locked_until <= $1",
                ] {
                    total += self.affected(sqlx::query(sql).bind(now)).await?;
                }
                Ok(total)
            }
        }
    };
}

/// The user columns as `u.<column>`, for joins.
fn prefixed_user_columns() -> String {
    USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
}

/// A login's first read: the failure state of a key and the user with a
/// mobile, in one statement (built once: it runs on every login).
static LOGIN_LOOKUP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT f.failures, f.locked_until, {} FROM (SELECT 1 AS one) AS q \
         LEFT JOIN login_failures f ON f.lock_key = $1 LEFT JOIN users u ON u.mobile = $2",
        prefixed_user_columns()
    )
});

/// A live session with its user (built once: it runs on every refresh).
static SESSION_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.client_id, s.expires_at, {} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_digest = $1 AND s.expires_at > $2",
        prefixed_user_columns()
    )
});

fn failure_from(failures: i64, locked_until: Option<i64>) -> Result<FailureState, sqlx::Error> {
    let failures = u32::try_from(failures).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(FailureState { failures, locked_until })
}

/// A write and the audit event of its call as one commit, on each backend.
/// Parameters: the write's own first (as in `RECORD_FAILURE` and
/// `INSERT_SESSION`; a failure count adds `$5`, the outcome when the count
/// locks), then the event's fields from `$6` on, in `AUDIT_FIELDS` order.
struct Grouped {
    failure: String,
    session: String,
}

/// `$6` … `$16`, the event's fields; `outcome` replaces `$8` when given.
fn event_values(outcome: Option<&str>) -> String {
    (6..=16)
        .map(|n| match outcome {
            Some(expr) if n == 8 => expr.to_owned(),
            _ => format!("${n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of a failure: the lock's when this count reached the limit.
const FAILURE_OUTCOME: &str = "CASE WHEN f.failures >= $3 THEN $5 ELSE $8 END";

/// SQLite: one group of statements in an explicit transaction, sent to the
/// connection in one call (see `fetch_grouped`).
static SQLITE_GROUPED: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: format!(
        "BEGIN IMMEDIATE; {RECORD_FAILURE}; INSERT INTO audit_events ({AUDIT_FIELDS}) SELECT {} \
         FROM login_failures f WHERE f.lock_key = $1 RETURNING id; COMMIT",
        event_values(Some(FAILURE_OUTCOME))
    ),
    session: format!(
        "BEGIN IMMEDIATE; {INSERT_SESSION}; INSERT INTO audit_events ({AUDIT_FIELDS}) VALUES ({}) RETURNING id; COMMIT",
        event_values(None)
    ),
});

/// PostgreSQL: one statement with data-modifying `WITH` parts, which is one
/// transaction of its own.
static PG_GROUPED: LazyLock<Grouped> = LazyLock::new(|| Grouped {
    failure: format!(
        "WITH f AS ({RECORD_FAILURE}), \
         a AS (INSERT INTO audit_events ({AUDIT_FIELDS}) SELECT {} FROM f RETURNING id) \
         SELECT f.failures, f.locked_until, a.id FROM f CROSS JOIN a",
        event_values(Some(FAILURE_OUTCOME))
    ),
    session: format!(
        "WITH s AS ({INSERT_SESSION}) INSERT INTO audit_events ({AUDIT_FIELDS}) VALUES ({}) RETURNING id",
        event_values(None)
    ),
});

impl SqlStore<Sqlite> {
    /// Runs a `BEGIN …; COMMIT` group on one connection, in a task of its
    /// own so that it runs to its end even when the caller stops waiting: a
    /// group cut short would leave its connection inside a transaction. A
    /// group that fails is rolled back.
    async fn fetch_grouped(
        &self,
        query: Query<'static, Sqlite, SqliteArguments<'static>>,
    ) -> StoreResult<Vec<SqliteRow>> {
        let mut conn = self.conns.get().await?;
        let group = tokio::spawn(async move {
            let rows = query.fetch_all(&mut *conn).await;
            if rows.is_err() {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            rows.map_err(db_err)
        });
        group.await.map_err(|e| StoreError::Backend(format!("write group: {e}")))?
    }
}

impl SqlStore<Postgres> {
    /// Runs a grouped statement (one transaction by itself).
    async fn fetch_grouped(&self, query: Query<'static, Postgres, PgArguments>) -> StoreResult<Vec<PgRow>> {
        query.fetch_all(&mut *self.conns.get().await?).await.map_err(db_err)
    }
}

sql_store!(Sqlite, SQLITE_GROUPED);
sql_store!(Postgres, PG_GROUPED);
