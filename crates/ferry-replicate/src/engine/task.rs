//! One profile task: connect, create or evolve the schema, copy each entity in key order as of
//! one change version, then follow every change, pausing while the target is unreachable.

use super::Inner;
use super::failures::{apply_isolating, retry_failures};
use super::status::{EntityReport, METRIC_ROWS_APPLIED, Reports, mark_paused, start_publisher};
use crate::secrets::stored_target_spec;
use ferry_domain::{
    ChangeType, Checkpoint, CompanyScope, KeyText, Phase, ProfileDefinition, ProfileState, RetryPolicy, RowKey,
    StoredRow, SyncState,
};
use ferry_model::Entity;
use ferry_store::{RowQuery, Store, StoreError, StoredProfile};
use ferry_target::{Batch, Target, TargetError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shortest time between two status reports of a profile task.
const STATUS_INTERVAL_MIN: Duration = Duration::from_millis(200);

/// In-memory progress of one entity, mirrored to the store for status queries.
pub(super) struct EntityProgress {
    pub(super) entity: Arc<Entity>,
    pub(super) checkpoint: Checkpoint,
    pub(super) rows_total: i64,
    pub(super) caught_up_to: i64,
    pub(super) lag_seconds: f64,
    pub(super) state: SyncState,
    pub(super) reason: Option<String>,
    /// The initial copy's next chunk, being read while the current one is written.
    pub(super) next_chunk: Option<NextChunk>,
}

/// A chunk of the initial copy read ahead on a task of its own: at most one per entity, so a
/// profile holds at most two chunks (the one being written and the next).
pub(super) struct NextChunk {
    /// The key the chunk starts after.
    after: KeyText,
    read: JoinHandle<Result<Vec<StoredRow>, StoreError>>,
}

impl NextChunk {
    fn start(store: Store, entity: Arc<Entity>, after: KeyText, limit: usize) -> NextChunk {
        let key = after.clone();
        let read = tokio::spawn(async move { read_chunk(&store, &entity, Some(&key), limit).await });
        NextChunk { after, read }
    }
}

impl Drop for NextChunk {
    /// A chunk nobody will write (the task stopped or lost its target) is not read on.
    fn drop(&mut self) {
        self.read.abort();
    }
}

/// Up to `limit` rows of `entity` in key order after `after` (from the first without it).
async fn read_chunk(
    store: &Store,
    entity: &Entity,
    after: Option<&KeyText>,
    limit: usize,
) -> Result<Vec<StoredRow>, StoreError> {
    let query = RowQuery {
        scope: CompanyScope::All,
        filter: None,
        order: Vec::new(),
        after: after.and_then(|key| RowKey::from_text(entity, key)),
        versions: None,
        offset: 0,
        limit: limit as u64,
    };
    store.query(entity, &query).await
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

pub(super) async fn run_profile(inner: Arc<Inner>, stored: StoredProfile, mut stopped: watch::Receiver<bool>) {
    let profile = &stored.profile;
    let entities: Vec<Arc<Entity>> =
        profile.definition.entities.iter().filter_map(|n| inner.catalog.by_any_name(n).cloned()).collect();
    let reconnects = RetryPolicy::new(Duration::from_secs(1), inner.settings.reconnect_max);
    let mut failures_in_a_row = 0;
    loop {
        if *stopped.borrow() {
            return;
        }
        let started = inner.store.clock().now();
        let outcome = run_connected(&inner, &stored, &entities, &mut stopped).await;
        let reason = match outcome {
            Interruption::Stopped => return,
            Interruption::Unreachable(e) => format!("target unreachable: {e}"),
            Interruption::Other(e) => e,
        };
        // A run that lasted is a new outage, not the same one again: start over with a short wait.
        let lasted = (inner.store.clock().now() - started).to_std().unwrap_or_default();
        if lasted >= inner.settings.reconnect_max {
            failures_in_a_row = 0;
        }
        failures_in_a_row += 1;
        let wait = reconnects.delay(failures_in_a_row);
        tracing::warn!(profile = %profile.definition.name, reason = %reason, retry_in_secs = wait.as_secs(), "replication paused");
        let note = format!("{reason} (retrying in {} s)", wait.as_secs());
        mark_paused(&inner.store, &profile.id, &entities, &note).await;
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
    stored: &StoredProfile,
    entities: &[Arc<Entity>],
    stopped: &mut watch::Receiver<bool>,
) -> Interruption {
    let spec = match stored_target_spec(&inner.master, stored, &inner.env) {
        Ok(spec) => spec,
        Err(e) => return Interruption::Other(e.to_string()),
    };
    let target = match Target::connect(&spec, inner.store.clock().clone()).await {
        Ok(t) => t,
        Err(e) => return target_failure(e),
    };
    let (status, publisher) = start_publisher(inner.clone(), stored.profile.clone(), STATUS_INTERVAL_MIN);
    let result = follow(inner, &target, stored, entities, stopped, &status).await;
    target.close().await;
    // The last progress is written before anything marks the profile paused.
    drop(status);
    let _ = publisher.await;
    result
}

async fn follow(
    inner: &Arc<Inner>,
    target: &Target,
    stored: &StoredProfile,
    entities: &[Arc<Entity>],
    stopped: &mut watch::Receiver<bool>,
    status: &watch::Sender<Reports>,
) -> Interruption {
    let profile = &stored.profile;
    let definition = &profile.definition;
    let state: ProfileState = profile.state;
    let mut reloading: HashMap<String, String> = HashMap::new();
    if state.replicates_schema() {
        match target.ensure_schema(&inner.catalog, entities).await {
            Ok(changes) => {
                if !changes.tables_created.is_empty()
                    || !changes.columns_added.is_empty()
                    || !changes.columns_widened.is_empty()
                {
                    tracing::info!(profile = %definition.name, created = ?changes.tables_created, added = ?changes.columns_added, widened = ?changes.columns_widened, "target schema updated");
                }
                for (entity_name, reason) in changes.incompatible {
                    let Some(entity) = entities.iter().find(|e| e.logical_name == entity_name) else { continue };
                    tracing::warn!(profile = %definition.name, entity = %entity_name, reason = %reason, "incompatible schema change: reloading the entity");
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
    let checkpoints = match target.load_checkpoints(&profile.id).await {
        Ok(c) => c,
        Err(e) => return target_failure(e),
    };
    let mut progress = Vec::new();
    for entity in entities {
        let checkpoint = match checkpoints.iter().find(|c| c.entity == entity.logical_name) {
            Some(c) => c.clone(),
            None => match inner.store.current_version().await {
                Ok(version) => Checkpoint::start(&profile.id, &entity.logical_name, version),
                Err(e) => return e.into(),
            },
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
            state: SyncState::Running,
            reason: reloading.get(&entity.logical_name).map(|r| format!("reloading after an incompatible change: {r}")),
            next_chunk: None,
        });
    }
    let mut changes = inner.store.subscribe_changes();
    let mut seq = 0;
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
        if let Err(i) = retry_failures(inner, target, profile, &progress).await {
            return i;
        }
        // The status is written by its own task (see `start_publisher`): hand it the progress.
        if seq == 0 || worked || progress.iter().zip(&before).any(|(p, b)| p.caught_up_to != *b) {
            seq += 1;
            status.send_replace(Reports { seq, entities: progress.iter().map(EntityReport::of).collect() });
        }
        if !worked {
            tokio::select! {
                _ = changes.changed() => {}
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(inner.settings.idle_wait) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

/// Copies the next chunk, or applies the next batch of changes, of one entity.
async fn step(
    inner: &Arc<Inner>,
    target: &Target,
    definition: &ProfileDefinition,
    p: &mut EntityProgress,
) -> Result<bool, Interruption> {
    let store = &inner.store;
    let started = std::time::Instant::now();
    let (batch, next, change) = match p.checkpoint.phase {
        Phase::Initial => {
            let chunk_rows = inner.settings.chunk_rows;
            let after = p.checkpoint.after_key.clone();
            let rows = match p.next_chunk.take() {
                Some(mut next) if Some(&next.after) == after.as_ref() => match (&mut next.read).await {
                    Ok(read) => read?,
                    Err(e) => return Err(Interruption::Other(format!("reading the next chunk failed: {e}"))),
                },
                _ => read_chunk(store, &p.entity, after.as_ref(), chunk_rows).await?,
            };
            let last_key = rows.last().map(|r| r.key(&p.entity).to_text());
            // Read the next chunk while this one is written.
            if rows.len() == chunk_rows
                && let Some(key) = &last_key
            {
                p.next_chunk = Some(NextChunk::start(store.clone(), p.entity.clone(), key.clone(), chunk_rows));
            }
            let next = p.checkpoint.after_chunk(rows.len(), chunk_rows, last_key);
            (Batch { upserts: rows, deletes: Vec::new() }, next, Some(ChangeType::InitialExport))
        }
        Phase::Delta => {
            let changes = store
                .changes_since(&p.entity, &CompanyScope::All, p.checkpoint.last_version, inner.settings.batch_changes)
                .await?;
            let now = store.clock().now();
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
                .unwrap_or(now);
            p.lag_seconds = (now - oldest).num_milliseconds().max(0) as f64 / 1000.0;
            let next = p.checkpoint.after_changes(changes.through_version);
            (Batch { upserts: changes.rows, deletes: changes.deleted }, next, None)
        }
    };
    let applied = batch.upserts.len() + batch.deletes.len();
    let was_initial = p.checkpoint.phase == Phase::Initial;
    let read = started.elapsed();
    apply_isolating(inner, target, definition, &p.entity, &p.checkpoint, batch, &next, change).await?;
    tracing::debug!(
        profile = %definition.name,
        entity = %p.entity.logical_name,
        rows = applied,
        read_ms = read.as_secs_f64() * 1e3,
        write_ms = (started.elapsed() - read).as_secs_f64() * 1e3,
        "batch applied"
    );
    metrics::counter!(METRIC_ROWS_APPLIED, "profile" => definition.name.clone(), "entity" => p.entity.logical_name.clone())
        .increment(applied as u64);
    if next.phase == Phase::Delta && was_initial {
        tracing::info!(profile = %definition.name, entity = %p.entity.logical_name, rows = next.rows_copied, "initial copy done; following changes");
        p.reason = None;
    }
    p.caught_up_to = p.caught_up_to.max(next.last_version);
    p.checkpoint = next;
    // Every initial-copy step is progress, the last (possibly empty) chunk included.
    Ok(applied > 0 || was_initial)
}
