//! `ferry-replication-bench`: the benchmark of issue 4 (replication). `seed` writes many
//! customers straight into ferry's database while the server is down; `run` (server up) creates
//! and activates a profile into PostgreSQL or MariaDB, times the initial copy, measures the
//! latency of paced changes reaching the target, then times the database's own bulk load of
//! the same rows as the reference; `table` prints the figures of several runs side by side.
//! `bench/replication.sh` runs the whole thing; see `bench/README.md`.

mod api;
mod cpu;
mod delta;
mod initial;
mod reference;
mod report;
mod seed;
mod stats;
mod target;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::Api;
use target::TargetDb;

/// Benchmark of ferry's replication (data export).
#[derive(Debug, Parser)]
#[command(name = "ferry-replication-bench", max_term_width = 100)]
struct Args {
    #[command(subcommand)]
    command: Step,
}

#[derive(Debug, Subcommand)]
enum Step {
    /// Seed customers into ferry's database (the server must not be running).
    Seed {
        /// URL of ferry's database (`sqlite://…` or `postgres://…`).
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
        rows: u64,
        #[arg(long, default_value = "usmf")]
        company: String,
        /// Rows per `Store::insert` call (one transaction).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch: u64,
    },
    /// Replicate into one target: initial copy, delta latency, reference load.
    Run(Box<RunArgs>),
    /// Print the figures table of `run` JSON files.
    Table { files: Vec<PathBuf> },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TargetKind {
    Postgres,
    Mysql,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Base URL of the running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Client id of an app with the admin role.
    #[arg(long, default_value = "bench")]
    admin_id: String,
    #[arg(long, env = "BENCH_SECRET", hide_env_values = true)]
    admin_secret: String,
    /// Client id of an app with the writer role (sends the changes).
    #[arg(long, default_value = "writer")]
    writer_id: String,
    #[arg(long, env = "BENCH_WRITER_SECRET", hide_env_values = true)]
    writer_secret: String,
    #[arg(long, value_enum)]
    target: TargetKind,
    /// Connection string of the target database (given to ferry, and used to read it).
    #[arg(long)]
    target_url: String,
    /// Schema (PostgreSQL) or database (MariaDB) for the reference table.
    #[arg(long)]
    reference_schema: String,
    /// Where the reference CSV is written.
    #[arg(long)]
    csv: PathBuf,
    /// Seconds after which the initial copy counts as failed.
    #[arg(long, default_value_t = 1800)]
    initial_limit_secs: u64,
    /// Changes per second in the delta step (0 skips it).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    rate: u64,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Concurrent writer tasks.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    tasks: u64,
    /// Milliseconds between two polls of the target.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    poll_ms: u64,
    /// Seconds the poller keeps looking after the last write.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// Pid of the ferry server, for its CPU use (Linux `/proc`).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Skip the reference load.
    #[arg(long)]
    no_reference: bool,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// The profile's table prefix, so the target table is `bench_customerv3`.
const PREFIX: &str = "bench";

/// Prints one figure line: step name and target in fixed columns, then the figures.
fn line(step: &str, target: &str, figures: &str) {
    println!("{step:<10} {target:<8}  {figures}");
}

fn lat(l: &stats::Latencies) -> String {
    format!("p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms", l.quantile(0.5), l.quantile(0.99), l.max())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Step::Seed { database, rows, company, batch } => {
            let s = seed::seed(&database, &company, rows, batch).await?;
            let secs = s.elapsed.as_secs_f64();
            line(
                "seed",
                "source",
                &format!("{} rows  {} batches of {batch}  {secs:.1} s  {:.0} rows/s", s.rows, s.batches, s.rate()),
            );
            Ok(())
        }
        Step::Run(args) => run(*args).await,
        Step::Table { files } => report::print(&files),
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let (kind, target_type) = match args.target {
        TargetKind::Postgres => ("postgres", "postgres"),
        TargetKind::Mysql => ("mysql", "mysql"),
    };
    let table = format!("{PREFIX}_customerv3");
    let mut summary = json!({ "target": kind, "started_at": chrono::Utc::now().to_rfc3339(), "delta_rate": args.rate });
    let mut problems: Vec<String> = Vec::new();

    let admin = Api::connect(&args.base, &args.admin_id, &args.admin_secret, 4).await?;
    let writer = Api::connect(&args.base, &args.writer_id, &args.writer_secret, args.tasks as usize).await?;
    let leftover = admin.delete_all_profiles().await?;
    if leftover > 0 {
        eprintln!("setup      {kind:<8}  deleted {leftover} profile(s) left by an earlier run");
    }
    let target = TargetDb::connect(&args.target_url, PREFIX, 4).await?;
    if let Some(n) = target.count().await? {
        bail!("the target already has {table} ({n} rows); give a fresh database");
    }
    let id = admin.create_profile(&format!("bench-{kind}"), target_type, &args.target_url, PREFIX).await?;
    line("setup", kind, &format!("profile {id} created, target table {table}"));

    // 1. Initial copy.
    let limit = Duration::from_secs(args.initial_limit_secs);
    let before = cpu::CpuMark::now(args.server_pid);
    let copy = initial::run(&admin, &target, &id, limit).await?;
    let copy_cpu = before.until(&cpu::CpuMark::now(args.server_pid));
    line(
        "initial",
        kind,
        &format!(
            "{} rows  {:.1} s  {:.0} rows/s  (first chunk committed after {:.1} s; API status said DeltaSync after {:.1} s; target holds {})",
            copy.rows_copied,
            copy.elapsed.as_secs_f64(),
            copy.rate(),
            copy.first_rows_after.map_or(f64::NAN, |d| d.as_secs_f64()),
            copy.status_after.as_secs_f64(),
            copy.target_rows
        ),
    );
    if copy.target_rows != copy.rows_total || copy.rows_copied != copy.rows_total {
        problems.push(format!(
            "initial copy: status says {}/{} rows, target holds {}",
            copy.rows_copied, copy.rows_total, copy.target_rows
        ));
    }
    for odd in &copy.odd_states {
        problems.push(format!("initial copy: status {odd}"));
    }
    line("cpu", kind, &format!("during the initial copy: {}", copy_cpu.describe()));
    summary["initial"] = copy.to_json();
    summary["initial"]["cpu"] = copy_cpu.to_json();

    // 2. Delta latency.
    if args.rate > 0 {
        let planned = usize::try_from(args.rate * args.seconds)?;
        let rows = Arc::new(target.sample(planned).await?);
        let settings = delta::DeltaSettings {
            rate: args.rate,
            seconds: args.seconds,
            tasks: args.tasks as usize,
            poll_interval: Duration::from_millis(args.poll_ms),
            settle: Duration::from_secs(args.settle_secs),
            tag: format!("d{}", chrono::Utc::now().timestamp() % 100_000),
        };
        let before = cpu::CpuMark::now(args.server_pid);
        let d = delta::run(&writer, &target, rows.clone(), &settings).await?;
        let delta_cpu = before.until(&cpu::CpuMark::now(args.server_pid));
        line(
            "delta",
            kind,
            &format!(
                "paced {}/s x {} s over {} tasks and {} rows: {} ok  {} errors  achieved {:.1} changes/s  write {}",
                args.rate,
                args.seconds,
                args.tasks,
                rows.len(),
                d.ok,
                d.errors,
                d.achieved_rate,
                lat(&d.write)
            ),
        );
        line(
            "visible",
            kind,
            &format!(
                "{}  seen {}  unseen {}  superseded {}  seen-before-response {}  (polled by Id every {} ms, mean poll {:.1} ms)",
                lat(&d.polled),
                d.polled.len(),
                d.not_seen,
                d.superseded,
                d.seen_before_response,
                args.poll_ms,
                d.mean_poll.as_secs_f64() * 1e3
            ),
        );
        line("sink", kind, &format!("{}  rows {}  (SinkModifiedOn - PATCH returned)", lat(&d.sink), d.sink.len()));
        if let Some(e) = &d.first_error {
            eprintln!("delta      {kind:<8}  first error: {e}");
            problems.push(format!("delta: {} failed writes", d.errors));
        }
        if d.not_seen > 0 {
            problems
                .push(format!("delta: {} changes never seen in the target within {} s", d.not_seen, args.settle_secs));
        }
        line("cpu", kind, &format!("during the delta step: {}", delta_cpu.describe()));
        summary["delta"] = d.to_json();
        summary["delta"]["cpu"] = delta_cpu.to_json();
    }
    let status = admin.profile(&id).await?;
    summary["final_status"] = status["EntityStatus"].clone();
    admin.delete_profile(&id).await.context("deleting the bench profile")?;

    // 3. Reference load, with ferry idle.
    if !args.no_reference {
        let r = reference::run(&target, &args.target_url, &table, &args.reference_schema, &args.csv).await?;
        line(
            "reference",
            kind,
            &format!(
                "{} rows  {:.1} s  {:.0} rows/s  (CSV written in {:.1} s; {})",
                r.rows,
                r.load.as_secs_f64(),
                r.rate(),
                r.export.as_secs_f64(),
                r.command
            ),
        );
        if let Some(w) = &r.warnings {
            problems.push(format!("reference load: {w}"));
        }
        if r.rows != copy.target_rows {
            problems.push(format!("reference load holds {} rows, ferry's copy {}", r.rows, copy.target_rows));
        }
        let ratio = copy.rate() / r.rate().max(1e-9);
        line(
            "ratio",
            kind,
            &format!("ferry initial copy / reference load {ratio:.2}  (rows/s over rows/s; aim >= 0.5)"),
        );
        summary["reference"] = r.to_json();
        summary["ratio_copy_to_reference"] = json!(ratio);
    }
    target.close().await;
    summary["problems"] = json!(problems);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("PROBLEM {kind}: {p}");
        }
        bail!("{} problem(s) seen; figures above may not be comparable", problems.len());
    }
    Ok(())
}
