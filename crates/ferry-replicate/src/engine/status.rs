//! Status reports of profile tasks: the per-entity rows in the store and the Prometheus gauges.

use super::Inner;
use super::task::EntityProgress;
use ferry_domain::{EntitySync, Phase, Profile, SyncState};
use ferry_model::Entity;
use ferry_store::Store;
use std::sync::Arc;

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

pub(super) async fn publish_status(inner: &Arc<Inner>, profile: &Profile, progress: &mut [EntityProgress]) {
    let current = inner.store.current_version().await.unwrap_or(0);
    let failed = inner.store.pending_replication_failures(&profile.id, None, 100_000).await.unwrap_or_default();
    let now = inner.store.clock().now();
    for p in progress.iter_mut() {
        let lag_versions = (current - p.caught_up_to.max(p.checkpoint.last_version)).max(0);
        let failed_records = failed.iter().filter(|f| f.entity == p.entity.logical_name).count();
        let labels = [("profile", profile.definition.name.clone()), ("entity", p.entity.logical_name.clone())];
        metrics::gauge!(METRIC_LAG_VERSIONS, &labels).set(lag_versions as f64);
        metrics::gauge!(METRIC_LAG_SECONDS, &labels).set(p.lag_seconds);
        metrics::gauge!(METRIC_FAILED_RECORDS, &labels).set(failed_records as f64);
        let status = EntitySync {
            profile_id: profile.id.clone(),
            entity: p.entity.logical_name.clone(),
            phase: p.checkpoint.phase,
            state: p.state,
            reason: p.reason.clone(),
            rows_copied: p.checkpoint.rows_copied,
            rows_total: p.rows_total.max(p.checkpoint.rows_copied),
            last_version: p.caught_up_to.max(p.checkpoint.last_version),
            lag_versions,
            lag_seconds: p.lag_seconds,
            updated_at: now,
        };
        if let Err(e) = inner.store.put_replication_status(&status).await {
            tracing::warn!(error = ?e, "cannot record replication status");
        }
    }
}
