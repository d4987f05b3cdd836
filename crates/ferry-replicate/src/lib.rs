//! Replication (data export): profiles that keep a customer's SQL database in sync with
//! ferry's entities — schema, initial copy, then every change — shaped like the Dynamics 365
//! Data Export Service.
//!
//! `service.rs` holds the operations the API and CLI call (CRUD, activate, test/validate,
//! failures, resync, status, verify); `engine/` the runner that copies and follows changes, one
//! node per profile; `secrets.rs` what both share: a stored profile's connection string,
//! encrypted at rest and resolved into a target. The target databases themselves are
//! `ferry-target`'s; the profile rules are `ferry-domain`'s.

mod engine;
mod secrets;
mod service;
mod verify;

pub use engine::{EngineSettings, ReplicationEngine};
pub use service::{EntityStatus, Replication, ReplicationError};
pub use verify::{EntityVerify, VerifyReport};
