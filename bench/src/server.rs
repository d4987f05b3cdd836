//! The ferry server under test: which binary (`--ferry`, or the workspace's own release build,
//! built first), and one server started from it as a child process on a free port with a
//! generated config, waited for on `/healthz`, and stopped with SIGTERM. The tool talks to the
//! server only over HTTP and through its config file, so any ferry binary with the same config
//! and wire format can be measured.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use crate::config::ServerConfig;
use crate::procfs;
use crate::report::{self, workspace_root};

/// How long a server may take to answer `/healthz` after it was started.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A ferry executable and what it says about itself.
pub struct FerryBinary {
    pub path: PathBuf,
    version: String,
    built: String,
}

impl FerryBinary {
    /// `given`, or the workspace's release `ferry` after `cargo build --release -p ferry`.
    pub async fn resolve(given: Option<&Path>) -> Result<FerryBinary> {
        let path = match given {
            Some(path) => path.to_path_buf(),
            None => build_release().await?,
        };
        let path = std::fs::canonicalize(&path).with_context(|| format!("no ferry binary at {}", path.display()))?;
        let output = Command::new(&path)
            .arg("--version")
            .output()
            .await
            .with_context(|| format!("running {}", path.display()))?;
        if !output.status.success() {
            bail!("{} --version failed: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim());
        }
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let built = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        Ok(FerryBinary { path, version, built })
    }

    /// `/path/to/ferry  (ferry 0.0.0, built 2026-…)`.
    pub fn describe(&self) -> String {
        format!("{}  ({}, built {})", self.path.display(), self.version, self.built)
    }
}

/// Builds `ferry` in release mode in this tool's workspace and answers the executable cargo
/// reports.
async fn build_release() -> Result<PathBuf> {
    let root = workspace_root();
    eprintln!("building  cargo build --release -p ferry  (in {}; --ferry PATH skips this)", root.display());
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "-p", "ferry", "--message-format=json-render-diagnostics"])
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running cargo (is it on the PATH?)")?;
    if !output.status.success() {
        bail!("cargo build --release -p ferry failed");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "ferry")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built no ferry executable")
}

/// A running ferry server.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub log: PathBuf,
}

/// Where and how one server runs.
pub struct Launch<'a> {
    pub ferry: &'a FerryBinary,
    pub config: &'a ServerConfig,
    /// The config file goes here; ferry's data dir is `<dir>/data`.
    pub dir: &'a Path,
    pub database: &'a str,
    pub log_level: &'a str,
    pub log: PathBuf,
}

impl<'a> Launch<'a> {
    /// The launch of a subcommand's server for `who` (a backend or a target): the run's ferry
    /// binary, the log filter of `--log-level` (else `default_level`), the log at
    /// `<out>/<subcommand>-server-<who>.log`.
    pub fn of_run(
        ctx: &'a crate::Context,
        subcommand: &str,
        who: &str,
        default_level: &'a str,
        config: &'a ServerConfig,
        dir: &'a Path,
        database: &'a str,
    ) -> Launch<'a> {
        Launch {
            ferry: &ctx.ferry,
            config,
            dir,
            database,
            log_level: ctx.log_level(default_level),
            log: ctx.out.join(format!("{subcommand}-server-{who}.log")),
        }
    }
}

impl Server {
    /// Writes the config, starts `ferry serve` and waits until `/healthz` answers.
    pub async fn start(launch: Launch<'_>) -> Result<Server> {
        let config_file = launch.dir.join("ferry.toml");
        std::fs::write(&config_file, launch.config.to_toml())
            .with_context(|| format!("writing {}", config_file.display()))?;
        let port = free_port()?;
        let log = std::fs::File::create(&launch.log).with_context(|| format!("creating {}", launch.log.display()))?;
        let child = Command::new(&launch.ferry.path)
            .arg("serve")
            .arg("--config")
            .arg(&config_file)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(launch.dir.join("data"))
            .args(["--database", launch.database, "--log-level", launch.log_level])
            .envs(launch.config.env())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", launch.ferry.path.display()))?;
        let pid = child.id().context("the ferry process has no pid")?;
        let mut server = Server { child, pid, base: format!("http://127.0.0.1:{port}"), log: launch.log };
        if let Err(e) = server.wait_healthy().await {
            let tail = std::fs::read_to_string(&server.log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(30).collect();
            eprintln!("ferry did not come up on port {port}; its log ({}):", server.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                bail!("ferry exited ({status}) before answering /healthz");
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("ferry did not answer /healthz within {} s", START_LIMIT.as_secs())
    }

    /// The server's resident memory now (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        procfs::status_mib(self.pid, "VmRSS")
    }

    /// The server's peak resident memory since it started (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        procfs::status_mib(self.pid, "VmHWM")
    }

    /// Stops the server, then prints the summary of its log (size, warnings, last lines).
    pub async fn stop_and_summarize(self) {
        let log = self.log.clone();
        self.stop().await;
        report::log_summary(&log);
    }

    /// Sends SIGTERM and waits for the exit (in-flight requests finish first); kills the process
    /// if it is still there after a while.
    pub async fn stop(mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
            if tokio::time::timeout(STOP_LIMIT, self.child.wait()).await.is_err() {
                eprintln!("ferry (pid {}) did not stop within {} s; killing it", self.pid, STOP_LIMIT.as_secs());
                let _ = self.child.kill().await;
            }
        }
    }
}

/// A port nothing listens on right now (the OS's pick for port 0).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
