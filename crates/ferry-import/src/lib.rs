//! ferry's recurring import. Applications enqueue files and data packages against a recurring
//! job; ferry stores each durably, queues it in *lanes* (an entity, or entity and company) and
//! imports it — one message per lane at a time, lanes in enqueue order, different lanes in
//! parallel — through parse → map → stage/validate → set-based upsert, recording every rejected
//! row.
//!
//! Layout: `definition.rs` data projects and recurring jobs; `mapping.rs` and `validate.rs` the
//! pure column mapping and row staging; `status.rs` the states and their protocol spellings;
//! `pipeline/` one message's import (`source.rs` reading on a blocking thread, `entity.rs`
//! writing); `worker.rs` the node's workers; `service.rs` the façade the API and CLI call.

mod context;
mod definition;
mod error;
mod mapping;
mod pipeline;
mod service;
mod status;
mod validate;
mod worker;

pub use context::ImportSettings;
pub use definition::{
    AuthorizedApp, DefinitionError, Job, JobKind, Operation, Project, ProjectEntity, normalize_activity_id,
};
pub use error::ImportError;
pub use pipeline::{rejected_blob_key, staging_blob_key};
pub use service::{EnqueueRequest, EnqueueResult, ImportService, MessageView, Origin};
pub use status::{EntityState, MessageState, Stage};
pub use worker::WorkerHandle;
