//! `ferry-odata-bench`: the benchmark of issue 2 against a running ferry server. It measures
//! single-row POST and GET-by-key throughput with N concurrent clients (against `/healthz` as
//! the HTTP reference), seeds many customers straight into the database, pages through all of
//! them (server-driven and `$top`/`$skip`), and reads the same table with `sqlite3`/`psql` as
//! the reference. Each step prints one line of figures; `--json-out` writes them all as JSON.
//! `bench/odata.sh` starts the server and runs this tool; see `bench/README.md`.

mod api;
mod load;
mod paging;
mod seed;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::Api;
use load::LoadResult;

/// Load and paging benchmark of ferry's OData entity API.
#[derive(Debug, Parser)]
#[command(name = "ferry-odata-bench", max_term_width = 100)]
struct Args {
    /// Base URL of the running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Client id of an app with the writer role.
    #[arg(long, default_value = "bench")]
    client_id: String,
    /// That app's secret.
    #[arg(long, env = "BENCH_SECRET", hide_env_values = true)]
    secret: String,
    /// URL of the database the server uses (for seeding and the reference read).
    #[arg(long)]
    database: String,
    /// Customers to seed for the paging steps.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=20_000_000))]
    rows: u64,
    /// Concurrent clients in the throughput steps.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Seconds each throughput step runs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Rows per page in the paging steps.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    page_size: u64,
    /// Seconds after which a paging step stops and reports what it read.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    paging_limit_secs: u64,
    /// Rows per `Store::insert` call (one transaction) when seeding.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seed_batch: u64,
    /// Tag in the keys this run creates (`P<tag>-…`, `S<tag>…`) so runs can repeat on one
    /// database; default: 4 base-36 digits from the clock.
    #[arg(long, value_parser = parse_tag)]
    tag: Option<String>,
    /// Run `ANALYZE` on the customer table after seeding (fresh planner statistics); without
    /// it the paging steps see whatever statistics the database has at that moment.
    #[arg(long)]
    analyze: bool,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
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

fn backend_of(database: &str) -> &'static str {
    if database.starts_with("sqlite:") { "sqlite" } else { "postgres" }
}

/// Prints one figure line: step name and backend in fixed columns, then the figures.
fn line(step: &str, backend: &str, figures: &str) {
    println!("{step:<10} {backend:<8}  {figures}");
}

fn load_line(step: &str, backend: &str, concurrency: u64, r: &LoadResult) {
    line(
        step,
        backend,
        &format!(
            "{concurrency} clients  {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  max {:.1} ms  requests {}  errors {}",
            r.rate(),
            r.latencies.quantile_ms(0.50),
            r.latencies.quantile_ms(0.99),
            r.latencies.max_ms(),
            r.requests,
            r.errors
        ),
    );
    if let Some(e) = &r.first_error {
        eprintln!("{step:<10} {backend:<8}  first error: {e}");
    }
}

fn paged_line(step: &str, backend: &str, p: &paging::Paged, page_size: u64) {
    let note = p.note.as_deref().map(|n| format!("  NOTE: {n}")).unwrap_or_default();
    line(
        step,
        backend,
        &format!(
            "{} rows  {} pages of {page_size}  {:.2} s  {:.0} rows/s{note}",
            p.rows,
            p.pages,
            p.elapsed.as_secs_f64(),
            p.rate()
        ),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let backend = backend_of(&args.database);
    let concurrency = args.concurrency as usize;
    let duration = Duration::from_secs(args.seconds);
    let paging_limit = Duration::from_secs(args.paging_limit_secs);
    let tag = args.tag.clone().unwrap_or_else(clock_tag);
    let mut summary = json!({
        "started_at": chrono::Utc::now().to_rfc3339(),
        "backend": backend,
        "rows": args.rows,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "page_size": args.page_size,
        "tag": tag,
    });
    let mut problems: Vec<String> = Vec::new();

    // 1. Token and reference data through the API; the probe POST tells the company.
    let api = Api::connect(&args.base, &args.client_id, &args.secret, concurrency).await?;
    api.seed_reference_data().await?;
    let (company, probe_key) = api.probe_company(&tag).await?;
    line("setup", backend, &format!("token ok  company {company}  key tag {tag}  base {}", api.base));
    summary["company"] = json!(company);

    // 2. POST throughput.
    let (a, t) = (api.clone(), tag.clone());
    let post = load::run(concurrency, duration, move |task, n| {
        let (a, t) = (a.clone(), t.clone());
        async move { a.post_customer(&t, task, n).await }
    })
    .await;
    load_line("post", backend, args.concurrency, &post);
    summary["post"] = post.to_json();
    if post.errors > 0 {
        problems.push(format!("post: {} errors", post.errors));
    }

    // 3. GET-by-key throughput over the keys just posted (or the probe key alone).
    let mut keys = post.kept.clone();
    if keys.is_empty() {
        keys.push(probe_key.clone());
    }
    let keys = Arc::new(keys);
    let (a, k, c) = (api.clone(), keys.clone(), company.clone());
    let get = load::run(concurrency, duration, move |task, n| {
        let (a, k, c) = (a.clone(), k.clone(), c.clone());
        async move { a.get_customer(&c, &k[load::pick(task, n, k.len())]).await }
    })
    .await;
    load_line("get-key", backend, args.concurrency, &get);
    summary["get_by_key"] = get.to_json();
    if get.errors > 0 {
        problems.push(format!("get-by-key: {} errors", get.errors));
    }

    // 4. Reference: /healthz, no database and no auth.
    let a = api.clone();
    let health = load::run(concurrency, duration, move |_, _| {
        let a = a.clone();
        async move { a.healthz().await }
    })
    .await;
    load_line("healthz", backend, args.concurrency, &health);
    let get_ratio = get.rate() / health.rate().max(1e-9);
    let post_ratio = post.rate() / health.rate().max(1e-9);
    line("ratio", backend, &format!("get-key / healthz {get_ratio:.3}   post / healthz {post_ratio:.3}"));
    summary["healthz"] = health.to_json();
    summary["ratio_get_by_key_to_healthz"] = json!(get_ratio);
    summary["ratio_post_to_healthz"] = json!(post_ratio);

    // 5. Seed rows straight into the database.
    let before = api.count_customers().await?;
    if before < post.kept.len() as u64 + 1 {
        problems.push(format!("$count says {before} customers after {} successful POSTs", post.kept.len() + 1));
    }
    if args.rows > 0 {
        let seeded = seed::seed_customers(&args.database, &company, &tag, args.rows, args.seed_batch).await?;
        line(
            "seed",
            backend,
            &format!(
                "{} rows  {} batches of {}  {:.2} s  {:.0} rows/s",
                seeded.rows,
                seeded.batches,
                args.seed_batch,
                seeded.elapsed.as_secs_f64(),
                seeded.rate()
            ),
        );
        summary["seed"] = json!({
            "rows": seeded.rows, "batches": seeded.batches, "batch_rows": args.seed_batch,
            "seconds": seeded.elapsed.as_secs_f64(), "rows_per_second": seeded.rate(),
        });
    }
    if args.analyze {
        let (took, shown) = paging::analyze(&args.database)?;
        line("analyze", backend, &format!("{:.2} s  ({shown})", took.as_secs_f64()));
        summary["analyze_seconds"] = json!(took.as_secs_f64());
    }
    summary["analyzed"] = json!(args.analyze);
    let expected_rows = before + args.rows;
    let counted = api.count_customers().await?;
    if counted != expected_rows {
        problems.push(format!("$count says {counted} customers, expected {expected_rows}"));
    }
    summary["customers_in_company"] = json!(counted);

    // 6. Server-driven paging.
    let max_pages = counted / args.page_size + 10;
    let next = paging::server_driven(&api, args.page_size, paging_limit, max_pages).await?;
    paged_line("page-next", backend, &next, args.page_size);
    if next.note.is_none() && next.rows != counted {
        problems.push(format!("server-driven paging read {} rows of {counted}", next.rows));
    }
    summary["paging_next_link"] = next.to_json();

    // 7. Client-driven paging.
    let skip = paging::client_driven(&api, args.page_size, paging_limit, max_pages).await?;
    paged_line("page-skip", backend, &skip, args.page_size);
    if skip.note.is_none() && skip.rows != counted {
        problems.push(format!("$top/$skip paging read {} rows of {counted}", skip.rows));
    }
    summary["paging_top_skip"] = skip.to_json();

    // 8. Reference read with the database's own client.
    let (reference, shown) = paging::reference_read(&args.database)?;
    let secs = reference.as_secs_f64();
    line("reference", backend, &format!("{counted} rows  {secs:.2} s  {:.0} rows/s  ({shown})", counted as f64 / secs));
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
    summary["problems"] = json!(problems);

    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("PROBLEM {backend}: {p}");
        }
        bail!("{} problem(s) seen; figures above may not be comparable", problems.len());
    }
    Ok(())
}
