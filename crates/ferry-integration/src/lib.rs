//! ferry's recurring import. Applications enqueue files and data packages against a recurring
//! job; ferry stores each durably, queues it in *lanes* (an entity, or entity and company) and
//! imports it — one message per lane at a time, lanes in enqueue order, different lanes in
//! parallel — through parse → map → stage/validate → set-based upsert, recording every rejected
//! row.
//!
//! Layout: `mapping.rs` and `validate.rs` the pure column mapping and row staging; `pipeline/`
//! one message's import (`source.rs` reading on a blocking thread, `entity.rs` writing,
//! `spill.rs` the validated rows of an all-or-nothing import kept on disk until they are applied
//! in one transaction); `worker.rs` the node's workers; `service.rs` the façade the API and CLI
//! call. Projects, jobs, messages and their rules are `ferry-domain`'s.

mod context;
mod error;
mod mapping;
mod pipeline;
mod service;
mod validate;
mod worker;

pub use context::IntegrationRuntime;
pub use error::IntegrationError;
pub use pipeline::{rejected_blob_key, staging_blob_key};
pub use service::{EnqueueRequest, EnqueueResult, IntegrationService, MessageView};
pub use worker::WorkerHandle;
