//! ferry's own blob URLs: signed, expiring URLs that speak enough of the Azure Blob REST API for
//! the Azure Storage SDKs and for the DMF clients (RIS, Logic Apps, scripts) that upload packages
//! to the URL `GetAzureWriteUrl` answers and download from `GetExportedPackageUrl` and the
//! error-file actions. The signature is the credential, as with an Azure SAS: no bearer token.
//!
//! **Mapping.** `{public_url}/blobs/{key}` is the blob store's blob `{key}`, one to one. Keys
//! handed out have at least two segments (e.g. `dmf/<id>/<name>`, see [`dmf_blob_key`]), so a
//! URL path has at least three: the Azure SDKs read a non-Azure host "IP-style" (account, then
//! container, then blob) or take the last two segments as container and blob, and either way
//! rebuild the same path. Staged blocks (`staged-blocks/…`, `ferry_blob::STAGED_BLOCKS_PREFIX`)
//! are never signed.
//!
//! [`BlobUrls`] signs URLs (`sas.rs`); `endpoint.rs` serves them (Put Blob, Put Block, Put
//! Block List, Get Blob with ranges, Get Blob Properties) from the [`BlobStore`]; errors leave in
//! Azure's XML shape (`azure_error.rs`); block lists are read by `block_list.rs`.

mod azure_error;
mod block_list;
mod endpoint;
mod sas;

pub(crate) use endpoint::handle;
pub use sas::BlobPermissions;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_blob::{BlobStore, STAGED_BLOCKS_PREFIX};
use ferry_domain::SharedClock;
use ferry_secrets::{MacKey, MasterKey};

/// The purpose the URL-signing key is derived from the master key for.
const KEY_PURPOSE: &str = "blob-urls";
/// The longest file-name segment [`dmf_blob_key`] keeps.
const MAX_NAME_LEN: usize = 200;

/// Signs blob URLs and holds what their endpoint serves them from. Cheap to clone.
#[derive(Clone)]
pub struct BlobUrls {
    inner: Arc<Inner>,
}

struct Inner {
    /// `{public_url}/blobs/`.
    base: String,
    mac: MacKey,
    blobs: BlobStore,
    clock: SharedClock,
    max_blob_bytes: u64,
}

impl std::fmt::Debug for BlobUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobUrls").field("base", &self.inner.base).field("blobs", &self.inner.blobs).finish()
    }
}

/// Why a URL was not signed or not accepted. Messages never show a signature.
#[derive(Debug, thiserror::Error)]
pub enum BlobUrlError {
    /// The key cannot be a blob URL's: not a blob store key, fewer than two segments, or a
    /// staged block's.
    #[error("{0:?} cannot be a blob URL's key (it needs two or more [A-Za-z0-9._-] segments)")]
    InvalidKey(String),
    /// The URL is not one of this server's blob URLs.
    #[error("not a blob URL of this server (they start with {0})")]
    NotABlobUrl(String),
    /// The URL's signature is missing, wrong or expired.
    #[error("the blob URL is not valid: {0}")]
    Denied(String),
}

impl BlobUrls {
    /// Blob URLs under `public_url` for the blobs of `blobs`, signed with a key derived from
    /// `master` (so every node sharing the master key accepts every node's URLs), with times
    /// from `clock`; a blob (or a block) holds at most `max_blob_bytes`.
    pub fn new(
        public_url: &str,
        master: &MasterKey,
        blobs: BlobStore,
        clock: SharedClock,
        max_blob_bytes: u64,
    ) -> BlobUrls {
        let base = format!("{}/blobs/", public_url.trim_end_matches('/'));
        let mac = MacKey::new(&master.derive_key(KEY_PURPOSE));
        BlobUrls { inner: Arc::new(Inner { base, mac, blobs, clock, max_blob_bytes }) }
    }

    /// The absolute URL of blob `blob_key`, allowing `permissions` until `expires_at` (at whole
    /// seconds): `{public_url}/blobs/{blob_key}?sv=…&sr=b&sp=r|rw&se=…&sig=…`. The blob need not
    /// exist yet (a write URL is handed out before the upload).
    pub fn sign(
        &self,
        blob_key: &str,
        permissions: BlobPermissions,
        expires_at: DateTime<Utc>,
    ) -> Result<String, BlobUrlError> {
        check_url_key(blob_key)?;
        let query = sas::signed_query(&self.inner.mac, blob_key, permissions, expires_at);
        Ok(format!("{}{blob_key}?{query}", self.inner.base))
    }

    /// [`sign`](Self::sign) with an expiry `lifetime` from now (by the server's clock).
    pub fn sign_for(
        &self,
        blob_key: &str,
        permissions: BlobPermissions,
        lifetime: Duration,
    ) -> Result<String, BlobUrlError> {
        self.sign(blob_key, permissions, ferry_domain::later(self.now(), lifetime))
    }

    /// The blob key of `url`, one of this server's blob URLs with a valid, unexpired signature
    /// (e.g. the `packageUrl` a client passes back to `ImportFromPackage`).
    pub fn blob_key_of(&self, url: &str) -> Result<String, BlobUrlError> {
        let not_ours = || BlobUrlError::NotABlobUrl(self.inner.base.clone());
        let rest = url.strip_prefix(&self.inner.base).ok_or_else(not_ours)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let key = percent_encoding::percent_decode_str(path).decode_utf8().map_err(|_| not_ours())?.into_owned();
        check_url_key(&key)?;
        let uri: axum::http::Uri = format!("/?{query}").parse().map_err(|_| not_ours())?;
        let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).map_err(|_| not_ours())?.0;
        sas::verify(&self.inner.mac, &key, &query, self.now()).map_err(|d| BlobUrlError::Denied(d.message()))?;
        Ok(key)
    }

    /// The blob store the URLs' blobs live in.
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// The most bytes one blob (and one block) may hold.
    pub fn max_blob_bytes(&self) -> u64 {
        self.inner.max_blob_bytes
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn mac(&self) -> &MacKey {
        &self.inner.mac
    }
}

/// The key `GetAzureWriteUrl` can hand out for `unique_file_name` under blob id `blob_id`:
/// `dmf/<blob id>/<name>`, the name cut to 200 characters, every character outside
/// `[A-Za-z0-9._-]` (and a leading dot, and `..`) replaced by `_`, `blob` if nothing is left.
/// Clients reuse names (one sends the all-zero GUID every time), so the id keeps keys apart.
pub fn dmf_blob_key(blob_id: uuid::Uuid, unique_file_name: &str) -> String {
    let mut name: String = unique_file_name
        .chars()
        .take(MAX_NAME_LEN)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    while name.contains("..") {
        name = name.replace("..", "._");
    }
    if name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    if name.is_empty() {
        name.push_str("blob");
    }
    format!("dmf/{}/{name}", blob_id.hyphenated())
}

/// A key blob URLs may name: a blob store key of two or more segments, not a staged block's.
fn check_url_key(key: &str) -> Result<(), BlobUrlError> {
    let staged = key.split('/').next() == Some(STAGED_BLOCKS_PREFIX);
    if ferry_blob::validate_key(key).is_err() || !key.contains('/') || staged {
        return Err(BlobUrlError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
