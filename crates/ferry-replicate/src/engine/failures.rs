//! Records the target rejects: applied one by one with `RetryCount` retries, then kept in the
//! retry set (and the failure log) and retried with backoff until they succeed.

use super::Inner;
use super::task::{EntityProgress, Interruption};
use ferry_domain::{ChangeType, Checkpoint, Profile, ProfileDefinition, ReplicationFailure, RetryPolicy, Tombstone};
use ferry_model::Entity;
use ferry_target::{ApplyError, Batch, Target};
use std::sync::Arc;
use std::time::Duration;

/// The longest a record waits in the retry set between two retries.
const RETRY_SET_DELAY_MAX: Duration = Duration::from_secs(3600);

/// Applies a batch with its checkpoint in one target transaction. When the target rejects the
/// batch, applies each record alone (retrying `RetryCount` times every `RetryInterval`), puts
/// the ones that still fail into the retry set, then moves the checkpoint on. `change` is the
/// change type of every row (the initial copy's), else each row's own.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_isolating(
    inner: &Arc<Inner>,
    target: &Target,
    definition: &ProfileDefinition,
    entity: &Entity,
    current: &Checkpoint,
    batch: Batch,
    next: &Checkpoint,
    change: Option<ChangeType>,
) -> Result<(), Interruption> {
    // A chunk of the initial copy goes by the target's bulk path; changes by the upsert.
    let written = match change {
        Some(ChangeType::InitialExport) => target.copy(entity, &batch, next).await,
        _ => target.apply(entity, &batch, next).await,
    };
    match written {
        Ok(_) => return Ok(()),
        Err(ApplyError::Unreachable(e)) => return Err(Interruption::Unreachable(e)),
        Err(ApplyError::Rejected(_)) => {}
    }
    let singles = batch
        .upserts
        .into_iter()
        .map(|r| (r.id, change.unwrap_or_else(|| ChangeType::of(&r)), Batch { upserts: vec![r], deletes: Vec::new() }))
        .chain(
            batch
                .deletes
                .into_iter()
                .map(|t| (t.id, ChangeType::Delete, Batch { upserts: Vec::new(), deletes: vec![t] })),
        );
    for (record_id, change, single) in singles {
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
                    let now = inner.store.clock().now();
                    let failure = ReplicationFailure {
                        profile_id: current.profile_id.clone(),
                        entity: entity.logical_name.clone(),
                        record_id,
                        change,
                        reason,
                        attempts: i64::from(attempt) + 1,
                        first_failed_at: now,
                        next_attempt_at: ferry_domain::later(now, retry_set_policy(definition).delay(2)),
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

/// Backoff of the retry set: `RetryInterval` doubled per failed retry, at most an hour.
fn retry_set_policy(definition: &ProfileDefinition) -> RetryPolicy {
    RetryPolicy::new(Duration::from_secs(definition.retry_interval_secs.max(1).into()), RETRY_SET_DELAY_MAX)
}

/// Retries the records of the retry set that are due: each is read again from the source and
/// applied with its current version (or deleted if it is gone).
pub(super) async fn retry_failures(
    inner: &Arc<Inner>,
    target: &Target,
    profile: &Profile,
    progress: &[EntityProgress],
) -> Result<(), Interruption> {
    let now = inner.store.clock().now();
    let due = inner.store.pending_replication_failures(&profile.id, Some(now), 100).await?;
    for failure in due {
        let Some(p) = progress.iter().find(|p| p.entity.logical_name == failure.entity) else { continue };
        let batch = match inner.store.get_by_id(&p.entity, failure.record_id).await? {
            Some(row) => Batch { upserts: vec![row], deletes: Vec::new() },
            None => {
                let version = inner.store.current_version().await?;
                let tombstone =
                    Tombstone { id: failure.record_id, company: None, key: Vec::new(), version, deleted_at: now };
                Batch { upserts: Vec::new(), deletes: vec![tombstone] }
            }
        };
        match target.apply(&p.entity, &batch, &p.checkpoint).await {
            Ok(_) => {
                inner.store.resolve_replication_failure(&profile.id, &failure.entity, failure.record_id).await?;
                tracing::info!(profile = %profile.definition.name, entity = %failure.entity, record = %failure.record_id, "failed record replicated on retry");
            }
            Err(ApplyError::Unreachable(e)) => return Err(Interruption::Unreachable(e)),
            Err(ApplyError::Rejected(reason)) => {
                let retries = u32::try_from(failure.attempts).unwrap_or(u32::MAX);
                let delay = retry_set_policy(&profile.definition).delay(retries.saturating_add(1));
                let retry = ReplicationFailure {
                    reason,
                    attempts: 1,
                    next_attempt_at: ferry_domain::later(now, delay),
                    ..failure
                };
                inner.store.record_replication_failure(&retry).await?;
            }
        }
    }
    Ok(())
}
