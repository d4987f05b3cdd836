//! Status reports of profile tasks: the per-entity rows in the store and the Prometheus gauges.

use super::Inner;
use super::task::EntityProgress;
use crate::target::Phase;
use chrono::Utc;
use ferry_model::Entity;
use ferry_store::{EntityStatusRecord, ProfileRecord, Store};
use std::sync::Arc;

pub(super) const METRIC_LAG_VERSIONS: &str = "ferry_replication_lag_versions";
pub(super) const METRIC_LAG_SECONDS: &str = "ferry_replication_lag_seconds";
pub(super) const METRIC_FAILED_RECORDS: &str = "ferry_replication_failed_records";
pub(super) const METRIC_ROWS_APPLIED: &str = "ferry_replication_rows_applied_total";

/// Marks every entity of a profile paused with `reason`, keeping its progress figures.
pub(super) async fn mark_paused(store: &Store, profile_id: &str, entities: &[Arc<Entity>], reason: &str) {
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

pub(super) async fn publish_status(
    inner: &Arc<Inner>,
    record: &ProfileRecord,
    name: &str,
    progress: &mut [EntityProgress],
) {
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
