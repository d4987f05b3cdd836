//! ferry's recurring integrations, both directions. Applications enqueue files and data packages
//! against a recurring import job (or call `ImportFromPackage`); ferry stores each durably,
//! queues it in *lanes* (an entity, or entity and company) and imports it — one message per lane
//! at a time, lanes in enqueue order, different lanes in parallel — through parse → map →
//! stage/validate → set-based upsert, recording every rejected row. Recurring export jobs (and
//! `ExportToPackage`) run exports of a project — every row, or what changed since the last run —
//! into a file or a data package that clients dequeue, download and acknowledge (or fetch by
//! execution id).
//!
//! Layout: `import/` one message's import (`source.rs` reading on a blocking thread, `mapping.rs`
//! and `validate.rs` the pure column mapping and row staging, `entity.rs` writing, `spill.rs`
//! and `pending.rs` the all-or-nothing apply); `export/` one export's run (`rows.rs` reading
//! rows and changes, `mod.rs` writing files and packages) and the scheduler of recurring exports
//! (`schedule.rs`); `run.rs` what a run of either kind shares (lease, progress, errors); `files.rs` message
//! files, small ones in the database and the rest in the blob store;
//! `worker.rs` the node's workers and background tasks; `service/` the façade the API and CLI
//! call. Projects, jobs, messages and their rules are `ferry-domain`'s.

mod context;
mod error;
mod export;
mod files;
mod import;
mod run;
mod service;
mod worker;

pub use context::IntegrationRuntime;
pub use error::IntegrationError;
pub use import::{rejected_blob_key, staging_blob_key};
pub use service::{
    Dequeued, EnqueueRequest, EnqueueResult, IntegrationService, MessageView, PackageExport, PackageImport,
    PackageSource, RetentionReport,
};
pub use worker::WorkerHandle;
