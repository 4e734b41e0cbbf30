//! ciam's storage: one SQL implementation of [`ciam_core::Store`] for
//! embedded SQLite (the default) and PostgreSQL (several instances on one
//! database). Opening a store applies its migrations; on PostgreSQL the
//! migrator holds an advisory lock, so instances starting together do not
//! race on them.

mod audit;
mod conns;
mod exec;
mod grouped;
mod rows;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ciam_core::store::{Store, StoreError};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

use crate::conns::{Conns, Kept};
use crate::sql::SqlStore;

/// Pool sizing and time bounds.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Connections in the pool; `None` picks the backend's default: 2 for
    /// SQLite (it runs one write at a time, and every extra connection's page
    /// cache is invalidated by each write), 10 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// The longest a call waits for a connection (and, on PostgreSQL, for a
    /// statement) before it fails with a backend error.
    pub timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { max_connections: None, timeout: Duration::from_secs(3) }
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres://` and `postgresql://` URLs.
    Postgres,
}

impl Backend {
    /// The backend a URL names, if any.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// An opened store of either kind.
#[derive(Debug, Clone)]
pub struct AnyStore(Opened);

#[derive(Debug, Clone)]
enum Opened {
    Sqlite(SqlStore<sqlx::Sqlite>),
    Postgres(SqlStore<sqlx::Postgres>),
}

impl AnyStore {
    /// The store as the domain sees it.
    pub fn shared(&self) -> Arc<dyn Store> {
        match &self.0 {
            Opened::Sqlite(s) => Arc::new(s.clone()),
            Opened::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// Closes the store's connections.
    pub async fn close(&self) {
        match &self.0 {
            Opened::Sqlite(s) => s.close().await,
            Opened::Postgres(s) => s.close().await,
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Opens the database at `url` and applies pending migrations.
pub async fn open(url: &str, options: &DbOptions) -> Result<AnyStore, StoreError> {
    match Backend::of(url) {
        Some(Backend::Sqlite) => Ok(AnyStore(Opened::Sqlite(open_sqlite(url, options).await?))),
        Some(Backend::Postgres) => Ok(AnyStore(Opened::Postgres(open_postgres(url, options).await?))),
        None => Err(StoreError::Backend(format!(
            "unsupported database URL scheme in {:?}; use sqlite:… or postgres://…",
            url.split(':').next().unwrap_or_default()
        ))),
    }
}

async fn open_sqlite(url: &str, options: &DbOptions) -> Result<SqlStore<sqlx::Sqlite>, StoreError> {
    // Each connection to an in-memory database has a database of its own, so
    // the store's connections would not see the migrated tables.
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Backend(
            "an in-memory SQLite database is private to one connection; give a file path (sqlite://path/ciam.db)"
                .into(),
        ));
    }
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(backend)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed write survives power loss, not only a crash.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(options.timeout);
    // The store keeps its connections for its whole life (see `conns`); the
    // first one applies the migrations.
    let mut first = SqliteConnection::connect_with(&connect).await.map_err(backend)?;
    sqlx::migrate!("./migrations/sqlite").run(&mut first).await.map_err(backend)?;
    let mut kept = vec![first];
    for _ in 1..options.max_connections.unwrap_or(2) {
        kept.push(SqliteConnection::connect_with(&connect).await.map_err(backend)?);
    }
    Ok(SqlStore::new(Conns::Kept(Arc::new(Kept::new(kept, options.timeout)))))
}

async fn open_postgres(url: &str, options: &DbOptions) -> Result<SqlStore<sqlx::Postgres>, StoreError> {
    let statement_timeout = options.timeout.as_millis().to_string();
    let connect = PgConnectOptions::from_str(url)
        .map_err(backend)?
        .application_name("ciam")
        .options([("statement_timeout", statement_timeout.as_str()), ("lock_timeout", statement_timeout.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(10))
        // No round trip to the server before each statement: the pool still
        // pings a connection when it is given back and drops it if broken,
        // which is what heals the pool after an outage.
        .test_before_acquire(false)
        .acquire_timeout(options.timeout)
        .connect_with(connect)
        .await
        .map_err(backend)?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(backend)?;
    Ok(SqlStore::new(Conns::Pool(pool)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused_with_a_reason() {
        for url in ["sqlite::memory:", "sqlite://ciam.db?mode=memory"] {
            match open(url, &DbOptions::default()).await {
                Err(StoreError::Backend(why)) => assert!(why.contains("file path"), "{url}: {why}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
