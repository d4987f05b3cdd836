//! The [`Store`] operations of exports and of every message's life after it ran: delivery
//! (dequeue, download, acknowledgement), watermarks and schedules of exports, cancellation, and
//! retention.

use crate::delivery::{self, AckOutcome};
use crate::exports;
use crate::queue;
use crate::retention;
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use ferry_domain::{Message, Watermark};
use std::time::Duration;

impl Store {
    /// Hands out the oldest deliverable export of `activity_id`, hidden for `visibility`, with
    /// the new `receipt`. Answers it and when it was dequeued before.
    pub async fn dequeue_export(
        &self,
        activity_id: &str,
        receipt: &str,
        visibility: Duration,
    ) -> StoreResult<Option<(Message, Option<DateTime<Utc>>)>> {
        let now = self.now();
        let visible_at = ferry_domain::later(now, visibility);
        self.write(async |conn| delivery::dequeue(conn, activity_id, receipt, visible_at, now).await).await
    }

    pub async fn mark_export_downloaded(&self, id: &str) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| delivery::mark_downloaded(conn, id, now).await).await
    }

    pub async fn ack_export(
        &self,
        activity_id: &str,
        correlation_id: &str,
        receipt: Option<&str>,
        by: &str,
    ) -> StoreResult<AckOutcome> {
        let now = self.now();
        self.write(async |conn| delivery::ack(conn, activity_id, correlation_id, receipt, by, now).await).await
    }

    /// The watermarks of incremental exports in `scope`.
    pub async fn watermarks(&self, scope: &str) -> StoreResult<Vec<Watermark>> {
        self.read(async |conn| exports::watermarks(conn, scope).await).await
    }

    /// Forgets the watermarks of `scope`: its next incremental export starts from the beginning.
    pub async fn reset_watermarks(&self, scope: &str) -> StoreResult<u64> {
        self.write(async |conn| exports::reset_watermarks(conn, scope).await).await
    }

    pub async fn next_export_run(&self, activity_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.read(async |conn| exports::next_run(conn, activity_id).await).await
    }

    pub async fn set_next_export_run(&self, activity_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(async |conn| exports::set_next_run(conn, activity_id, at).await).await
    }

    /// Whether the export job has a run that waits or runs.
    pub async fn has_pending_export(&self, activity_id: &str) -> StoreResult<bool> {
        self.read(async |conn| exports::has_pending_run(conn, activity_id).await).await
    }

    /// Cancels a message that has not started; answers it as it is afterwards (`None` when there
    /// is no such message).
    pub async fn cancel_message(&self, id: &str, reason: &str) -> StoreResult<Option<Message>> {
        let now = self.now();
        let message = self.write(async |conn| queue::cancel(conn, id, reason, now).await).await?;
        self.queue_changed();
        Ok(message)
    }

    /// Up to `limit` messages that ended before `before`, oldest first.
    pub async fn messages_finished_before(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(async |conn| retention::finished_before(conn, before, limit).await).await
    }

    /// Deletes a finished message with its results and errors (its blobs are the caller's).
    pub async fn delete_finished_message(&self, id: &str) -> StoreResult<bool> {
        self.write(async |conn| retention::delete_finished(conn, id).await).await
    }

    /// Whether a message names the blob `key`.
    pub async fn blob_in_use(&self, key: &str) -> StoreResult<bool> {
        self.read(async |conn| retention::blob_in_use(conn, key).await).await
    }
}
