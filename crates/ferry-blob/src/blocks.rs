//! Blobs assembled from staged blocks, as Azure's Put Block and Put Block List do it.
//!
//! Block `id` of blob `key` is kept as the blob `staged-blocks/<h>/<hex(id)>`, where `<h>` is the
//! first 32 hex digits of SHA-256(`key`): one folder (prefix) per blob, whatever its key's length.
//! A commit streams the listed blocks, in list order, into the blob (one put, with the put's
//! guarantees: a failed commit leaves the old blob), then removes the blob's whole folder — the
//! uncommitted blocks too, as Azure discards them. Blocks of uploads that never commit stay until
//! [`BlobStore::remove_stale_blocks`] sweeps them (ferry keeps no committed block list, so a later
//! commit can only name blocks staged since the last one).

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::{Backend, BlobError, BlobInfo, BlobStore, Listed, validate_key};

/// Where staged blocks live in the store. Keys under it are not blobs of their own: they are
/// refused as blob keys by the block operations (and blob URLs are never signed for them).
pub const STAGED_BLOCKS_PREFIX: &str = "staged-blocks";
/// The longest block id, in bytes (Azure's limit, before base64).
pub const MAX_BLOCK_ID_BYTES: usize = 64;

impl BlobStore {
    /// Stages block `block_id` (1 to [`MAX_BLOCK_ID_BYTES`] bytes) of blob `blob_key`, streaming
    /// `body` in with the guarantees and limit of [`put_stream`](Self::put_stream). Staging an id
    /// again replaces the block. The blob itself does not change until
    /// [`commit_blocks`](Self::commit_blocks).
    pub async fn put_block<S, E>(
        &self,
        blob_key: &str,
        block_id: &[u8],
        body: S,
        max_bytes: u64,
    ) -> Result<BlobInfo, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        validate_blob_key(blob_key)?;
        validate_block_id(block_id)?;
        let key = block_key(blob_key, block_id);
        self.put_checked(&key, body.map_err(|e| BlobError::Body(e.to_string())), max_bytes).await
    }

    /// Makes blob `blob_key` the concatenation of the staged blocks `block_ids` (in this order; an
    /// id may repeat), streamed block by block, then removes every block staged for it. Fails with
    /// [`BlobError::InvalidBlockList`] if an id was not staged and [`BlobError::TooLarge`] if the
    /// blocks add up to more than `max_bytes`, both before writing anything.
    pub async fn commit_blocks(
        &self,
        blob_key: &str,
        block_ids: &[Vec<u8>],
        max_bytes: u64,
    ) -> Result<BlobInfo, BlobError> {
        validate_blob_key(blob_key)?;
        let folder = block_folder(blob_key);
        let staged: HashMap<String, u64> =
            self.list(&folder).await?.into_iter().map(|listed| (listed.key, listed.size)).collect();
        let mut keys = Vec::with_capacity(block_ids.len());
        let mut total = 0u64;
        for id in block_ids {
            validate_block_id(id)?;
            let key = block_key(blob_key, id);
            let Some(size) = staged.get(&key) else {
                return Err(BlobError::InvalidBlockList(format!("block {} was not staged", hex(id))));
            };
            total = total.saturating_add(*size);
            keys.push(key);
        }
        if total > max_bytes {
            return Err(BlobError::TooLarge { limit: max_bytes });
        }
        let info = self.put_checked(blob_key, concatenation(self.clone(), keys), max_bytes).await?;
        if let Err(e) = self.remove_folder(&folder).await {
            tracing::warn!(key = blob_key, error = %e, "could not remove the staged blocks of a committed blob; the stale-block sweep will");
        }
        Ok(info)
    }

    /// Removes every staged block last written before `older_than` (blocks of uploads that were
    /// abandoned, or whose blob was committed by a node that could not remove them); answers how
    /// many. Pass a time older than the longest write-URL lifetime, so no upload still under way
    /// loses a block.
    pub async fn remove_stale_blocks(&self, older_than: DateTime<Utc>) -> Result<usize, BlobError> {
        let mut removed = 0;
        for listed in self.list(STAGED_BLOCKS_PREFIX).await? {
            if listed.last_modified < older_than && self.delete(&listed.key).await? {
                removed += 1;
            }
        }
        if let Backend::Local(local) = &*self.backend {
            local.remove_empty_folders(STAGED_BLOCKS_PREFIX, older_than).await?;
        }
        if removed > 0 {
            tracing::info!(removed, "removed stale staged blocks");
        }
        Ok(removed)
    }

    /// Every object under folder `prefix` (a key without a trailing `/`), at any depth.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        validate_key(prefix)?;
        match &*self.backend {
            Backend::Local(local) => local.list(prefix).await,
            Backend::S3(s3) => s3.list(prefix).await,
        }
    }

    /// Removes folder `prefix` and everything in it.
    async fn remove_folder(&self, prefix: &str) -> Result<(), BlobError> {
        validate_key(prefix)?;
        match &*self.backend {
            Backend::Local(local) => local.remove_folder(prefix).await,
            Backend::S3(s3) => s3.remove_folder(prefix).await,
        }
    }
}

/// The blobs `keys` one after the other, each opened when the one before has ended. (A boxed
/// stream, so the future that sends it stays `Send` for callers such as HTTP handlers.)
fn concatenation(store: BlobStore, keys: Vec<String>) -> BoxStream<'static, Result<Bytes, BlobError>> {
    futures::stream::iter(keys)
        .then(move |key| {
            let store = store.clone();
            async move { store.get_stream(&key).await }
        })
        .try_flatten()
        .boxed()
}

/// A blob key blocks may be staged for: a valid key outside [`STAGED_BLOCKS_PREFIX`].
fn validate_blob_key(key: &str) -> Result<(), BlobError> {
    validate_key(key)?;
    if key == STAGED_BLOCKS_PREFIX || key.starts_with(&format!("{STAGED_BLOCKS_PREFIX}/")) {
        return Err(BlobError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

fn validate_block_id(id: &[u8]) -> Result<(), BlobError> {
    if id.is_empty() || id.len() > MAX_BLOCK_ID_BYTES {
        return Err(BlobError::InvalidBlockList(format!(
            "a block id must be 1 to {MAX_BLOCK_ID_BYTES} bytes, not {}",
            id.len()
        )));
    }
    Ok(())
}

/// The folder of blob `blob_key`'s staged blocks.
fn block_folder(blob_key: &str) -> String {
    let digest = Sha256::digest(blob_key.as_bytes());
    format!("{STAGED_BLOCKS_PREFIX}/{}", hex(&digest[..16]))
}

fn block_key(blob_key: &str, block_id: &[u8]) -> String {
    format!("{}/{}", block_folder(blob_key), hex(block_id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keys_are_valid_keys_in_one_folder_per_blob() {
        let long_key = format!("dmf/{}", "a".repeat(800));
        for blob in ["dmf/x/y.zip", long_key.as_str()] {
            let key = block_key(blob, &[0xff; MAX_BLOCK_ID_BYTES]);
            assert!(validate_key(&key).is_ok(), "{key}");
            assert!(key.starts_with(&format!("{}/", block_folder(blob))));
            assert_eq!(key.len(), STAGED_BLOCKS_PREFIX.len() + 1 + 32 + 1 + 2 * MAX_BLOCK_ID_BYTES);
        }
        assert_ne!(block_folder("a/b"), block_folder("a/c"));
    }

    #[test]
    fn staged_blocks_are_not_blob_keys() {
        assert!(validate_blob_key("dmf/a/b").is_ok());
        for bad in ["staged-blocks", "staged-blocks/x/y", "../x", ""] {
            assert!(matches!(validate_blob_key(bad), Err(BlobError::InvalidKey(_))), "{bad}");
        }
        assert!(validate_blob_key("staged-blocksx/y").is_ok());
    }

    #[test]
    fn block_ids_are_bounded() {
        assert!(validate_block_id(&[0]).is_ok());
        assert!(validate_block_id(&[0; MAX_BLOCK_ID_BYTES]).is_ok());
        assert!(validate_block_id(&[]).is_err());
        assert!(validate_block_id(&[0; MAX_BLOCK_ID_BYTES + 1]).is_err());
    }
}
