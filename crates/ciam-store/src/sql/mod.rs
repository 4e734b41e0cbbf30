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
    /// Commits audit events in batches.
    audit: AuditWriter,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { conns: self.conns.clone(), audit: self.audit.clone() }
    }
}

impl<DB: Exec> SqlStore<DB> {
    /// Wraps migrated connections and starts the audit writer.
    pub(crate) fn new(conns: Conns<DB>) -> Self {
        let audit = AuditWriter::start(conns.clone());
        Self { conns, audit }
    }

    /// Closes the store's connections.
    pub async fn close(&self) {
        self.conns.close().await;
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
