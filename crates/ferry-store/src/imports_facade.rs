//! The [`Store`] operations of recurring import: definitions, the queue, results and errors,
//! and the batched and atomic upserts of imported rows.

use crate::definitions;
use crate::inline_files::{self, InlineFile};
use crate::messages;
use crate::queue::{self, ClaimLimits};
use crate::upsert::{self, BatchCounts, Fence, LookupMiss};
use crate::{Committing, RunRecords, Store, StoreResult};
use ferry_domain::{
    EntityResult, ErrorFilter, ErrorRecord, Job, LanePosition, Message, MessageFilter, MessageOutcome, NewMessage,
    NewRow, Origin, Project, QueueStats, RowCounters, earlier, later,
};
use ferry_model::Entity;
use ferry_sql::{Batch, Conn};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// What an enqueue did.
#[derive(Clone, Debug, PartialEq)]
pub enum Enqueued {
    Created(Message),
    /// The same job, external identifier and content were enqueued within the dedupe window:
    /// the original message.
    Duplicate(Message),
    /// The caller named an execution id that another message has.
    ExecutionIdInUse(Message),
}

/// Rows of one entity of an all-or-nothing import (see [`Store::import_atomically`]).
#[derive(Clone, Debug)]
pub struct AtomicBatch {
    /// The entity's position in the message.
    pub position: usize,
    pub entity: Arc<Entity>,
    /// Fields existing rows take from the file (the others keep their stored values).
    pub update_fields: Arc<Vec<usize>>,
    pub rows: Vec<NewRow>,
}

/// Why the database refused the rows of an all-or-nothing import (nothing was written).
#[derive(Debug)]
pub struct AtomicRefusal {
    /// The position of the entity whose rows were refused.
    pub position: usize,
    /// A row-level error ([`StoreError::is_row_level`]).
    pub error: crate::StoreError,
}

impl Store {
    pub async fn upsert_project(&self, project: &Project, origin: Origin) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| definitions::put_project(conn, project, origin, now).await).await
    }

    pub async fn list_projects(&self) -> StoreResult<Vec<(Project, Origin)>> {
        self.read(async |conn| definitions::projects(conn, None).await).await
    }

    /// The project named `name` (without regard to case).
    pub async fn get_project(&self, name: &str) -> StoreResult<Option<(Project, Origin)>> {
        Ok(self.read(async |conn| definitions::projects(conn, Some(name)).await).await?.pop())
    }

    pub async fn delete_project(&self, name: &str) -> StoreResult<bool> {
        self.write(async |conn| definitions::delete_project(conn, name).await).await
    }

    /// Writes a job under its activity id (normalised by the caller).
    pub async fn upsert_job(&self, job: &Job, origin: Origin) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| definitions::put_job(conn, job, origin, now).await).await
    }

    pub async fn list_jobs(&self) -> StoreResult<Vec<(Job, Origin)>> {
        self.read(async |conn| definitions::jobs(conn, None).await).await
    }

    /// The job with `activity_id` (normalised).
    pub async fn get_job(&self, activity_id: &str) -> StoreResult<Option<(Job, Origin)>> {
        Ok(self.read(async |conn| definitions::jobs(conn, Some(activity_id)).await).await?.pop())
    }

    /// The job with `activity_id` (normalised) and its project (`None` when it does not exist),
    /// read together.
    pub async fn job_with_project(&self, activity_id: &str) -> StoreResult<Option<(Job, Option<Project>)>> {
        let ids = [activity_id.to_owned()];
        Ok(self.jobs_with_projects(&ids).await?.remove(activity_id))
    }

    /// The jobs with `activity_ids` and their projects, by activity id, in one read (the runs of
    /// a claim); missing jobs are not in the answer.
    pub async fn jobs_with_projects(
        &self,
        activity_ids: &[String],
    ) -> StoreResult<HashMap<String, (Job, Option<Project>)>> {
        self.read(async |conn| definitions::jobs_with_projects(conn, activity_ids).await).await
    }

    pub async fn delete_job(&self, activity_id: &str) -> StoreResult<bool> {
        self.write(async |conn| definitions::delete_job(conn, activity_id).await).await
    }

    /// Records a message whose body is durable in the blob store — or is `inline`, a small body
    /// kept in the database under the message's blob key, in the same transaction. With
    /// `dedupe_window`, a message of the same job with the same external identifier and content
    /// hash enqueued within the window is answered instead of creating a new one.
    pub async fn enqueue_message(
        &self,
        m: &NewMessage,
        dedupe_window: Option<Duration>,
        inline: Option<&[u8]>,
    ) -> StoreResult<Enqueued> {
        let now = self.now();
        let since = dedupe_window.map(|w| earlier(now, w));
        let file = inline.map(|content| InlineFile {
            key: m.blob_key.clone(),
            message_id: m.id.clone(),
            content: content.to_vec(),
        });
        let enqueue = async |conn: &mut Conn| queue::enqueue(conn, m, since, file.as_ref(), now).await;
        let enqueued = if queue::enqueue_looks_first(m, since) {
            self.write(enqueue).await?
        } else {
            self.write_autocommit(enqueue).await?
        };
        if let Enqueued::Created(_) = &enqueued {
            self.queue_changed();
        }
        Ok(enqueued)
    }

    /// A small file kept in the database under blob key `key` ([`InlineFile`]).
    pub async fn inline_file(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let keys = [key.to_owned()];
        Ok(self.inline_files(&keys).await?.remove(key))
    }

    /// The small files kept under `keys`, by key, in one read; keys with none are not in the
    /// answer.
    pub async fn inline_files(&self, keys: &[String]) -> StoreResult<HashMap<String, Vec<u8>>> {
        self.read(async |conn| inline_files::get_many(conn, keys).await).await
    }

    /// Removes the small file kept under `key`; false when there was none.
    pub async fn delete_inline_file(&self, key: &str) -> StoreResult<bool> {
        self.write(async |conn| inline_files::delete(conn, key).await).await
    }

    /// A message by its id or its execution id.
    pub async fn get_message(&self, id: &str) -> StoreResult<Option<Message>> {
        self.read(async |conn| messages::get_message(conn, id).await).await
    }

    pub async fn list_messages(&self, filter: &MessageFilter) -> StoreResult<Vec<Message>> {
        self.read(async |conn| messages::list_messages(conn, filter).await).await
    }

    /// For a waiting message: the head of its lanes and how many messages are ahead.
    pub async fn lane_position(&self, message_id: &str) -> StoreResult<Option<LanePosition>> {
        self.read(async |conn| messages::lane_position(conn, message_id).await).await
    }

    /// Claims up to `limits` runnable messages for `holder` for `lease`.
    pub async fn claim_messages(
        &self,
        holder: &str,
        limits: ClaimLimits,
        lease: Duration,
        max_attempts: i64,
    ) -> StoreResult<Vec<Message>> {
        let clock = self.clock().clone();
        // Every statement of a claim stands alone: the lease is a conditional update.
        self.write_autocommit(async |conn| {
            queue::claim(conn, holder, limits, lease, max_attempts, clock.as_ref()).await
        })
        .await
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
        let until = later(now, lease);
        self.write(async |conn| queue::renew(conn, id, holder, until, progress, now).await).await
    }

    /// Clears what an earlier unfinished run of the message recorded (errors, entity results).
    pub async fn begin_message_attempt(&self, fence: &Fence) -> StoreResult<()> {
        let now = self.now();
        let until = fence.lease_until(now);
        self.write(async |conn| queue::begin_attempt(conn, &fence.message_id, &fence.holder, until, now).await).await
    }

    /// Ends a message (an export with its file and the watermarks it reached, in the same
    /// transaction); false when the lease was lost (another worker owns it now), and then
    /// nothing is written. `records` (what the run recorded since its last write) are written
    /// with it.
    pub async fn finish_message(
        &self,
        id: &str,
        holder: &str,
        outcome: &MessageOutcome,
        records: &RunRecords,
    ) -> StoreResult<bool> {
        // The clock is read inside the transaction, so the end precedes the commit.
        let finished = self
            .write(async |conn| {
                let mut write = Batch::independent();
                records.push_onto(&mut write);
                if !queue::finish(conn, id, holder, outcome, write, self.now()).await? {
                    // Undoes the records written with the refused end.
                    return Err(crate::StoreError::LeaseLost { message_id: id.to_owned() });
                }
                Ok(())
            })
            .await;
        match finished {
            Ok(()) => {
                self.queue_changed();
                Ok(true)
            }
            Err(crate::StoreError::LeaseLost { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Upserts a message's last batch and ends the message in ONE transaction — a small message's
    /// batch and end cost one commit (on PostgreSQL, for a batch too small to copy, one statement
    /// outside a transaction block). The outcome depends on what the batch did: `end` turns the
    /// batch's counts into the outcome and the records written with it. The end's update,
    /// guarded by the lease, fences the batch too: a run that lost its lease writes nothing
    /// ([`StoreError::LeaseLost`](crate::StoreError::LeaseLost)). A row-level error
    /// ([`StoreError::is_row_level`](crate::StoreError::is_row_level)) also writes nothing: the
    /// caller writes the batch row by row and ends the message on its own.
    pub async fn finish_message_with_batch(
        &self,
        entity: &Entity,
        rows: &[NewRow],
        update_fields: Option<&[usize]>,
        fence: &Fence,
        end: impl FnOnce(BatchCounts) -> (MessageOutcome, RunRecords),
    ) -> StoreResult<(BatchCounts, MessageOutcome)> {
        let catalog = self.catalog();
        let now = self.now();
        let (id, holder) = (&fence.message_id, &fence.holder);
        // The batch's write and the records, to go with the end.
        let prepare = async |conn: &mut Conn| {
            // No fence first: the end's guarded update fails the whole write.
            let mut write = Batch::independent();
            let counts = upsert::import_batch(
                &mut *conn,
                &catalog,
                entity,
                rows,
                update_fields,
                None,
                now,
                Some(&mut write),
                false,
            )
            .await?;
            let (outcome, records) = end(counts);
            records.push_onto(&mut write);
            StoreResult::Ok((counts, outcome, write))
        };
        // The clock is read inside the write, so the end precedes the commit.
        let in_transaction = async |conn: &mut Conn, outcome: &MessageOutcome, write: Batch| {
            let held = queue::finish(conn, id, holder, outcome, write, self.now()).await?;
            if held { Ok(()) } else { Err(crate::StoreError::LeaseLost { message_id: id.clone() }) }
        };
        let (counts, outcome) = if self.dialect() == ferry_sql::Dialect::Postgres && rows.len() < upsert::COPY_ROWS_MIN
        {
            // A batch too small to be copied goes with the end as one statement that commits by
            // itself (no `BEGIN` and `COMMIT` round trips), the lease checked inside it; should
            // they not fuse into one, they are ended in a transaction.
            let (counts, outcome, left) = self
                .write_autocommit(async |conn| {
                    let (counts, outcome, write) = prepare(conn).await?;
                    let left = queue::finish_alone(conn, id, holder, &outcome, write, self.now()).await?;
                    Ok((counts, outcome, left))
                })
                .await?;
            if let Some(write) = left {
                self.write(async |conn| in_transaction(conn, &outcome, write).await).await?;
            }
            (counts, outcome)
        } else {
            self.write(async |conn| {
                let (counts, outcome, write) = prepare(conn).await?;
                in_transaction(conn, &outcome, write).await?;
                Ok((counts, outcome))
            })
            .await?
        };
        self.queue_changed();
        if counts.inserted + counts.updated > 0 {
            self.changed();
            self.count_inserts(entity, counts.inserted);
        }
        Ok((counts, outcome))
    }

    /// Sends a message back to wait (keeping its place in its lanes) until `delay` has passed.
    pub async fn retry_message_later(
        &self,
        id: &str,
        holder: &str,
        delay: Duration,
        reason: &str,
    ) -> StoreResult<bool> {
        let not_before = later(self.now(), delay);
        self.write(async |conn| queue::retry_later(conn, id, holder, not_before, reason).await).await
    }

    pub async fn put_entity_result(&self, e: &EntityResult, fence: &Fence) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| {
            queue::fence(conn, &fence.message_id, &fence.holder, fence.lease_until(now), now).await?;
            let mut batch = Batch::independent();
            messages::put_entity_result(&mut batch, e);
            conn.fetch_batch(batch, &[]).await?;
            Ok(())
        })
        .await
    }

    pub async fn entity_results(&self, message_id: &str) -> StoreResult<Vec<EntityResult>> {
        self.read(async |conn| messages::entity_results(conn, message_id).await).await
    }

    /// Records rejected rows of a message (fenced by its lease).
    pub async fn add_errors(&self, errors: &[ErrorRecord], fence: &Fence) -> StoreResult<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let now = self.now();
        self.write(async |conn| {
            queue::fence(conn, &fence.message_id, &fence.holder, fence.lease_until(now), now).await?;
            let mut batch = Batch::independent();
            messages::add_errors(&mut batch, errors);
            conn.fetch_batch(batch, &[]).await?;
            Ok(())
        })
        .await
    }

    pub async fn errors(&self, message_id: &str, filter: &ErrorFilter) -> StoreResult<Vec<ErrorRecord>> {
        self.read(async |conn| messages::errors(conn, message_id, filter).await).await
    }

    pub async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.read(async |conn| messages::queue_stats(conn).await).await
    }

    /// Lookup values in `rows` that name no record (read-only; for validation before a write).
    pub async fn missing_lookups(&self, entity: &Entity, rows: &[NewRow]) -> StoreResult<Vec<LookupMiss>> {
        let catalog = self.catalog();
        self.read(async |conn| upsert::missing_lookups(conn, &catalog, entity, rows).await).await
    }

    /// Upserts one batch of rows by natural key in one transaction, fenced by a message lease,
    /// with what the run recorded since its last write (`records`).
    pub async fn import_batch(
        &self,
        entity: &Entity,
        rows: &[NewRow],
        update_fields: Option<&[usize]>,
        fence: Option<&Fence>,
        records: &RunRecords,
    ) -> StoreResult<BatchCounts> {
        self.import_batch_committing(entity, rows, update_fields, fence, records, false).await?.durable().await
    }

    /// [`import_batch`](Self::import_batch), answering once the batch is written, with its commit
    /// possibly under way: an import prepares its next batch while this one commits. With
    /// `expect_new` (no earlier batch of the import met a stored key), PostgreSQL tries the batch's
    /// `COPY` before reading stored rows.
    pub async fn import_batch_committing(
        &self,
        entity: &Entity,
        rows: &[NewRow],
        update_fields: Option<&[usize]>,
        fence: Option<&Fence>,
        records: &RunRecords,
        expect_new: bool,
    ) -> StoreResult<Committing<BatchCounts>> {
        let catalog = self.catalog();
        let now = self.now();
        let (counts, commit) = self
            .write_committing(async |conn| {
                // The records go with a small batch's write (one statement on PostgreSQL).
                let mut write = Batch::independent();
                let counts = upsert::import_batch(
                    &mut *conn,
                    &catalog,
                    entity,
                    rows,
                    update_fields,
                    fence,
                    now,
                    Some(&mut write),
                    expect_new,
                )
                .await?;
                records.push_onto(&mut write);
                conn.fetch_batch(write, &[]).await?;
                Ok(counts)
            })
            .await?;
        let wrote = counts.inserted + counts.updated > 0;
        if wrote {
            self.count_inserts(entity, counts.inserted);
        }
        Ok(Committing { value: counts, commit, changed: wrote.then(|| self.clone()) })
    }

    /// Upserts every batch `batches` yields — of one or more entities, already read and
    /// validated — in ONE transaction (all-or-nothing imports): any error rolls back all of
    /// them. The transaction holds the write lock only while the batches are applied, so the
    /// caller reads them from files it staged before, never from the source. Answers the
    /// counts per entity position, or (inner `Err`) which entity's rows the database refused.
    pub async fn import_atomically(
        &self,
        mut batches: tokio::sync::mpsc::Receiver<AtomicBatch>,
        fence: Option<&Fence>,
    ) -> StoreResult<Result<BTreeMap<usize, BatchCounts>, AtomicRefusal>> {
        let catalog = self.catalog();
        let now = self.now();
        let mut written: Vec<(Arc<Entity>, u64)> = Vec::new();
        let mut position = 0;
        // The span lasts as long as the transaction: tracing shows what ran while it held the lock.
        let span = tracing::info_span!("all_or_nothing_apply");
        let applied = self
            .write(async |conn| {
                let mut counts: BTreeMap<usize, BatchCounts> = BTreeMap::new();
                while let Some(batch) = batches.recv().await {
                    position = batch.position;
                    let n = upsert::import_batch(
                        &mut *conn,
                        &catalog,
                        &batch.entity,
                        &batch.rows,
                        Some(&batch.update_fields),
                        fence,
                        now,
                        None,
                        false,
                    )
                    .await?;
                    if n.inserted > 0 {
                        written.push((batch.entity.clone(), n.inserted));
                    }
                    *counts.entry(batch.position).or_default() += n;
                }
                Ok(counts)
            })
            .instrument(span)
            .await;
        let counts = match applied {
            Ok(counts) => counts,
            Err(error) if error.is_row_level() => return Ok(Err(AtomicRefusal { position, error })),
            Err(e) => return Err(e),
        };
        if counts.values().any(|c| c.inserted + c.updated > 0) {
            self.changed();
        }
        for (entity, inserted) in written {
            self.count_inserts(&entity, inserted);
        }
        Ok(Ok(counts))
    }

    /// A receiver that sees a new value whenever the queue may have runnable work (enqueue,
    /// message finished — on PostgreSQL by any node).
    pub fn subscribe_queue(&self) -> tokio::sync::watch::Receiver<u64> {
        if let ferry_sql::Pool::Postgres(pool, _) = &self.inner.writer {
            let pool = pool.clone();
            let sender = self.inner.queue_events.clone();
            self.inner.queue_listener_started.call_once(|| {
                tokio::spawn(crate::backend::listen_for(pool, "ferry_queue", sender));
            });
        }
        self.inner.queue_events.subscribe()
    }

    /// Wakes queue workers, local ones at once and other nodes' through a notification (called
    /// after an enqueue, a finish or a cancel commits on this node).
    pub fn queue_changed(&self) {
        if let Some((_, queue)) = &self.inner.peers {
            queue.poke();
        }
        self.inner.queue_events.send_modify(|n| *n = n.wrapping_add(1));
    }
}
