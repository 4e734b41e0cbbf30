//! Where a store's statements run.
//!
//! PostgreSQL statements take a connection from the sqlx pool, which
//! reconnects after an outage. SQLite statements run on a fixed set of
//! connections the store keeps for itself: each SQLite connection is a thread
//! that executes what it is sent, and the pool would add two round trips to
//! that thread per statement (a liveness ping on checkout and another on
//! return, plus a task to return it), which is most of what a login spends
//! outside its hash. A file on the local disk does not go away the way a
//! server does, so those pings buy nothing there.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ciam_core::store::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connections a store runs its statements on.
#[derive(Debug)]
pub(crate) enum Conns<DB: Database> {
    /// Checked out of the pool for each statement or transaction.
    Pool(Pool<DB>),
    /// A fixed set, handed out one call at a time.
    Kept(Arc<Kept<DB>>),
}

impl<DB: Database> Clone for Conns<DB> {
    fn clone(&self) -> Self {
        match self {
            Conns::Pool(pool) => Conns::Pool(pool.clone()),
            Conns::Kept(kept) => Conns::Kept(Arc::clone(kept)),
        }
    }
}

impl<DB: Database> Conns<DB> {
    /// A connection for one call, waiting at most the configured timeout.
    pub(crate) async fn get(&self) -> StoreResult<Conn<DB>> {
        match self {
            Conns::Pool(pool) => Ok(Conn::Pooled(pool.acquire().await.map_err(crate::exec::db_err)?)),
            Conns::Kept(kept) => kept.get().await,
        }
    }

    /// Closes every connection; later calls fail.
    pub(crate) async fn close(&self) {
        match self {
            Conns::Pool(pool) => pool.close().await,
            Conns::Kept(kept) => kept.close().await,
        }
    }
}

/// A fixed set of open connections.
pub(crate) struct Kept<DB: Database> {
    idle: Mutex<Vec<DB::Connection>>,
    /// One permit per idle connection.
    free: Arc<Semaphore>,
    size: u32,
    timeout: Duration,
}

impl<DB: Database> std::fmt::Debug for Kept<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").field("size", &self.size).field("free", &self.free.available_permits()).finish()
    }
}

impl<DB: Database> Kept<DB> {
    /// Keeps `connections`; a call waits at most `timeout` for one of them.
    pub(crate) fn new(connections: Vec<DB::Connection>, timeout: Duration) -> Self {
        let free = Arc::new(Semaphore::new(connections.len()));
        let size = u32::try_from(connections.len()).unwrap_or(u32::MAX);
        Self { idle: Mutex::new(connections), free, size, timeout }
    }

    async fn get(self: &Arc<Self>) -> StoreResult<Conn<DB>> {
        let permit = tokio::time::timeout(self.timeout, Arc::clone(&self.free).acquire_owned())
            .await
            .map_err(|_| StoreError::Backend("timed out waiting for a database connection".into()))?
            .map_err(|_| StoreError::Backend("the store is closed".into()))?;
        let conn = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // A permit is only ever free while its connection is idle.
        let conn = conn.ok_or_else(|| StoreError::Backend("no idle database connection".into()))?;
        Ok(Conn::Kept { conn: Some(conn), home: Arc::clone(self), _permit: permit })
    }

    /// Waits (up to the timeout) for the connections in use, then closes
    /// every idle one; later calls fail.
    async fn close(&self) {
        let _all_idle = tokio::time::timeout(self.timeout, self.free.acquire_many(self.size)).await;
        self.free.close();
        let conns = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for conn in conns {
            let _ = conn.close().await;
        }
    }
}

/// One connection, given back when dropped.
pub(crate) enum Conn<DB: Database> {
    Pooled(PoolConnection<DB>),
    Kept {
        conn: Option<DB::Connection>,
        home: Arc<Kept<DB>>,
        // Released after `Drop::drop` has put the connection back.
        _permit: OwnedSemaphorePermit,
    },
}

// The connection leaves its `Option` only in `Drop::drop`.
#[expect(clippy::expect_used, reason = "the Option is emptied only by Drop")]
impl<DB: Database> Deref for Conn<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Kept { conn, .. } => conn.as_ref().expect("a kept connection is present until dropped"),
        }
    }
}

#[expect(clippy::expect_used, reason = "the Option is emptied only by Drop")]
impl<DB: Database> DerefMut for Conn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Kept { conn, .. } => conn.as_mut().expect("a kept connection is present until dropped"),
        }
    }
}

impl<DB: Database> Drop for Conn<DB> {
    fn drop(&mut self) {
        if let Conn::Kept { conn, home, .. } = self
            && let Some(conn) = conn.take()
        {
            home.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnection;

    async fn kept(size: usize) -> Conns<sqlx::Sqlite> {
        let mut conns = Vec::new();
        for _ in 0..size {
            conns.push(SqliteConnection::connect("sqlite::memory:").await.expect("connect"));
        }
        Conns::Kept(Arc::new(Kept::new(conns, Duration::from_millis(200))))
    }

    #[tokio::test]
    async fn a_kept_connection_is_lent_to_one_call_at_a_time() {
        let conns = kept(1).await;
        let mut first = conns.get().await.expect("idle connection");
        sqlx::query("CREATE TEMP TABLE t (x)").execute(&mut *first).await.expect("create");

        // All lent: the next call waits out the timeout, then fails.
        let started = std::time::Instant::now();
        assert!(matches!(conns.get().await, Err(StoreError::Backend(_))));
        assert!(started.elapsed() >= Duration::from_millis(200));

        // Given back on drop: the same connection (its temp table) serves the next call.
        drop(first);
        let mut again = conns.get().await.expect("returned connection");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *again).await.expect("same connection");
        drop(again);

        conns.close().await;
        assert!(matches!(conns.get().await, Err(StoreError::Backend(_))), "closed");
    }
}
