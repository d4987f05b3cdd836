//! `ferry-bench replication`: replication (data export, issue 4). The source — ferry's own
//! database — is seeded once with many customers; then per target (a fresh PostgreSQL or
//! MariaDB database) a server starts on that source with an admin app and a writer app, a
//! profile over `customerv3` is created and activated (**initial copy**), customers are changed
//! through the OData API at a paced rate while the target is polled (**delta latency**), the
//! profile is deleted and the same rows are loaded with the database's own bulk loader
//! (**reference**). A figures table per target closes the run.

mod delta;
mod initial;
mod profiles;
mod reference;
mod table;
mod target;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use crate::api::Api;
use crate::config::{App, COMPANY, Role, ServerConfig};
use crate::databases::{self, Backend, FerryDatabase, ferry_database};
use crate::procfs::{CpuMark, mib};
use crate::report::{self, Problems, line};
use crate::seed::{SeedPlan, seed_customers};
use crate::server::{Launch, Server};
use crate::tools::Tool;
use target::TargetDb;

/// The profile's table prefix, so the target table is `bench_customerv3`.
const PREFIX: &str = "bench";

/// `postgres`, `mysql` or `both` on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Targets {
    Postgres,
    Mysql,
    Both,
}

/// A replication target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetKind {
    Postgres,
    Mysql,
}

/// Options of `ferry-bench replication`.
#[derive(Debug, clap::Args)]
pub struct ReplicationArgs {
    /// The target database(s).
    #[arg(long, value_enum, default_value = "both")]
    target: Targets,
    /// Customers in the source (all copied by the initial copy).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
    rows: u64,
    /// ferry's own database (the replication source).
    #[arg(long, value_enum, default_value = "sqlite")]
    source: Backend,
    /// Changes per second in the delta step (0 skips it).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    rate: u64,
    /// Seconds of paced changes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Concurrent writer tasks in the delta step.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    tasks: u64,
    /// Milliseconds between two polls of the target.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    poll_ms: u64,
    /// Rows per `Store::insert` call (one transaction) when seeding the source.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seed_batch: u64,
    /// Seconds the poller keeps looking after the last write.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// Seconds after which the initial copy counts as failed.
    #[arg(long, default_value_t = 1800)]
    initial_limit_secs: u64,
    /// Skip the reference load.
    #[arg(long)]
    no_reference: bool,
}

impl ReplicationArgs {
    fn targets(&self) -> Vec<TargetKind> {
        match self.target {
            Targets::Postgres => vec![TargetKind::Postgres],
            Targets::Mysql => vec![TargetKind::Mysql],
            Targets::Both => vec![TargetKind::Postgres, TargetKind::Mysql],
        }
    }

    pub fn tools(&self) -> Vec<(Tool, &'static str)> {
        if self.no_reference {
            return Vec::new();
        }
        self.targets()
            .into_iter()
            .map(|t| match t {
                TargetKind::Mysql => (Tool::Mysql, "replication: the reference load (LOAD DATA LOCAL INFILE)"),
                TargetKind::Postgres => (Tool::Psql, "replication: the reference load (\\copy)"),
            })
            .collect()
    }
}

fn name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Mysql => "mysql",
        TargetKind::Postgres => "postgres",
    }
}

/// Seeds the source, runs every target, prints the figures table; fails if any target failed.
pub async fn run(ctx: &Context, args: &ReplicationArgs) -> Result<()> {
    let targets = args.targets();
    let names: Vec<&str> = targets.iter().map(|t| name(*t)).collect();
    let info = report::header(
        "replication",
        &ctx.ferry,
        &format!(
            "targets {}  rows {}  source {}  delta {}/s x {}s over {} tasks  poll {}ms",
            names.join(" "),
            args.rows,
            args.source.name(),
            args.rate,
            args.seconds,
            args.tasks,
            args.poll_ms
        ),
        "ferry, the tool and PostgreSQL share this machine; the load average shows other work on it",
    );
    let dir = ctx.scratch.temp_dir("replication")?;
    let source = ferry_database(&ctx.scratch, args.source, &dir, &ctx.postgres_url, "_src").await?;
    println!("source    {}", source.description);
    let plan = SeedPlan { company: COMPANY, prefix: "S", rows: args.rows, batch: args.seed_batch, new_database: true };
    let seeded = seed_customers(&source.url, &plan).await?;
    line("seed", "source", &seeded.describe());
    let config = ServerConfig {
        apps: vec![App::new("bench", Role::Admin), App::new("writer", Role::Writer)],
        ..ServerConfig::default()
    };

    let mut outcomes = report::Outcomes::new("replication");
    for target in targets {
        let mut summary = json!({ "target": name(target), "started_at": chrono::Utc::now().to_rfc3339(),
            "delta_rate": args.rate, "rows": args.rows, "source": args.source.name(), "commit": info.commit,
            "ferry": info.ferry, "cpus": info.cpus, "seed": seeded.to_json() });
        let result = run_target(ctx, args, target, &dir, &source, &config, &mut summary).await;
        let copied = summary.get("initial").is_some();
        outcomes.add(&ctx.out, name(target), copied.then_some(summary), result)?;
    }
    println!();
    println!("== figures ({} rows, commit {}, {}) ==", args.rows, info.commit, info.machine);
    table::print(outcomes.figures());
    outcomes.finish()
}

/// One target: a fresh database, a server on the source, the three steps.
async fn run_target(
    ctx: &Context,
    args: &ReplicationArgs,
    kind: TargetKind,
    dir: &Path,
    source: &FerryDatabase,
    config: &ServerConfig,
    summary: &mut Value,
) -> Result<()> {
    let (url, reference_schema) = match kind {
        TargetKind::Mysql => {
            let (db, url) = ctx.scratch.mysql_database(&ctx.mysql_url).await?;
            ctx.scratch.note_mysql_database(&ctx.mysql_url, &format!("{db}_ref"));
            println!("--- mysql: MariaDB {}, target database {db}", databases::mysql_version(&url).await?);
            (url, format!("{db}_ref"))
        }
        TargetKind::Postgres => {
            let url = ctx.scratch.postgres_database(&ctx.postgres_url, "").await?;
            let version = databases::postgres_version(&url).await?;
            println!("--- postgres: PostgreSQL {version}, target database {}", databases::database_name(&url));
            (url, "ferry_ref".to_string())
        }
    };
    let launch = Launch::of_run(ctx, "replication", name(kind), "warn,ferry_replicate=info", config, dir, &source.url);
    let server = Server::start(launch).await?;
    println!("ferry     pid {} on {}", server.pid, server.base);
    let csv = dir.join(format!("replication-{}.csv", name(kind)));
    let result = steps(args, kind, &server, config, &url, &reference_schema, &csv, summary).await;
    server.stop_and_summarize().await;
    let _ = std::fs::remove_file(&csv);
    result
}

/// Initial copy, delta latency and reference load against one running server.
#[allow(clippy::too_many_arguments)]
async fn steps(
    args: &ReplicationArgs,
    kind: TargetKind,
    server: &Server,
    config: &ServerConfig,
    target_url: &str,
    reference_schema: &str,
    csv: &Path,
    summary: &mut Value,
) -> Result<()> {
    let kind = name(kind);
    let table = format!("{PREFIX}_customerv3");
    let mut problems = Problems::default();
    let admin = Api::connect(&server.base, config.app("bench"), 4).await?;
    let writer = Api::connect(&server.base, config.app("writer"), args.tasks as usize).await?;
    let leftover = profiles::delete_all(&admin).await?;
    if leftover > 0 {
        eprintln!("setup      {kind:<8}  deleted {leftover} profile(s) left by an earlier run");
    }
    let target = TargetDb::connect(target_url, PREFIX, 4).await?;
    if let Some(n) = target.count().await? {
        bail!("the target already has {table} ({n} rows); give a fresh database");
    }
    let id = profiles::create(&admin, &format!("bench-{kind}"), kind, target_url, PREFIX).await?;
    line("setup", kind, &format!("profile {id} created, target table {table}"));

    // 1. Initial copy.
    let before = CpuMark::now(Some(server.pid));
    let copy = initial::run(&admin, &target, &id, Duration::from_secs(args.initial_limit_secs), server.pid).await?;
    let copy_cpu = before.until(&CpuMark::now(Some(server.pid)));
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
    line(
        "memory",
        kind,
        &format!(
            "RSS {} MiB before the copy, highest {} MiB during it (+{} MiB), peak VmHWM {} MiB after it",
            mib(copy.rss_before),
            mib(copy.rss_max),
            mib(copy.rss_growth()),
            mib(copy.hwm_after)
        ),
    );
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
        let before = CpuMark::now(Some(server.pid));
        let d = delta::run(&writer, &target, rows.clone(), &settings).await?;
        let delta_cpu = before.until(&CpuMark::now(Some(server.pid)));
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
                d.write.describe(1)
            ),
        );
        line(
            "visible",
            kind,
            &format!(
                "{}  seen {}  unseen {}  superseded {}  seen-before-response {}  (polled by Id every {} ms, mean poll {:.1} ms)",
                d.polled.describe(1),
                d.polled.len(),
                d.not_seen,
                d.superseded,
                d.seen_before_response,
                args.poll_ms,
                d.mean_poll.as_secs_f64() * 1e3
            ),
        );
        line(
            "sink",
            kind,
            &format!("{}  rows {}  (SinkModifiedOn - PATCH returned)", d.sink.describe(1), d.sink.len()),
        );
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
    let status = profiles::get(&admin, &id).await?;
    summary["final_status"] = status["EntityStatus"].clone();
    profiles::delete(&admin, &id).await.context("deleting the bench profile")?;

    // 3. Reference load, with ferry idle.
    if !args.no_reference {
        let r = reference::run(&target, target_url, &table, reference_schema, csv).await?;
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
    summary["problems"] = problems.to_json();
    problems.verdict(kind)
}
