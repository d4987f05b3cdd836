//! [`PgConns`]: the PostgreSQL connections statements and transactions run on ([`crate::Conn`]).
//!
//! sqlx's pool pings every connection it gets back (a `Sync`, then a wait for `ReadyForQuery`):
//! one more round trip per use, on both sides of the socket — 16 % of ferry's time in one-row
//! POSTs. These connections go back as they are. A `PgConnection` catches up by itself before
//! its next statement when a statement's future was dropped half way (sqlx counts the answers it
//! still owes), so what is left to repair is a transaction left open, rolled back before the
//! connection is used again, and a connection that failed on its socket, which is closed.

use crate::error::{SqlError, SqlErrorKind};
use crate::pool::PING_AFTER_IDLE;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `max` connections to one PostgreSQL database, opened as needed.
#[derive(Clone)]
pub struct PgConns {
    shared: Arc<Shared>,
}

struct Shared {
    connect: PgConnectOptions,
    acquire_timeout: Duration,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for PgConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConns").field("available", &self.shared.permits.available_permits()).finish()
    }
}

/// One connection of [`PgConns`], back to them when dropped (rolled back first if a
/// transaction is open; closed if its socket failed).
pub(crate) struct PgLease {
    conn: Option<PgConnection>,
    in_transaction: bool,
    /// Set when a statement failed as unavailable (the socket, a shutdown, a lock timeout…):
    /// the connection is closed, not reused.
    broken: bool,
    shared: Arc<Shared>,
    /// Held until the connection is back (or closed).
    permit: Option<OwnedSemaphorePermit>,
}

impl PgConns {
    pub(crate) fn new(connect: PgConnectOptions, max: u32, acquire_timeout: Duration) -> PgConns {
        let permits = Arc::new(Semaphore::new(max.max(1) as usize));
        PgConns { shared: Arc::new(Shared { connect, acquire_timeout, idle: Mutex::new(Vec::new()), permits }) }
    }

    pub(crate) async fn acquire(&self) -> Result<PgLease, SqlError> {
        let shared = &self.shared;
        let permit = match tokio::time::timeout(shared.acquire_timeout, shared.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed.into()),
            Err(_) => return Err(sqlx::Error::PoolTimedOut.into()),
        };
        loop {
            let idle = shared.idle.lock().expect("connections").pop();
            let conn = match idle {
                Some((mut conn, since)) => {
                    if since.elapsed() >= PING_AFTER_IDLE && conn.ping().await.is_err() {
                        continue; // dropped: closed
                    }
                    conn
                }
                None => shared.connect.connect().await?,
            };
            let shared = shared.clone();
            return Ok(PgLease {
                conn: Some(conn),
                in_transaction: false,
                broken: false,
                shared,
                permit: Some(permit),
            });
        }
    }

    /// A connection with a transaction begun on it.
    pub(crate) async fn begin(&self) -> Result<PgLease, SqlError> {
        let mut lease = self.acquire().await?;
        lease.run_simple("BEGIN").await?;
        lease.in_transaction = true;
        Ok(lease)
    }

    /// Refuses new leases and closes the idle connections (leased ones close when returned).
    pub(crate) fn close(&self) {
        self.shared.permits.close();
        self.shared.idle.lock().expect("connections").clear();
    }
}

impl PgLease {
    /// A statement over the simple protocol (transaction control), its failure noted.
    pub(crate) async fn run_simple(&mut self, sql: &'static str) -> Result<(), SqlError> {
        let result = self.execute(sqlx::raw_sql(sql)).await.map(|_| ()).map_err(SqlError::from);
        self.note(result)
    }

    /// Passes `result` on, marking the connection broken when it failed as unavailable.
    pub(crate) fn note<T>(&mut self, result: Result<T, SqlError>) -> Result<T, SqlError> {
        if let Err(e) = &result
            && e.kind == SqlErrorKind::Unavailable
        {
            self.broken = true;
        }
        result
    }

    pub(crate) async fn commit(mut self) -> Result<(), SqlError> {
        self.run_simple("COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }
}

impl std::ops::Deref for PgLease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("a lease holds its connection until dropped")
    }
}

impl std::ops::DerefMut for PgLease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a lease holds its connection until dropped")
    }
}

impl Drop for PgLease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.broken || self.shared.permits.is_closed() {
            return; // closed with `conn`
        }
        if !self.in_transaction {
            self.shared.idle.lock().expect("connections").push((conn, Instant::now()));
            return;
        }
        // An open transaction is rolled back on a task of its own, the permit held until then
        // (without a runtime, the connection is closed, which rolls it back as well).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let shared = self.shared.clone();
        let permit = self.permit.take();
        runtime.spawn(async move {
            if conn.execute(sqlx::raw_sql("ROLLBACK")).await.is_ok() && !shared.permits.is_closed() {
                shared.idle.lock().expect("connections").push((conn, Instant::now()));
            }
            drop(permit);
        });
    }
}
