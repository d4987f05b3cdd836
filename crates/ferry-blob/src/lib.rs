//! Where ferry keeps files: enqueued import files and packages (later exported packages, staging
//! and rejected-rows files). [`BlobStore`] is one small interface over two backends: a local
//! directory (the default, one node) and an S3-compatible object store (several nodes share it).
//!
//! Blobs are written once under a ferry-generated key, streamed in with a size limit and hashed on
//! the way; a put returns only when the blob is durable, and a failed put leaves nothing behind.
//! Readers get a stream (HTTP downloads, whole or a byte range, optionally only while the blob's
//! ETag matches) or a local file (zip, Excel and CSV readers need one).
//!
//! Blobs can also be assembled from staged blocks (`blocks.rs`, the Azure Put Block / Put Block
//! List model): blocks live under [`STAGED_BLOCKS_PREFIX`] until a commit concatenates them into
//! the blob and removes them; [`BlobStore::remove_stale_blocks`] sweeps the ones never committed.

mod blocks;
mod local;
mod s3;

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ferry_domain::BlobStoreConfig;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

/// The longest key accepted (S3's limit, prefix included, is 1024 bytes).
const MAX_KEY_LEN: usize = 900;
/// Read size for files streamed into or out of the store.
const READ_CHUNK: usize = 64 * 1024;

pub use blocks::{MAX_BLOCK_ID_BYTES, STAGED_BLOCKS_PREFIX};

/// The blob store: cheap to clone (one `Arc` inside), shared by every task of a node.
#[derive(Clone)]
pub struct BlobStore {
    backend: Arc<Backend>,
}

enum Backend {
    Local(local::LocalStore),
    S3(s3::S3Store),
}

/// A blob as written: its key, size in bytes and SHA-256 (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// What [`Blobs::put_stream_unless_small`] did with a body.
#[derive(Debug)]
pub enum Stored {
    /// The body was stored as the blob.
    Put(BlobInfo),
    /// The body was small: here it is, not stored.
    Kept { info: BlobInfo, bytes: Vec<u8> },
}

/// What a blob is, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobProperties {
    pub size: u64,
    /// An opaque, quoted entity tag (`"0x…"` locally, S3's own on S3): the same while the blob is
    /// unchanged; a put of other bytes changes it (locally every put does; S3's tag follows the
    /// content).
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// The bytes a read asks for (HTTP `Range: bytes=…` semantics, resolved by [`ByteRange::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b`: bytes `a` to `b`, both included (`b` may pass the end).
    Bounded { first: u64, last: u64 },
    /// `a-`: from byte `a` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The byte span of a blob of `size` bytes this range selects, cut at the end; fails with
    /// [`BlobError::InvalidRange`] when it selects nothing (it starts past the end, or the blob
    /// is empty), as Azure and S3 answer 416 then.
    pub fn resolve(self, size: u64) -> Result<Range<u64>, BlobError> {
        let span = match self {
            ByteRange::Bounded { first, last } if first <= last && first < size => {
                first..size.min(last.saturating_add(1))
            }
            ByteRange::From(first) if first < size => first..size,
            ByteRange::Suffix(n) if n > 0 && size > 0 => size - n.min(size)..size,
            _ => return Err(BlobError::InvalidRange { size }),
        };
        Ok(span)
    }
}

/// A read under way: the blob's properties, the span being sent and the bytes.
pub struct BlobRead {
    pub properties: BlobProperties,
    /// The bytes the stream holds: the whole blob, or the resolved range.
    pub span: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead").field("properties", &self.properties).field("span", &self.span).finish()
    }
}

/// What went wrong in the blob store. Messages name the key or the store, never credentials.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The body was longer than the limit the caller set; nothing was kept.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// No blob has this key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The key is not a relative path of `[A-Za-z0-9._-]` segments (no empty, dot-leading or `..`
    /// segments, at most 900 bytes).
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// The body stream failed (e.g. the client disconnected); nothing was kept.
    #[error("the request body failed: {0}")]
    Body(String),
    /// The store could not be reached or failed on its side; worth retrying later.
    #[error("the blob store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused us for a reason retrying will not fix: a missing bucket, a bad endpoint,
    /// wrong credentials or permissions.
    #[error("the blob store is misconfigured: {0}")]
    Config(String),
    /// The blob's ETag does not match the one the caller required; nothing was read.
    #[error("the blob's ETag does not match the condition")]
    ConditionNotMet,
    /// The requested byte range selects nothing of a blob of `size` bytes.
    #[error("the range is not satisfiable for a blob of {size} bytes")]
    InvalidRange { size: u64 },
    /// A block to commit was never staged (or its id is not a valid block id).
    #[error("invalid block list: {0}")]
    InvalidBlockList(String),
    /// A local file operation failed (the message names the path).
    #[error("blob store I/O error: {0}")]
    Io(#[from] io::Error),
}

impl BlobError {
    /// Whether the same operation may succeed if retried later (store unreachable or overloaded,
    /// a local operation interrupted or timed out).
    pub fn is_transient(&self) -> bool {
        match self {
            BlobError::Unavailable(_) => true,
            BlobError::Io(e) => matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::TimedOut),
            BlobError::TooLarge { .. }
            | BlobError::NotFound(_)
            | BlobError::InvalidKey(_)
            | BlobError::Body(_)
            | BlobError::Config(_)
            | BlobError::ConditionNotMet
            | BlobError::InvalidRange { .. }
            | BlobError::InvalidBlockList(_) => false,
        }
    }
}

impl BlobStore {
    /// Opens the store. Local: creates the directory and clears stale temporary files. S3: checks
    /// that the bucket answers (one list request), failing with an error that names endpoint and
    /// bucket.
    pub async fn open(config: &BlobStoreConfig) -> Result<BlobStore, BlobError> {
        let backend = match config {
            BlobStoreConfig::Local { dir } => Backend::Local(local::LocalStore::open(dir).await?),
            BlobStoreConfig::S3(s3) => Backend::S3(s3::S3Store::open(s3).await?),
        };
        let store = BlobStore { backend: Arc::new(backend) };
        tracing::info!(store = %store.describe(), "blob store opened");
        Ok(store)
    }

    /// Where blobs live, for logs and `ferry` status output: `local directory /x` or
    /// `S3 bucket b at http://…`.
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Local(local) => local.describe(),
            Backend::S3(s3) => s3.describe(),
        }
    }

    /// Streams `body` into blob `key`, hashing (SHA-256) and counting on the way and holding at
    /// most a bounded buffer (a few MiB for S3), never the whole body.
    ///
    /// Fails with [`BlobError::TooLarge`] as soon as more than `max_bytes` arrive and with
    /// [`BlobError::Body`] if the stream yields an error; either way nothing is left behind. Returns
    /// only when the blob is durable: local = temp file fsync'd, renamed into place, directory
    /// fsync'd; S3 = the upload completed. An existing blob with the same key is replaced.
    pub async fn put_stream<S, E>(&self, key: &str, body: S, max_bytes: u64) -> Result<BlobInfo, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let body = body.map_err(|e| BlobError::Body(e.to_string()));
        self.put_checked(key, body, max_bytes).await
    }

    /// Like [`put_stream`](Self::put_stream), except that a body of at most `keep_up_to` bytes
    /// is not stored: it is answered ([`Stored::Kept`], with its size and hash) for the caller to
    /// keep elsewhere (ferry keeps small enqueued files in its database). At most `keep_up_to`
    /// bytes are held in memory.
    pub async fn put_stream_unless_small<S, E>(
        &self,
        key: &str,
        mut body: S,
        max_bytes: u64,
        keep_up_to: usize,
    ) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut head: Vec<Bytes> = Vec::new();
        let mut held = 0usize;
        while held <= keep_up_to {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                    held += chunk.len();
                    head.push(chunk);
                }
                None => {
                    let mut meter = Meter::new(max_bytes);
                    let mut bytes = Vec::with_capacity(held);
                    for chunk in &head {
                        meter.add(chunk)?;
                        bytes.extend_from_slice(chunk);
                    }
                    return Ok(Stored::Kept { info: meter.finish(key), bytes });
                }
            }
        }
        let head = futures::stream::iter(head.into_iter().map(Ok::<Bytes, BlobError>));
        let rest = body.map_err(|e| BlobError::Body(e.to_string()));
        Ok(Stored::Put(self.put_checked(key, head.chain(rest), max_bytes).await?))
    }

    /// Copies the file at `path` into blob `key` (same guarantees as [`put_stream`](Self::put_stream),
    /// without a size limit).
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<BlobInfo, BlobError> {
        validate_key(key)?;
        let file = tokio::fs::File::open(path).await.map_err(|e| io_error(path, e))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).map_err(|e| io_error(path, e));
        self.put_checked(key, body, u64::MAX).await
    }

    /// Moves the file at `path`, which the caller gives up, into blob `key` without reading it:
    /// on the local store it is fsync'd and renamed into place (copied, then removed, when it is
    /// on another filesystem); on S3 it is uploaded and removed. Same durability as
    /// [`put_file`](Self::put_file), no digest: for scratch files nobody checks (the staging and
    /// rejected-rows files of an import), a large one costs a rename instead of a copy and a hash.
    pub async fn put_file_moving(&self, key: &str, path: &Path) -> Result<u64, BlobError> {
        validate_key(key)?;
        let moved = match &*self.backend {
            Backend::Local(local) => local.adopt(key, path).await?,
            Backend::S3(_) => None,
        };
        let size = match moved {
            Some(size) => size,
            None => {
                let size = self.put_file(key, path).await?.size;
                let _ = tokio::fs::remove_file(path).await;
                size
            }
        };
        tracing::debug!(key, size, "blob stored by moving its file");
        Ok(size)
    }

    async fn put_checked<S>(&self, key: &str, body: S, max_bytes: u64) -> Result<BlobInfo, BlobError>
    where
        S: Stream<Item = Result<Bytes, BlobError>> + Send + Unpin,
    {
        validate_key(key)?;
        let meter = Meter::new(max_bytes);
        let info = match &*self.backend {
            Backend::Local(local) => local.put(key, body, meter).await?,
            Backend::S3(s3) => s3.put(key, body, meter).await?,
        };
        tracing::debug!(key, size = info.size, "blob stored");
        Ok(info)
    }

    /// A local file holding the blob, for synchronous readers. Local store: the blob's own file (no
    /// copy; do not write to it). S3: the blob downloaded (streamed) into a temporary file that is
    /// removed when the returned [`LocalBlob`] drops.
    pub async fn local_copy(&self, key: &str) -> Result<LocalBlob, BlobError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.local_copy(key).await,
            Backend::S3(s3) => s3.local_copy(key).await,
        }
    }

    /// The blob's bytes as a stream (for HTTP downloads).
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.get_stream(key).await,
            Backend::S3(s3) => s3.get_stream(key).await,
        }
    }

    /// Reads the blob, or `range` of it, as a stream, only if its ETag matches `if_match` (an
    /// `If-Match` header value: `*` or a list of ETags, quoted or not) when that is given; else
    /// [`BlobError::ConditionNotMet`]. The properties and the bytes are of one version of the
    /// blob, also when another put replaces it meanwhile.
    pub async fn read(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<BlobRead, BlobError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.read(key, range, if_match).await,
            Backend::S3(s3) => s3.read(key, range, if_match).await,
        }
    }

    /// The blob's size, ETag and last-modified time, `None` if there is no such blob.
    pub async fn properties(&self, key: &str) -> Result<Option<BlobProperties>, BlobError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.properties(key).await,
            Backend::S3(s3) => s3.properties(key).await,
        }
    }

    /// The blob's size in bytes, `None` if there is no such blob.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.size(key).await,
            Backend::S3(s3) => s3.size(key).await,
        }
    }

    /// The keys under `prefix` of blobs last written before `cutoff` (at most `limit` of them):
    /// what retention removes.
    pub async fn list_older_than(
        &self,
        prefix: &str,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        validate_key(prefix.trim_end_matches('/'))?;
        match &*self.backend {
            Backend::Local(local) => local.list_older_than(prefix, cutoff, limit).await,
            Backend::S3(s3) => s3.list_older_than(prefix, cutoff, limit).await,
        }
    }

    /// Deletes the blob; `false` if there was none.
    pub async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        validate_key(key)?;
        let deleted = match &*self.backend {
            Backend::Local(local) => local.delete(key).await?,
            Backend::S3(s3) => s3.delete(key).await?,
        };
        tracing::debug!(key, deleted, "blob deleted");
        Ok(deleted)
    }
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlobStore").field(&self.describe()).finish()
    }
}

/// A blob as a local file (see [`BlobStore::local_copy`]). A downloaded copy is removed on drop.
#[derive(Debug)]
pub struct LocalBlob {
    path: PathBuf,
    remove_on_drop: bool,
}

impl LocalBlob {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for reading. The file stays readable through this handle even after the
    /// `LocalBlob` drops (on Unix).
    pub fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    fn shared(path: PathBuf) -> LocalBlob {
        LocalBlob { path, remove_on_drop: false }
    }

    fn temporary(path: PathBuf) -> LocalBlob {
        LocalBlob { path, remove_on_drop: true }
    }
}

impl Drop for LocalBlob {
    fn drop(&mut self) {
        if self.remove_on_drop
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a downloaded blob copy");
        }
    }
}

/// Counts, limits and hashes a body as it streams through.
struct Meter {
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Meter {
    fn new(limit: u64) -> Meter {
        Meter { hasher: Sha256::new(), size: 0, limit }
    }

    /// Takes in the next chunk, or fails with `TooLarge` if it would pass the limit.
    fn add(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.size = size;
        Ok(())
    }

    fn finish(self, key: &str) -> BlobInfo {
        let digest = self.hasher.finalize();
        let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        BlobInfo { key: key.to_owned(), size: self.size, sha256 }
    }
}

/// A stored object found by listing: its key (without the store's prefix), size and time.
#[derive(Clone, Debug)]
struct Listed {
    key: String,
    size: u64,
    last_modified: DateTime<Utc>,
}

/// Whether an `If-Match` header value (`*`, or ETags separated by commas, quoted or not, weak or
/// not) matches `etag`.
pub fn etag_matches(if_match: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    let etag = bare(etag);
    if_match.split(',').map(str::trim).any(|tag| tag == "*" || bare(tag) == etag)
}

/// Fails with [`BlobError::ConditionNotMet`] unless `if_match` (when given) matches `etag`.
fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), BlobError> {
    match if_match {
        Some(condition) if !etag_matches(condition, etag) => Err(BlobError::ConditionNotMet),
        _ => Ok(()),
    }
}

/// Checks a blob key: a relative path of non-empty segments over `[A-Za-z0-9._-]`, no segment
/// starting with a dot (so no `.`, `..` or the local store's `.tmp`), no `..` anywhere, at most
/// 900 bytes. Every operation checks its keys; callers that mint keys can check them first.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && !key.contains("..")
        && key.split('/').all(|segment| !segment.is_empty() && !segment.starts_with('.'));
    if valid { Ok(()) } else { Err(BlobError::InvalidKey(key.to_owned())) }
}

/// An I/O error that names the path it happened on (keeping its kind).
fn io_error(path: &Path, e: io::Error) -> BlobError {
    BlobError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for good in ["messages/2026/11/22/0195a3c4-7f1e-7b2a-9c3d-1e2f3a4b5c6d", "a", "a.b_c-D/e.zip"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for bad in
            ["", "/a", "a/", "a//b", "..", "a/../b", "a/..b", ".tmp/x", "a/.hidden", "a b", "a\\b", "ä", "a?b", &long]
        {
            assert!(matches!(validate_key(bad), Err(BlobError::InvalidKey(_))), "{bad}");
        }
    }

    #[test]
    fn meter_hashes_counts_and_limits() {
        let mut meter = Meter::new(5);
        meter.add(b"ab").unwrap();
        meter.add(b"c").unwrap();
        let info = meter.finish("k");
        assert_eq!(info.size, 3);
        assert_eq!(info.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        let mut meter = Meter::new(5);
        meter.add(b"abcde").unwrap();
        assert!(matches!(meter.add(b"f"), Err(BlobError::TooLarge { limit: 5 })));
    }

    #[test]
    fn ranges_resolve_like_http() {
        let bounded = |first, last| ByteRange::Bounded { first, last };
        assert_eq!(bounded(0, 9).resolve(100).unwrap(), 0..10);
        assert_eq!(bounded(90, 200).resolve(100).unwrap(), 90..100, "cut at the end");
        assert_eq!(bounded(99, 99).resolve(100).unwrap(), 99..100);
        assert_eq!(ByteRange::From(10).resolve(100).unwrap(), 10..100);
        assert_eq!(ByteRange::Suffix(10).resolve(100).unwrap(), 90..100);
        assert_eq!(ByteRange::Suffix(500).resolve(100).unwrap(), 0..100);
        for (range, size) in [
            (bounded(100, 200), 100),
            (bounded(5, 4), 100),
            (bounded(0, 0), 0),
            (ByteRange::From(100), 100),
            (ByteRange::Suffix(0), 100),
            (ByteRange::Suffix(5), 0),
        ] {
            assert!(matches!(range.resolve(size), Err(BlobError::InvalidRange { size: s }) if s == size), "{range:?}");
        }
    }

    #[test]
    fn etags_match_like_if_match() {
        assert!(etag_matches("\"0x1\"", "\"0x1\""));
        assert!(etag_matches("0x1", "\"0x1\""), "unquoted");
        assert!(etag_matches("W/\"0x1\"", "\"0x1\""), "weak");
        assert!(etag_matches("\"0x2\", \"0x1\"", "\"0x1\""), "a list");
        assert!(etag_matches("*", "\"0x1\""));
        assert!(!etag_matches("\"0x2\"", "\"0x1\""));
        assert!(!etag_matches("", "\"0x1\""));
        assert!(check_if_match(None, "\"x\"").is_ok());
        assert!(matches!(check_if_match(Some("\"y\""), "\"x\""), Err(BlobError::ConditionNotMet)));
    }

    #[test]
    fn transient_errors() {
        assert!(BlobError::Unavailable("x".into()).is_transient());
        assert!(!BlobError::Config("x".into()).is_transient());
        assert!(!BlobError::TooLarge { limit: 1 }.is_transient());
        assert!(BlobError::Io(io::Error::from(io::ErrorKind::TimedOut)).is_transient());
        assert!(!BlobError::Io(io::Error::from(io::ErrorKind::PermissionDenied)).is_transient());
    }
}
