//! Status reports of profile tasks: the per-entity rows in the store and the Prometheus gauges.

use super::Inner;
use super::task::EntityProgress;
use ferry_domain::{EntitySync, Phase, Profile, SyncState};
use ferry_model::Entity;
use ferry_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(super) const METRIC_LAG_VERSIONS: &str = "ferry_replication_lag_versions";
pub(super) const METRIC_LAG_SECONDS: &str = "ferry_replication_lag_seconds";
pub(super) const METRIC_FAILED_RECORDS: &str = "ferry_replication_failed_records";
pub(super) const METRIC_ROWS_APPLIED: &str = "ferry_replication_rows_applied_total";

/// Marks every entity of a profile paused with `reason`, keeping its progress figures.
pub(super) async fn mark_paused(store: &Store, profile_id: &str, entities: &[Arc<Entity>], reason: &str) {
    let previous = store.replication_status(profile_id).await.unwrap_or_default();
    let now = store.clock().now();
    for entity in entities {
        let status = match previous.iter().find(|s| s.entity == entity.logical_name) {
            Some(old) => {
                EntitySync { state: SyncState::Paused, reason: Some(reason.into()), updated_at: now, ..old.clone() }
            }
            None => EntitySync {
                profile_id: profile_id.into(),
                entity: entity.logical_name.clone(),
                phase: Phase::Initial,
                state: SyncState::Paused,
                reason: Some(reason.into()),
                rows_copied: 0,
                rows_total: 0,
                last_version: 0,
                lag_versions: 0,
                lag_seconds: 0.0,
                updated_at: now,
            },
        };
        if let Err(e) = store.put_replication_status(&status).await {
            tracing::warn!(error = ?e, "cannot record replication status");
        }
    }
}

/// One entity's progress as the status reports it: a copy taken by the profile task, so the
/// report is written off the task's path.
#[derive(Clone)]
pub(super) struct EntityReport {
    entity: Arc<Entity>,
    phase: Phase,
    state: SyncState,
    reason: Option<String>,
    rows_copied: i64,
    rows_total: i64,
    last_version: i64,
    lag_seconds: f64,
}

impl EntityReport {
    pub(super) fn of(p: &EntityProgress) -> EntityReport {
        EntityReport {
            entity: p.entity.clone(),
            phase: p.checkpoint.phase,
            state: p.state,
            reason: p.reason.clone(),
            rows_copied: p.checkpoint.rows_copied,
            rows_total: p.rows_total.max(p.checkpoint.rows_copied),
            last_version: p.caught_up_to.max(p.checkpoint.last_version),
            lag_seconds: p.lag_seconds,
        }
    }
}

/// The latest reports of a profile task's entities, numbered so the publisher knows what it
/// wrote.
#[derive(Clone, Default)]
pub(super) struct Reports {
    pub(super) seq: u64,
    pub(super) entities: Vec<EntityReport>,
}

/// Starts the task that writes a profile task's status off its path: whenever the reports
/// change, at most every `interval_min`, and every second besides (the lag follows the
/// source). Status writes queue behind the source's own writers; the profile task never
/// waits for them. The publisher writes what is still unwritten and ends when the sender is
/// dropped.
pub(super) fn start_publisher(
    inner: Arc<Inner>,
    profile: Profile,
    interval_min: Duration,
) -> (watch::Sender<Reports>, JoinHandle<()>) {
    let (sender, mut reports) = watch::channel(Reports::default());
    let task = tokio::spawn(async move {
        let mut written = 0;
        loop {
            let closed = matches!(tokio::time::timeout(Duration::from_secs(1), reports.changed()).await, Ok(Err(_)));
            let latest = reports.borrow_and_update().clone();
            if latest.seq > 0 && !(closed && latest.seq == written) {
                publish_status(&inner, &profile, &latest.entities).await;
                written = latest.seq;
            }
            if closed {
                return;
            }
            tokio::time::sleep(interval_min).await;
        }
    });
    (sender, task)
}

async fn publish_status(inner: &Arc<Inner>, profile: &Profile, reports: &[EntityReport]) {
    let current = inner.store.current_version().await.unwrap_or(0);
    let failed = inner.store.pending_replication_failures(&profile.id, None, 100_000).await.unwrap_or_default();
    let now = inner.store.clock().now();
    for r in reports {
        let lag_versions = (current - r.last_version).max(0);
        let failed_records = failed.iter().filter(|f| f.entity == r.entity.logical_name).count();
        let labels = [("profile", profile.definition.name.clone()), ("entity", r.entity.logical_name.clone())];
        metrics::gauge!(METRIC_LAG_VERSIONS, &labels).set(lag_versions as f64);
        metrics::gauge!(METRIC_LAG_SECONDS, &labels).set(r.lag_seconds);
        metrics::gauge!(METRIC_FAILED_RECORDS, &labels).set(failed_records as f64);
        let status = EntitySync {
            profile_id: profile.id.clone(),
            entity: r.entity.logical_name.clone(),
            phase: r.phase,
            state: r.state,
            reason: r.reason.clone(),
            rows_copied: r.rows_copied,
            rows_total: r.rows_total,
            last_version: r.last_version,
            lag_versions,
            lag_seconds: r.lag_seconds,
            updated_at: now,
        };
        if let Err(e) = inner.store.put_replication_status(&status).await {
            tracing::warn!(error = ?e, "cannot record replication status");
        }
    }
}
