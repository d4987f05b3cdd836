//! One run of each job type. A file leaves its input folder only after the server confirmed it
//! (its status file written first, then the file moved); a server that cannot be reached ends
//! the run with the file where it was, for the next run. A file the server refuses goes to the
//! error folder with a note, and the webhook hears of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{
    ClientError, Enqueue, Failure, NoProgress, Outcome, PackageExport, PackageImport, ServerKind, Source,
};
use serde_json::{Value, json};
use sha2::Digest;

use crate::Agent;
use crate::config::{Folders, JobKind, Order, matches};
use crate::journal::move_file;

/// How a run ended badly.
pub(crate) type RunResult = Result<(), String>;

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// The data files waiting in `input`, in the order asked for.
fn waiting_files(input: &Path, order: Order, pattern: Option<&str>) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(input) else { return Vec::new() };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = dir
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with('.') && pattern.is_none_or(|p| matches(p, &name))
        })
        .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
        .collect();
    match order {
        Order::Name => files.sort_by(|a, b| a.1.cmp(&b.1)),
        Order::Modified => files.sort(),
    }
    files.into_iter().map(|(_, p)| p).collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Writes `<folder>/<name><extension>` (temp file, fsync, rename).
fn write_status(folder: &Path, name: &str, extension: &str, status: &Value) -> Result<(), String> {
    let path = folder.join(format!("{name}{extension}"));
    ferry_client::files::write_private(&path, format!("{status:#}\n").as_bytes()).map_err(|e| e.to_string())
}

impl Agent {
    /// Sends a file the server refused to the error folder with a note, and tells the webhook.
    fn reject(&self, job: &str, path: &Path, folders: &Folders, reason: &str) -> RunResult {
        let name = file_name(path);
        tracing::warn!(job, file = %name, %reason, "file refused; moved to the error folder");
        let note = folders.error.join(format!("{name}.error.txt"));
        ferry_client::files::write_private(&note, format!("{reason}\n").as_bytes()).map_err(|e| e.to_string())?;
        move_file(&self.journal, path, &folders.error.join(&name)).map_err(io)?;
        self.metrics.file(job, "failed");
        crate::ops::notify(self.webhook(), json!({ "job": job, "file": name, "event": "failed", "reason": reason }));
        Ok(())
    }

    /// Whether a failure ends the run (the server is away) rather than only this file.
    fn server_away(e: &ClientError) -> bool {
        matches!(e.failure(), Failure::Unreachable)
    }

    pub(crate) async fn upload(&self, job_name: &str, kind: &JobKind) -> RunResult {
        let JobKind::Upload { job, entity, company, files: folders, order, pattern } = kind else {
            return Ok(());
        };
        let (entity, company, order, pattern) = (entity.as_deref(), company.as_deref(), *order, pattern.as_deref());
        for path in waiting_files(&folders.input, order, pattern) {
            if self.stopping() {
                break;
            }
            let name = file_name(&path);
            let request = Enqueue {
                job: job.to_owned(),
                entity: entity.map(str::to_owned),
                company: company.map(str::to_owned).or_else(|| self.connection.environment().company.clone()),
                external_id: Some(name.clone()),
            };
            match self.connection.enqueue(&request, &Source::File(path.clone()), Arc::new(NoProgress)).await {
                Ok(message_id) => {
                    let status = json!({
                        "kind": "message", "message_id": message_id, "job": job, "entity": entity,
                        "external_id": name, "file": name,
                    });
                    write_status(&folders.success, &name, &folders.status_extension, &status)?;
                    move_file(&self.journal, &path, &folders.success.join(&name)).map_err(io)?;
                    tracing::info!(job = job_name, file = %name, %message_id, "enqueued");
                    self.metrics.file(job_name, "uploaded");
                }
                Err(e) if Self::server_away(&e) => return Err(e.to_string()),
                Err(ClientError::Io { what, source }) if !path.exists() => {
                    tracing::info!(job = job_name, file = %name, "{what}: {source} (it was moved away)");
                }
                Err(e) => self.reject(job_name, &path, folders, &e.to_string())?,
            }
        }
        Ok(())
    }

    pub(crate) async fn import_packages(
        &self,
        job_name: &str,
        project: &str,
        company: Option<&str>,
        folders: &Folders,
    ) -> RunResult {
        for path in waiting_files(&folders.input, Order::Name, Some("*.zip")) {
            if self.stopping() {
                break;
            }
            let name = file_name(&path);
            // The same file always gets the same execution id, so an import retried after a
            // crash is refused as a reuse (409) instead of running twice.
            let execution_id = execution_id_of(&path).map_err(io)?;
            let request = PackageImport {
                project: project.to_owned(),
                company: company.map(str::to_owned).or_else(|| self.connection.environment().company.clone()),
                execution_id: Some(execution_id.clone()),
                execute: true,
            };
            match self.connection.import_package(&path, &request, Arc::new(NoProgress)).await {
                Ok(id) => {
                    let status = json!({ "kind": "execution", "execution_id": id, "project": project, "file": name });
                    write_status(&folders.success, &name, &folders.status_extension, &status)?;
                    move_file(&self.journal, &path, &folders.success.join(&name)).map_err(io)?;
                    tracing::info!(job = job_name, file = %name, execution_id = %id, "package import queued");
                    self.metrics.file(job_name, "uploaded");
                }
                Err(e) if Self::server_away(&e) => return Err(e.to_string()),
                Err(e) => self.reject(job_name, &path, folders, &e.to_string())?,
            }
        }
        Ok(())
    }

    pub(crate) async fn monitor(&self, job_name: &str, folder: &Path, processed: &Path, error: &Path) -> RunResult {
        let Ok(dir) = std::fs::read_dir(folder) else { return Ok(()) };
        let mut statuses: Vec<PathBuf> = dir.flatten().map(|e| e.path()).filter(|p| is_status_file(p)).collect();
        statuses.sort();
        for status_path in statuses {
            if self.stopping() {
                break;
            }
            let Ok(status) = std::fs::read_to_string(&status_path).map(|t| serde_json::from_str::<Value>(&t)) else {
                continue;
            };
            let Ok(status) = status else { continue };
            let data = folder.join(status["file"].as_str().unwrap_or_default());
            let (state, outcome) = if status["kind"] == "execution" {
                let id = status["execution_id"].as_str().unwrap_or_default();
                match self.connection.execution_status(id).await {
                    Ok(s) => s,
                    Err(e) if Self::server_away(&e) => return Err(e.to_string()),
                    Err(e) => (e.to_string(), Outcome::Failed),
                }
            } else {
                let id = status["message_id"].as_str().unwrap_or_default();
                match self.connection.status(id).await {
                    Ok(s) => (s.state, s.outcome),
                    Err(e) if Self::server_away(&e) => return Err(e.to_string()),
                    Err(e) => (e.to_string(), Outcome::Failed),
                }
            };
            if !outcome.is_final() {
                continue;
            }
            let target = if outcome == Outcome::Succeeded { processed } else { error };
            let name = file_name(&data);
            if outcome != Outcome::Succeeded {
                // The rejected rows beside the file, as RIS saves the execution errors.
                let id = status["message_id"].as_str().or(status["execution_id"].as_str()).unwrap_or_default();
                if self.connection.environment().server == ServerKind::Ferry {
                    let query = ferry_client::ErrorQuery { limit: 10_000, ..Default::default() };
                    if let Ok(rows) = self.connection.message_errors(id, &query).await {
                        let text = format!("{:#}\n", Value::Array(rows));
                        let _ = ferry_client::files::write_private(
                            &target.join(format!("{name}.errors.json")),
                            text.as_bytes(),
                        );
                    }
                }
                crate::ops::notify(
                    self.webhook(),
                    json!({ "job": job_name, "file": name, "event": "processing_failed", "state": state, "id": id }),
                );
            }
            // The data file first: the status file is what makes the monitor look again.
            if data.is_file() {
                move_file(&self.journal, &data, &target.join(&name)).map_err(io)?;
            }
            move_file(&self.journal, &status_path, &target.join(file_name(&status_path))).map_err(io)?;
            tracing::info!(job = job_name, file = %name, %state, "processing finished");
            self.metrics.file(job_name, if outcome == Outcome::Succeeded { "processed" } else { "processing_failed" });
        }
        Ok(())
    }

    pub(crate) async fn download(&self, job_name: &str, job: &str, output: &Path, unzip: bool) -> RunResult {
        loop {
            if self.stopping() {
                break;
            }
            let file = match self.connection.dequeue(job).await {
                Ok(Some(file)) => file,
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            };
            self.journal.dequeued(job_name, &file.correlation_id, &file.answer).map_err(io)?;
            self.deliver(job_name, job, &file, output, unzip).await?;
        }
        Ok(())
    }

    /// Saves, unzips, acknowledges one dequeued file, then closes its journal entry.
    pub(crate) async fn deliver(
        &self,
        job_name: &str,
        job: &str,
        file: &ferry_client::Dequeued,
        output: &Path,
        unzip: bool,
    ) -> RunResult {
        match self.connection.deliver(job, file, output, unzip, true, &NoProgress).await {
            Ok(delivered) => {
                self.journal.delivered(&file.correlation_id).map_err(io)?;
                tracing::info!(job = job_name, correlation_id = %file.correlation_id, path = %delivered.path.display(), "downloaded and acknowledged");
                self.metrics.file(job_name, "downloaded");
                Ok(())
            }
            Err(e) if e.status() == Some(409) || e.status() == Some(404) => {
                // Handed out again since (the receipt is stale) or gone: the next dequeue has it.
                self.journal.delivered(&file.correlation_id).map_err(io)?;
                Err(e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) async fn export_package(
        &self,
        job_name: &str,
        project: &str,
        company: Option<&str>,
        output: &Path,
        unzip: bool,
    ) -> RunResult {
        let execution_id = uuid::Uuid::new_v4().to_string();
        self.journal.exporting(job_name, &execution_id).map_err(io)?;
        let request = PackageExport {
            project: project.to_owned(),
            company: company.map(str::to_owned).or_else(|| self.connection.environment().company.clone()),
            execution_id: Some(execution_id.clone()),
            package_name: None,
        };
        if let Err(e) = self.connection.export_to_package(&request).await {
            if !Self::server_away(&e) {
                let _ = self.journal.exported(&execution_id);
            }
            return Err(e.to_string());
        }
        self.finish_export(job_name, project, &execution_id, output, unzip).await
    }

    /// Waits for an export and downloads its package; closes its journal entry.
    pub(crate) async fn finish_export(
        &self,
        job_name: &str,
        project: &str,
        execution_id: &str,
        output: &Path,
        unzip: bool,
    ) -> RunResult {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let (status, outcome) = self
            .connection
            .wait_execution(execution_id, deadline, Duration::from_secs(1))
            .await
            .map_err(|e| e.to_string())?;
        if matches!(outcome, Outcome::Failed) {
            self.journal.exported(execution_id).map_err(io)?;
            crate::ops::notify(
                self.webhook(),
                json!({ "job": job_name, "event": "export_failed", "id": execution_id }),
            );
            return Err(format!("export {execution_id} {status}"));
        }
        let name =
            format!("{}-{}.zip", ferry_client::safe_file_name(project), ferry_client::safe_file_name(execution_id));
        let dest = output.join(&name);
        if !dest.with_extension("").is_dir() && !dest.exists() {
            let found = self
                .connection
                .download_exported_package(execution_id, &dest, deadline, &NoProgress)
                .await
                .map_err(|e| e.to_string())?;
            if !found {
                return Err(format!("the package of {execution_id} did not appear"));
            }
        }
        if unzip && dest.exists() {
            let target = dest.with_extension("");
            if !target.is_dir() {
                ferry_client::files::unzip(&dest, &target).map_err(|e| e.to_string())?;
            }
            std::fs::remove_file(&dest).map_err(io)?;
        }
        self.journal.exported(execution_id).map_err(io)?;
        self.metrics.file(job_name, "downloaded");
        tracing::info!(job = job_name, %execution_id, "package exported and downloaded");
        Ok(())
    }
}

fn is_status_file(path: &Path) -> bool {
    path.is_file() && file_name(path).ends_with(crate::config::STATUS_EXTENSION)
}

/// A GUID-shaped execution id from the file's name and content.
fn execution_id_of(path: &Path) -> std::io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    hasher.update(file_name(path).as_bytes());
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}
