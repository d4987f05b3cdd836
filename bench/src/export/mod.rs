//! `ferry-bench export`: ferry's export to a data package beside the databases' own dump tools.
//! Per backend a fresh database is seeded with many customers straight through `ferry_store`,
//! a fresh server starts on it with an admin app and a writer app, an export project of
//! Customers V3 as CSV is created through the admin API, and the package API is driven as a
//! client does: `ExportToPackage`, `GetExecutionSummaryStatus` until it is final,
//! `GetExportedPackageUrl` and the download without a token, with the server's RSS sampled
//! throughout. The package is unzipped and its rows counted; then `sqlite3 -csv` / `psql \copy`
//! dump the same table as the reference. A figures table closes the run.

mod check;
mod package;
mod reference;
mod table;

use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

use crate::Context;
use crate::api::Api;
use crate::config::{App, COMPANY, Role, ServerConfig};
use crate::databases::{Backend, Backends, FerryDatabase, ferry_database};
use crate::procfs::mib;
use crate::report::{self, Problems, line};
use crate::seed::{SeedPlan, seed_customers};
use crate::server::{Launch, Server};
use crate::stats::per_second;
use crate::tools::Tool;

/// The export project the run creates.
const PROJECT: &str = "bench-export";
/// Aim: ferry's export at least this share of the reference dump's rows/s.
const RATIO_AIM: f64 = 0.5;

/// What `export --help` says about the output, figure by figure.
const FIGURES: &str = "\
The figures, line by line (per backend):
  --- <backend>  ferry's database (and the sqlite3 shell's version).
  seed       customers S00000000… of company usmf written straight into the fresh database
             with ferry_store (set-based inserts, one transaction per --seed-batch rows) before
             the server starts; not an export figure.
  setup      the server's pid and URL, its VmRSS right after start, the export project
             created with PUT /api/admin/projects/bench-export (admin app) and the company.
  export     the package API as a client drives it (writer app): rows = the server's count of
             rows exported; call->Succeeded = from just before POST …ExportToPackage to the
             execution's finished_at (the server's clock, same machine); rows/s = rows over
             that; 'seen after' = when the poll of GetExecutionSummaryStatus (every --poll-ms)
             saw it final; queue wait = started_at - enqueued_at; processing = finished_at -
             started_at; of which the CSV = the entity's own start to end (reading the rows and
             writing the CSV; the rest is zipping and storing the package).
  memory     the server's VmRSS just before the call and its VmHWM (peak RSS since start) so
             far; the highest VmRSS seen at the polls; VmHWM right after the export. Every
             poll adds seconds, rows written so far (GET /api/messages/{id}) and VmRSS to
             export-rss-<backend>.csv.
  package    GetExportedPackageUrl, then a GET of that signed URL without a token: the
             package's size and the download time.
  check      the package unzipped (zip crate) and its CSV read (csv crate): data rows after the
             header, which must equal the seeded rows, all of the company of legalEntityId
             (DATAAREAID); otherwise the run reports a problem and exits 1. The entries follow
             with their uncompressed sizes.
  reference  the same table dumped by the database's own client, timed around the process:
             sqlite3 <db> -csv \"SELECT * FROM e_customerv3\" > file (no header), or psql -c
             \"\\copy (SELECT * FROM e_customerv3) TO 'file' WITH CSV HEADER\"; rows counted
             in the file; size of the file.
  ratio      ferry's rows/s over the reference's rows/s (aim >= 0.5).
After each backend the summary of its server log; at the end the figures table repeats the main
figures per backend against the aim, and 'json' names export-<backend>.json, which holds them all.";

/// Options of `ferry-bench export`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = FIGURES)]
pub struct ExportArgs {
    /// ferry's database.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
    /// Customers seeded into the company, all exported.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
    rows: u64,
    /// Rows per `Store::insert` call (one transaction) when seeding.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seed_batch: u64,
    /// Milliseconds between two polls of GetExecutionSummaryStatus (also the RSS samples).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
    /// Seconds the export may take before the run fails.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

impl ExportArgs {
    pub fn tools(&self) -> Vec<(Tool, &'static str)> {
        self.backend.reference_tools("export: the reference dump of the customer table")
    }
}

/// Runs every backend, prints the figures table; fails if any backend failed.
pub async fn run(ctx: &Context, args: &ExportArgs) -> Result<()> {
    let settings = format!(
        "backends {}  rows {}  seed batch {}  poll {}ms",
        args.backend.names(),
        args.rows,
        args.seed_batch,
        args.poll_ms
    );
    let note =
        "ferry, the tool, the dump clients and PostgreSQL share this machine; the load average shows other work on it";
    let info = report::header("export", &ctx.ferry, &settings, note);
    let mut outcomes = report::Outcomes::new("export");
    for backend in args.backend.list() {
        let mut summary = json!({
            "backend": backend.name(), "started_at": chrono::Utc::now().to_rfc3339(), "commit": info.commit,
            "ferry": info.ferry, "cpus": info.cpus, "rows": args.rows, "company": COMPANY,
        });
        let result = run_backend(ctx, args, backend, &mut summary).await;
        let exported = summary.get("export").is_some();
        outcomes.add(&ctx.out, backend.name(), exported.then_some(summary), result)?;
    }
    println!();
    println!("== figures ({} rows, commit {}, {}) ==", args.rows, info.commit, info.machine);
    table::print(outcomes.figures(), RATIO_AIM);
    outcomes.finish()
}

/// One backend: a fresh database seeded, a server on it, the steps, the server stopped.
async fn run_backend(ctx: &Context, args: &ExportArgs, backend: Backend, summary: &mut Value) -> Result<()> {
    let dir = ctx.scratch.temp_dir(&format!("export-{}", backend.name()))?;
    let db = ferry_database(&ctx.scratch, backend, &dir, &ctx.postgres_url, "").await?;
    println!("--- {}: {}", backend.name(), db.describe_with_client().await);
    let plan = SeedPlan { company: COMPANY, prefix: "S", rows: args.rows, batch: args.seed_batch, new_database: true };
    let seeded = seed_customers(&db.url, &plan).await?;
    line("seed", backend.name(), &seeded.describe());
    summary["seed"] = seeded.to_json();

    let config = ServerConfig {
        apps: vec![App::new("bench", Role::Admin), App::new("writer", Role::Writer)],
        ..ServerConfig::default()
    };
    let launch = Launch::of_run(ctx, "export", backend.name(), "warn", &config, &dir, &db.url);
    let server = Server::start(launch).await?;
    let result = steps(ctx, args, &db, &dir, &server, &config, summary).await;
    let log = server.log.clone();
    server.stop_and_summarize().await;
    summary["log_problems"] = json!(report::log_problem_count(&log));
    result
}

/// Export, package check and reference against one running server.
async fn steps(
    ctx: &Context,
    args: &ExportArgs,
    db: &FerryDatabase,
    dir: &Path,
    server: &Server,
    config: &ServerConfig,
    summary: &mut Value,
) -> Result<()> {
    let backend = db.backend.name();
    let mut problems = Problems::default();
    let rss_start = server.rss_mib();
    let admin = Api::connect(&server.base, config.app("bench"), 1).await?;
    let writer = Api::connect(&server.base, config.app("writer"), 1).await?;
    package::create_project(&admin, PROJECT).await?;
    line(
        "setup",
        backend,
        &format!(
            "ferry pid {} on {}  RSS {} MiB  project {PROJECT} (export: CustomersV3 as CSV) created  company {COMPANY}",
            server.pid,
            server.base,
            mib(rss_start)
        ),
    );

    // 1. The export, as a client calls it.
    let (rss_before, peak_before) = (server.rss_mib(), server.peak_rss_mib());
    let trace = ctx.out.join(format!("export-rss-{backend}.csv"));
    let watch = package::Watch {
        server,
        trace: &trace,
        poll: Duration::from_millis(args.poll_ms),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let execution = package::export(&writer, PROJECT, COMPANY, &watch).await?;
    let peak_after = server.peak_rss_mib();
    let times = package::server_times(&writer, &execution).await?;
    let seen = execution.seen_final.as_secs_f64();
    let seconds = times.call_to_finished_s.unwrap_or(seen);
    let rows = times.rows.unwrap_or(0);
    let rate = per_second(rows as f64, seconds);
    let shown = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"));
    line(
        "export",
        backend,
        &format!(
            "{rows} rows  {}  call→Succeeded {seconds:.2} s  {rate:.0} rows/s  (seen after {seen:.2} s, {} polls; queue wait {} s; processing {} s, of which the CSV {} s; execution {})",
            execution.status,
            execution.polls,
            shown(times.queue_wait_s),
            shown(times.processing_s),
            shown(times.entity_s),
            execution.id
        ),
    );
    line(
        "memory",
        backend,
        &format!(
            "RSS before the export {} MiB (VmHWM so far {} MiB)  highest VmRSS polled during it {} MiB  peak RSS (VmHWM) after it {} MiB  (trace {})",
            mib(rss_before),
            mib(peak_before),
            mib(execution.rss_max_mib),
            mib(peak_after),
            trace.display()
        ),
    );
    summary["execution_id"] = json!(execution.id);
    summary["status"] = json!(execution.status);
    summary["export"] = json!({
        "rows": times.rows, "seconds": seconds, "rows_per_second": rate, "seen_final_seconds": seen,
        "polls": execution.polls, "queue_wait_seconds": times.queue_wait_s, "processing_seconds": times.processing_s,
        "entity_seconds": times.entity_s,
    });
    summary["memory"] = json!({
        "rss_start_mib": rss_start, "rss_before_mib": rss_before, "peak_before_mib": peak_before,
        "rss_polled_max_mib": execution.rss_max_mib, "peak_after_mib": peak_after,
    });
    if execution.timed_out {
        problems.push(format!("the export was still {} after {} s", execution.status, args.timeout_secs));
    }
    if execution.status != "Succeeded" {
        problems.push(format!("the export ended {}: {}", execution.status, times.reason));
        summary["problems"] = problems.to_json();
        return problems.verdict(backend);
    }
    if rows != args.rows {
        problems.push(format!("the server says it exported {rows} rows, not the {} seeded", args.rows));
    }

    // 2. The package: its URL, the download without a token, its contents.
    let url = package::package_url(&writer, &execution.id).await?;
    let zip = dir.join("package.zip");
    let (bytes, took) = package::download(&writer, &url, &zip).await?;
    line(
        "package",
        backend,
        &format!(
            "{}  downloaded in {:.2} s without a token  ({})",
            check::size_text(bytes),
            took.as_secs_f64(),
            package::without_signature(&url)
        ),
    );
    let contents = tokio::task::spawn_blocking(move || check::package(&zip, COMPANY)).await??;
    let csv = &contents.csv;
    line(
        "check",
        backend,
        &format!(
            "{}: {} data rows of {COMPANY} ({} seeded), {} of other companies, {} columns  (entries: {})",
            contents.csv_name,
            csv.rows - csv.other_company,
            args.rows,
            csv.other_company,
            csv.columns,
            contents.describe_entries()
        ),
    );
    if csv.rows != args.rows || csv.other_company > 0 {
        problems.push(format!(
            "the package's {} holds {} data rows ({} of other companies); {} were seeded in {COMPANY}",
            contents.csv_name, csv.rows, csv.other_company, args.rows
        ));
    }
    summary["package"] = json!({
        "bytes": bytes, "download_seconds": took.as_secs_f64(), "csv": contents.csv_name, "csv_rows": csv.rows,
        "csv_other_company_rows": csv.other_company, "csv_columns": csv.columns,
        "entries": contents.entries.iter().map(|(n, s)| json!({"name": n, "bytes": s})).collect::<Vec<_>>(),
    });

    // 3. The reference dump, with ferry idle.
    let dump = reference::dump(db, &dir.join("reference.csv")).await?;
    line(
        "reference",
        backend,
        &format!(
            "{} rows  {:.2} s  {:.0} rows/s  {}  ({})",
            dump.rows,
            dump.elapsed.as_secs_f64(),
            dump.rate(),
            check::size_text(dump.bytes),
            dump.command
        ),
    );
    if dump.rows != args.rows {
        problems.push(format!("the reference dump holds {} rows, not the {} seeded", dump.rows, args.rows));
    }
    let ratio = (dump.rate() > 0.0).then(|| rate / dump.rate());
    let (shown_ratio, verdict) = match ratio {
        Some(r) => (format!("{r:.2}"), if r >= RATIO_AIM { "met" } else { "NOT met" }),
        None => ("n/a".to_string(), "-"),
    };
    line(
        "ratio",
        backend,
        &format!("ferry export / reference dump {shown_ratio}  (rows/s over rows/s; aim >= {RATIO_AIM}: {verdict})"),
    );
    summary["reference"] = dump.to_json();
    summary["ratio"] = json!(ratio);
    summary["problems"] = problems.to_json();
    problems.verdict(backend)
}
