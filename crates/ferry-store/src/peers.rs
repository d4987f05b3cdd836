//! Wakes the other nodes of a PostgreSQL cluster after this node's commits: entity writes
//! (channel `ferry_changes`, for replication) and queue changes (`ferry_queue`, for workers).
//!
//! A `NOTIFY` inside a writing transaction makes PostgreSQL take one database-wide lock at
//! commit and hold it through the commit's WAL flush, so every notifying transaction of every
//! node commits one after the other — no group commit. Here a writer only pokes a background
//! task after its commit; the task sends `pg_notify` on its own, one at a time and at most one
//! per [`NOTIFY_SPACING`], and pokes that arrive meanwhile fold into the next one (a notification
//! is a transaction of its own: one per commit cost busy nodes a round trip and a commit each). Listeners read the database after a notification,
//! so what they see includes every commit poked before it. Should the process die between a
//! commit and its notification, the other nodes notice at their next poll (replication's idle
//! wait, the workers' poll interval).

use std::time::Duration;
use tokio::sync::watch;

/// The least time between two notifications of one channel: what it adds to other nodes'
/// wake-up latency at most.
const NOTIFY_SPACING: Duration = Duration::from_millis(20);

/// One channel's notifier; dropping it ends its task.
pub(crate) struct PeerNotifier {
    wanted: watch::Sender<u64>,
}

impl PeerNotifier {
    /// Starts the task that notifies `channel` through `pool` (needs a tokio runtime).
    pub(crate) fn start(pool: sqlx::PgPool, channel: &'static str) -> PeerNotifier {
        let (wanted, mut poked) = watch::channel(0u64);
        tokio::spawn(async move {
            while poked.changed().await.is_ok() {
                poked.borrow_and_update();
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&pool).await {
                    tracing::debug!(error = %e, channel, "cannot notify the other nodes");
                }
                tokio::time::sleep(NOTIFY_SPACING).await;
            }
        });
        PeerNotifier { wanted }
    }

    /// Asks for a notification after what this node has committed so far.
    pub(crate) fn poke(&self) {
        self.wanted.send_modify(|n| *n = n.wrapping_add(1));
    }
}
