//! What the store's test files share: a fresh store on each backend, and
//! the macro that runs a test body on both.

use std::future::Future;
use std::sync::Arc;

use ciam_core::store::Store;
use ciam_store::DbOptions;
use ciam_testdb::{Backend, TestDatabase};

/// Runs `test` on a fresh, migrated store of `backend`.
pub async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDatabase::create(backend).await;
    let store = ciam_store::open(&db.url, &DbOptions::default()).await.expect("open the store");
    test(store.shared()).await;
    store.close().await;
}

/// One `#[tokio::test]` per backend for each test body named, each body an
/// `async fn(Arc<dyn Store>)` of the file (which imports [`with_store`]).
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::with_store(ciam_testdb::Backend::Sqlite, super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::with_store(ciam_testdb::Backend::Postgres, super::$name).await })*
        }
    };
}
pub(crate) use on_both_stores;
