//! Records the target rejects: applied one by one with `RetryCount` retries, then kept in the
//! retry set (and the failure log) and retried with backoff until they succeed.

use super::Inner;
use super::task::{EntityProgress, Interruption, change_type};
use crate::profile::ProfileDefinition;
use crate::target::{ApplyError, Batch, Checkpoint, Target};
use chrono::Utc;
use ferry_model::Entity;
use ferry_store::{FailureRecord, ProfileRecord, Tombstone};
use std::sync::Arc;
use std::time::Duration;

/// Applies a batch with its checkpoint in one target transaction. When the target rejects the
/// batch, applies each record alone (retrying `RetryCount` times every `RetryInterval`), puts
/// the ones that still fail into the retry set, then moves the checkpoint on.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_isolating(
    inner: &Arc<Inner>,
    target: &Target,
    definition: &ProfileDefinition,
    entity: &Entity,
    current: &Checkpoint,
    batch: Batch,
    next: &Checkpoint,
    kind: &'static str,
) -> Result<(), Interruption> {
    match target.apply(entity, &batch, next).await {
        Ok(_) => return Ok(()),
        Err(ApplyError::Unreachable(e)) => return Err(Interruption::Unreachable(e)),
        Err(ApplyError::Rejected(_)) => {}
    }
    let singles = batch
        .upserts
        .into_iter()
        .map(|r| {
            let kind = if kind.is_empty() { change_type(&r) } else { kind };
            (r.id, kind, Batch { upserts: vec![r], deletes: Vec::new() })
        })
        .chain(batch.deletes.into_iter().map(|t| (t.id, "Delete", Batch { upserts: Vec::new(), deletes: vec![t] })));
    for (record_id, kind, single) in singles {
        let mut attempt = 0;
        loop {
            match target.apply(entity, &single, current).await {
                Ok(_) => break,
                Err(ApplyError::Unreachable(e)) => return Err(Interruption::Unreachable(e)),
                Err(ApplyError::Rejected(_)) if attempt < definition.retry_count => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(definition.retry_interval_secs.into())).await;
                }
                Err(ApplyError::Rejected(reason)) => {
                    let now = Utc::now();
                    let failure = FailureRecord {
                        profile_id: current.profile_id.clone(),
                        entity: entity.logical_name.clone(),
                        record_id,
                        change_type: kind.to_string(),
                        reason,
                        attempts: i64::from(attempt) + 1,
                        first_failed_at: now,
                        next_attempt_at: now + retry_delay(definition, 1),
                        resolved_at: None,
                    };
                    inner.store.record_replication_failure(&failure).await?;
                    break;
                }
            }
        }
    }
    target.apply(entity, &Batch::default(), next).await.map_err(|e| match e {
        ApplyError::Unreachable(e) => Interruption::Unreachable(e),
        ApplyError::Rejected(e) => Interruption::Other(e),
    })?;
    Ok(())
}

/// Backoff of the retry set: RetryInterval doubled per failed retry, at most an hour.
fn retry_delay(definition: &ProfileDefinition, retries: u32) -> chrono::Duration {
    let base = u64::from(definition.retry_interval_secs.max(1));
    let secs = base.saturating_mul(1u64 << retries.min(12)).min(3600);
    chrono::Duration::seconds(secs as i64)
}

/// Retries the records of the retry set that are due: each is read again from the source and
/// applied with its current version (or deleted if it is gone).
pub(super) async fn retry_failures(
    inner: &Arc<Inner>,
    target: &Target,
    record: &ProfileRecord,
    definition: &ProfileDefinition,
    progress: &[EntityProgress],
) -> Result<(), Interruption> {
    let due = inner.store.pending_replication_failures(&record.id, Some(Utc::now()), 100).await?;
    for failure in due {
        let Some(p) = progress.iter().find(|p| p.entity.logical_name == failure.entity) else { continue };
        let batch = match inner.store.get_by_id(&p.entity, failure.record_id).await? {
            Some(row) => Batch { upserts: vec![row], deletes: Vec::new() },
            None => {
                let version = inner.store.current_version().await?;
                let tombstone = Tombstone {
                    id: failure.record_id,
                    company: None,
                    key: Vec::new(),
                    version,
                    deleted_at: Utc::now(),
                };
                Batch { upserts: Vec::new(), deletes: vec![tombstone] }
            }
        };
        match target.apply(&p.entity, &batch, &p.checkpoint).await {
            Ok(_) => {
                inner.store.resolve_replication_failure(&record.id, &failure.entity, failure.record_id).await?;
                tracing::info!(profile = %record.name, entity = %failure.entity, record = %failure.record_id, "failed record replicated on retry");
            }
            Err(ApplyError::Unreachable(e)) => return Err(Interruption::Unreachable(e)),
            Err(ApplyError::Rejected(reason)) => {
                let retries = u32::try_from(failure.attempts).unwrap_or(u32::MAX);
                let retry = FailureRecord {
                    reason,
                    attempts: 1,
                    next_attempt_at: Utc::now() + retry_delay(definition, retries),
                    ..failure
                };
                inner.store.record_replication_failure(&retry).await?;
            }
        }
    }
    Ok(())
}
