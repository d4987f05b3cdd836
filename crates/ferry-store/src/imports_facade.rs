//! The [`Store`] operations of recurring import: definitions, the queue, results and errors.

use crate::imports::{
    self, ErrorFilter, ImportErrorRecord, JobRecord, LanePosition, MessageEntityRecord, MessageFilter, MessageRecord,
    ProjectRecord, QueueStats, RowCounters,
};
use crate::queue::{self, Enqueued, MessageOutcome, NewMessage};
use crate::upsert::{self, BatchCounts, Fence, LookupMiss};
use crate::{Backend, NewRow, Store, StoreResult};
use chrono::{DateTime, Utc};
use ferry_model::Entity;
use std::time::Duration;

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Store {
    pub async fn upsert_project(&self, p: &ProjectRecord) -> StoreResult<()> {
        write_tx!(self, |conn| imports::upsert_project(conn, p));
        Ok(())
    }

    pub async fn list_projects(&self) -> StoreResult<Vec<ProjectRecord>> {
        read_conn!(self, |conn| imports::list_projects(conn, None))
    }

    pub async fn delete_project(&self, name: &str) -> StoreResult<bool> {
        Ok(write_tx!(self, |conn| imports::delete_project(conn, name)))
    }

    pub async fn upsert_job(&self, j: &JobRecord) -> StoreResult<()> {
        write_tx!(self, |conn| imports::upsert_job(conn, j));
        Ok(())
    }

    pub async fn get_job(&self, activity_id: &str) -> StoreResult<Option<JobRecord>> {
        Ok(read_conn!(self, |conn| imports::list_jobs(conn, Some(activity_id)))?.pop())
    }

    pub async fn get_project(&self, name: &str) -> StoreResult<Option<ProjectRecord>> {
        Ok(read_conn!(self, |conn| imports::list_projects(conn, Some(name)))?.pop())
    }

    pub async fn list_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        read_conn!(self, |conn| imports::list_jobs(conn, None))
    }

    pub async fn delete_job(&self, activity_id: &str) -> StoreResult<bool> {
        Ok(write_tx!(self, |conn| imports::delete_job(conn, activity_id)))
    }

    /// Records a message whose body is durable in the blob store. With `dedupe_window`, a
    /// message of the same job with the same external identifier and content hash enqueued
    /// within the window is answered instead of creating a new one.
    pub async fn enqueue_message(&self, m: &NewMessage, dedupe_window: Option<Duration>) -> StoreResult<Enqueued> {
        let now = self.now();
        let since = dedupe_window.map(|w| now - chrono::Duration::from_std(w).unwrap_or(chrono::Duration::MAX));
        Ok(write_tx!(self, |conn| queue::enqueue(conn, m, since, now)))
    }

    /// A message by its id or its execution id.
    pub async fn get_message(&self, id: &str) -> StoreResult<Option<MessageRecord>> {
        read_conn!(self, |conn| imports::get_message(conn, id))
    }

    pub async fn list_messages(&self, filter: &MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        read_conn!(self, |conn| imports::list_messages(conn, filter))
    }

    /// For a waiting message: the head of its lanes and how many messages are ahead.
    pub async fn lane_position(&self, message_id: &str) -> StoreResult<Option<LanePosition>> {
        read_conn!(self, |conn| imports::lane_position(conn, message_id))
    }

    /// Claims up to `max` runnable messages for `holder` for `lease`.
    pub async fn claim_messages(
        &self,
        holder: &str,
        max: usize,
        lease: Duration,
        max_attempts: i64,
    ) -> StoreResult<Vec<MessageRecord>> {
        let until = after(self.now(), lease);
        let clock = || self.now();
        Ok(write_tx!(self, |conn| queue::claim(conn, holder, max, until, max_attempts, &clock)))
    }

    /// Extends a lease (recording progress); false when it was lost.
    pub async fn renew_message_lease(
        &self,
        id: &str,
        holder: &str,
        lease: Duration,
        progress: Option<RowCounters>,
    ) -> StoreResult<bool> {
        let now = self.now();
        let until = after(now, lease);
        Ok(write_tx!(self, |conn| queue::renew(conn, id, holder, until, progress, now)))
    }

    /// Clears what an earlier unfinished run of the message recorded (errors, entity results).
    pub async fn begin_message_attempt(&self, fence: &Fence) -> StoreResult<()> {
        let now = self.now();
        let until = fence.lease_until(now);
        write_tx!(self, |conn| queue::begin_attempt(conn, &fence.message_id, &fence.holder, until, now));
        Ok(())
    }

    /// Ends a message; false when the lease was lost (another worker owns it now).
    pub async fn finish_message(&self, id: &str, holder: &str, outcome: &MessageOutcome) -> StoreResult<bool> {
        // The clock is read inside the transaction, so the end precedes the commit.
        Ok(write_tx!(self, |conn| async { queue::finish(conn, id, holder, outcome, self.now()).await }))
    }

    /// Sends a message back to wait (keeping its place in its lanes) until `delay` has passed.
    pub async fn retry_message_later(
        &self,
        id: &str,
        holder: &str,
        delay: Duration,
        reason: &str,
    ) -> StoreResult<bool> {
        let not_before = after(self.now(), delay);
        Ok(write_tx!(self, |conn| queue::retry_later(conn, id, holder, not_before, reason)))
    }

    pub async fn put_message_entity(&self, e: &MessageEntityRecord, fence: &Fence) -> StoreResult<()> {
        let now = self.now();
        write_tx!(self, |conn| async {
            queue::fence(conn, &fence.message_id, &fence.holder, fence.lease_until(now), now).await?;
            imports::put_message_entity(conn, e).await
        });
        Ok(())
    }

    pub async fn message_entities(&self, message_id: &str) -> StoreResult<Vec<MessageEntityRecord>> {
        read_conn!(self, |conn| imports::message_entities(conn, message_id))
    }

    /// Records rejected rows of a message (fenced by its lease).
    pub async fn add_import_errors(&self, errors: &[ImportErrorRecord], fence: &Fence) -> StoreResult<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let now = self.now();
        write_tx!(self, |conn| async {
            queue::fence(conn, &fence.message_id, &fence.holder, fence.lease_until(now), now).await?;
            imports::add_import_errors(conn, errors).await
        });
        Ok(())
    }

    pub async fn import_errors(&self, message_id: &str, filter: &ErrorFilter) -> StoreResult<Vec<ImportErrorRecord>> {
        read_conn!(self, |conn| imports::import_errors(conn, message_id, filter))
    }

    pub async fn queue_stats(&self) -> StoreResult<QueueStats> {
        read_conn!(self, |conn| imports::queue_stats(conn))
    }

    /// Lookup values in `rows` that name no record (read-only; for validation before a write).
    pub async fn missing_lookups(&self, entity: &Entity, rows: &[NewRow]) -> StoreResult<Vec<LookupMiss>> {
        let catalog = self.catalog();
        read_conn!(self, |conn| upsert::missing_lookups(conn, &catalog, entity, rows))
    }

    /// Upserts one batch of rows by natural key in one transaction, fenced by a message lease.
    pub async fn import_batch(
        &self,
        entity: &Entity,
        rows: Vec<NewRow>,
        update_fields: Option<&[usize]>,
        fence: Option<&Fence>,
    ) -> StoreResult<BatchCounts> {
        let catalog = self.catalog();
        let now = self.now();
        let counts =
            write_tx!(self, |conn| upsert::import_batch(conn, &catalog, entity, rows, update_fields, fence, now));
        if counts.inserted + counts.updated > 0 {
            self.changed();
            self.count_inserts(entity, counts.inserted);
        }
        Ok(counts)
    }

    /// Upserts every batch received from `batches` in ONE transaction (all-or-nothing imports):
    /// any error rolls back all of them. Holds the write lock until the channel closes.
    pub async fn import_atomically(
        &self,
        entity: &Entity,
        mut batches: tokio::sync::mpsc::Receiver<Vec<NewRow>>,
        update_fields: Option<&[usize]>,
        fence: Option<&Fence>,
    ) -> StoreResult<BatchCounts> {
        let catalog = self.catalog();
        let now = self.now();
        let counts = write_tx!(self, |conn| async {
            let mut total = BatchCounts::default();
            while let Some(rows) = batches.recv().await {
                total += upsert::import_batch(&mut *conn, &catalog, entity, rows, update_fields, fence, now).await?;
            }
            Ok::<_, crate::StoreError>(total)
        });
        if counts.inserted + counts.updated > 0 {
            self.changed();
            self.count_inserts(entity, counts.inserted);
        }
        Ok(counts)
    }

    /// A receiver that sees a new value whenever the queue may have runnable work (enqueue,
    /// message finished — on PostgreSQL by any node).
    pub fn subscribe_queue(&self) -> tokio::sync::watch::Receiver<u64> {
        if let Backend::Postgres(b) = &self.inner.backend {
            let pool = b.pool.clone();
            let sender = self.inner.queue_events.clone();
            self.inner.queue_listener_started.call_once(|| {
                tokio::spawn(crate::postgres::listen_for(pool, "ferry_queue", sender));
            });
        }
        self.inner.queue_events.subscribe()
    }

    /// Wakes local queue workers (called after an enqueue or a finish on this node).
    pub fn queue_changed(&self) {
        self.inner.queue_events.send_modify(|n| *n = n.wrapping_add(1));
    }
}
