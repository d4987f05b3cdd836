//! The databases' own command-line clients, run as the references: `sqlite3`, `psql` and
//! `mysql`. Each subcommand checks first that the ones it needs are on the `PATH` and names
//! every missing one; each run is timed around the child process only.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// A reference client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Sqlite3,
    Psql,
    Pgbench,
    Mysql,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Sqlite3 => "sqlite3",
            Tool::Psql => "psql",
            Tool::Pgbench => "pgbench",
            Tool::Mysql => "mysql",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Sqlite3 => "the SQLite shell, e.g. apt-get install sqlite3",
            Tool::Psql | Tool::Pgbench => "the PostgreSQL client, e.g. apt-get install postgresql-client",
            Tool::Mysql => "the MariaDB/MySQL client, e.g. apt-get install mariadb-client",
        }
    }
}

/// Fails naming every tool of `tools` that is not on the `PATH`, and what it is used for.
pub fn require(tools: &[(Tool, &str)]) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<String> = tools
        .iter()
        .filter(|(tool, _)| !std::env::split_paths(&path).any(|dir| dir.join(tool.program()).is_file()))
        .map(|(tool, why)| format!("  {} ({}): {why}", tool.program(), tool.package()))
        .collect();
    if !missing.is_empty() {
        bail!("missing on the PATH:\n{}", missing.join("\n"));
    }
    Ok(())
}

/// Where a client's standard output goes.
pub enum Stdout<'a> {
    /// Kept and answered.
    Keep,
    Discard,
    /// Written to this file (created or truncated), as a shell's `> file` does.
    File(&'a Path),
}

/// Runs `command` with its output sent as `stdout` says; answers the kept output (empty
/// otherwise) and how long it took.
async fn run(mut command: Command, shown: &str, stdout: Stdout<'_>) -> Result<(String, Duration)> {
    command.stdin(Stdio::null()).stderr(Stdio::piped());
    command.stdout(match stdout {
        Stdout::Keep => Stdio::piped(),
        Stdout::Discard => Stdio::null(),
        Stdout::File(path) => {
            Stdio::from(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
    });
    let started = Instant::now();
    // `spawn` + `wait_with_output`, not `output`: tokio's `output` pipes stdout whatever was set.
    let child = command.spawn().with_context(|| format!("running {shown}"))?;
    let output = child.wait_with_output().await.with_context(|| format!("running {shown}"))?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!("{shown} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), took))
}

/// `sqlite3 <file> <args…>`; stdout kept unless `discard`.
pub async fn sqlite3(file: &Path, args: &[&str], discard: bool) -> Result<(String, Duration)> {
    sqlite3_to(file, args, if discard { Stdout::Discard } else { Stdout::Keep }).await
}

/// `sqlite3 <file> <args…>` with its output sent as `stdout` says.
pub async fn sqlite3_to(file: &Path, args: &[&str], stdout: Stdout<'_>) -> Result<(String, Duration)> {
    let mut command = Command::new("sqlite3");
    command.arg(file).args(args);
    run(command, &format!("sqlite3 {} {}", file.display(), args.join(" ")), stdout).await
}

/// `psql <url> -c <command>` (no psqlrc, quiet, stop on error, unaligned tuples only); stdout
/// kept unless `discard`.
pub async fn psql(url: &str, sql: &str, discard: bool) -> Result<(String, Duration)> {
    let mut command = Command::new("psql");
    command.args([url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    run(command, &format!("psql -c \"{sql}\""), if discard { Stdout::Discard } else { Stdout::Keep }).await
}

/// `pgbench -n -c <clients> -j 2 -t <per client> -f <script> <url>`: each client runs the script
/// `per_client` times, one transaction each.
pub async fn pgbench(url: &str, script: &Path, clients: u32, per_client: u64) -> Result<(String, Duration)> {
    let mut command = Command::new("pgbench");
    command.args(["-n", "-c", &clients.to_string(), "-j", "2", "-t", &per_client.to_string(), "-f"]);
    command.arg(script).arg(url);
    let shown = format!("pgbench -n -c {clients} -j 2 -t {per_client} -f {}", script.display());
    run(command, &shown, Stdout::Keep).await
}

/// `mysql --local-infile=1 <database> -e <statements>` against the server of `url`; stdout kept.
pub async fn mysql(url: &str, database: &str, statements: &str) -> Result<(String, Duration)> {
    let url = reqwest::Url::parse(&url.replacen("mariadb:", "mysql:", 1)).context("parsing the MariaDB URL")?;
    let mut command = Command::new("mysql");
    command
        .arg("--local-infile=1")
        .arg("--batch")
        .arg("--skip-column-names")
        .arg(format!("--host={}", url.host_str().unwrap_or("127.0.0.1")))
        .arg(format!("--port={}", url.port().unwrap_or(3306)))
        .arg(format!("--user={}", if url.username().is_empty() { "root" } else { url.username() }))
        .arg(database)
        .arg("-e")
        .arg(statements);
    if let Some(password) = url.password() {
        command.env("MYSQL_PWD", password);
    }
    run(command, &format!("mysql -e \"{statements}\""), Stdout::Keep).await
}

/// The `sqlite3` shell's version (`3.40.1`), or `unknown`.
pub async fn sqlite3_version() -> String {
    let mut command = Command::new("sqlite3");
    command.arg("--version");
    match run(command, "sqlite3 --version", Stdout::Keep).await {
        Ok((out, _)) => out.split_whitespace().next().unwrap_or("unknown").to_string(),
        Err(_) => "unknown".to_string(),
    }
}
