//! The one SQL implementation of [`Store`], shared by SQLite and PostgreSQL.
//!
//! Both databases accept the same statements here: `$N` placeholders,
//! `INSERT … ON CONFLICT … DO UPDATE … RETURNING`, `DELETE … RETURNING`.
//! Only the DDL (`migrations/<backend>/`), the grouped writes
//! ([`crate::grouped`]) and connection set-up differ.

mod grants;
mod lockout;
mod sms;
mod store;

use async_trait::async_trait;
use ciam_core::UnixTime;
use ciam_core::mobile::Mobile;
use ciam_core::model::{
    Action, AddressKey, App, AuditEntry, AuditEvent, AuditQuery, ClientId, Counter, FailureAudit, FailureState, Flow,
    Guess, HistoryEntry, LockKey, Lookup, Reservation, Session, SigningAlg, SigningKeyRecord, StateGrant,
    StoredSession, ThrottleState, TokenDigest, User, UserId,
};
use ciam_core::policy::{LockoutPolicy, ThrottlePolicy};
use ciam_core::store::{ActivityCount, Purge, Store, StoreError, StoreResult};

use crate::audit::AuditWriter;
use crate::conns::Conns;
use crate::exec::{Arg, Exec, Record, Stmt, Undo, db_err};
use crate::grouped::{
    INSERT_SESSION, RELEASE_ATTEMPT, RELEASE_PLACE, RESERVE_ATTEMPT, SETTLE_COUNTER, event_values, session_values,
};
use crate::rows::{
    ActivityRow, AppRow, AuditRow, CheckRow, ConsoleSessionRow, FailureRow, GrantRow, GroupedRow, HashRow, HistoryRow,
    IdRow, KeyRow, LockedUserRow, LookupRow, MemberRow, SessionRow, SessionUserRow, SettingRow, ThrottleRow, UserRow,
    audit_args,
};
use crate::statements::{
    APP_COLUMNS, AUDIT_COLUMNS, GRANT_COLUMNS, INSERT_USERS_ROWS, KEY_COLUMNS, LOGIN_LOOKUP, SELECT_APP, SELECT_USER,
    SESSION_USER, USER_COLUMNS, app_args, client_args, insert_key, insert_key_then, insert_users, list_audit,
    placeholders, prefixed_user_columns, profile_args, purge, reserved_values, session_args, signup_args,
};

/// A [`Store`] on a SQL database.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: sqlx::Database> {
    /// Where the store's statements run.
    conns: Conns<DB>,
    /// Where a password check takes its places (see [`SqlStore::checks_on`]).
    checks: Conns<DB>,
    /// Commits audit events in batches.
    audit: AuditWriter,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { conns: self.conns.clone(), checks: self.checks.clone(), audit: self.audit.clone() }
    }
}

impl<DB: Exec> SqlStore<DB> {
    /// Wraps migrated connections and starts the audit writer.
    pub(crate) fn new(conns: Conns<DB>) -> Self {
        let audit = AuditWriter::start(conns.clone());
        Self { checks: conns.clone(), conns, audit }
    }

    /// Takes the places of password checks on `checks` (docs/api.md §7):
    /// connections whose commits need not reach the disk before they
    /// return. A check's places are then durable before its attempt is
    /// answered all the same: every answer to a checked attempt waits for a
    /// later commit that does reach the disk (the failure's count, the
    /// session, a refusal's event), and that commit makes the database's log durable up to
    /// itself, the places written before it included. A place lost to a
    /// power cut belonged to an attempt that was never answered.
    pub(crate) fn checks_on(self, checks: Conns<DB>) -> Self {
        Self { checks, ..self }
    }

    /// Closes the store's connections.
    pub async fn close(&self) {
        self.conns.close().await;
        self.checks.close().await;
    }

    async fn execute(&self, stmt: Stmt) -> StoreResult<u64> {
        DB::execute(&self.conns, stmt).await
    }

    async fn fetch_all<T: Record, U: Model<T>>(&self, stmt: Stmt) -> StoreResult<Vec<U>> {
        let rows = DB::rows(&self.conns, stmt).await?;
        rows.iter().map(|row| decode::<DB, T, U>(row)).collect()
    }

    async fn fetch_opt<T: Record, U: Model<T>>(&self, stmt: Stmt) -> StoreResult<Option<U>> {
        let rows = DB::rows(&self.conns, stmt).await?;
        rows.first().map(|row| decode::<DB, T, U>(row)).transpose()
    }
}

/// A domain type made from row struct `T`.
trait Model<T>: TryFrom<T, Error: std::error::Error + Send + Sync + 'static> {}

impl<T, U> Model<T> for U where U: TryFrom<T, Error: std::error::Error + Send + Sync + 'static> {}

/// A row as the domain's type.
fn decode<DB: Exec, T: Record, U: Model<T>>(row: &DB::Row) -> StoreResult<U> {
    let record = DB::decode::<T>(row).map_err(db_err)?;
    U::try_from(record).map_err(|e| db_err(sqlx::Error::Decode(Box::new(e))))
}

#[cfg(test)]
mod tests {
    use ciam_core::model::Counter;
    use ciam_core::store::Store;
    use ciam_testdb::{Backend, TestDatabase};
    use sqlx::Row;

    use super::*;
    use crate::DbOptions;

    fn counter() -> [Counter; 1] {
        [Counter { key: LockKey::new("synced"), limit: 5 }]
    }

    /// On SQLite a check's places are committed on a connection that does
    /// not sync its commits, and every other write on connections that do
    /// (see [`SqlStore::checks_on`]).
    #[tokio::test]
    async fn on_sqlite_only_a_checks_places_commit_unsynced() {
        let db = TestDatabase::create(Backend::Sqlite).await;
        let store = crate::open_sqlite(&db.url, &DbOptions::default()).await.expect("open");
        // 1 is NORMAL, 2 FULL; every connection the store keeps, at once.
        let mut levels = Vec::new();
        for conns in [&store.conns, &store.conns, &store.checks] {
            let mut conn = conns.get().await.expect("a connection");
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.expect("pragma");
            levels.push((level, conn));
        }
        assert_eq!(levels.iter().map(|(level, _)| *level).collect::<Vec<_>>(), [2, 2, 1]);
        drop(levels);
        let (guesses, _) = store.begin_check(&counter(), 100, 60, 130, "place-1", None).await.expect("check");
        assert!(guesses[0].reserved, "the place is taken and seen by the other connections");
        let held: i64 =
            sqlx::Sqlite::rows(&store.conns, Stmt::new("SELECT COUNT(*) FROM login_checks")).await.expect("count")[0]
                .try_get(0)
                .expect("count");
        assert_eq!(held, 1);
    }

    /// On PostgreSQL a check's transaction alone commits without waiting
    /// for the log: the setting does not outlive it on its connection.
    #[tokio::test]
    async fn on_postgres_a_checks_unsynced_commit_does_not_outlive_it() {
        let db = TestDatabase::create(Backend::Postgres).await;
        let options = DbOptions { max_connections: Some(1), ..DbOptions::default() };
        let store = crate::open_postgres(&db.url, &options).await.expect("open");
        let (guesses, _) = store.begin_check(&counter(), 100, 60, 130, "place-1", None).await.expect("check");
        assert!(guesses[0].reserved);
        // One connection: the one the check ran on.
        let rows = sqlx::Postgres::rows(&store.conns, Stmt::new("SHOW synchronous_commit")).await.expect("show");
        assert_eq!(rows[0].try_get::<String, _>(0).expect("setting"), "on");
    }
}
