//! What every part of the import needs: the store, the blob store, the catalog and the settings.

use ferry_blob::BlobStore;
use ferry_formats::Limits;
use ferry_model::Catalog;
use ferry_store::Store;
use ferry_xslt::XsltRunner;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the import service, with defaults a fresh install runs well on.
#[derive(Clone)]
pub struct ImportSettings {
    /// Messages imported at once on this node (different lanes).
    pub workers: usize,
    /// How long a claim lasts without a heartbeat; heartbeats come every third of it.
    pub lease: Duration,
    /// How often idle workers look for work they were not woken for (leases that expired,
    /// retries and recurrences that came due).
    pub poll_interval: Duration,
    /// Runs a message may start before it is given up as poison (runs that died, or transient
    /// failures in a row).
    pub max_attempts: i64,
    /// Largest enqueue body.
    pub max_enqueue_bytes: u64,
    /// A re-sent enqueue (same job, external identifier and content) within this window answers
    /// the original message.
    pub dedupe_window: Duration,
    /// Rows per write transaction.
    pub batch_rows: usize,
    /// Company used when neither the enqueue nor the job names one.
    pub default_company: String,
    pub limits: Limits,
    /// Where scratch files go (extracted package entries, transforms, rejected rows).
    pub work_dir: PathBuf,
    /// Runs XSLT transforms in a worker process; `None` disables XSLT.
    pub xslt: Option<Arc<XsltRunner>>,
}

impl ImportSettings {
    pub fn new(work_dir: PathBuf) -> ImportSettings {
        ImportSettings {
            workers: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_attempts: 5,
            max_enqueue_bytes: 2 << 30,
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            batch_rows: 5000,
            default_company: "dat".into(),
            limits: Limits::default(),
            work_dir,
            xslt: None,
        }
    }
}

pub(crate) struct ImportContext {
    pub store: Store,
    pub blobs: BlobStore,
    pub catalog: Arc<Catalog>,
    pub settings: ImportSettings,
}
