//! `ferry-bench import`: recurring imports through the connector API. The files are generated
//! once; per backend a fresh server gets one writer app, two projects and three file jobs
//! (plain customers, one-row messages, and an all-or-nothing customers job), imports the
//! currencies and customer groups, and then runs the chosen steps: `file` (one big Customers
//! V3 CSV beside the database's own CSV loader, with the server's peak RSS), `messages` (many
//! one-row messages over many entities) and `aon-writers` (a writer's OData latency while an
//! all-or-nothing import runs, against the same writer alone).

mod aon;
mod big;
mod files;
mod floor;
mod many;
mod queue;
mod table;

use anyhow::Result;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Context;
use crate::api::Api;
use crate::config::{App, Job, Project, Role, ServerConfig};
use crate::databases::{Backend, Backends, FerryDatabase, ferry_database};
use crate::procfs::mib;
use crate::report::{self, Problems, RunInfo, line};
use crate::server::{Launch, Server};
use crate::tools::Tool;

/// The figures of one backend, flat, as written to `import-<backend>.json`.
type Figures = Map<String, Value>;

const IMPORT_ACTIVITY: &str = "7b1d0c6e-4f3a-4e5b-9a1d-2c3e4f5a6b01";
const MESSAGES_ACTIVITY: &str = "7b1d0c6e-4f3a-4e5b-9a1d-2c3e4f5a6b02";
const AON_ACTIVITY: &str = "7b1d0c6e-4f3a-4e5b-9a1d-2c3e4f5a6b03";
const CUSTOMERS_PROJECT: &str = "Bench customers";
const MESSAGES_PROJECT: &str = "Bench messages";

/// A step of `import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// One big Customers V3 CSV, beside `sqlite3 .import` / `psql \copy`; peak RSS.
    File,
    /// Many one-row messages over many entities.
    Messages,
    /// A writer's single-row OData POSTs while an all-or-nothing import runs, against a
    /// baseline of the same writer alone.
    AonWriters,
}

/// Options of `ferry-bench import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// ferry's database.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
    /// The steps to run, in this order, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "file,messages,aon-writers")]
    steps: Vec<Step>,
    /// Rows of the big customers file (step file).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rows: u64,
    /// Generate a customers file of about this many MB instead of --rows rows (the peak-RSS
    /// check: aim < 256 MiB).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    file_mb: Option<u64>,
    /// One-row messages (step messages).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    messages: u64,
    /// Custom entities the messages go round-robin over.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=999))]
    entities: u64,
    /// Concurrent clients enqueueing the messages, each over one kept-alive connection.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    clients: u64,
    /// `[import] workers` of the server [default: the server's].
    #[arg(long)]
    workers: Option<u32>,
    /// `[import] batch_rows` of the server [default: the server's].
    #[arg(long)]
    batch_rows: Option<u32>,
    /// Rows of the file the all-or-nothing job imports (step aon-writers).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    aon_rows: u64,
    /// Seconds of the writer alone before the all-or-nothing import (its baseline).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    aon_baseline_secs: u64,
    /// Seconds one wait for a final state may take before the run fails.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
    /// Milliseconds between two polls of a message.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
}

impl ImportArgs {
    fn has(&self, step: Step) -> bool {
        self.steps.contains(&step)
    }

    pub fn tools(&self) -> Vec<(Tool, &'static str)> {
        let mut tools = Vec::new();
        if self.has(Step::File) {
            tools.extend(self.backend.reference_tools("import: the reference load of the customers file"));
        }
        if self.has(Step::Messages) {
            tools.extend(self.backend.reference_tools("import: the durable one-row commits beside the messages"));
            if self.backend.list().contains(&Backend::Postgres) {
                tools.push((Tool::Pgbench, "import: one-row commits from concurrent clients on PostgreSQL"));
            }
        }
        tools
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }
}

/// A generated file: where, how many rows and bytes.
pub struct DataFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

impl DataFile {
    fn megabytes(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
}

/// The files every backend gets.
struct Inputs {
    dir: PathBuf,
    entities_dir: PathBuf,
    customers: Option<DataFile>,
    aon: Option<DataFile>,
}

/// One backend's run: what the steps share.
struct Run<'a> {
    ctx: &'a Context,
    args: &'a ImportArgs,
    inputs: &'a Inputs,
    backend: &'static str,
    db: &'a FerryDatabase,
    dir: &'a Path,
    server: &'a Server,
    api: Api,
    figures: Figures,
    problems: Problems,
}

impl Run<'_> {
    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.figures.insert(key.to_string(), value.into());
    }
}

/// A figure that may be missing, with `decimals` digits, `n/a` when missing.
fn shown(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

/// Generates the files, runs every backend, prints the figures table; fails if any failed.
pub async fn run(ctx: &Context, args: &ImportArgs) -> Result<()> {
    let steps: Vec<String> = args
        .steps
        .iter()
        .filter_map(|s| clap::ValueEnum::to_possible_value(s).map(|v| v.get_name().to_string()))
        .collect();
    let size = args.file_mb.map_or_else(|| format!("rows {}", args.rows), |mb| format!("file ~{mb} MB"));
    let workers = args.workers.map_or_else(|| "default".to_string(), |w| w.to_string());
    let batch = args.batch_rows.map_or_else(|| "default".to_string(), |b| b.to_string());
    let mut settings = vec![format!("backends {}", args.backend.names()), format!("steps {}", steps.join(","))];
    if args.has(Step::File) {
        settings.push(size.clone());
    }
    if args.has(Step::Messages) {
        settings
            .push(format!("messages {} over {} entities from {} clients", args.messages, args.entities, args.clients));
    }
    if args.has(Step::AonWriters) {
        settings.push(format!("aon {} rows after {} s of the writer alone", args.aon_rows, args.aon_baseline_secs));
    }
    settings.push(format!("workers {workers}  batch_rows {batch}"));
    let info = report::header(
        "import",
        &ctx.ferry,
        &settings.join("  "),
        "ferry, the clients, the loaders and PostgreSQL share this machine; the load average shows other work on it",
    );
    let inputs = generate(ctx, args)?;
    let mut failed = Vec::new();
    let mut runs = Vec::new();
    let mut files = Vec::new();
    for backend in args.backend.list() {
        let (figures, result) = run_backend(ctx, args, &inputs, backend, &info).await;
        if let Err(e) = result {
            eprintln!("!!! {} run failed: {e:#}", backend.name());
            failed.push(backend.name());
        }
        if let Some(figures) = figures {
            let file = ctx.out.join(format!("import-{}.json", backend.name()));
            report::write_json(&file, &Value::Object(figures.clone()))?;
            files.push(file.display().to_string());
            runs.push(figures);
        }
    }
    println!();
    println!("== figures ({}, commit {}, {}) ==", settings[1..].join(", "), info.commit, info.machine);
    table::print(&runs);
    println!("json      {}", if files.is_empty() { "none".to_string() } else { files.join(" ") });
    anyhow::ensure!(failed.is_empty(), "import failed on {}", failed.join(", "));
    Ok(())
}

/// Writes the reference data, the customers files and the entities, once for every backend.
fn generate(ctx: &Context, args: &ImportArgs) -> Result<Inputs> {
    let dir = ctx.scratch.temp_dir("import")?;
    let files_dir = dir.join("files");
    let entities_dir = dir.join("entities");
    std::fs::create_dir_all(&files_dir)?;
    std::fs::create_dir_all(&entities_dir)?;
    files::write_reference_data(&files_dir)?;
    files::write_entities(&entities_dir.join("bench.toml"), args.entities as usize)?;
    let customers_file = |name: &str, size: files::Size, prefix: &str, seed: u64| -> Result<DataFile> {
        let path = files_dir.join(name);
        let started = Instant::now();
        let (rows, bytes) = files::write_customers(&path, size, prefix, seed)?;
        let file = DataFile { path, rows, bytes };
        println!(
            "file      {}: {rows} rows, {:.1} MB, {} columns (generated in {:.2} s)",
            file.path.display(),
            file.megabytes(),
            files::CUSTOMER_COLUMNS.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(file)
    };
    let customers = if args.has(Step::File) {
        let size = args.file_mb.map_or(files::Size::Rows(args.rows), files::Size::Megabytes);
        let file = customers_file("customers.csv", size, "C", 20_261_122)?;
        let text = std::fs::read_to_string(&file.path).unwrap_or_default();
        for l in text.lines().take(2) {
            println!("          {}", l.trim_end());
        }
        Some(file)
    } else {
        None
    };
    let aon = if args.has(Step::AonWriters) {
        Some(customers_file("aon-customers.csv", files::Size::Rows(args.aon_rows), "A", 20_261_205)?)
    } else {
        None
    };
    Ok(Inputs { dir: files_dir, entities_dir, customers, aon })
}

fn server_config(args: &ImportArgs, inputs: &Inputs) -> ServerConfig {
    let job = |activity: &str, description: &str, project: &str, all_or_nothing: bool| Job {
        activity_id: activity.to_string(),
        description: format!("ferry-bench import: {description}"),
        project: project.to_string(),
        all_or_nothing,
    };
    ServerConfig {
        entities_dir: Some(inputs.entities_dir.clone()),
        import_workers: args.workers,
        import_batch_rows: args.batch_rows,
        apps: vec![App::new("bench", Role::Writer)],
        projects: vec![
            Project {
                name: CUSTOMERS_PROJECT.to_string(),
                description: "ferry-bench import: currencies, customer groups and customers".to_string(),
                entities: vec!["Currencies".into(), "Customer groups".into(), "Customers V3".into()],
            },
            Project {
                name: MESSAGES_PROJECT.to_string(),
                description: format!("ferry-bench import: {} simple entities for one-row messages", args.entities),
                entities: (1..=args.entities as usize).map(files::message_entity).collect(),
            },
        ],
        jobs: vec![
            job(IMPORT_ACTIVITY, "customers", CUSTOMERS_PROJECT, false),
            job(MESSAGES_ACTIVITY, "one-row messages", MESSAGES_PROJECT, false),
            job(AON_ACTIVITY, "customers, all or nothing", CUSTOMERS_PROJECT, true),
        ],
        ..ServerConfig::default()
    }
}

/// One backend: database, server, reference data, the steps. Answers the figures (once the
/// server was up) and whether everything went well.
async fn run_backend(
    ctx: &Context,
    args: &ImportArgs,
    inputs: &Inputs,
    backend: Backend,
    info: &RunInfo,
) -> (Option<Figures>, Result<()>) {
    let dir = inputs.dir.parent().unwrap_or(&inputs.dir).join(backend.name());
    let db = match prepare(ctx, backend, &dir).await {
        Ok(db) => db,
        Err(e) => return (None, Err(e)),
    };
    let config = server_config(args, inputs);
    let launch = Launch::of_run(ctx, "import", backend.name(), "warn", &config, &dir, &db.url);
    let server = match Server::start(launch).await {
        Ok(s) => s,
        Err(e) => return (None, Err(e)),
    };
    let api = match Api::connect(&server.base, config.app("bench"), args.clients as usize).await {
        Ok(api) => api,
        Err(e) => {
            server.stop().await;
            return (None, Err(e));
        }
    };
    let mut run = Run {
        ctx,
        args,
        inputs,
        backend: backend.name(),
        db: &db,
        dir: &dir,
        server: &server,
        api,
        figures: Figures::new(),
        problems: Problems::default(),
    };
    for (key, value) in [
        ("backend", json!(backend.name())),
        ("commit", json!(info.commit)),
        ("ferry", json!(info.ferry)),
        ("date", json!(report::now_utc())),
        ("cpus", json!(info.cpus)),
        ("entities", json!(args.entities)),
        ("clients", json!(args.clients)),
    ] {
        run.set(key, value);
    }
    let result = steps(&mut run).await;
    let peak = server.peak_rss_mib();
    line("memory", run.backend, &format!("peak RSS (VmHWM) {} MiB at the end", mib(peak)));
    run.set("peak_rss_end_mib", json!(peak));
    let verdict = run.problems.verdict(run.backend);
    run.set("problems", run.problems.to_json());
    let mut figures = run.figures;
    let log = server.log.clone();
    server.stop_and_summarize().await;
    figures.insert("log_problems".to_string(), json!(report::log_problem_count(&log)));
    (Some(figures), result.and(verdict))
}

async fn prepare(ctx: &Context, backend: Backend, dir: &Path) -> Result<FerryDatabase> {
    std::fs::create_dir_all(dir)?;
    let db = ferry_database(&ctx.scratch, backend, dir, &ctx.postgres_url, "").await?;
    println!("--- {}: {}", backend.name(), db.describe_with_client().await);
    Ok(db)
}

/// Setup and reference data, then the chosen steps in order.
async fn steps(run: &mut Run<'_>) -> Result<()> {
    let rss_start = run.server.rss_mib();
    run.set("rss_start_mib", json!(rss_start));
    line(
        "setup",
        run.backend,
        &format!("ferry pid {} on {}  RSS {} MiB  token ok", run.server.pid, run.server.base, mib(rss_start)),
    );
    // Reference data first, through the plain customers job: currencies, then customer groups.
    for (file, entity) in [("currencies.csv", "Currencies"), ("groups.csv", "Customer groups")] {
        let (t0, started) = (chrono::Utc::now(), Instant::now());
        let id = queue::enqueue_file(&run.api, IMPORT_ACTIVITY, entity, &run.inputs.dir.join(file)).await?;
        let m = queue::wait_message(&run.api, &id, t0, run.args.timeout(), run.args.poll(), None).await?;
        line(
            "refdata",
            run.backend,
            &format!("{entity}: {} rows  {}  {:.2} s", m.counters["read"], m.state, started.elapsed().as_secs_f64()),
        );
        if m.state != "Processed" {
            run.problems.push(format!("{entity} ended {}: {}", m.state, m.why()));
        }
    }
    let rss = run.server.rss_mib();
    line(
        "memory",
        run.backend,
        &format!("RSS {} MiB after the reference data (peak so far {} MiB)", mib(rss), mib(run.server.peak_rss_mib())),
    );
    run.set("rss_refdata_mib", json!(rss));
    for step in run.args.steps.clone() {
        match step {
            Step::File => big::run(run).await?,
            Step::Messages => many::run(run).await?,
            Step::AonWriters => aon::run(run).await?,
        }
    }
    Ok(())
}
