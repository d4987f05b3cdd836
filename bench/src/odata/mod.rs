//! `ferry-bench odata`: the OData entity API (issue 2). Per backend a fresh server with one
//! writer app; single-row POST and GET-by-key throughput with N concurrent clients against
//! `/healthz` as the HTTP reference; many customers seeded straight into the database; paging
//! through all of them (server-driven and `$top`/`$skip`) against `sqlite3`/`psql` reading the
//! same table.

mod customers;
mod paging;

use anyhow::Result;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use crate::Context;
use crate::api::Api;
use crate::config::{App, Role, ServerConfig};
use crate::databases::{Backend, Backends, FerryDatabase, ferry_database};
use crate::load::{self, Until};
use crate::report::{self, Problems, RunInfo, line};
use crate::seed::{SeedPlan, seed_customers};
use crate::server::{Launch, Server};
use crate::stats::per_second;
use crate::tools::Tool;

/// Options of `ferry-bench odata`.
#[derive(Debug, clap::Args)]
pub struct OdataArgs {
    /// ferry's database.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
    /// Customers to seed for the paging steps (0: page through the posted ones only).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=20_000_000))]
    rows: u64,
    /// Concurrent clients in the throughput steps.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Seconds each throughput step runs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Rows per page in the paging steps.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    page_size: u64,
    /// Seconds after which a paging step stops and reports what it read.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    paging_limit_secs: u64,
    /// Rows per `Store::insert` call (one transaction) when seeding.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seed_batch: u64,
    /// Tag in the keys this run creates (`P<tag>-…`, `S<tag>…`) [default: 4 base-36 digits
    /// from the clock].
    #[arg(long, value_parser = parse_tag)]
    tag: Option<String>,
    /// Run `ANALYZE` on the customer table after seeding (fresh planner statistics); without it
    /// the paging steps see whatever statistics the database has at that moment.
    #[arg(long)]
    analyze: bool,
}

impl OdataArgs {
    pub fn tools(&self) -> Vec<(Tool, &'static str)> {
        let mut tools = self.backend.reference_tools("odata: the reference read of the customer table");
        if self.backend.list().contains(&Backend::Postgres) {
            tools.push((Tool::Pgbench, "odata: one-row commits from concurrent clients beside the POSTs"));
        }
        tools
    }
}

fn parse_tag(text: &str) -> Result<String, String> {
    if (1..=4).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err("1 to 4 letters or digits".into())
    }
}

/// 4 base-36 digits that change every second (repeat after about 19 days).
fn clock_tag() -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = chrono::Utc::now().timestamp().unsigned_abs() % 36u64.pow(4);
    let mut tag = [b'0'; 4];
    for d in tag.iter_mut().rev() {
        *d = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&tag).into_owned()
}

/// Runs every backend; fails if any failed.
pub async fn run(ctx: &Context, args: &OdataArgs) -> Result<()> {
    let info = report::header(
        "OData",
        &ctx.ferry,
        &format!(
            "backends {}  rows {}  clients {}  {}s per step  page {}  seed batch {}  analyze {}",
            args.backend.names(),
            args.rows,
            args.concurrency,
            args.seconds,
            args.page_size,
            args.seed_batch,
            u8::from(args.analyze)
        ),
        "client and server share this machine",
    );
    let mut failed = Vec::new();
    for backend in args.backend.list() {
        if let Err(e) = run_backend(ctx, args, backend, &info).await {
            eprintln!("!!! {} run failed: {e:#}", backend.name());
            failed.push(backend.name());
        }
    }
    println!("json      {}", ctx.out.join("odata-*.json").display());
    anyhow::ensure!(failed.is_empty(), "odata failed on {}", failed.join(", "));
    Ok(())
}

async fn run_backend(ctx: &Context, args: &OdataArgs, backend: Backend, info: &RunInfo) -> Result<()> {
    let dir = ctx.scratch.temp_dir(&format!("odata-{}", backend.name()))?;
    let db = ferry_database(&ctx.scratch, backend, &dir, &ctx.postgres_url, "").await?;
    println!("database  {}", db.describe_with_client().await);
    let config = ServerConfig {
        odata_max_page_size: Some(10_000),
        apps: vec![App::new("bench", Role::Writer)],
        ..ServerConfig::default()
    };
    let server = Server::start(Launch::of_run(ctx, "odata", backend.name(), "warn", &config, &dir, &db.url)).await?;
    println!("--- {}: ferry pid {} on {}", backend.name(), server.pid, server.base);
    let result = steps(ctx, args, &db, &server, &config, info).await;
    server.stop_and_summarize().await;
    result
}

/// The steps against one running server; writes `odata-<backend>.json`.
async fn steps(
    ctx: &Context,
    args: &OdataArgs,
    db: &FerryDatabase,
    server: &Server,
    config: &ServerConfig,
    info: &RunInfo,
) -> Result<()> {
    let backend = db.backend.name();
    let concurrency = args.concurrency as usize;
    let duration = Duration::from_secs(args.seconds);
    let paging_limit = Duration::from_secs(args.paging_limit_secs);
    let tag = args.tag.clone().unwrap_or_else(clock_tag);
    let mut summary = json!({
        "started_at": chrono::Utc::now().to_rfc3339(), "backend": backend, "commit": info.commit,
        "ferry": info.ferry, "cpus": info.cpus, "rows": args.rows, "concurrency": args.concurrency,
        "seconds": args.seconds, "page_size": args.page_size, "tag": tag,
    });
    let mut problems = Problems::default();

    // 1. Token and reference data through the API; the probe POST tells the company.
    let api = Api::connect(&server.base, config.app("bench"), concurrency).await?;
    customers::seed_reference_data(&api).await?;
    let (company, probe_key) = customers::probe_company(&api, &tag).await?;
    line("setup", backend, &format!("token ok  company {company}  key tag {tag}  base {}", api.base));
    summary["company"] = json!(company);

    // 2. POST throughput.
    let (a, t) = (api.clone(), tag.clone());
    let post = load::run(concurrency, Until::Elapsed(duration), move |task, n| {
        let (a, t) = (a.clone(), t.clone());
        async move { customers::post_customer(&a, &t, task, n).await }
    })
    .await;
    load_line("post", backend, concurrency, &post);
    summary["post"] = post.to_json();
    if post.errors > 0 {
        problems.push(format!("post: {} errors", post.errors));
    }
    // The POSTs' reference: the database's own durable one-row commits from as many clients.
    let dir = ctx.scratch.temp_dir("odata-commits")?;
    let (commits, took, command) =
        crate::commits::one_row_commits(db, &dir, args.concurrency, crate::commits::REFERENCE_COMMITS).await?;
    let commit_rate = per_second(commits as f64, took);
    let post_to_commits = post.rate() / commit_rate.max(1e-9);
    line(
        "post-ref",
        backend,
        &format!("{commits} one-row commits  {took:.2} s  {commit_rate:.0} commits/s  ({command})"),
    );
    line("post-ratio", backend, &format!("post / one-row commits {post_to_commits:.3}  (aim >= 0.5)"));
    summary["post_reference_commits_per_s"] = json!(commit_rate);
    summary["ratio_post_to_commits"] = json!(post_to_commits);

    // 3. GET-by-key throughput over the keys just posted (or the probe key alone).
    let mut keys = post.kept.clone();
    if keys.is_empty() {
        keys.push(probe_key);
    }
    let keys = Arc::new(keys);
    let (a, k, c) = (api.clone(), keys.clone(), company.clone());
    let get = load::run(concurrency, Until::Elapsed(duration), move |task, n| {
        let (a, k, c) = (a.clone(), k.clone(), c.clone());
        async move { customers::get_customer(&a, &c, &k[load::pick(task, n, k.len())]).await }
    })
    .await;
    load_line("get-key", backend, concurrency, &get);
    summary["get_by_key"] = get.to_json();
    if get.errors > 0 {
        problems.push(format!("get-by-key: {} errors", get.errors));
    }

    // 4. Reference: /healthz, no database and no auth.
    let a = api.clone();
    let health = load::run(concurrency, Until::Elapsed(duration), move |_, _| {
        let a = a.clone();
        async move { customers::healthz(&a).await }
    })
    .await;
    load_line("healthz", backend, concurrency, &health);
    let get_ratio = get.rate() / health.rate().max(1e-9);
    let post_ratio = post.rate() / health.rate().max(1e-9);
    line("ratio", backend, &format!("get-key / healthz {get_ratio:.3}   post / healthz {post_ratio:.3}"));
    summary["healthz"] = health.to_json();
    summary["ratio_get_by_key_to_healthz"] = json!(get_ratio);
    summary["ratio_post_to_healthz"] = json!(post_ratio);

    // 5. Seed rows straight into the database.
    let before = customers::count_customers(&api).await?;
    if before < post.kept.len() as u64 + 1 {
        problems.push(format!("$count says {before} customers after {} successful POSTs", post.kept.len() + 1));
    }
    if args.rows > 0 {
        let prefix = format!("S{tag}");
        let plan = SeedPlan {
            company: &company,
            prefix: &prefix,
            rows: args.rows,
            batch: args.seed_batch,
            new_database: false,
        };
        let seeded = seed_customers(&db.url, &plan).await?;
        line("seed", backend, &seeded.describe());
        summary["seed"] = seeded.to_json();
    }
    if args.analyze {
        let (took, shown) = paging::analyze(db).await?;
        line("analyze", backend, &format!("{:.2} s  ({shown})", took.as_secs_f64()));
        summary["analyze_seconds"] = json!(took.as_secs_f64());
    }
    summary["analyzed"] = json!(args.analyze);
    let expected_rows = before + args.rows;
    let counted = customers::count_customers(&api).await?;
    if counted != expected_rows {
        problems.push(format!("$count says {counted} customers, expected {expected_rows}"));
    }
    summary["customers_in_company"] = json!(counted);

    // 6. Server-driven paging.
    let max_pages = counted / args.page_size + 10;
    let next = paging::server_driven(&api, args.page_size, paging_limit, max_pages).await?;
    line("page-next", backend, &next.describe(args.page_size));
    if next.note.is_none() && next.rows != counted {
        problems.push(format!("server-driven paging read {} rows of {counted}", next.rows));
    }
    summary["paging_next_link"] = next.to_json();

    // 7. Client-driven paging.
    let skip = paging::client_driven(&api, args.page_size, paging_limit, max_pages).await?;
    line("page-skip", backend, &skip.describe(args.page_size));
    if skip.note.is_none() && skip.rows != counted {
        problems.push(format!("$top/$skip paging read {} rows of {counted}", skip.rows));
    }
    summary["paging_top_skip"] = skip.to_json();

    // 8. Reference read with the database's own client.
    let (reference, shown) = paging::reference_read(db).await?;
    let secs = reference.as_secs_f64();
    line(
        "reference",
        backend,
        &format!("{counted} rows  {secs:.2} s  {:.0} rows/s  ({shown})", per_second(counted as f64, secs)),
    );
    let next_ratio = next.elapsed.as_secs_f64() / secs;
    let skip_ratio = skip.elapsed.as_secs_f64() / secs;
    let partial = if skip.note.is_some() { " (partial)" } else { "" };
    line(
        "ratio",
        backend,
        &format!(
            "paging / reference: nextLink {next_ratio:.1}x   $top/$skip {skip_ratio:.1}x{partial}  (seconds over seconds)"
        ),
    );
    summary["reference"] = json!({ "command": shown, "seconds": secs });
    summary["ratio_paging_next_link_to_reference"] = json!(next_ratio);
    summary["ratio_paging_top_skip_to_reference"] = json!(skip_ratio);
    summary["problems"] = problems.to_json();
    report::write_json(&ctx.out.join(format!("odata-{backend}.json")), &summary)?;
    problems.verdict(backend)
}

fn load_line(step: &str, backend: &str, concurrency: usize, r: &load::LoadResult) {
    line(step, backend, &r.describe(concurrency));
    if let Some(e) = &r.first_error {
        eprintln!("{step:<10} {backend:<8}  first error: {e}");
    }
}
