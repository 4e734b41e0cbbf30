//! Over-the-wire tests: each starts the real server on a free port with a
//! fresh database and speaks HTTP to it. Every test runs twice, on SQLite
//! and on PostgreSQL (a new database each, dropped afterwards).

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

mod helpers;

mod admin;
mod cli;
mod cluster;
mod flows;
mod login;
mod openapi;
mod robustness;

/// Declares each listed `async fn(Backend)` as a test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })*
        }
    };
}
