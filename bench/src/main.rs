//! `ferry-bench`: ferry's benchmarks in one tool. Each subcommand starts a ferry server of its
//! own (any ferry binary, `--ferry`) on a fresh SQLite or PostgreSQL database, drives it over
//! HTTP, runs the database's own client on the same data as the reference, prints one line per
//! figure and writes them as JSON. `import`: recurring imports (one big CSV, many one-row
//! messages, writers beside an all-or-nothing import); `odata`: the OData entity API
//! (throughput and paging); `replication`: data export into PostgreSQL and MariaDB (initial
//! copy and delta latency); `export`: exports to a data package through the package API. See
//! `bench/README.md`.

mod api;
mod commits;
mod config;
mod databases;
mod export;
mod import;
mod load;
mod odata;
mod procfs;
mod replication;
mod report;
mod seed;
mod server;
mod stats;
mod tools;

use anyhow::Result;
use clap::{Args, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use databases::Scratch;
use server::FerryBinary;

/// ferry's benchmarks: recurring imports, the OData entity API, replication and exports to data
/// packages, each beside the database's own client.
///
/// Every subcommand starts its own ferry server (the binary of --ferry, or the workspace's
/// release build, built first) on a fresh database, prints the figures line by line and
/// writes them as JSON under --out. Client, server and databases share this machine.
#[derive(Debug, Parser)]
#[command(name = "ferry-bench", max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    bench: Bench,
}

/// Options of every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Every subcommand")]
pub struct Common {
    /// The ferry binary to benchmark [default: `cargo build --release -p ferry` in this
    /// workspace, then its target/release/ferry].
    #[arg(long, global = true, value_name = "PATH")]
    ferry: Option<PathBuf>,
    /// Where the JSON figures, traces and server logs go [default: <workspace>/target/bench].
    #[arg(long, global = true, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep the temporary directories and databases (their names are printed at the end).
    #[arg(long, global = true)]
    keep: bool,
    /// Admin URL of the PostgreSQL server; each run creates and drops its own databases there.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FERRY_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Admin URL of the MariaDB/MySQL server (replication targets).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FERRY_BENCH_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    mysql_url: String,
    /// The server's log filter [default: warn; replication: warn,ferry_replicate=info].
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Recurring imports: a big Customers V3 CSV through a file job beside `sqlite3 .import` /
    /// `psql \copy`, with the server's peak RSS; many one-row messages over many entities; and
    /// a writer's OData latency while an all-or-nothing import runs (aon-writers).
    Import(import::ImportArgs),
    /// The OData entity API: single-row POST and GET-by-key throughput against /healthz, and
    /// paging through many seeded customers against `sqlite3` / `psql` reading the table.
    Odata(odata::OdataArgs),
    /// Replication: the initial copy of many customers into PostgreSQL and MariaDB beside
    /// `psql \copy` / `LOAD DATA LOCAL INFILE`, and the latency of paced OData changes until
    /// they are visible in the target.
    Replication(replication::ReplicationArgs),
    /// Exports to a data package: many customers through the package API (ExportToPackage,
    /// status polls, the signed package URL) with the server's RSS, the package unzipped and
    /// counted, beside `sqlite3 -csv` / `psql \copy … TO` dumping the same table.
    Export(export::ExportArgs),
    /// import, odata, replication and export one after the other, with their defaults (both
    /// backends, both targets) except --rows.
    All {
        /// Rows of every subcommand's big data set [default: each one's own].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
        rows: Option<u64>,
    },
}

/// What every subcommand works with.
pub struct Context {
    pub ferry: FerryBinary,
    pub out: PathBuf,
    pub scratch: Scratch,
    pub postgres_url: String,
    pub mysql_url: String,
    log_level: Option<String>,
}

impl Context {
    /// The server's log filter: `--log-level`, else the subcommand's default.
    pub fn log_level<'a>(&'a self, default: &'a str) -> &'a str {
        self.log_level.as_deref().unwrap_or(default)
    }
}

/// Parses a subcommand's own arguments from nothing but defaults (and `--rows`), for `all`.
fn defaults<A: Args + FromArgMatches>(rows: Option<u64>) -> Result<A> {
    let mut argv = vec!["bench".to_string()];
    if let Some(rows) = rows {
        argv.extend(["--rows".to_string(), rows.to_string()]);
    }
    let matches = A::augment_args(clap::Command::new("bench")).try_get_matches_from(argv)?;
    Ok(A::from_arg_matches(&matches)?)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let benches = match cli.bench {
        Bench::Import(a) => vec![Planned::Import(a)],
        Bench::Odata(a) => vec![Planned::Odata(a)],
        Bench::Replication(a) => vec![Planned::Replication(a)],
        Bench::Export(a) => vec![Planned::Export(a)],
        Bench::All { rows } => match (defaults(rows), defaults(rows), defaults(rows), defaults(rows)) {
            (Ok(i), Ok(o), Ok(r), Ok(x)) => {
                vec![Planned::Import(i), Planned::Odata(o), Planned::Replication(r), Planned::Export(x)]
            }
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    let needed: Vec<_> = benches.iter().flat_map(Planned::tools).collect();
    if let Err(e) = tools::require(&needed) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let ferry = match FerryBinary::resolve(cli.common.ferry.as_deref()).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let out = cli.common.out.clone().unwrap_or_else(|| report::workspace_root().join("target").join("bench"));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: creating {}: {e}", out.display());
        return ExitCode::from(2);
    }
    let ctx = std::sync::Arc::new(Context {
        ferry,
        out,
        scratch: Scratch::new(cli.common.keep),
        postgres_url: cli.common.postgres_url,
        mysql_url: cli.common.mysql_url,
        log_level: cli.common.log_level,
    });
    // The run is a task of its own, so that the clean-up below also follows a panic (e.g. a
    // closed stdout) and Ctrl-C; aborting it drops the servers, which kills them.
    let mut run = {
        let ctx = ctx.clone();
        tokio::spawn(async move { run_all(&ctx, benches).await })
    };
    let outcome = tokio::select! {
        r = &mut run => match r {
            Ok(r) => r.map_err(Some),
            Err(e) => Err(Some(anyhow::anyhow!("the run stopped: {e}"))),
        },
        _ = tokio::signal::ctrl_c() => {
            run.abort();
            let _ = run.await;
            Err(None)
        }
    };
    ctx.scratch.cleanup().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Some(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(None) => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
    }
}

/// A subcommand to run, with its arguments.
enum Planned {
    Import(import::ImportArgs),
    Odata(odata::OdataArgs),
    Replication(replication::ReplicationArgs),
    Export(export::ExportArgs),
}

impl Planned {
    fn tools(&self) -> Vec<(tools::Tool, &'static str)> {
        match self {
            Planned::Import(a) => a.tools(),
            Planned::Odata(a) => a.tools(),
            Planned::Replication(a) => a.tools(),
            Planned::Export(a) => a.tools(),
        }
    }
}

/// Runs every planned subcommand, even after one failed; fails if any did.
async fn run_all(ctx: &Context, benches: Vec<Planned>) -> Result<()> {
    let mut failed = Vec::new();
    let several = benches.len() > 1;
    for bench in benches {
        let (name, result) = match bench {
            Planned::Import(a) => ("import", import::run(ctx, &a).await),
            Planned::Odata(a) => ("odata", odata::run(ctx, &a).await),
            Planned::Replication(a) => ("replication", replication::run(ctx, &a).await),
            Planned::Export(a) => ("export", export::run(ctx, &a).await),
        };
        if let Err(e) = result {
            if several {
                eprintln!("!!! {name}: {e:#}");
            }
            failed.push((name, e));
        }
        if several {
            println!();
        }
    }
    match failed.len() {
        0 => Ok(()),
        1 if !several => Err(failed.remove(0).1),
        _ => anyhow::bail!("failed: {}", failed.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
    }
}
