//! How figures are shown: the header every run prints first (what ran where), one line per
//! figure with the step and the backend in fixed columns, problems, and the JSON files.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procfs;
use crate::server::FerryBinary;

/// What the figures of a run are tied to, for the header, the JSON files and the tables.
pub struct RunInfo {
    pub date: String,
    /// The commit of the workspace this tool was built from (`(dirty)` with local changes).
    pub commit: String,
    pub machine: String,
    pub cpus: usize,
    pub ferry: String,
}

/// Prints the header: title, date, commit, the ferry binary, machine, `run` (what this run
/// does), `note` and the load average.
pub fn header(title: &str, ferry: &FerryBinary, run: &str, note: &str) -> RunInfo {
    let info = RunInfo {
        date: now_utc(),
        commit: commit(),
        machine: procfs::machine(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ferry: ferry.describe(),
    };
    println!("== ferry {title} benchmark ==");
    println!("date      {}", info.date);
    println!("commit    {}  (this tool's workspace)", info.commit);
    println!("ferry     {}", info.ferry);
    println!("machine   {}", info.machine);
    println!("run       {run}");
    println!("note      {note}");
    println!("load      {}", procfs::load_average());
    info
}

/// Prints one figure line: step name and backend (or target) in fixed columns, then the figures.
pub fn line(step: &str, who: &str, figures: &str) {
    println!("{step:<10} {who:<8}  {figures}");
}

/// Problems seen in one backend's run; printed at its end and making the run fail.
#[derive(Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, problem: impl Into<String>) {
        let problem = problem.into();
        eprintln!("!!! {problem}");
        self.0.push(problem);
    }

    pub fn to_json(&self) -> Value {
        Value::from(self.0.clone())
    }

    /// Fails with the count when there were problems.
    pub fn verdict(&self, who: &str) -> Result<()> {
        anyhow::ensure!(
            self.0.is_empty(),
            "{who}: {} problem(s) seen; figures above may not be comparable",
            self.0.len()
        );
        Ok(())
    }
}

/// What a run over several backends (or targets) collects: each one's figures, written to
/// `<out>/<subcommand>-<who>.json` when it has any, and the names of those that failed.
pub struct Outcomes {
    subcommand: &'static str,
    figures: Vec<Value>,
    files: Vec<String>,
    failed: Vec<String>,
}

impl Outcomes {
    pub fn new(subcommand: &'static str) -> Outcomes {
        Outcomes { subcommand, figures: Vec::new(), files: Vec::new(), failed: Vec::new() }
    }

    /// Notes how the run of `who` went, and writes its figures unless `None`.
    pub fn add(&mut self, out: &Path, who: &str, figures: Option<Value>, result: Result<()>) -> Result<()> {
        if let Err(e) = result {
            eprintln!("!!! {who} run failed: {e:#}");
            self.failed.push(who.to_string());
        }
        if let Some(figures) = figures {
            let file = out.join(format!("{}-{who}.json", self.subcommand));
            write_json(&file, &figures)?;
            self.files.push(file.display().to_string());
            self.figures.push(figures);
        }
        Ok(())
    }

    /// Every figures document written, in order.
    pub fn figures(&self) -> &[Value] {
        &self.figures
    }

    /// Prints where the JSON went; fails naming every backend or target that failed.
    pub fn finish(self) -> Result<()> {
        println!("json      {}", if self.files.is_empty() { "none".to_string() } else { self.files.join(" ") });
        anyhow::ensure!(self.failed.is_empty(), "{} failed on {}", self.subcommand, self.failed.join(", "));
        Ok(())
    }
}

/// The workspace root: this crate's parent directory, as it was built.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(workspace_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else { return "unknown".to_string() };
    match git(&["status", "--porcelain"]) {
        Some(changes) if !changes.is_empty() => format!("{commit} (dirty)"),
        _ => commit,
    }
}

pub fn now_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Prints the size, the count of warnings and errors, and the last lines of a server log.
pub fn log_summary(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else { return };
    if text.is_empty() {
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let problems = problem_lines(&text);
    println!("server log ({}): {} lines; warnings and errors: {problems}; last lines:", log.display(), lines.len());
    for l in &lines[lines.len().saturating_sub(5)..] {
        println!("{}", l.chars().take(300).collect::<String>());
    }
}

/// Lines of a server log that carry a warning or an error.
pub fn log_problem_count(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| problem_lines(&t))
}

fn problem_lines(text: &str) -> usize {
    text.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).count()
}
