//! The local-directory backend: blob `a/b` is the file `<dir>/a/b`. A put writes
//! `<dir>/.tmp/<uuid>`, fsyncs it, renames it into place and fsyncs the directories it changed,
//! so a blob is either absent or complete, also after a crash. Temporary files left by a crash
//! are removed when the store is next opened. A file the caller gives up (`adopt`) is fsync'd and
//! renamed into place the same way, from wherever it was written.
//!
//! A blob's ETag is a hash of its file's identity and times (inode, size, modification and
//! change times), so it stays the same while the file does and changes with every put, which
//! always writes a new file. Its last-modified time is the file's.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{
    BlobError, BlobInfo, BlobProperties, BlobRead, ByteRange, Listed, LocalBlob, Meter, READ_CHUNK, check_if_match,
    io_error,
};

/// The folder (inside the root) of files being written.
const TMP_DIR: &str = ".tmp";
/// Temporary files younger than this are left alone when opening: another process (an admin
/// command next to the server) may be writing them right now.
const TMP_GRACE: Duration = Duration::from_secs(60 * 60);

pub(crate) struct LocalStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalStore {
    pub(crate) async fn open(dir: &Path) -> Result<LocalStore, BlobError> {
        let root = std::path::absolute(dir).map_err(|e| io_error(dir, e))?;
        let tmp = root.join(TMP_DIR);
        blocking(move || {
            std::fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
            let removed = clean_tmp(&tmp).map_err(|e| io_error(&tmp, e))?;
            if removed > 0 {
                tracing::info!(dir = %tmp.display(), removed, "removed temporary files of unfinished blob writes");
            }
            Ok(LocalStore { root, tmp })
        })
        .await
    }

    pub(crate) fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(crate) async fn put<S>(&self, key: &str, mut body: S, mut meter: Meter) -> Result<BlobInfo, BlobError>
    where
        S: Stream<Item = Result<Bytes, BlobError>> + Send + Unpin,
    {
        // Declared before the file so that on an early return the file is closed, then removed.
        let temp_path = self.tmp.join(uuid::Uuid::new_v4().to_string());
        let mut temp = TempFile { path: temp_path.clone(), armed: true };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .await
            .map_err(|e| io_error(&temp_path, e))?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            meter.add(&chunk)?;
            file.write_all(&chunk).await.map_err(|e| io_error(&temp_path, e))?;
        }
        file.flush().await.map_err(|e| io_error(&temp_path, e))?;
        let file = file.into_std().await;

        let root = self.root.clone();
        let target = self.path_of(key);
        blocking(move || {
            file.sync_all().map_err(|e| io_error(&temp_path, e))?;
            drop(file);
            let created = create_parents(&root, &target)?;
            std::fs::rename(&temp_path, &target).map_err(|e| io_error(&target, e))?;
            // The rename is durable once the target's directory is; a directory created for it is
            // durable once its parent is.
            sync_dir(target.parent().unwrap_or(&root))?;
            for dir in &created {
                sync_dir(dir.parent().unwrap_or(&root))?;
            }
            Ok(())
        })
        .await?;
        temp.disarm();
        Ok(meter.finish(key))
    }

    /// Renames the file at `path` into blob `key` after an fsync (the put's guarantees without
    /// its copy); answers its size, or `None` when it is on another filesystem and was left as is.
    pub(crate) async fn adopt(&self, key: &str, path: &Path) -> Result<Option<u64>, BlobError> {
        let (root, source, target) = (self.root.clone(), path.to_path_buf(), self.path_of(key));
        blocking(move || {
            let file = std::fs::File::open(&source).map_err(|e| io_error(&source, e))?;
            file.sync_all().map_err(|e| io_error(&source, e))?;
            let size = file.metadata().map_err(|e| io_error(&source, e))?.len();
            drop(file);
            let created = create_parents(&root, &target)?;
            match std::fs::rename(&source, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::CrossesDevices => return Ok(None),
                Err(e) => return Err(io_error(&target, e)),
            }
            sync_dir(target.parent().unwrap_or(&root))?;
            for dir in &created {
                sync_dir(dir.parent().unwrap_or(&root))?;
            }
            Ok(Some(size))
        })
        .await
    }

    pub(crate) async fn local_copy(&self, key: &str) -> Result<LocalBlob, BlobError> {
        match self.size(key).await? {
            Some(_) => Ok(LocalBlob::shared(self.path_of(key))),
            None => Err(BlobError::NotFound(key.to_owned())),
        }
    }

    pub(crate) async fn get_stream(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let path = self.path_of(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Err(BlobError::NotFound(key.to_owned())),
            Err(e) => return Err(io_error(&path, e)),
        };
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).map_err(move |e| io_error(&path, e));
        Ok(stream.boxed())
    }

    /// Opens the file first and takes the properties from the open file, so properties, the
    /// ETag check and the bytes are of one version even if a put renames a new file into place.
    pub(crate) async fn read(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<BlobRead, BlobError> {
        let path = self.path_of(key);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Err(BlobError::NotFound(key.to_owned())),
            Err(e) => return Err(io_error(&path, e)),
        };
        let meta = file.metadata().await.map_err(|e| io_error(&path, e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound(key.to_owned()));
        }
        let properties = properties_of(&meta);
        check_if_match(if_match, &properties.etag)?;
        let span = match range {
            Some(range) => range.resolve(properties.size)?,
            None => 0..properties.size,
        };
        file.seek(io::SeekFrom::Start(span.start)).await.map_err(|e| io_error(&path, e))?;
        let reader = file.take(span.end - span.start);
        let stream =
            tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK).map_err(move |e| io_error(&path, e));
        Ok(BlobRead { properties, span, stream: stream.boxed() })
    }

    pub(crate) async fn properties(&self, key: &str) -> Result<Option<BlobProperties>, BlobError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(properties_of(&meta))),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Every file under folder `prefix`, at any depth (files removed meanwhile are skipped).
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        let root = self.root.clone();
        let folder = self.path_of(prefix);
        blocking(move || {
            let mut found = Vec::new();
            list_files(&root, &folder, &mut found)?;
            Ok(found)
        })
        .await
    }

    pub(crate) async fn remove_folder(&self, prefix: &str) -> Result<(), BlobError> {
        let folder = self.path_of(prefix);
        match tokio::fs::remove_dir_all(&folder).await {
            Err(e) if !is_missing(&e) => Err(io_error(&folder, e)),
            _ => Ok(()),
        }
    }

    /// Removes the empty folders directly inside folder `prefix` last changed before
    /// `older_than` (best effort; a folder a put has just created for its file is newer).
    pub(crate) async fn remove_empty_folders(&self, prefix: &str, older_than: DateTime<Utc>) -> Result<(), BlobError> {
        let folder = self.path_of(prefix);
        let older_than = SystemTime::from(older_than);
        blocking(move || {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => return Ok(()),
                Err(e) => return Err(io_error(&folder, e)),
            };
            for entry in entries.flatten() {
                let modified = entry.metadata().ok().filter(|m| m.is_dir()).and_then(|m| m.modified().ok());
                if modified.is_some_and(|modified| modified < older_than) {
                    // Fails (and is meant to) unless the folder is empty.
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

impl LocalStore {
    pub(crate) async fn list_older_than(
        &self,
        prefix: &str,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        let root = self.root.clone();
        let start = self.path_of(prefix.trim_end_matches('/'));
        let cutoff = SystemTime::from(cutoff);
        blocking(move || {
            let mut found = Vec::new();
            let mut dirs = vec![start];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if is_missing(&e) => continue,
                    Err(e) => return Err(io_error(&dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| io_error(&dir, e))?;
                    let meta = entry.metadata().map_err(|e| io_error(&entry.path(), e))?;
                    if meta.is_dir() {
                        if entry.file_name() != TMP_DIR {
                            dirs.push(entry.path());
                        }
                    } else if meta.modified().is_ok_and(|m| m < cutoff)
                        && let Ok(relative) = entry.path().strip_prefix(&root)
                    {
                        found.push(relative.to_string_lossy().replace('\\', "/"));
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
            }
            Ok(found)
        })
        .await
    }
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T, F>(f: F) -> Result<T, BlobError>
where
    F: FnOnce() -> Result<T, BlobError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| BlobError::Io(io::Error::other(e)))?
}

/// A file's properties; see the module header for the ETag.
fn properties_of(meta: &std::fs::Metadata) -> BlobProperties {
    let mut identity = Sha256::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        for n in [meta.dev(), meta.ino()] {
            identity.update(n.to_le_bytes());
        }
        for (secs, nanos) in [(meta.mtime(), meta.mtime_nsec()), (meta.ctime(), meta.ctime_nsec())] {
            identity.update(secs.to_le_bytes());
            identity.update(nanos.to_le_bytes());
        }
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let since_epoch = modified.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    identity.update(since_epoch.as_nanos().to_le_bytes());
    identity.update(meta.len().to_le_bytes());
    let digest = identity.finalize();
    let tag: String = digest[..8].iter().map(|b| format!("{b:02X}")).collect();
    BlobProperties { size: meta.len(), etag: format!("\"0x{tag}\""), last_modified: DateTime::<Utc>::from(modified) }
}

/// Adds every file below `dir` to `found`, keyed relative to `root` with `/` separators.
fn list_files(root: &Path, dir: &Path, found: &mut Vec<Listed>) -> Result<(), BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(io_error(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(io_error(&path, e)),
        };
        if meta.is_dir() {
            list_files(root, &path, found)?;
        } else if meta.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let key = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push(Listed { key, size: meta.len(), last_modified: DateTime::<Utc>::from(modified) });
        }
    }
    Ok(())
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Removes temporary files older than [`TMP_GRACE`]; returns how many.
fn clean_tmp(tmp: &Path) -> io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        if age < TMP_GRACE {
            continue;
        }
        if meta.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// Creates the missing directories between `root` and `file`'s parent; returns them, topmost first.
fn create_parents(root: &Path, file: &Path) -> Result<Vec<PathBuf>, BlobError> {
    let mut missing = Vec::new();
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error(d, e)),
        }
    }
    Ok(missing)
}

fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))
}

/// A temporary file that is removed on drop (a failed or cancelled put) unless disarmed.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a temporary blob file");
        }
    }
}
