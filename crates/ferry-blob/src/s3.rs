//! The S3 backend (AWS or any S3-compatible server) over `object_store`. Blob `a/b` is the object
//! `<prefix>/a/b`. A put buffers up to one part; a smaller body goes up in one PUT, a larger one as
//! a multipart upload with a bounded number of parts in flight, aborted on any failure (also when
//! the put is cancelled). S3 objects appear only when their upload completes, so a failed put
//! leaves no object. A blob's ETag and last-modified time are the object's own.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayloadMut,
    RetryConfig, WriteMultipart,
};
use tokio::io::AsyncWriteExt;

use crate::{
    BlobError, BlobInfo, BlobProperties, BlobRead, ByteRange, Listed, LocalBlob, Meter, check_if_match, validate_key,
};
use ferry_domain::S3Config;

/// Size of a multipart part, and the body size from which a put goes multipart. S3 needs at
/// least 5 MiB per part and allows 10,000 parts, so the largest blob is about 78 GiB.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once per put. Memory per put stays under `(PARTS_IN_FLIGHT + 1) * PART_SIZE`
/// plus one body chunk.
const PARTS_IN_FLIGHT: usize = 2;
/// The longest prefix accepted (keys are at most 900 bytes, S3 object names 1024).
const MAX_PREFIX_LEN: usize = 100;

pub(crate) struct S3Store {
    store: AmazonS3,
    bucket: String,
    /// Where the server is, for messages: the endpoint URL or the AWS region.
    location: String,
    /// `""` or `"<prefix>/"`.
    prefix: String,
}

impl S3Store {
    /// Builds the client and checks the bucket answers. Credentials not in the config come from
    /// the usual AWS sources (`AWS_*` variables, web identity, instance metadata).
    pub(crate) async fn open(config: &S3Config) -> Result<S3Store, BlobError> {
        let S3Config { bucket, endpoint, region, access_key_id, secret_access_key, prefix, allow_http } = config;
        let location = match endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("AWS region {region}"),
        };
        let prefix = match prefix.as_deref().map(|p| p.trim_matches('/')) {
            None | Some("") => String::new(),
            Some(p) if p.len() <= MAX_PREFIX_LEN && validate_key(p).is_ok() => format!("{p}/"),
            Some(p) => {
                return Err(BlobError::Config(format!(
                    "S3 prefix {p:?} is not a relative path of [A-Za-z0-9._-] segments (at most {MAX_PREFIX_LEN} bytes)"
                )));
            }
        };

        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 5, retry_timeout: Duration::from_secs(60) };
        // Client options first: `with_allow_http` writes into them, `with_client_options` replaces them.
        let mut builder = AmazonS3Builder::from_env()
            .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(5)))
            .with_allow_http(*allow_http)
            .with_bucket_name(bucket)
            .with_region(region)
            .with_retry(retry);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (access_key_id, secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder.with_access_key_id(id).with_secret_access_key(secret.expose())
            }
            (None, None) => {}
            _ => {
                return Err(BlobError::Config(format!(
                    "S3 bucket {bucket} at {location}: access_key_id and secret_access_key must be set together"
                )));
            }
        }
        let store = builder.build().map_err(|e| BlobError::Config(format!("S3 bucket {bucket} at {location}: {e}")))?;
        let s3 = S3Store { store, bucket: bucket.clone(), location, prefix };
        s3.check_reachable().await?;
        Ok(s3)
    }

    /// Lists (at most one page) under the prefix: fails if the server, the bucket or our access is
    /// missing.
    async fn check_reachable(&self) -> Result<(), BlobError> {
        let prefix = ObjectPath::from(self.prefix.trim_end_matches('/'));
        let first = self.store.list(Some(&prefix)).next().await;
        let Some(Err(e)) = first else { return Ok(()) };
        let what = format!("S3 bucket {} at {} is not usable", self.bucket, self.location);
        // object_store reports a listing's 404 as a generic error; S3's error code tells.
        if matches!(e, object_store::Error::NotFound { .. }) || e.to_string().contains("NoSuchBucket") {
            return Err(BlobError::Config(format!("{what}: the bucket does not exist")));
        }
        Err(match store_error("", e) {
            BlobError::Unavailable(e) => BlobError::Unavailable(format!("{what}: {e}")),
            other => BlobError::Config(format!("{what}: {other}")),
        })
    }

    pub(crate) fn describe(&self) -> String {
        let mut text = format!("S3 bucket {} at {}", self.bucket, self.location);
        if !self.prefix.is_empty() {
            text.push_str(&format!(" under {}", self.prefix));
        }
        text
    }

    fn path_of(&self, key: &str) -> ObjectPath {
        // Keys and prefix are validated: plain segments that need no encoding.
        ObjectPath::from(format!("{}{key}", self.prefix))
    }

    pub(crate) async fn put<S>(&self, key: &str, mut body: S, mut meter: Meter) -> Result<BlobInfo, BlobError>
    where
        S: Stream<Item = Result<Bytes, BlobError>> + Send + Unpin,
    {
        let path = self.path_of(key);
        let mut pending = PutPayloadMut::new();
        let mut multipart: Option<Multipart> = None;
        let streamed: Result<(), BlobError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                meter.add(&chunk)?;
                if let Some(upload) = multipart.as_mut() {
                    upload.put(key, chunk).await?;
                    continue;
                }
                pending.push(chunk);
                if pending.content_length() >= PART_SIZE {
                    let upload = self.store.put_multipart(&path).await.map_err(|e| store_error(key, e))?;
                    let mut upload = Multipart(Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)));
                    for chunk in std::mem::take(&mut pending).freeze() {
                        upload.put(key, chunk).await?;
                    }
                    multipart = Some(upload);
                }
            }
            Ok(())
        }
        .await;

        match (streamed, multipart) {
            (Ok(()), None) => {
                self.store.put(&path, pending.freeze()).await.map_err(|e| store_error(key, e))?;
            }
            // `finish` aborts the upload itself if completing fails.
            (Ok(()), Some(mut upload)) => {
                let writer = upload.0.take().expect("multipart upload is open until finished");
                writer.finish().await.map_err(|e| store_error(key, e))?;
            }
            (Err(e), None) => return Err(e),
            (Err(e), Some(upload)) => {
                upload.abort(key).await;
                return Err(e);
            }
        }
        Ok(meter.finish(key))
    }

    pub(crate) async fn local_copy(&self, key: &str) -> Result<LocalBlob, BlobError> {
        let mut stream = self.get_stream(key).await?;
        // Made before the file, so that a failed download removes what it wrote.
        let blob = LocalBlob::temporary(std::env::temp_dir().join(format!("ferry-blob-{}", uuid::Uuid::new_v4())));
        let io = |e| crate::io_error(blob.path(), e);
        let mut file =
            tokio::fs::OpenOptions::new().write(true).create_new(true).open(blob.path()).await.map_err(io)?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(blob)
    }

    pub(crate) async fn get_stream(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let result = self.store.get(&self.path_of(key)).await.map_err(|e| store_error(key, e))?;
        let key = key.to_owned();
        Ok(result.into_stream().map_err(move |e| store_error(&key, e)).boxed())
    }

    /// A HEAD for the properties, then a GET of the span that only succeeds while the object's
    /// ETag is the one the HEAD saw, so properties and bytes are of one version. If a put replaced
    /// the object in between and the caller set no condition of its own, it starts over once.
    pub(crate) async fn read(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<BlobRead, BlobError> {
        let path = self.path_of(key);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let meta = self.store.head(&path).await.map_err(|e| store_error(key, e))?;
            let properties = properties_of(&meta);
            check_if_match(if_match, &properties.etag)?;
            let span = match range {
                Some(range) => range.resolve(properties.size)?,
                None => 0..properties.size,
            };
            let options = GetOptions {
                if_match: meta.e_tag.clone(),
                // An empty object has no range to ask for.
                range: (span.start < span.end).then(|| GetRange::Bounded(span.clone())),
                ..GetOptions::default()
            };
            match self.store.get_opts(&path, options).await {
                Ok(result) => {
                    let key = key.to_owned();
                    let stream = result.into_stream().map_err(move |e| store_error(&key, e)).boxed();
                    return Ok(BlobRead { properties, span, stream });
                }
                Err(object_store::Error::Precondition { .. }) if if_match.is_some() => {
                    return Err(BlobError::ConditionNotMet);
                }
                Err(object_store::Error::Precondition { .. }) if attempts < 2 => continue,
                Err(e) => return Err(store_error(key, e)),
            }
        }
    }

    pub(crate) async fn properties(&self, key: &str) -> Result<Option<BlobProperties>, BlobError> {
        match self.store.head(&self.path_of(key)).await {
            Ok(meta) => Ok(Some(properties_of(&meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(key, e)),
        }
    }

    /// Every object under folder `prefix`.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        let metas: Vec<ObjectMeta> =
            self.store.list(Some(&self.path_of(prefix))).try_collect().await.map_err(|e| store_error(prefix, e))?;
        Ok(metas
            .into_iter()
            .map(|meta| Listed {
                key: meta.location.as_ref().strip_prefix(&self.prefix).unwrap_or(meta.location.as_ref()).to_owned(),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .collect())
    }

    pub(crate) async fn remove_folder(&self, prefix: &str) -> Result<(), BlobError> {
        let locations = self.store.list(Some(&self.path_of(prefix))).map_ok(|meta| meta.location).boxed();
        self.store.delete_stream(locations).try_collect::<Vec<_>>().await.map_err(|e| store_error(prefix, e))?;
        Ok(())
    }

    pub(crate) async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&self.path_of(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(key, e)),
        }
    }

    pub(crate) async fn list_older_than(
        &self,
        prefix: &str,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        let mut listing = self.store.list(Some(&self.path_of(prefix.trim_end_matches('/'))));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_error(prefix, e))?;
            if meta.last_modified < cutoff {
                let name = meta.location.to_string();
                found.push(name.strip_prefix(&self.prefix).unwrap_or(&name).to_owned());
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// S3 deletes succeed whether or not the object exists, so a HEAD first tells which it was.
    pub(crate) async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        if self.size(key).await?.is_none() {
            return Ok(false);
        }
        self.store.delete(&self.path_of(key)).await.map_err(|e| store_error(key, e))?;
        Ok(true)
    }
}

/// An object's properties: its ETag quoted (S3 sends it quoted already), or, from a server that
/// sends none, one made of its time and size.
fn properties_of(meta: &ObjectMeta) -> BlobProperties {
    let etag = match meta.e_tag.as_deref() {
        Some(tag) if tag.starts_with('"') || tag.starts_with("W/") => tag.to_owned(),
        Some(tag) => format!("\"{tag}\""),
        None => format!("\"{:x}-{:x}\"", meta.last_modified.timestamp_micros(), meta.size),
    };
    BlobProperties { size: meta.size, etag, last_modified: meta.last_modified }
}

/// An open multipart upload; aborted in the background if dropped unfinished (a cancelled put).
struct Multipart(Option<WriteMultipart>);

impl Multipart {
    /// Queues a chunk, first waiting until fewer than [`PARTS_IN_FLIGHT`] parts are uploading.
    async fn put(&mut self, key: &str, chunk: Bytes) -> Result<(), BlobError> {
        let writer = self.0.as_mut().expect("multipart upload is open until finished");
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| store_error(key, e))?;
        writer.put(chunk);
        Ok(())
    }

    async fn abort(mut self, key: &str) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(key, error = %e, "could not abort a multipart upload; S3 keeps its parts until a lifecycle rule removes them");
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "could not abort a cancelled multipart upload");
                }
            });
        }
    }
}

/// Maps an object_store error: missing → `NotFound`; refused (credentials, permissions,
/// unsupported) → `Config`; the rest (network, server errors, after object_store's own retries)
/// → `Unavailable`.
fn store_error(key: &str, e: object_store::Error) -> BlobError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => BlobError::NotFound(key.to_owned()),
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. } => BlobError::Config(e.to_string()),
        e => BlobError::Unavailable(e.to_string()),
    }
}
