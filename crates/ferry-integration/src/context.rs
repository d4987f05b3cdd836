//! What every part of the import needs: the store, the blob store, the catalog, the settings,
//! and what the node provides (a scratch directory, the XSLT worker).

use ferry_blob::BlobStore;
use ferry_domain::ImportSettings;
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

pub(crate) struct ImportContext {
    pub store: Store,
    pub blobs: BlobStore,
    pub catalog: Arc<Catalog>,
    pub settings: ImportSettings,
    pub limits: Limits,
    pub runtime: IntegrationRuntime,
}

impl ImportContext {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        catalog: Arc<Catalog>,
        settings: ImportSettings,
        runtime: IntegrationRuntime,
    ) -> ImportContext {
        let limits = Limits { max_field_bytes: settings.max_field_bytes, ..Limits::default() };
        ImportContext { store, blobs, catalog, settings, limits, runtime }
    }
}
