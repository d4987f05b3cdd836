//! The delivery of exported files to clients, as the recurring integration's connector does it:
//! a dequeue hands out the oldest file of a job not yet acknowledged and hides it for a
//! visibility timeout (after which it is offered again); a download marks it downloaded; an
//! acknowledgement that names the message and its latest receipt ends its delivery. Every step
//! is a conditional update, so nodes sharing one database never hand out one file twice at once.

use crate::error::StoreResult;
use crate::literals::Literal;
use crate::messages::{MESSAGE_COLUMNS, MESSAGE_TYPES, decode_message, text};
use chrono::{DateTime, Utc};
use ferry_domain::{DeliveryState, Message};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt};

/// What an acknowledgement did.
#[derive(Clone, Debug, PartialEq)]
pub enum AckOutcome {
    Acked(Message),
    /// It was acknowledged before (acknowledging again changes nothing).
    AlreadyAcked(Message),
    /// No export of this job has this correlation id.
    Unknown,
    /// The file was never dequeued.
    NotDequeued(Message),
    /// The receipt is not the latest dequeue's: the file was handed out again since.
    StaleReceipt(Message),
}

fn deliverable() -> String {
    DeliveryState::in_list(&[DeliveryState::Ready, DeliveryState::Dequeued, DeliveryState::Downloaded])
}

/// Hands out the oldest deliverable file of `activity_id` with a new `receipt`, hidden until
/// `visible_at`. Answers the message and when it was dequeued before (if it was).
pub(crate) async fn dequeue(
    conn: &mut Conn,
    activity_id: &str,
    receipt: &str,
    visible_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Option<(Message, Option<DateTime<Utc>>)>> {
    // Another node may take a candidate first: then the update finds nothing and the next is tried.
    for _ in 0..16 {
        let candidates = conn
            .fetch(
                &format!(
                    "SELECT id, last_dequeued_at FROM ferry_messages WHERE activity_id = $1 AND operation = 'export' \
                     AND delivery_state IN {} AND (visible_at IS NULL OR visible_at <= $2) ORDER BY seq LIMIT 1",
                    deliverable()
                ),
                vec![text(activity_id), Value::DateTime(now)],
                &[ColType::Text, ColType::DateTime],
            )
            .await?;
        let Some(candidate) = candidates.first() else { return Ok(None) };
        let (id, previous) = (candidate.text(0)?, candidate.opt_datetime(1)?);
        let sql = format!(
            "UPDATE ferry_messages SET delivery_state = $3, pop_receipt = $4, visible_at = $5, last_dequeued_at = $2, \
             dequeue_count = dequeue_count + 1 WHERE id = $1 AND delivery_state IN {} \
             AND (visible_at IS NULL OR visible_at <= $2) RETURNING {MESSAGE_COLUMNS}",
            deliverable()
        );
        let args = vec![
            text(&id),
            Value::DateTime(now),
            DeliveryState::Dequeued.value(),
            text(receipt),
            Value::DateTime(visible_at),
        ];
        if let Some(r) = conn.fetch(&sql, args, &MESSAGE_TYPES).await?.first() {
            return Ok(Some((decode_message(r)?, previous)));
        }
    }
    Ok(None)
}

/// Records a download of a dequeued file (a file downloaded again, or after its acknowledgement,
/// keeps its state).
pub(crate) async fn mark_downloaded(conn: &mut Conn, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    conn.execute(
        "UPDATE ferry_messages SET delivery_state = $2, downloaded_at = $3 WHERE id = $1 AND delivery_state = $4",
        vec![text(id), DeliveryState::Downloaded.value(), Value::DateTime(now), DeliveryState::Dequeued.value()],
    )
    .await?;
    Ok(())
}

/// Acknowledges the export `correlation_id` of `activity_id` for `by`; a given `receipt` must be
/// the latest dequeue's.
pub(crate) async fn ack(
    conn: &mut Conn,
    activity_id: &str,
    correlation_id: &str,
    receipt: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> StoreResult<AckOutcome> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM ferry_messages WHERE id = $1 AND activity_id = $2 AND operation = 'export'"
    );
    let rows = conn.fetch(&sql, vec![text(correlation_id), text(activity_id)], &MESSAGE_TYPES).await?;
    let Some(row) = rows.first() else { return Ok(AckOutcome::Unknown) };
    let message = decode_message(row)?;
    let Some(delivery) = &message.delivery else { return Ok(AckOutcome::Unknown) };
    if receipt.is_some_and(|r| delivery.pop_receipt.as_deref() != Some(r)) && delivery.state != DeliveryState::Acked {
        return Ok(AckOutcome::StaleReceipt(message));
    }
    match delivery.state {
        DeliveryState::Acked => return Ok(AckOutcome::AlreadyAcked(message)),
        DeliveryState::Ready => return Ok(AckOutcome::NotDequeued(message)),
        DeliveryState::Dequeued | DeliveryState::Downloaded => {}
    }
    let sql = format!(
        "UPDATE ferry_messages SET delivery_state = $2, acked_at = $3, acked_by = $4, visible_at = NULL \
         WHERE id = $1 AND delivery_state IN {} RETURNING {MESSAGE_COLUMNS}",
        DeliveryState::in_list(&[DeliveryState::Dequeued, DeliveryState::Downloaded])
    );
    let args = vec![text(&message.id), DeliveryState::Acked.value(), Value::DateTime(now), text(by)];
    match conn.fetch(&sql, args, &MESSAGE_TYPES).await?.first() {
        Some(r) => Ok(AckOutcome::Acked(decode_message(r)?)),
        None => Ok(AckOutcome::AlreadyAcked(message)),
    }
}
