//! The scheduler of recurring exports: on one node at a time (the holder of the
//! `export-scheduler` lease), it queues a run of each enabled export job whose next run time has
//! come, unless the job's previous run still waits or runs (then that occurrence is skipped),
//! and moves the job's next run time to its next occurrence.

use crate::context::IntegrationContext;
use crate::service::export_lane_of;
use ferry_domain::{ExecutionParameters, Job, NewMessage, Operation, Project};
use ferry_store::StoreError;
use std::sync::Arc;

/// The lease the scheduling node holds.
const LEASE: &str = "export-scheduler";

/// One pass: queues the runs that are due. Answers how many it queued.
pub(crate) async fn tick(ctx: &Arc<IntegrationContext>, holder: &str) -> Result<usize, StoreError> {
    if !ctx.store.acquire_lease(LEASE, holder, ctx.settings.lease).await? {
        return Ok(0);
    }
    let now = ctx.store.clock().now();
    let mut queued = 0;
    for (job, _) in ctx.store.list_jobs().await? {
        let Some(schedule) = job.schedule() else { continue };
        if !job.enabled {
            continue;
        }
        let Some((project, _)) = ctx.store.get_project(&job.project).await? else { continue };
        if project.operation != Operation::Export {
            continue;
        }
        let due = match ctx.store.next_export_run(&job.activity_id).await? {
            Some(at) => at,
            None => {
                ctx.store.set_next_export_run(&job.activity_id, schedule.next(now, false)).await?;
                continue;
            }
        };
        if due > now {
            continue;
        }
        if ctx.store.has_pending_export(&job.activity_id).await? {
            tracing::warn!(job = %job.activity_id, "the previous export run has not finished; this occurrence is skipped");
        } else {
            ctx.store.enqueue_message(&run_of(&job, &project, now), None, None).await?;
            queued += 1;
            tracing::info!(job = %job.activity_id, project = %project.name, "recurring export queued");
        }
        ctx.store.set_next_export_run(&job.activity_id, schedule.next(now, false)).await?;
    }
    Ok(queued)
}

/// A run of an export job.
fn run_of(job: &Job, project: &Project, now: chrono::DateTime<chrono::Utc>) -> NewMessage {
    let id = uuid::Uuid::new_v4().to_string();
    NewMessage {
        id: id.clone(),
        execution_id: id,
        activity_id: job.activity_id.clone(),
        project: project.name.clone(),
        operation: Operation::Export,
        kind: job.kind,
        entity: None,
        company: job.company.clone(),
        external_id: None,
        content_hash: String::new(),
        blob_key: String::new(),
        size: 0,
        enqueued_by: "ferry (recurrence)".into(),
        execute: true,
        rerun_of: None,
        parameters: ExecutionParameters::default(),
        lanes: vec![export_lane_of(&job.activity_id, &project.name)],
        not_before: now,
    }
}
