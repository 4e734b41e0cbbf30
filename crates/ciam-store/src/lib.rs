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
mod statements;

use std::path::{Path, PathBuf};
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
    /// Whether a SQLite file that is not there is made (the server) or
    /// refused (the operator's commands, which must not leave an empty
    /// database behind a typo).
    pub create: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { max_connections: None, timeout: Duration::from_secs(3), create: true }
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

/// The file a `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    match Backend::of(url)? {
        Backend::Sqlite => SqliteConnectOptions::from_str(url).ok().map(|o| o.get_filename().to_path_buf()),
        Backend::Postgres => None,
    }
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

/// Writes a consistent copy of the SQLite database at `url` into `to`, a
/// file that must not exist, while servers keep using the database
/// (`VACUUM INTO` reads one snapshot; writers go on meanwhile). The copy is
/// readable by its owner only, like the database. Returns its size in
/// bytes. On PostgreSQL the refusal names `pg_dump`, the tool for it.
pub async fn backup(url: &str, to: &Path, options: &DbOptions) -> Result<u64, StoreError> {
    match Backend::of(url) {
        Some(Backend::Sqlite) => {}
        Some(Backend::Postgres) => {
            return Err(StoreError::Backend(
                "ciam backup copies a SQLite database; a PostgreSQL database is backed up with pg_dump, which \
                 takes a consistent copy while servers run (e.g. pg_dump --format=custom --file=ciam.dump \"$CIAM_DATABASE_URL\")"
                    .into(),
            ));
        }
        None => return Err(StoreError::Backend(format!("unsupported database URL {url:?}"))),
    }
    let connect = SqliteConnectOptions::from_str(url).map_err(backend)?;
    prepare_sqlite_file(connect.get_filename(), false)?;
    let shown = std::path::absolute(to).unwrap_or_else(|_| to.to_path_buf());
    let target = shown.to_str().ok_or_else(|| StoreError::Backend(format!("{} is not UTF-8", shown.display())))?;
    owner_only_file(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            StoreError::Backend(format!("{} already exists; name a new file", shown.display()))
        }
        _ => StoreError::Backend(format!("{}: {e}", shown.display())),
    })?;
    let copied = async {
        let mut conn = SqliteConnection::connect_with(&connect.busy_timeout(options.timeout)).await.map_err(backend)?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&mut conn).await.map_err(backend)?;
        conn.close().await.map_err(backend)?;
        std::fs::metadata(to).map(|m| m.len()).map_err(|e| StoreError::Backend(format!("{}: {e}", shown.display())))
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
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
    let connect = SqliteConnectOptions::from_str(url).map_err(backend)?;
    prepare_sqlite_file(connect.get_filename(), options.create)?;
    let connect = connect
        .create_if_missing(false)
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
    // Password checks take their places on a connection of their own whose
    // commits are not synced to the disk: the commit that answers the
    // attempt syncs them (see `SqlStore::checks_on`).
    let checks =
        SqliteConnection::connect_with(&connect.synchronous(SqliteSynchronous::Normal)).await.map_err(backend)?;
    let keep = |conns| Conns::Kept(Arc::new(Kept::new(conns, options.timeout)));
    Ok(SqlStore::new(keep(kept)).checks_on(keep(vec![checks])))
}

/// The database file, readable by its owner only (it holds the signing
/// keys and the password hashes): made `0600` when it is not there and
/// `create` allows it, and set `0600` with its `-wal` and `-shm` when it is,
/// whatever the umask (docs/api.md §8). A folder or file that is not there is
/// named in the refusal.
fn prepare_sqlite_file(path: &Path, create: bool) -> Result<(), StoreError> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if !path.exists() {
        if !create {
            return Err(StoreError::Backend(format!(
                "there is no database at {}; run `ciam init` (or start `ciam serve`) there first, or set CIAM_DATABASE_URL",
                shown.display()
            )));
        }
        let folder = shown.parent().map(Path::to_path_buf).unwrap_or_default();
        if !folder.is_dir() {
            return Err(StoreError::Backend(format!("the SQLite folder {} does not exist", folder.display())));
        }
        owner_only_file(path).map_err(|e| StoreError::Backend(format!("{}: {e}", shown.display())))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            owner_only(&file).map_err(|e| StoreError::Backend(format!("{}: {e}", file.display())))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
}

#[cfg(not(unix))]
fn owner_only_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map(drop)
}

#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> std::io::Result<()> {
    Ok(())
}

async fn open_postgres(url: &str, options: &DbOptions) -> Result<SqlStore<sqlx::Postgres>, StoreError> {
    let statement_timeout = options.timeout.as_millis().to_string();
    let connect = PgConnectOptions::from_str(url)
        .map_err(backend)?
        .application_name("ciam")
        .options([("statement_timeout", statement_timeout.as_str()), ("lock_timeout", statement_timeout.as_str())]);
    // One connection first, so an unreachable server is refused with its
    // reason ("connection refused", a wrong password …) rather than the
    // pool's "timed out".
    let probe = tokio::time::timeout(options.timeout, sqlx::PgConnection::connect_with(&connect))
        .await
        .map_err(|_| StoreError::Backend(format!("PostgreSQL did not answer within {:?}", options.timeout)))?;
    probe.map_err(backend)?.close().await.map_err(backend)?;
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

    /// A database records the checksum of every migration it applied, and
    /// refuses to start when a file differs by a byte (a comment too): a
    /// released migration is never edited; a change is a new migration.
    #[test]
    fn released_migrations_never_change() {
        let released: [(&[u8], &str, &str); 10] = [
            (
                include_bytes!("../migrations/postgres/0001_init.sql").as_slice(),
                "migrations/postgres/0001_init.sql",
                "c32790149a4236efe14d0dd70f748e6fcb80ae1aae0c840723037f8a5564a097",
            ),
            (
                include_bytes!("../migrations/postgres/0002_throttle.sql").as_slice(),
                "migrations/postgres/0002_throttle.sql",
                "4a0a07c790b2a9c56ea6d98730bb91e930d8807846d9ab922e0cae2739498b5e",
            ),
            (
                include_bytes!("../migrations/postgres/0003_leases.sql").as_slice(),
                "migrations/postgres/0003_leases.sql",
                "ecdd55f59569fc292240c3a384bc83331eb136abb9c166fbf0298788945fec66",
            ),
            (
                include_bytes!("../migrations/postgres/0004_request_id.sql").as_slice(),
                "migrations/postgres/0004_request_id.sql",
                "d5b63e6817f26b88b2e8a738736f8ce82aecbce14176393e9f968a323b81e6e9",
            ),
            (
                include_bytes!("../migrations/postgres/0005_console.sql").as_slice(),
                "migrations/postgres/0005_console.sql",
                "73c8359b91a7458b95b89121ecbd412e30bc64cb85a1eb05b83014c654865565",
            ),
            (
                include_bytes!("../migrations/sqlite/0001_init.sql").as_slice(),
                "migrations/sqlite/0001_init.sql",
                "d9db438416a3e224380de6ca9d1a5588bcf33f1358368a76cf7ea6b44329ba25",
            ),
            (
                include_bytes!("../migrations/sqlite/0002_throttle.sql").as_slice(),
                "migrations/sqlite/0002_throttle.sql",
                "4a0a07c790b2a9c56ea6d98730bb91e930d8807846d9ab922e0cae2739498b5e",
            ),
            (
                include_bytes!("../migrations/sqlite/0003_leases.sql").as_slice(),
                "migrations/sqlite/0003_leases.sql",
                "ecdd55f59569fc292240c3a384bc83331eb136abb9c166fbf0298788945fec66",
            ),
            (
                include_bytes!("../migrations/sqlite/0004_request_id.sql").as_slice(),
                "migrations/sqlite/0004_request_id.sql",
                "d5b63e6817f26b88b2e8a738736f8ce82aecbce14176393e9f968a323b81e6e9",
            ),
            (
                include_bytes!("../migrations/sqlite/0005_console.sql").as_slice(),
                "migrations/sqlite/0005_console.sql",
                "73c8359b91a7458b95b89121ecbd412e30bc64cb85a1eb05b83014c654865565",
            ),
        ];
        for (text, file, pinned) in released {
            assert_eq!(ciam_core::token::sha256_hex(text), pinned, "{file} was edited after its release");
        }
    }

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
