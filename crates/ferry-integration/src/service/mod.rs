//! [`IntegrationService`]: what the HTTP edge and the CLI call, and the start of the node's
//! background work. Its parts: definitions of projects and jobs (`definitions.rs`), enqueue and
//! re-runs (`enqueue.rs`), status, errors and files (`status.rs`), the delivery of exports
//! (`delivery.rs`), the package API's executions (`executions.rs`) and cancellation and
//! clean-up (`lifecycle.rs`).

mod definitions;
mod delivery;
mod enqueue;
mod executions;
mod lifecycle;
mod status;

pub use delivery::Dequeued;
pub(crate) use enqueue::export_lane as export_lane_of;
pub use enqueue::{EnqueueRequest, EnqueueResult};
pub use executions::{PackageExport, PackageImport, PackageSource};
pub use lifecycle::RetentionReport;
pub use status::MessageView;

use crate::context::{IntegrationContext, IntegrationRuntime};
use crate::error::IntegrationError;
use crate::worker::{WorkerHandle, start_workers};
use ferry_blob::BlobStore;
use ferry_domain::{ImportSettings, IntegrationSettings, Job, Message, Project};
use ferry_model::Catalog;
use ferry_store::Store;
use std::sync::Arc;

/// The recurring integrations of one node. Cheap to clone.
#[derive(Clone)]
pub struct IntegrationService {
    ctx: Arc<IntegrationContext>,
}

impl std::fmt::Debug for IntegrationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationService").finish_non_exhaustive()
    }
}

impl IntegrationService {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        catalog: Arc<Catalog>,
        settings: IntegrationSettings,
        runtime: IntegrationRuntime,
    ) -> IntegrationService {
        IntegrationService { ctx: Arc::new(IntegrationContext::new(store, blobs, catalog, settings, runtime)) }
    }

    pub(crate) fn from_context(ctx: Arc<IntegrationContext>) -> IntegrationService {
        IntegrationService { ctx }
    }

    pub fn settings(&self) -> &ImportSettings {
        &self.ctx.settings
    }

    /// How long the signed URLs handed out for packages and error files stay valid.
    pub fn url_lifetime(&self) -> std::time::Duration {
        self.ctx.export.url_lifetime
    }

    /// Whether this node runs XSLT transforms.
    pub fn runs_xslt(&self) -> bool {
        self.ctx.runtime.xslt.is_ok()
    }

    /// Starts this node's background work, named `node` in leases: `settings.workers` workers
    /// that import and export messages, the scheduler of recurring exports and the retention
    /// sweep (each of those two on one node at a time).
    pub fn start_workers(&self, node: &str) -> WorkerHandle {
        start_workers(self.ctx.clone(), node)
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.ctx.blobs
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.ctx.catalog
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// The job with this activity id, which `client_id` may use and which is enabled.
    async fn usable_job(&self, activity_id: &str, client_id: &str) -> Result<(Job, Project), IntegrationError> {
        let Some(id) = ferry_domain::normalize_activity_id(activity_id) else {
            return Err(IntegrationError::UnknownJob(activity_id.to_owned()));
        };
        let Some((job, project)) = self.ctx.store.job_with_project(&id).await? else {
            return Err(IntegrationError::UnknownJob(activity_id.to_owned()));
        };
        if !job.authorizes(client_id) {
            return Err(IntegrationError::Unauthorized {
                client_id: client_id.to_owned(),
                activity_id: job.activity_id,
            });
        }
        if !job.enabled {
            return Err(IntegrationError::JobDisabled(job.activity_id));
        }
        let Some(project) = project else {
            return Err(IntegrationError::BadRequest(format!(
                "recurring job {} uses data project '{}', which does not exist",
                job.activity_id, job.project
            )));
        };
        Ok((job, project))
    }

    /// A message by its message or execution id, or the "not found" the status APIs answer.
    async fn known_message(&self, id: &str) -> Result<Message, IntegrationError> {
        let id = ferry_domain::normalize_message_id(id);
        self.ctx.store.get_message(&id).await?.ok_or_else(|| {
            IntegrationError::NotFound(format!("Execution details were not found for execution id: {id}"))
        })
    }
}
