//! ferry's vocabulary and its rules, shared by every other crate: messages and their states
//! (`message.rs`), data projects (`project.rs`), recurring jobs (`job.rs`), what an enqueue
//! becomes (`enqueue.rs`), how a run ends (`outcome.rs`), data formats (`format.rs`), entity rows
//! and changes (`rows.rs`), replication profiles (`profile.rs`) and progress (`replication.rs`),
//! the services' settings (`settings.rs`: import, blobs, the HTTP edge's throttle limits), the
//! clock (`clock.rs`) and the retry policy (`retry.rs`).
//!
//! This crate is pure: no I/O, no async, no SQL, and no serde — none of its types is a wire or
//! storage format. Each edge writes its own shape: the store its persisted JSON and SQL literals,
//! `ferry-api` the REST, OData and Dynamics spellings, the configuration its file format. The
//! wall clock is read in one place, [`SystemClock`].

mod clock;
mod enqueue;
mod format;
mod job;
mod message;
mod outcome;
mod profile;
mod project;
mod recurrence;
mod replication;
mod retry;
mod rows;
mod settings;

pub use clock::{Clock, FakeClock, SharedClock, SystemClock, earlier, later};
pub use enqueue::{CompanyChoice, EnqueuePlan, Lane, enqueue_company, plan_enqueue};
pub use format::{DataFormat, UnknownFormat};
pub use job::{AuthorizedApp, Job, JobKind, normalize_activity_id, normalize_message_id};
pub use message::{
    Delivery, DeliveryState, EntityResult, EntityState, ErrorFilter, ErrorRecord, ExecutionParameters, ExecutionStatus,
    LanePosition, Message, MessageFilter, MessageOutcome, MessageState, NewMessage, ProducedFile, QueueStats,
    RowCounters, Stage, Watermark,
};
pub use outcome::{EntityRun, Verdict, entity_states, rolls_back, verdict};
pub use profile::{
    ConnectionString, DeclaredProfile, PROFILE_NAME_MAX, Problem, Profile, ProfileDefinition, ProfileState,
    RETRY_COUNT_DEFAULT, RETRY_COUNT_MAX, RETRY_INTERVAL_SECS_DEFAULT, RETRY_INTERVAL_SECS_MAX, SCHEMA_NAME_LEN_MAX,
    TABLE_PREFIX_LEN_MAX, TargetKind, validate as validate_profile, validate_identifier_part,
};
pub use project::{
    DEFAULT_FORMAT, Operation, PROJECT_NAME_MAX, Project, ProjectEntity, RefreshMode, ResolvedEntity, StylesheetCheck,
};
pub use recurrence::Recurrence;
pub use replication::{ChangeType, Checkpoint, EntitySync, FailureLogEntry, Phase, ReplicationFailure, SyncState};
pub use retry::RetryPolicy;
pub use rows::{Changes, CompanyScope, KeyText, NewRow, RowKey, StoredRow, Tombstone};
pub use settings::{
    BlobStoreConfig, ExportSettings, ImportSettings, IntegrationSettings, RetentionSettings, S3_REGION_DEFAULT,
    S3Config, Secret, ThrottleLimits, ThrottleSettings,
};

/// Where a definition (a data project, a recurring job) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Declared in the configuration file (written again at every start).
    Config,
    /// Created through the admin API or the command line.
    Api,
}

/// Why a definition or a request is invalid; the message names the item and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DefinitionError(pub String);
