//! Test support shared by the store's conformance suite, the domain tests
//! and the over-the-wire tests: a fresh, empty database for each test, on
//! SQLite (a new file) or PostgreSQL (a new database), removed when the test
//! is done.
//!
//! PostgreSQL is the server at `CIAM_TEST_POSTGRES_URL` when it is set;
//! otherwise the one on 127.0.0.1:5432 when it answers; otherwise a
//! throwaway cluster started from the installed server programs
//! ([`cluster`]). With none of these the PostgreSQL tests fail naming the
//! package to install; they never skip.

pub mod cluster;

use std::sync::OnceLock;

use sqlx::Connection;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a fresh temporary folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// The PostgreSQL server tests create their databases on (no database
/// name), found or started once per process.
///
/// # Panics
/// When there is no server and none can be started, with what to install.
pub fn postgres_server_url() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let found = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("CIAM_TEST_POSTGRES_URL") {
            return Ok(url);
        }
        if cluster::answers(5432) {
            return Ok("postgres://postgres@127.0.0.1:5432".into());
        }
        cluster::ensure(&cluster::shared_folder())
    });
    found.clone().unwrap_or_else(|why| panic!("{why}"))
}

async fn postgres_admin() -> Result<sqlx::PgConnection, String> {
    let url = format!("{}/postgres", postgres_server_url());
    sqlx::PgConnection::connect(&url).await.map_err(|e| {
        format!(
            "PostgreSQL must be reachable at {url} for the PostgreSQL half of the suite (CIAM_TEST_POSTGRES_URL): {e}"
        )
    })
}

/// A fresh, empty database; dropped (PostgreSQL) or deleted (SQLite) when
/// this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, for `CIAM_DATABASE_URL`.
    pub url: String,
    /// Which kind it is.
    pub backend: Backend,
    name: String,
}

impl TestDatabase {
    /// Creates one.
    ///
    /// # Panics
    /// When the database cannot be made: a test cannot run without it.
    pub async fn create(backend: Backend) -> Self {
        let name = format!("ciam_test_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    panic!("temporary folder {}: {e}", dir.display());
                }
                format!("sqlite://{}/ciam.db", dir.display())
            }
            Backend::Postgres => {
                let mut admin = postgres_admin().await.unwrap_or_else(|e| panic!("{e}"));
                if let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await {
                    panic!("create database {name}: {e}");
                }
                format!("{}/{name}", postgres_server_url())
            }
        };
        Self { url, backend, name }
    }

    /// Runs `sql` on the database as it is, for what the API cannot make
    /// (years of old audit events, say); returns the rows it touched.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        let done = match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(sql).execute(&mut conn).await.map(|d| d.rows_affected())
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(sql).execute(&mut conn).await.map(|d| d.rows_affected())
            }
        };
        done.map_err(|e| e.to_string())
    }

    /// The one number a query answers (a `COUNT(*)`, say).
    pub async fn count(&self, sql: &str) -> Result<i64, String> {
        let counted = match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.map_err(|e| e.to_string())?;
                sqlx::query_scalar(sql).fetch_one(&mut conn).await
            }
        };
        counted.map_err(|e| e.to_string())
    }

    /// The folder of a SQLite database (`None` on PostgreSQL).
    pub fn folder(&self) -> Option<std::path::PathBuf> {
        (self.backend == Backend::Sqlite).then(|| std::env::temp_dir().join(&self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(folder) = self.folder() {
            let _ = std::fs::remove_dir_all(folder);
            return;
        }
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on a thread of its
        // own does the cleanup, whatever runtime the test used.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = postgres_admin().await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&drop).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Declares each listed `async fn(Backend)` as a test on both backends, in
/// modules `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await })*
        }
    };
}
