//! `[import]`: the recurring-import service — how many messages a node imports at once, its
//! leases and polling, retries, size limits and defaults. A plain section (see `sections.rs`):
//! it deserializes into [`ImportConfig`] with defaults and then checks its ranges.

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{Validate, company, in_range};

/// Default `max_enqueue_bytes`: 2 GiB.
pub const IMPORT_MAX_ENQUEUE_BYTES_DEFAULT: u64 = 2 << 30;
/// Default `max_field_bytes`: 1 MiB.
pub const IMPORT_MAX_FIELD_BYTES_DEFAULT: u64 = 1 << 20;
/// The largest `max_field_bytes`: the readers' record limit (16 MiB).
const MAX_FIELD_BYTES_MAX: u64 = 16 << 20;

/// `[import]`: the recurring-import service of this node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct ImportConfig {
    /// Messages imported at once on this node (different lanes), 1..=64.
    pub workers: u32,
    /// How long a worker's claim on a message lasts without a heartbeat, 5..=3600 seconds.
    pub lease_secs: u64,
    /// How often idle workers look for work nobody woke them for, 10..=60000 ms.
    pub poll_interval_ms: u64,
    /// Runs a message may start before it is given up, 1..=100.
    pub max_attempts: u32,
    /// Largest enqueued file or package, in bytes (at least 1).
    pub max_enqueue_bytes: u64,
    /// A re-sent enqueue (same job, external id and content) within this many hours answers the
    /// original message, 0..=8760 (0: never deduplicate).
    pub dedupe_window_hours: u64,
    /// Rows per write transaction, 100..=100000.
    pub batch_rows: u32,
    /// Company for enqueues that name none and whose job names none; lower-case.
    pub default_company: String,
    /// Whether XSLT transforms run (each in a worker process).
    pub xslt: bool,
    /// Longest single field of an imported file, 1..=16777216 bytes.
    pub max_field_bytes: u64,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_secs: 30,
            poll_interval_ms: 1000,
            max_attempts: 5,
            max_enqueue_bytes: IMPORT_MAX_ENQUEUE_BYTES_DEFAULT,
            dedupe_window_hours: 168,
            batch_rows: 5000,
            default_company: "dat".to_owned(),
            xslt: true,
            max_field_bytes: IMPORT_MAX_FIELD_BYTES_DEFAULT,
        }
    }
}

impl Validate for ImportConfig {
    fn validate(&mut self, at: &KeyPath) -> Result<(), Problem> {
        in_range(self.workers, 1..=64, &at.key("workers"))?;
        in_range(self.lease_secs, 5..=3600, &at.key("lease_secs"))?;
        in_range(self.poll_interval_ms, 10..=60_000, &at.key("poll_interval_ms"))?;
        in_range(self.max_attempts, 1..=100, &at.key("max_attempts"))?;
        if self.max_enqueue_bytes == 0 {
            return Err(Problem::new(&at.key("max_enqueue_bytes"), "must be at least 1 byte"));
        }
        in_range(self.dedupe_window_hours, 0..=8760, &at.key("dedupe_window_hours"))?;
        in_range(self.batch_rows, 100..=100_000, &at.key("batch_rows"))?;
        self.default_company = company(&self.default_company, &at.key("default_company"))?;
        in_range(self.max_field_bytes, 1..=MAX_FIELD_BYTES_MAX, &at.key("max_field_bytes"))?;
        Ok(())
    }
}
