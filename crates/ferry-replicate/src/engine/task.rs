//! One profile task: connect, create or evolve the schema, copy each entity in key order as of
//! one change version, then follow every change, pausing while the target is unreachable.

use super::Inner;
use super::failures::{apply_isolating, retry_failures};
use super::status::{METRIC_ROWS_APPLIED, mark_paused, publish_status};
use crate::profile::{ProfileDefinition, ProfileState};
use crate::service::{decode_profile, target_spec};
use crate::target::{Batch, Checkpoint, Phase, Target, TargetError};
use chrono::Utc;
use ferry_model::Entity;
use ferry_store::{CompanyScope, ProfileRecord, RowKey, RowQuery, StoreError, StoredRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The shortest time between two status reports of a profile task.
const STATUS_INTERVAL_MIN: Duration = Duration::from_millis(200);

/// In-memory progress of one entity, mirrored to the store for status queries.
pub(super) struct EntityProgress {
    pub(super) entity: Arc<Entity>,
    pub(super) checkpoint: Checkpoint,
    pub(super) rows_total: i64,
    pub(super) caught_up_to: i64,
    pub(super) lag_seconds: f64,
    pub(super) state: &'static str,
    pub(super) reason: Option<String>,
}

/// Why a profile task must pause.
pub(super) enum Interruption {
    Stopped,
    Unreachable(String),
    Other(String),
}

impl From<StoreError> for Interruption {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = ?e, "replication could not read the source");
        Interruption::Other("ferry's database is unavailable".into())
    }
}

pub(super) async fn run_profile(inner: Arc<Inner>, record: ProfileRecord, mut stopped: watch::Receiver<bool>) {
    let Ok(profile) = decode_profile(&record) else { return };
    let entities: Vec<Arc<Entity>> =
        profile.definition.entities.iter().filter_map(|n| inner.catalog.by_any_name(n).cloned()).collect();
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stopped.borrow() {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = run_connected(&inner, &record, &profile.definition, profile.state, &entities, &mut stopped).await;
        let reason = match outcome {
            Interruption::Stopped => return,
            Interruption::Unreachable(e) => format!("target unreachable: {e}"),
            Interruption::Other(e) => e,
        };
        // A run that lasted is a new outage, not the same one again: start over with a short wait.
        if started.elapsed() >= inner.settings.reconnect_max {
            backoff = Duration::from_secs(1);
        }
        let wait = backoff;
        backoff = (backoff * 2).min(inner.settings.reconnect_max);
        tracing::warn!(profile = %record.name, reason = %reason, retry_in_secs = wait.as_secs(), "replication paused");
        mark_paused(&inner.store, &record.id, &entities, &format!("{reason} (retrying in {} s)", wait.as_secs())).await;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => {}
        }
    }
}

fn target_failure(e: TargetError) -> Interruption {
    match e {
        TargetError::Unreachable(m) => Interruption::Unreachable(m),
        other => Interruption::Other(other.to_string()),
    }
}

/// One connected run of a profile, until it is stopped or the target fails.
async fn run_connected(
    inner: &Arc<Inner>,
    record: &ProfileRecord,
    definition: &ProfileDefinition,
    state: ProfileState,
    entities: &[Arc<Entity>],
    stopped: &mut watch::Receiver<bool>,
) -> Interruption {
    let spec = match target_spec(record, definition, &inner.master, &inner.env) {
        Ok(spec) => spec,
        Err(e) => return Interruption::Other(e.to_string()),
    };
    let target = match Target::connect(&spec).await {
        Ok(t) => t,
        Err(e) => return target_failure(e),
    };
    let result = follow(inner, &target, record, definition, state, entities, stopped).await;
    target.close().await;
    result
}

async fn follow(
    inner: &Arc<Inner>,
    target: &Target,
    record: &ProfileRecord,
    definition: &ProfileDefinition,
    state: ProfileState,
    entities: &[Arc<Entity>],
    stopped: &mut watch::Receiver<bool>,
) -> Interruption {
    let mut reloading: HashMap<String, String> = HashMap::new();
    if state.replicates_schema() {
        match target.ensure_schema(&inner.catalog, entities).await {
            Ok(changes) => {
                if !changes.tables_created.is_empty()
                    || !changes.columns_added.is_empty()
                    || !changes.columns_widened.is_empty()
                {
                    tracing::info!(profile = %record.name, created = ?changes.tables_created, added = ?changes.columns_added, widened = ?changes.columns_widened, "target schema updated");
                }
                for (entity_name, reason) in changes.incompatible {
                    let Some(entity) = entities.iter().find(|e| e.logical_name == entity_name) else { continue };
                    tracing::warn!(profile = %record.name, entity = %entity_name, reason = %reason, "incompatible schema change: reloading the entity");
                    if let Err(e) = target.reset_entity(entity).await {
                        return target_failure(e);
                    }
                    reloading.insert(entity_name, reason);
                }
            }
            Err(e) => return target_failure(e),
        }
    }
    if !state.replicates_data() {
        let _ = stopped.changed().await;
        return Interruption::Stopped;
    }
    let stored = match target.load_checkpoints(&record.id).await {
        Ok(c) => c,
        Err(e) => return target_failure(e),
    };
    let mut progress = Vec::new();
    for entity in entities {
        let checkpoint = match stored.iter().find(|c| c.entity == entity.logical_name) {
            Some(c) => c.clone(),
            None => {
                let version = match inner.store.current_version().await {
                    Ok(v) => v,
                    Err(e) => return e.into(),
                };
                Checkpoint {
                    profile_id: record.id.clone(),
                    entity: entity.logical_name.clone(),
                    phase: Phase::Initial,
                    snapshot_version: version,
                    after_key: None,
                    last_version: version,
                    rows_copied: 0,
                }
            }
        };
        let rows_total = if checkpoint.phase == Phase::Initial {
            match inner.store.count(entity, &CompanyScope::All, None).await {
                Ok(n) => n as i64,
                Err(e) => return e.into(),
            }
        } else {
            checkpoint.rows_copied
        };
        progress.push(EntityProgress {
            entity: entity.clone(),
            caught_up_to: checkpoint.last_version,
            checkpoint,
            rows_total,
            lag_seconds: 0.0,
            state: "Running",
            reason: reloading.get(&entity.logical_name).map(|r| format!("reloading after an incompatible change: {r}")),
        });
    }
    let mut changes = inner.store.subscribe_changes();
    let mut last_status = std::time::Instant::now() - Duration::from_secs(10);
    // Progress not yet in the published status: published at most every STATUS_INTERVAL_MIN,
    // and never left stale while the task idles (the last batch's status would otherwise
    // show a lag until the next commit or `idle_wait`).
    let mut unpublished = false;
    loop {
        if *stopped.borrow() {
            return Interruption::Stopped;
        }
        changes.borrow_and_update();
        let before: Vec<i64> = progress.iter().map(|p| p.caught_up_to).collect();
        let mut worked = false;
        for p in progress.iter_mut() {
            match step(inner, target, definition, p).await {
                Ok(did) => worked |= did,
                Err(i) => return i,
            }
        }
        if let Err(i) = retry_failures(inner, target, record, definition, &progress).await {
            return i;
        }
        unpublished |= worked || progress.iter().zip(&before).any(|(p, b)| p.caught_up_to != *b);
        let since = last_status.elapsed();
        if (unpublished && since >= STATUS_INTERVAL_MIN) || since >= Duration::from_secs(1) {
            publish_status(inner, record, &definition.name, &mut progress).await;
            last_status = std::time::Instant::now();
            unpublished = false;
        }
        if !worked {
            let wait = if unpublished { STATUS_INTERVAL_MIN } else { inner.settings.idle_wait };
            tokio::select! {
                _ = changes.changed() => {}
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

pub(super) fn change_type(row: &StoredRow) -> &'static str {
    if row.created_at == row.modified_at { "New" } else { "Update" }
}

/// Copies the next chunk, or applies the next batch of changes, of one entity.
async fn step(
    inner: &Arc<Inner>,
    target: &Target,
    definition: &ProfileDefinition,
    p: &mut EntityProgress,
) -> Result<bool, Interruption> {
    let store = &inner.store;
    let mut next = p.checkpoint.clone();
    let (batch, kind) = match p.checkpoint.phase {
        Phase::Initial => {
            let after = p.checkpoint.after_key.as_deref().and_then(|json| {
                let (company, key): (Option<String>, Vec<String>) = serde_json::from_str(json).ok()?;
                RowKey::from_texts(&p.entity, company, &key)
            });
            let query = RowQuery {
                scope: CompanyScope::All,
                filter: None,
                order: Vec::new(),
                after,
                offset: 0,
                limit: inner.settings.chunk_rows as u64,
            };
            let rows = store.query(&p.entity, &query).await?;
            next.rows_copied += rows.len() as i64;
            if rows.len() < inner.settings.chunk_rows {
                next.phase = Phase::Delta;
                next.after_key = None;
                next.last_version = p.checkpoint.snapshot_version;
            } else if let Some(last) = rows.last() {
                next.after_key = Some(serde_json::to_string(&last.key(&p.entity).to_texts()).expect("key serializes"));
            }
            (Batch { upserts: rows, deletes: Vec::new() }, "Trigger Initial Export")
        }
        Phase::Delta => {
            let changes = store
                .changes_since(&p.entity, &CompanyScope::All, p.checkpoint.last_version, inner.settings.batch_changes)
                .await?;
            if changes.rows.is_empty() && changes.deleted.is_empty() {
                p.caught_up_to = p.caught_up_to.max(changes.through_version);
                p.lag_seconds = 0.0;
                return Ok(false);
            }
            let oldest = changes
                .rows
                .iter()
                .map(|r| r.modified_at)
                .chain(changes.deleted.iter().map(|t| t.deleted_at))
                .min()
                .unwrap_or_else(Utc::now);
            p.lag_seconds = (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0;
            next.last_version = changes.through_version;
            (Batch { upserts: changes.rows, deletes: changes.deleted }, "")
        }
    };
    let applied = batch.upserts.len() + batch.deletes.len();
    let was_initial = p.checkpoint.phase == Phase::Initial;
    apply_isolating(inner, target, definition, &p.entity, &p.checkpoint, batch, &next, kind).await?;
    metrics::counter!(METRIC_ROWS_APPLIED, "profile" => definition.name.clone(), "entity" => p.entity.logical_name.clone())
        .increment(applied as u64);
    if next.phase == Phase::Delta && p.checkpoint.phase == Phase::Initial {
        tracing::info!(profile = %definition.name, entity = %p.entity.logical_name, rows = next.rows_copied, "initial copy done; following changes");
        p.reason = None;
    }
    p.caught_up_to = p.caught_up_to.max(next.last_version);
    p.checkpoint = next;
    // Every initial-copy step is progress, the last (possibly empty) chunk included.
    Ok(applied > 0 || was_initial)
}
