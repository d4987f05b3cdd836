//! What every part of the recurring integrations needs: the store, the blob store, the catalog,
//! the settings, and what the node provides (a scratch directory, the XSLT worker).

use ferry_blob::BlobStore;
use ferry_domain::{ExportSettings, ImportSettings, IntegrationSettings, RetentionSettings};
use ferry_formats::Limits;
use ferry_model::Catalog;
use ferry_store::Store;
use ferry_xslt::XsltRunner;
use std::path::PathBuf;
use std::sync::Arc;

/// What the node running the import provides besides its settings.
#[derive(Clone, Debug)]
pub struct IntegrationRuntime {
    /// Where scratch files go (extracted package entries, transforms, rejected rows, spills).
    pub work_dir: PathBuf,
    /// Runs XSLT transforms in a worker process, or why this server runs none (turned off, or
    /// libxslt is missing): the reason messages that need a transform fail with.
    pub xslt: Result<Arc<XsltRunner>, String>,
}

pub(crate) struct IntegrationContext {
    pub store: Store,
    pub blobs: BlobStore,
    pub catalog: Arc<Catalog>,
    /// The import settings (workers, leases and polling serve exports too).
    pub settings: ImportSettings,
    pub export: ExportSettings,
    pub retention: RetentionSettings,
    pub limits: Limits,
    pub runtime: IntegrationRuntime,
}

impl IntegrationContext {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        catalog: Arc<Catalog>,
        settings: IntegrationSettings,
        runtime: IntegrationRuntime,
    ) -> IntegrationContext {
        let IntegrationSettings { import, export, retention } = settings;
        let limits = Limits { max_field_bytes: import.max_field_bytes, ..Limits::default() };
        IntegrationContext { store, blobs, catalog, settings: import, export, retention, limits, runtime }
    }
}
