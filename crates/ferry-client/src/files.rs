//! Local files the client writes: private files (mode 0600: the config and the token cache) and
//! downloads, each streamed into a temporary file beside its final name, fsync'd, renamed into
//! place and the directory fsync'd — so a file under its final name is always whole. Progress
//! of uploads and downloads is reported through [`Progress`].

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::error::{ClientError, ClientResult};

/// Told how a transfer advances; the command line draws a bar, the agent ignores it.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (if known) named `name` starts.
    fn start(&self, name: &str, total: Option<u64>);
    /// `done` bytes of it are through.
    fn advance(&self, done: u64);
    /// It ended.
    fn finish(&self);
}

/// Progress nobody watches.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Writes `bytes` to `path` readable by the owner only: a temporary file, fsync, rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> ClientResult<()> {
    let what = || format!("cannot write {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| ClientError::io(what(), e))?;
    }
    let temp = temp_name(path);
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(|e| ClientError::io(what(), e))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A hidden temporary name beside `path`, unique to this process.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    path.with_file_name(format!(".{name}.{}.part", &unique[..12]))
}

/// Removes from `dir` the partial files [`temp_name`] names (`.<name>.<12 hex digits>.part`) that
/// a process killed in the middle of a write left behind; answers how many. Only for a
/// folder no other writer of this process is using at the time.
pub fn remove_partial_files(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_partial_name(&name) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_partial_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".part")) else { return false };
    match rest.rsplit_once('.') {
        Some((base, unique)) => !base.is_empty() && unique.len() == 12 && unique.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Makes a rename in `path`'s directory durable (a no-op where directories cannot be opened).
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Streams `response`'s body into `dest` (temporary file, fsync, rename, directory fsync);
/// answers the bytes written.
pub async fn save_response(response: reqwest::Response, dest: &Path, progress: &dyn Progress) -> ClientResult<u64> {
    let what = || format!("cannot save {}", dest.display());
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| ClientError::io(what(), e))?;
    }
    let temp = temp_name(dest);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    progress.start(&name, response.content_length());
    let result = async {
        let mut file = tokio::fs::File::create(&temp).await.map_err(|e| ClientError::io(what(), e))?;
        let mut response = response;
        let mut written = 0u64;
        let url = response.url().to_string();
        while let Some(chunk) = response.chunk().await.map_err(|e| ClientError::Unreachable {
            what: what(),
            url: url.clone(),
            detail: e.to_string(),
        })? {
            file.write_all(&chunk).await.map_err(|e| ClientError::io(what(), e))?;
            written += chunk.len() as u64;
            progress.advance(written);
        }
        file.flush().await.map_err(|e| ClientError::io(what(), e))?;
        file.sync_all().await.map_err(|e| ClientError::io(what(), e))?;
        drop(file);
        tokio::fs::rename(&temp, dest).await.map_err(|e| ClientError::io(what(), e))?;
        sync_dir(dest).map_err(|e| ClientError::io(what(), e))?;
        Ok(written)
    }
    .await;
    progress.finish();
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result
}

/// Extracts the zip at `zip` into the directory `dest` (created through a temporary directory
/// renamed into place, so `dest` exists only once complete). Entry names that would leave the
/// directory are refused.
pub fn unzip(zip: &Path, dest: &Path) -> ClientResult<Vec<PathBuf>> {
    let what = || format!("cannot unzip {} into {}", zip.display(), dest.display());
    let io = |e: std::io::Error| ClientError::io(what(), e);
    let bad = |e: zip::result::ZipError| ClientError::io(what(), std::io::Error::other(e));
    let temp = temp_name(dest);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).map_err(io)?).map_err(bad)?;
    std::fs::create_dir_all(&temp).map_err(io)?;
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        let Some(relative) = entry.enclosed_name() else {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(io(std::io::Error::other(format!("entry {i} leaves the directory"))));
        };
        let out = temp.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(io)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = std::fs::File::create(&out).map_err(io)?;
        std::io::copy(&mut entry, &mut file).map_err(io)?;
        file.sync_all().map_err(io)?;
        names.push(dest.join(relative));
    }
    std::fs::rename(&temp, dest).map_err(io)?;
    sync_dir(dest).map_err(io)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_left_by_a_crash_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let partial = temp_name(&dir.path().join("export.zip"));
        for name in ["export.zip", ".hidden", ".a.part", ".b.0123456789ab.part.zip"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(&partial, b"half").unwrap();
        assert_eq!(remove_partial_files(dir.path()).unwrap(), 1);
        assert!(!partial.exists());
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, [".a.part", ".b.0123456789ab.part.zip", ".hidden", "export.zip"]);
    }

    #[test]
    fn private_files_are_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }
}
