//! SQLite's WAL checkpoints, off the writer's path.
//!
//! A checkpoint copies the pages the WAL holds into the database file and fsyncs it. Left to
//! SQLite, the connection that commits runs it whenever the WAL passed 1,000 pages — on ferry's
//! one writer, so every write queued behind that commit waited for it: in a 300k-row import it
//! was 45 % of the commits' CPU time, plus an fsync of the database file every 4 MB. Here a
//! connection of its own checkpoints after commits (`PASSIVE`: it never waits for, nor blocks,
//! the writer or a reader), at most every [`CHECKPOINT_INTERVAL`]. The writer still
//! checkpoints by itself past 64 MiB of WAL (`backend.rs`), should this one fall behind.

use ferry_sql::{ColType, Pool};
use std::time::Duration;
use tokio::sync::mpsc;

/// Least time from one checkpoint to the next.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub(crate) struct Checkpointer {
    /// Holds at most one wake-up: one checkpoint copies whatever was committed before it.
    wake: mpsc::Sender<()>,
    pool: Pool,
}

impl Checkpointer {
    /// Checkpoints through `pool` (one read-write connection) when woken; the task ends when
    /// every clone of the checkpointer is dropped or the pool is closed.
    pub(crate) fn start(pool: Pool) -> Checkpointer {
        let (wake, woken) = mpsc::channel(1);
        tokio::spawn(checkpoint_loop(pool.clone(), woken));
        Checkpointer { wake, pool }
    }

    /// Something was committed.
    pub(crate) fn committed(&self) {
        let _ = self.wake.try_send(());
    }

    /// Closes the connection (before the writer's, so the writer's is the database's last).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

async fn checkpoint_loop(pool: Pool, mut woken: mpsc::Receiver<()>) {
    while woken.recv().await.is_some() && !pool.is_closed() {
        if let Err(e) = checkpoint(&pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %e, "a WAL checkpoint failed; the writer checkpoints past 64 MiB of WAL");
        }
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
    }
    pool.close().await;
}

/// Copies what the WAL holds into the database file, as far as readers allow.
async fn checkpoint(pool: &Pool) -> Result<(), ferry_sql::SqlError> {
    let mut conn = pool.acquire().await?;
    conn.fetch("PRAGMA wal_checkpoint(PASSIVE)", (), &[ColType::Int64, ColType::Int64, ColType::Int64]).await?;
    Ok(())
}
