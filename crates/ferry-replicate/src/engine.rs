//! The replication engine. A supervisor takes a lease per active profile (so each profile runs
//! on exactly one node, and another node takes over when that node dies) and runs one task per
//! leased profile. A profile task creates or evolves the target schema, copies each entity in
//! key-ordered chunks as of one change version, then follows every change after it — woken by
//! commits, not by a timer. Each batch and its checkpoint commit in one target transaction.

use crate::profile::{ProfileDefinition, ProfileState};
use crate::service::{decode_profile, target_spec};
use crate::target::{ApplyError, Batch, Checkpoint, Phase, Target, TargetError};
use chrono::{DateTime, Utc};
use ferry_auth::MasterKey;
use ferry_model::{Catalog, Entity};
use ferry_store::{
    CompanyScope, EntityStatusRecord, FailureRecord, ProfileRecord, RowKey, RowQuery, Store, StoreError, StoredRow,
    Tombstone,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub(crate) const METRIC_LAG_VERSIONS: &str = "ferry_replication_lag_versions";
pub(crate) const METRIC_LAG_SECONDS: &str = "ferry_replication_lag_seconds";
pub(crate) const METRIC_FAILED_RECORDS: &str = "ferry_replication_failed_records";
pub(crate) const METRIC_ROWS_APPLIED: &str = "ferry_replication_rows_applied_total";
/// The shortest time between two status reports of a profile task.
const STATUS_INTERVAL_MIN: Duration = Duration::from_millis(200);

/// Limits and timings of the engine.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// This node's name in leases.
    pub node_id: String,
    pub lease_ttl: Duration,
    /// Rows per initial-copy chunk.
    pub chunk_rows: usize,
    /// Changes per delta batch.
    pub batch_changes: usize,
    /// Longest wait between looks for work when no commit wakes the task.
    pub idle_wait: Duration,
    /// Longest pause before reconnecting to a target that is down.
    pub reconnect_max: Duration,
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        EngineSettings {
            node_id: uuid::Uuid::new_v4().to_string(),
            lease_ttl: Duration::from_secs(15),
            chunk_rows: 5_000,
            batch_changes: 5_000,
            idle_wait: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

struct Running {
    updated_at: DateTime<Utc>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    store: Store,
    catalog: Arc<Catalog>,
    master: Arc<MasterKey>,
    env: Arc<Vec<(String, String)>>,
    settings: EngineSettings,
    profiles_changed: Notify,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    running: Mutex<HashMap<String, Running>>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// Handle to the engine; cheap to clone.
#[derive(Clone)]
pub struct ReplicationEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReplicationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationEngine").field("node_id", &self.inner.settings.node_id).finish_non_exhaustive()
    }
}

fn lease_name(profile_id: &str) -> String {
    format!("replication:{profile_id}")
}

impl ReplicationEngine {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        master: Arc<MasterKey>,
        env: Vec<(String, String)>,
        settings: EngineSettings,
    ) -> ReplicationEngine {
        ReplicationEngine {
            inner: Arc::new(Inner {
                store,
                catalog,
                master,
                env: Arc::new(env),
                settings,
                profiles_changed: Notify::new(),
                wake: Notify::new(),
                shutdown: watch::channel(false).0,
                running: Mutex::new(HashMap::new()),
                supervisor: Mutex::new(None),
            }),
        }
    }

    /// Starts the supervisor (once).
    pub fn start(&self) {
        let mut supervisor = self.inner.supervisor.lock().expect("supervisor lock");
        if supervisor.is_none() {
            *supervisor = Some(tokio::spawn(supervise(self.inner.clone())));
        }
    }

    /// Profiles were created, changed or (de)activated: look again now.
    pub fn profiles_changed(&self) {
        self.inner.profiles_changed.notify_one();
    }

    /// Wakes every profile task (e.g. to retry failed records now).
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Stops every profile task after its current batch and releases its lease.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.profiles_changed.notify_one();
        let supervisor = self.inner.supervisor.lock().expect("supervisor lock").take();
        if let Some(task) = supervisor {
            let _ = task.await;
        }
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if let Err(e) = reconcile(&inner).await {
            tracing::warn!(error = ?e, "replication supervisor could not read profiles");
        }
        tokio::select! {
            _ = inner.profiles_changed.notified() => {}
            _ = tokio::time::sleep(inner.settings.lease_ttl / 3) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    let running: Vec<(String, Running)> = inner.running.lock().expect("running lock").drain().collect();
    for (id, run) in running {
        let _ = run.stop.send(true);
        let _ = run.task.await;
        let _ = inner.store.release_lease(&lease_name(&id), &inner.settings.node_id).await;
    }
}

/// Starts, restarts and stops profile tasks to match the stored profiles and leases.
async fn reconcile(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let profiles = inner.store.list_profiles().await?;
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(inner.settings.lease_ttl).unwrap_or_default();
    let mut wanted: HashMap<String, ProfileRecord> = HashMap::new();
    for record in profiles {
        let active = ProfileState::parse(&record.state).is_some_and(|s| s != ProfileState::Inactive);
        if active && inner.store.acquire_lease(&lease_name(&record.id), &inner.settings.node_id, now, now + ttl).await?
        {
            wanted.insert(record.id.clone(), record);
        }
    }
    let mut running = inner.running.lock().expect("running lock");
    let stale: Vec<String> = running
        .iter()
        .filter(|(id, run)| wanted.get(*id).is_none_or(|r| r.updated_at != run.updated_at) || run.task.is_finished())
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        if let Some(run) = running.remove(&id) {
            let _ = run.stop.send(true);
            // The task ends after its current batch; its lease is released below if not wanted.
            if !wanted.contains_key(&id) {
                let store = inner.store.clone();
                let node = inner.settings.node_id.clone();
                tokio::spawn(async move {
                    let _ = run.task.await;
                    let _ = store.release_lease(&lease_name(&id), &node).await;
                });
            }
        }
    }
    for (id, record) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_profile(inner.clone(), record.clone(), stopped));
        running.insert(id, Running { updated_at: record.updated_at, stop, task });
    }
    Ok(())
}

/// In-memory progress of one entity, mirrored to the store for status queries.
struct EntityProgress {
    entity: Arc<Entity>,
    checkpoint: Checkpoint,
    rows_total: i64,
    caught_up_to: i64,
    lag_seconds: f64,
    state: &'static str,
    reason: Option<String>,
}

/// Why a profile task must pause.
enum Interruption {
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

async fn run_profile(inner: Arc<Inner>, record: ProfileRecord, mut stopped: watch::Receiver<bool>) {
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

/// Marks every entity of a profile paused with `reason`, keeping its progress figures.
async fn mark_paused(store: &Store, profile_id: &str, entities: &[Arc<Entity>], reason: &str) {
    let previous = store.replication_status(profile_id).await.unwrap_or_default();
    for entity in entities {
        let status = match previous.iter().find(|s| s.entity == entity.logical_name) {
            Some(old) => EntityStatusRecord {
                state: "Paused".into(),
                reason: Some(reason.into()),
                updated_at: Utc::now(),
                ..old.clone()
            },
            None => EntityStatusRecord {
                profile_id: profile_id.into(),
                entity: entity.logical_name.clone(),
                phase: "InitialSync".into(),
                state: "Paused".into(),
                reason: Some(reason.into()),
                rows_copied: 0,
                rows_total: 0,
                last_version: 0,
                lag_versions: 0,
                lag_seconds: 0.0,
                updated_at: Utc::now(),
            },
        };
        if let Err(e) = store.put_replication_status(&status).await {
            tracing::warn!(error = ?e, "cannot record replication status");
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

fn change_type(row: &StoredRow) -> &'static str {
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
    apply_isolating(inner, target, definition, &p.entity, &p.checkpoint, batch, &next, kind).await?;
    metrics::counter!(METRIC_ROWS_APPLIED, "profile" => definition.name.clone(), "entity" => p.entity.logical_name.clone())
        .increment(applied as u64);
    if next.phase == Phase::Delta && p.checkpoint.phase == Phase::Initial {
        tracing::info!(profile = %definition.name, entity = %p.entity.logical_name, rows = next.rows_copied, "initial copy done; following changes");
        p.reason = None;
    }
    p.caught_up_to = p.caught_up_to.max(next.last_version);
    p.checkpoint = next;
    Ok(applied > 0 || p.checkpoint.phase == Phase::Initial)
}

/// Applies a batch with its checkpoint in one target transaction. When the target rejects the
/// batch, applies each record alone (retrying `RetryCount` times every `RetryInterval`), puts
/// the ones that still fail into the retry set, then moves the checkpoint on.
#[allow(clippy::too_many_arguments)]
async fn apply_isolating(
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
async fn retry_failures(
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

async fn publish_status(inner: &Arc<Inner>, record: &ProfileRecord, name: &str, progress: &mut [EntityProgress]) {
    let current = inner.store.current_version().await.unwrap_or(0);
    let failed = inner.store.pending_replication_failures(&record.id, None, 100_000).await.unwrap_or_default();
    for p in progress.iter_mut() {
        let phase = match p.checkpoint.phase {
            Phase::Initial => "InitialSync",
            Phase::Delta => "DeltaSync",
        };
        let lag_versions = (current - p.caught_up_to.max(p.checkpoint.last_version)).max(0);
        let failed_records = failed.iter().filter(|f| f.entity == p.entity.logical_name).count();
        let labels = [("profile", name.to_string()), ("entity", p.entity.logical_name.clone())];
        metrics::gauge!(METRIC_LAG_VERSIONS, &labels).set(lag_versions as f64);
        metrics::gauge!(METRIC_LAG_SECONDS, &labels).set(p.lag_seconds);
        metrics::gauge!(METRIC_FAILED_RECORDS, &labels).set(failed_records as f64);
        let status = EntityStatusRecord {
            profile_id: record.id.clone(),
            entity: p.entity.logical_name.clone(),
            phase: phase.into(),
            state: p.state.into(),
            reason: p.reason.clone(),
            rows_copied: p.checkpoint.rows_copied,
            rows_total: p.rows_total.max(p.checkpoint.rows_copied),
            last_version: p.caught_up_to.max(p.checkpoint.last_version),
            lag_versions,
            lag_seconds: p.lag_seconds,
            updated_at: Utc::now(),
        };
        if let Err(e) = inner.store.put_replication_status(&status).await {
            tracing::warn!(error = ?e, "cannot record replication status");
        }
    }
}
