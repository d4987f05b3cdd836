//! Taking one exported file end to end, as RIS's Download job does: download it into the output
//! directory (durable before anything else happens), optionally unzip it (the directory appears
//! whole, then the zip goes), and only then acknowledge it. Each step is idempotent — a file
//! already saved under its name (or already unzipped) is not fetched again — so a caller that
//! died halfway (the agent, after a crash) finishes the same dequeued file by calling it again.

use std::path::{Path, PathBuf};

use crate::connector::{Dequeued, safe_file_name};
use crate::error::ClientResult;
use crate::files::{Progress, unzip};
use crate::http::Connection;

/// What became of a delivered file.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub correlation_id: String,
    /// The saved file, or the directory it was unzipped into.
    pub path: PathBuf,
    /// With unzip: the files extracted.
    pub files: Vec<PathBuf>,
    pub acked: bool,
}

/// Whether a path looks like a zip by its name.
fn is_zip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// A file already saved for `correlation_id` in `dir` (`<correlation id>-…`), or its unzipped
/// directory.
fn already_saved(dir: &Path, correlation_id: &str) -> Option<PathBuf> {
    let prefix = format!("{}-", safe_file_name(correlation_id));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    // The unzipped directory wins over a zip left by a crash between the two.
    found.iter().find(|p| p.is_dir()).or(found.first()).cloned()
}

impl Connection {
    /// Downloads (unless already saved), unzips when asked, then acknowledges when asked.
    pub async fn deliver(
        &self,
        job: &str,
        file: &Dequeued,
        dir: &Path,
        unzip_it: bool,
        ack: bool,
        progress: &dyn Progress,
    ) -> ClientResult<Delivered> {
        let mut path = match already_saved(dir, &file.correlation_id) {
            Some(saved) => {
                tracing::info!(correlation_id = %file.correlation_id, path = %saved.display(), "already saved");
                saved
            }
            None => self.download(file, dir, progress).await?,
        };
        let mut files = Vec::new();
        if unzip_it && path.is_file() && is_zip(&path) {
            let target = path.with_extension("");
            if target.is_dir() {
                let _ = std::fs::remove_file(&path);
            } else {
                files = unzip(&path, &target)?;
                std::fs::remove_file(&path)
                    .map_err(|e| crate::ClientError::io(format!("cannot remove {}", path.display()), e))?;
            }
            path = target;
        }
        if unzip_it && path.is_dir() && files.is_empty() {
            files = std::fs::read_dir(&path).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
            files.sort();
        }
        if ack {
            self.ack(job, file).await?;
        }
        Ok(Delivered { correlation_id: file.correlation_id.clone(), path, files, acked: ack })
    }
}
