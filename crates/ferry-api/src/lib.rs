//! ferry's HTTP edge: the OData entity API (F&O `/data`, Dataverse `/api/data/v9.2`), the F&O
//! metadata service, OAuth 2.0 token and discovery endpoints, operability endpoints, and the
//! recurring import: the connector (`/api/connector/*`), the DMF actions on
//! `DataManagementDefinitionGroups`, message views (`/api/messages`) and project/job
//! administration (`/api/admin/*`); and signed blob URLs (`/blobs/*`, `blob_api/`) that speak
//! the Azure Blob REST API.
//!
//! This is the only crate that knows the wire format: domain types are turned into JSON and
//! XML here, by hand. Every error leaves through one table (`error.rs`).

mod auth;
mod blob_api;
mod connector;
mod delivery;
mod dmf;
mod download;
mod error;
mod exporter;
mod import_admin;
mod messages;
mod oauth;
mod odata;
mod ops;
mod routes;
mod throttle;
pub mod wire;

pub use blob_api::{BlobPermissions, BlobUrlError, BlobUrls, dmf_blob_key};
pub use error::ApiError;
pub use ops::install_metrics;

use ferry_auth::TokenService;
use ferry_model::Catalog;
use ferry_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Settings of the HTTP edge.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// The URL clients reach ferry at (issuer of tokens; base of absolute links it must make).
    pub public_url: String,
    pub tenant_id: String,
    /// Largest page of entity rows one response holds.
    pub max_page_size: u32,
    /// Company for callers whose app declares none.
    pub default_company: String,
    /// Per-client-app request limits.
    pub throttle: ferry_domain::ThrottleSettings,
}

struct StateInner {
    store: Store,
    catalog: Arc<Catalog>,
    tokens: Arc<TokenService>,
    settings: ApiSettings,
    metrics: PrometheusHandle,
    replication: Option<Arc<ferry_replicate::Replication>>,
    import: Option<ferry_integration::IntegrationService>,
    throttle: throttle::Throttle,
    blob_urls: Option<blob_api::BlobUrls>,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<StateInner>,
}

impl ApiState {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        tokens: Arc<TokenService>,
        settings: ApiSettings,
        metrics: PrometheusHandle,
    ) -> ApiState {
        let throttle = throttle::Throttle::new(settings.throttle.clone());
        ApiState {
            inner: Arc::new(StateInner {
                store,
                catalog,
                tokens,
                settings,
                metrics,
                replication: None,
                import: None,
                throttle,
                blob_urls: None,
            }),
        }
    }

    /// Serves the data-export (replication) API from `replication`. Call before cloning.
    pub fn with_replication(mut self, replication: Arc<ferry_replicate::Replication>) -> ApiState {
        Arc::get_mut(&mut self.inner).expect("with_replication is called before the state is shared").replication =
            Some(replication);
        self
    }

    /// Serves the recurring import (connector, DMF actions, messages, project and job
    /// administration) from `import`. Call before cloning.
    pub fn with_import(mut self, import: ferry_integration::IntegrationService) -> ApiState {
        Arc::get_mut(&mut self.inner).expect("with_import is called before the state is shared").import = Some(import);
        self
    }

    /// Serves signed blob URLs (`/blobs/…`) with `blob_urls`, which also signs the URLs the DMF
    /// package actions hand out. Call before cloning.
    pub fn with_blob_urls(mut self, blob_urls: blob_api::BlobUrls) -> ApiState {
        Arc::get_mut(&mut self.inner).expect("with_blob_urls is called before the state is shared").blob_urls =
            Some(blob_urls);
        self
    }

    /// The blob URL signer, or the 503 an action that hands out blob URLs answers without one.
    fn blob_urls(&self) -> error::ApiResult<&blob_api::BlobUrls> {
        self.inner
            .blob_urls
            .as_ref()
            .ok_or_else(|| ApiError::new(error::ErrorKind::Unavailable, "blob URLs are not enabled on this server"))
    }

    /// The import service, or the 503 every import route answers when this server has none.
    fn import(&self) -> error::ApiResult<&ferry_integration::IntegrationService> {
        self.inner.import.as_ref().ok_or_else(|| {
            ApiError::new(error::ErrorKind::Unavailable, "recurring import is not enabled on this server")
        })
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
    fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }
    fn tokens(&self) -> &TokenService {
        &self.inner.tokens
    }
    fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }
    fn throttle(&self) -> &throttle::Throttle {
        &self.inner.throttle
    }
}

/// The whole HTTP application.
pub fn app(state: ApiState) -> axum::Router {
    routes::build(state).0
}

/// The OpenAPI document of ferry's own endpoints, generated from the route table.
pub fn openapi_document(state: ApiState) -> serde_json::Value {
    let (_, docs) = routes::build(state.clone());
    routes::openapi(&docs, &state.inner.settings.public_url)
}
