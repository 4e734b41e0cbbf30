//! Running statements on either database, written once.
//!
//! A statement is a [`Stmt`]: SQL with `$1`, `$2`, … placeholders (both
//! SQLite and PostgreSQL read them) and its arguments as [`Arg`] values. The
//! [`Exec`] trait runs statements on any sqlx database that can take those
//! arguments, and [`Dialect`] adds what differs between the two: decoding
//! rows into the `rows` structs, and the text of the grouped statements.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ciam_core::model::{AddressKey, ClientId, LockKey, TokenDigest, UserId};
use ciam_core::store::{StoreError, StoreResult};
use sqlx::database::HasStatementCache;
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Database, Encode, Executor, FromRow, IntoArguments, Postgres, Sqlite, Type};
use tokio::sync::oneshot;

use crate::conns::Conns;
use crate::grouped::Grouped;

/// Counts one call to the database: a read (one statement that only
/// reads), or a write committed by `statements` statements.
fn count(read: bool, statements: usize) {
    use ciam_core::telemetry::{DB_READS, DB_STATEMENTS, DB_WRITES};
    metrics::counter!(if read { DB_READS } else { DB_WRITES }).increment(1);
    metrics::counter!(DB_STATEMENTS).increment(statements as u64);
}

/// Whether a statement only reads.
fn reads_only(sql: &str) -> bool {
    sql.trim_start().get(..6).is_some_and(|head| head.eq_ignore_ascii_case("select"))
}

/// Maps a driver error: uniqueness → [`StoreError::Conflict`], the rest is
/// a backend failure (unreachable database, timeout, …).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// One argument of a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::OptText(v.clone())
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::OptText(v.map(str::to_owned))
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Bytes(v.to_vec())
    }
}

/// Identifiers bind as their text.
macro_rules! text_arg {
    ($($t:ty),*) => {$(
        impl From<&$t> for Arg {
            fn from(v: &$t) -> Self {
                Arg::Text(v.as_str().to_owned())
            }
        }
    )*};
}

text_arg!(UserId, ClientId, TokenDigest, LockKey, AddressKey, ciam_core::mobile::Mobile);

/// A statement with its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
    /// Whether the database keeps it prepared for the next call.
    persistent: bool,
}

impl Stmt {
    /// A statement the connection keeps prepared (the common case).
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self { sql: sql.into(), args: Vec::new(), persistent: true }
    }

    /// A statement run once, not kept prepared (e.g. one whose text depends
    /// on how many rows it inserts).
    pub fn once(sql: String) -> Self {
        Self { persistent: false, ..Self::new(sql) }
    }

    /// Binds the next `$N`.
    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Binds several, in order.
    pub fn bind_all(mut self, args: impl IntoIterator<Item = Arg>) -> Self {
        self.args.extend(args);
        self
    }
}

/// Runs statements. Implemented once, for every sqlx database that takes
/// the [`Arg`] types.
#[async_trait]
pub(crate) trait Exec: Dialect {
    /// Runs a statement; returns how many rows it touched.
    async fn execute(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<u64>;
    /// Runs a statement (or, on SQLite, a `;`-separated group) and returns
    /// every row it gave.
    async fn rows(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<Vec<Self::Row>>;
    /// Runs statements in one transaction; returns the rows each touched.
    async fn transaction(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Vec<u64>>;
    /// Runs statements in one transaction; returns the rows they gave.
    async fn transaction_rows(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Vec<Self::Row>>;
    /// Runs statements in one transaction that commits only when each gave
    /// a row: at the first that gives none, the transaction is rolled back
    /// and its position answered. Returns the rows of each otherwise.
    async fn transaction_all(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Result<Vec<Vec<Self::Row>>, usize>>;
    /// Runs a statement group that holds its own transaction (see
    /// [`Grouped`]) in a task of its own, so it runs to its end even when
    /// the caller stops waiting: a group cut short would leave its
    /// connection inside a transaction. A group that fails is rolled back.
    async fn grouped(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<Vec<Self::Row>>;
    /// [`Exec::grouped`] for a group that takes what its caller gives back
    /// later: when the caller has stopped waiting by the time the group
    /// committed, the statements `undo` makes from its rows run at once,
    /// so nothing it took stays held for nobody. [`Exec::grouped`] is this
    /// with nothing to undo.
    async fn grouped_or_undone(conns: &Conns<Self>, stmt: Stmt, undo: Undo<Self>) -> StoreResult<Vec<Self::Row>>;
}

/// What undoes a committed group whose caller went away (see
/// [`Exec::grouped_or_undone`]): statements made from its rows.
pub(crate) type Undo<DB> = Box<dyn FnOnce(&[<DB as Database>::Row]) -> Vec<Stmt> + Send>;

/// Builds sqlx queries from a statement's SQL and [`Arg`]s. Implemented
/// once, for every sqlx database that takes the [`Arg`] types.
pub(crate) trait Binds: Database {
    /// The query for `sql` with `args` bound in order.
    fn query(sql: &str, args: Vec<Arg>, persistent: bool) -> Query<'_, Self, Self::Arguments<'_>>;
}

impl<DB> Binds for DB
where
    DB: Database + HasStatementCache,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    fn query(sql: &str, args: Vec<Arg>, persistent: bool) -> Query<'_, DB, DB::Arguments<'_>> {
        let query = args.into_iter().fold(sqlx::query(sql), |q, arg| match arg {
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
        });
        query.persistent(persistent)
    }
}

#[async_trait]
impl<DB> Exec for DB
where
    DB: Dialect + Binds,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    async fn execute(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<u64> {
        count(reads_only(&stmt.sql), 1);
        let mut conn = conns.get().await?;
        let done = DB::query(&stmt.sql, stmt.args, stmt.persistent).execute(&mut *conn).await.map_err(db_err)?;
        Ok(DB::rows_affected(&done))
    }

    async fn rows(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<Vec<Self::Row>> {
        count(reads_only(&stmt.sql), 1);
        let mut conn = conns.get().await?;
        DB::query(&stmt.sql, stmt.args, stmt.persistent).fetch_all(&mut *conn).await.map_err(db_err)
    }

    async fn transaction(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Vec<u64>> {
        count(false, stmts.len());
        let mut conn = conns.get().await?;
        let mut tx = conn.begin().await.map_err(db_err)?;
        let mut touched = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            let done = DB::query(&stmt.sql, stmt.args, stmt.persistent).execute(&mut *tx).await.map_err(db_err)?;
            touched.push(DB::rows_affected(&done));
        }
        tx.commit().await.map_err(db_err)?;
        Ok(touched)
    }

    async fn transaction_rows(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Vec<Self::Row>> {
        count(false, stmts.len());
        let mut conn = conns.get().await?;
        let mut tx = conn.begin().await.map_err(db_err)?;
        let mut rows = Vec::new();
        for stmt in stmts {
            rows.extend(DB::query(&stmt.sql, stmt.args, stmt.persistent).fetch_all(&mut *tx).await.map_err(db_err)?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(rows)
    }

    async fn transaction_all(conns: &Conns<Self>, stmts: Vec<Stmt>) -> StoreResult<Result<Vec<Vec<Self::Row>>, usize>> {
        count(false, stmts.len());
        let mut conn = conns.get().await?;
        let mut tx = conn.begin().await.map_err(db_err)?;
        let mut each = Vec::with_capacity(stmts.len());
        for (at, stmt) in stmts.into_iter().enumerate() {
            let rows = DB::query(&stmt.sql, stmt.args, stmt.persistent).fetch_all(&mut *tx).await.map_err(db_err)?;
            if rows.is_empty() {
                tx.rollback().await.map_err(db_err)?;
                return Ok(Err(at));
            }
            each.push(rows);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Ok(each))
    }

    async fn grouped(conns: &Conns<Self>, stmt: Stmt) -> StoreResult<Vec<Self::Row>> {
        DB::grouped_or_undone(conns, stmt, Box::new(|_| Vec::new())).await
    }

    async fn grouped_or_undone(conns: &Conns<Self>, stmt: Stmt, undo: Undo<Self>) -> StoreResult<Vec<Self::Row>> {
        count(false, 1);
        let mut conn = conns.get().await?;
        let undo = Arc::new(Mutex::new(Some(undo)));
        let (answer, answered) = oneshot::channel();
        let (left, lent) = (Arc::clone(&undo), conns.clone());
        tokio::spawn(async move {
            let rows = DB::query(&stmt.sql, stmt.args, stmt.persistent).fetch_all(&mut *conn).await;
            if rows.is_err() {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            drop(conn);
            // Sent under the lock: the caller's guard either finds the rows
            // or leaves the undoing to this task.
            let refused = {
                let mut slot = left.lock().unwrap_or_else(PoisonError::into_inner);
                match answer.send(rows.map_err(db_err)) {
                    Err(Ok(rows)) => slot.take().map(|undo| undo(&rows)),
                    _ => None,
                }
            };
            give_back::<DB>(&lent, refused.unwrap_or_default()).await;
        });
        let mut waiting = Waiting { answered, undo, conns: conns.clone() };
        let answer = (&mut waiting.answered).await;
        waiting.undo.lock().unwrap_or_else(PoisonError::into_inner).take();
        answer.map_err(|_| StoreError::Backend("write group: its task ended without an answer".into()))?
    }
}

/// Runs the statements of an undo, each on its own; a failure is logged
/// (what it gives back lapses by itself).
async fn give_back<DB: Exec>(conns: &Conns<DB>, stmts: Vec<Stmt>) {
    for stmt in stmts {
        if let Err(e) = DB::execute(conns, stmt).await {
            tracing::warn!(error = %e, "a write group whose caller went away was not undone");
        }
    }
}

/// The caller's side of [`Exec::grouped_or_undone`]: dropped before it took
/// the group's answer, it undoes the group if the answer had arrived, and
/// otherwise leaves that to the group's task, whose answer it refuses.
struct Waiting<DB: Exec> {
    answered: oneshot::Receiver<StoreResult<Vec<DB::Row>>>,
    undo: Arc<Mutex<Option<Undo<DB>>>>,
    conns: Conns<DB>,
}

impl<DB: Exec> Drop for Waiting<DB> {
    fn drop(&mut self) {
        let mut slot = self.undo.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(undo) = slot.take() else {
            return;
        };
        self.answered.close();
        match self.answered.try_recv() {
            Ok(Ok(rows)) => {
                let stmts = undo(&rows);
                if !stmts.is_empty() {
                    let conns = self.conns.clone();
                    tokio::spawn(async move { give_back::<DB>(&conns, stmts).await });
                }
            }
            // Not sent yet: the task finds its answer refused and undoes.
            _ => *slot = Some(undo),
        }
    }
}

/// A row struct both databases can decode.
pub(crate) trait Record: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Record for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// What differs between the two databases beyond their DDL.
pub(crate) trait Dialect: Database {
    /// Decodes a row into a row struct.
    fn decode<T: Record>(row: &Self::Row) -> Result<T, sqlx::Error>;
    /// How many rows a statement touched.
    fn rows_affected(done: &Self::QueryResult) -> u64;
    /// The grouped statements in this dialect.
    fn grouped_sql() -> &'static Grouped;
}

/// Implements [`Dialect`] for one sqlx database, naming its row and result
/// types and its grouped statements.
macro_rules! dialect {
    ($db:ty, $row:ty, $done:ty, $grouped:path) => {
        impl Dialect for $db {
            fn decode<T: Record>(row: &$row) -> Result<T, sqlx::Error> {
                T::from_row(row)
            }

            fn rows_affected(done: &$done) -> u64 {
                done.rows_affected()
            }

            fn grouped_sql() -> &'static Grouped {
                &$grouped
            }
        }
    };
}

dialect!(Sqlite, SqliteRow, sqlx::sqlite::SqliteQueryResult, crate::grouped::SQLITE);
dialect!(Postgres, PgRow, sqlx::postgres::PgQueryResult, crate::grouped::POSTGRES);
