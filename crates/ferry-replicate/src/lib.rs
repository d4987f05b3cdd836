//! Replication (data export): profiles that keep a customer's SQL database in sync with
//! ferry's entities — schema, initial copy, then every change — shaped like the Dynamics 365
//! Data Export Service.
//!
//! `target/` holds one module per target dialect with the same anatomy (types, DDL, batched
//! version-guarded upsert, delete, identifier quoting); `profile.rs` the pure profile rules;
//! `service.rs` the operations the API and CLI call; `engine/` the runner that copies and
//! follows changes, one node per profile.

mod engine;
pub mod profile;
mod service;
pub mod target;

pub use engine::{EngineSettings, ReplicationEngine};
pub use profile::{Problem, ProfileDefinition, ProfileState};
pub use service::{EntityStatus, Profile, Replication, ReplicationError, VerifyReport, failure_log_text};
