//! The files of messages wherever they are: a small one (an enqueued body, a staging file of at
//! most `ferry_store::INLINE_FILE_MAX` bytes) in ferry's database, written with its message; the
//! rest in the blob store. Both are named by the same blob key; the database is asked first.
//! Readers that hand out a blob (downloads, URLs) have a small file copied into the blob store
//! first ([`IntegrationContext::file_in_blob_store`]).

use crate::context::IntegrationContext;
use crate::error::IntegrationError;

/// A message's file, ready for a synchronous reader.
pub(crate) enum LocalFile {
    /// Kept in the database: its bytes.
    Bytes(Vec<u8>),
    /// In the blob store: a local file (the blob's own, or a downloaded copy).
    Blob(ferry_blob::LocalBlob),
}

impl IntegrationContext {
    /// Whether a file is kept under `key`.
    pub(crate) async fn file_exists(&self, key: &str) -> Result<bool, IntegrationError> {
        Ok(self.store.inline_file(key).await?.is_some() || self.blobs.size(key).await?.is_some())
    }

    /// The file under `key`, for a reader on a blocking thread; `inline` is what was read of
    /// the database already, if it was (`Some(None)`: nothing there).
    pub(crate) async fn local_file(
        &self,
        key: &str,
        inline: Option<Option<Vec<u8>>>,
    ) -> Result<LocalFile, crate::run::RunError> {
        let inline = match inline {
            Some(known) => known,
            None => self.store.inline_file(key).await?,
        };
        match inline {
            Some(bytes) => Ok(LocalFile::Bytes(bytes)),
            None => Ok(LocalFile::Blob(self.blobs.local_copy(key).await?)),
        }
    }

    /// Makes sure the file under `key` is in the blob store (copying a small one there from the
    /// database); false when there is no such file.
    pub(crate) async fn file_in_blob_store(&self, key: &str) -> Result<bool, IntegrationError> {
        if self.blobs.size(key).await?.is_some() {
            return Ok(true);
        }
        let Some(bytes) = self.store.inline_file(key).await? else { return Ok(false) };
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
        self.blobs.put_stream(key, body, u64::MAX).await?;
        Ok(true)
    }

    /// Removes the file under `key` from both places; true when there was one.
    pub(crate) async fn delete_file(&self, key: &str) -> Result<bool, IntegrationError> {
        let inline = self.store.delete_inline_file(key).await?;
        let blob = self.blobs.delete(key).await?;
        Ok(inline || blob)
    }
}
