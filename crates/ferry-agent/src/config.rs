//! `agent.toml`: which client environment to use, where the journal lives, the optional
//! `/metrics` + `/healthz` listener and failure webhook, and the jobs — each a `[[jobs]]` table
//! with a `type` (`upload`, `monitor`, `download`, `import-package`, `export-package`), a
//! `schedule` (an interval such as `30s` or a cron expression) and its folders. Relative paths
//! are relative to the file's directory.

use std::path::{Path, PathBuf};

use ferry_domain::Recurrence;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    environment: Option<String>,
    client_config: Option<PathBuf>,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    listen: Option<String>,
    webhook: Option<String>,
    #[serde(default)]
    jobs: Vec<JobFile>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("ferry-agent-state")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    schedule: String,
    /// upload, download: the recurring job's activity id.
    job: Option<String>,
    entity: Option<String>,
    company: Option<String>,
    project: Option<String>,
    input: Option<PathBuf>,
    success: Option<PathBuf>,
    error: Option<PathBuf>,
    folder: Option<PathBuf>,
    processed: Option<PathBuf>,
    output: Option<PathBuf>,
    #[serde(default)]
    unzip: bool,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    status_extension: Option<String>,
}

/// The agent's settings.
#[derive(Debug)]
pub struct AgentConfig {
    pub environment: Option<String>,
    pub client_config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub listen: Option<String>,
    pub webhook: Option<String>,
    pub jobs: Vec<JobConfig>,
}

/// How the upload job orders the files it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Name,
    Modified,
}

/// One job.
#[derive(Debug)]
pub struct JobConfig {
    pub name: String,
    pub schedule: Recurrence,
    pub kind: JobKind,
}

#[derive(Debug)]
pub enum JobKind {
    /// Enqueue the files of `input` to a recurring job; move them to `success` or `error`.
    Upload {
        job: String,
        entity: Option<String>,
        company: Option<String>,
        files: Folders,
        order: Order,
        pattern: Option<String>,
    },
    /// Watch the status files in `folder`; move finished files to `processed` or `error`.
    Monitor { folder: PathBuf, processed: PathBuf, error: PathBuf },
    /// Dequeue, download into `output`, ack.
    Download { job: String, output: PathBuf, unzip: bool },
    /// Import the zips of `input` through the package API.
    ImportPackage { project: String, company: Option<String>, files: Folders },
    /// Export a project through the package API into `output`.
    ExportPackage { project: String, company: Option<String>, output: PathBuf, unzip: bool },
}

/// The folders a file moves through.
#[derive(Debug, Clone)]
pub struct Folders {
    pub input: PathBuf,
    pub success: PathBuf,
    pub error: PathBuf,
    /// Status files are `<file name><status_extension>` in the success folder.
    pub status_extension: String,
}

/// The status files' default extension (RIS's).
pub const STATUS_EXTENSION: &str = ".Status";

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let shown = path.display().to_string();
        let err = |message: String| ConfigError { path: shown.clone(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let file: File = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let at = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut jobs = Vec::new();
        for (i, job) in file.jobs.into_iter().enumerate() {
            let name = job.name.trim().to_owned();
            let jerr = |m: String| err(format!("jobs[{i}] ('{name}'): {m}"));
            if name.is_empty() || jobs.iter().any(|j: &JobConfig| j.name == name) {
                return Err(jerr("every job needs a name of its own".into()));
            }
            let schedule = Recurrence::parse(&job.schedule).map_err(&jerr)?;
            let need = |value: Option<PathBuf>, key: &str| value.map(at).ok_or_else(|| jerr(format!("needs {key}")));
            let need_text = |value: Option<String>, key: &str| {
                value.filter(|v| !v.trim().is_empty()).ok_or_else(|| jerr(format!("needs {key}")))
            };
            let extension = job.status_extension.clone().unwrap_or_else(|| STATUS_EXTENSION.to_owned());
            let kind = match job.kind.as_str() {
                "upload" | "import-package" => {
                    let files = Folders {
                        input: need(job.input, "input")?,
                        success: need(job.success, "success")?,
                        error: need(job.error, "error")?,
                        status_extension: extension,
                    };
                    if job.kind == "upload" {
                        let order = match job.order.as_deref() {
                            None | Some("name") => Order::Name,
                            Some("modified") => Order::Modified,
                            Some(o) => return Err(jerr(format!("order '{o}' is neither name nor modified"))),
                        };
                        JobKind::Upload {
                            job: need_text(job.job, "job (the activity id)")?,
                            entity: job.entity,
                            company: job.company,
                            files,
                            order,
                            pattern: job.pattern,
                        }
                    } else {
                        JobKind::ImportPackage {
                            project: need_text(job.project, "project")?,
                            company: job.company,
                            files,
                        }
                    }
                }
                "monitor" => JobKind::Monitor {
                    folder: need(job.folder, "folder")?,
                    processed: need(job.processed, "processed")?,
                    error: need(job.error, "error")?,
                },
                "download" => JobKind::Download {
                    job: need_text(job.job, "job (the activity id)")?,
                    output: need(job.output, "output")?,
                    unzip: job.unzip,
                },
                "export-package" => JobKind::ExportPackage {
                    project: need_text(job.project, "project")?,
                    company: job.company,
                    output: need(job.output, "output")?,
                    unzip: job.unzip,
                },
                other => {
                    return Err(jerr(format!(
                        "type '{other}' is not one of upload, monitor, download, import-package, export-package"
                    )));
                }
            };
            jobs.push(JobConfig { name, schedule, kind });
        }
        if jobs.is_empty() {
            return Err(err("no [[jobs]]: the agent would have nothing to do".into()));
        }
        Ok(AgentConfig {
            environment: file.environment,
            client_config: file.client_config.map(at),
            state_dir: at(file.state_dir),
            listen: file.listen,
            webhook: file.webhook,
            jobs,
        })
    }
}

/// Whether `name` matches a pattern of `*` and `?` (any case).
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_a_shell() {
        assert!(matches("*.csv", "a.CSV"));
        assert!(matches("cust-??.csv", "cust-01.csv"));
        assert!(!matches("*.csv", "a.csv.tmp"));
    }

    #[test]
    fn jobs_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            r#"
environment = "dev"
[[jobs]]
name = "up"
type = "upload"
schedule = "10s"
job = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d"
input = "in"
success = "ok"
error = "bad"
"#,
        )
        .unwrap();
        let config = AgentConfig::load(&path).unwrap();
        assert_eq!(config.jobs.len(), 1);
        assert_eq!(config.state_dir, dir.path().join("ferry-agent-state"));
        std::fs::write(&path, "[[jobs]]\nname = \"x\"\ntype = \"upload\"\nschedule = \"10s\"\n").unwrap();
        let e = AgentConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("needs input"), "{e}");
    }
}
