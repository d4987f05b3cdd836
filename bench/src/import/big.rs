//! Step `file`: the big Customers V3 CSV enqueued through the plain job until it is final, with
//! the server's RSS sampled at every poll and its peak (`VmHWM`) afterwards; then the same file
//! loaded by the database's own CSV loader into a plain table (no key, text columns) with ferry
//! idle — `sqlite3 .import` or `psql \copy` — as the reference, and into a copy of ferry's table
//! as the floor (`floor.rs`).

use anyhow::{Context, Result};
use serde_json::json;
use std::time::Instant;

use super::queue::{self, RssTrace};
use super::{IMPORT_ACTIVITY, Run, shown};
use crate::procfs::mib;
use crate::report::line;
use crate::stats::per_second;
use crate::tools;

pub async fn run(run: &mut Run<'_>) -> Result<()> {
    let Some(file) = run.inputs.customers.as_ref() else { return Ok(()) };
    let backend = run.backend;
    run.api.renew().await?;
    let (t0, started) = (chrono::Utc::now(), Instant::now());
    let id = queue::enqueue_file(&run.api, IMPORT_ACTIVITY, "Customers V3", &file.path).await?;
    let upload = started.elapsed().as_secs_f64();
    line(
        "enqueue",
        backend,
        &format!(
            "{} rows  {:.1} MB  {upload:.2} s  {:.0} MB/s  message {id}",
            file.rows,
            file.megabytes(),
            per_second(file.megabytes(), upload)
        ),
    );
    let trace = run.ctx.out.join(format!("import-rss-{backend}.csv"));
    let rss = RssTrace { server: run.server, file: &trace };
    let m = queue::wait_message(&run.api, &id, t0, run.args.timeout(), run.args.poll(), Some(rss)).await?;
    let peak = run.server.peak_rss_mib();
    let rows = file.rows as f64;
    let e2e_rate = m.end_to_end_s.map(|s| per_second(rows, s));
    let processing_rate = m.processing_s.map(|s| per_second(rows, s));
    if m.timed_out {
        run.problems.push(format!("customers: no final state within {} s (state {})", run.args.timeout_secs, m.state));
    }
    line(
        "import",
        backend,
        &format!(
            "{} rows  {}  enqueue→Processed {} s  {} rows/s  processing {} s  {} rows/s  queue wait {} s  (seen final after {:.2} s; attempts {})",
            file.rows,
            m.state,
            shown(m.end_to_end_s, 2),
            shown(e2e_rate, 0),
            shown(m.processing_s, 2),
            shown(processing_rate, 0),
            shown(m.queue_wait_s, 2),
            m.seen_final_s,
            m.attempts
        ),
    );
    line("counters", backend, &m.counters.to_string());
    if m.state != "Processed" {
        run.problems.push(format!("customers ended {}: {}", m.state, m.why()));
    }
    line(
        "memory",
        backend,
        &format!(
            "peak RSS (VmHWM) {} MiB after the import  (RSS after start {} MiB; highest VmRSS polled during the import {} MiB; trace {}; aim < 256 MiB)",
            mib(peak),
            mib(run.figures.get("rss_start_mib").and_then(serde_json::Value::as_f64)),
            mib(m.rss_max_mib),
            trace.display()
        ),
    );
    for (key, value) in [
        ("rows", json!(file.rows)),
        ("file_mb", json!((file.megabytes() * 10.0).round() / 10.0)),
        ("enqueue_s", json!(upload)),
        ("import_state", json!(m.state)),
        ("import_e2e_s", json!(m.end_to_end_s)),
        ("import_e2e_rows_s", json!(e2e_rate)),
        ("import_processing_s", json!(m.processing_s)),
        ("import_processing_rows_s", json!(processing_rate)),
        ("import_queue_wait_s", json!(m.queue_wait_s)),
        ("import_inserted", m.counters["inserted"].clone()),
        ("import_rejected", m.counters["rejected"].clone()),
        ("peak_rss_import_mib", json!(peak)),
        ("rss_polled_max_mib", json!(m.rss_max_mib)),
    ] {
        run.set(key, value);
    }

    // The reference: the database's own CSV loader, same file, into a plain table; ferry idle.
    let (count, load, command) = reference(run).await?;
    let reference_rate = per_second(count as f64, load);
    line("reference", backend, &format!("{count} rows  {load:.2} s  {reference_rate:.0} rows/s  ({command})"));
    if count != file.rows {
        run.problems.push(format!("the reference loaded {count} rows, not {}", file.rows));
    }
    let ratio = |v: Option<f64>| v.filter(|v| *v > 0.0 && reference_rate > 0.0).map(|v| v / reference_rate);
    let (ratio_e2e, ratio_processing) = (ratio(e2e_rate), ratio(processing_rate));
    line(
        "ratio",
        backend,
        &format!(
            "ferry / reference (rows/s over rows/s): enqueue→Processed {}  processing only {}",
            shown(ratio_e2e, 3),
            shown(ratio_processing, 3)
        ),
    );
    for (key, value) in [
        ("reference_s", json!(load)),
        ("reference_rows_s", json!(reference_rate)),
        ("ratio_e2e", json!(ratio_e2e)),
        ("ratio_processing", json!(ratio_processing)),
    ] {
        run.set(key, value);
    }

    // The floor: the same tools loading the file into a copy of ferry's table.
    let (count, load, command) = super::floor::floor(run).await?;
    let floor_rate = per_second(count as f64, load);
    line("floor", backend, &format!("{count} rows  {load:.2} s  {floor_rate:.0} rows/s  ({command})"));
    if count != file.rows {
        run.problems.push(format!("the floor loaded {count} rows, not {}", file.rows));
    }
    let ratio_floor = processing_rate.filter(|v| *v > 0.0 && floor_rate > 0.0).map(|v| v / floor_rate);
    line("ratio", backend, &format!("ferry processing / floor (rows/s over rows/s): {}", shown(ratio_floor, 3)));
    // What the server keeps once idle: the reference and the floor ran meanwhile, and the
    // allocator returns freed pages to the system after a delay — the lowest of 2 s of samples.
    let mut idle = run.server.rss_mib();
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        idle = match (idle, run.server.rss_mib()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    line("memory", backend, &format!("RSS {} MiB idle after the import (lowest of 2 s of samples)", mib(idle)));
    for (key, value) in [
        ("floor_s", json!(load)),
        ("floor_rows_s", json!(floor_rate)),
        ("ratio_floor_processing", json!(ratio_floor)),
        ("rss_idle_after_import_mib", json!(idle)),
    ] {
        run.set(key, value);
    }
    Ok(())
}

/// Loads the customers file with `sqlite3 .import` into a fresh file, or with `psql \copy`
/// into a plain table of text columns in ferry's database; answers rows, seconds and the
/// command as shown.
async fn reference(run: &Run<'_>) -> Result<(u64, f64, String)> {
    let file = run.inputs.customers.as_ref().context("no customers file")?;
    let csv = file.path.to_str().filter(|p| !p.contains('\'')).context("the CSV path must be UTF-8 without quotes")?;
    if run.db.sqlite_file.is_some() {
        let db = run.dir.join("reference.db");
        let _ = std::fs::remove_file(&db);
        let (_, took) = tools::sqlite3(&db, &[".mode csv", &format!(".import '{csv}' customers")], true).await?;
        let (count, _) = tools::sqlite3(&db, &["SELECT count(*) FROM customers"], false).await?;
        std::fs::remove_file(&db).with_context(|| format!("removing {}", db.display()))?;
        let shown = format!(
            "sqlite3 {} '.mode csv' '.import customers.csv customers' (table made from the header)",
            db.display()
        );
        Ok((count.trim().parse().context("sqlite3 count")?, took.as_secs_f64(), shown))
    } else {
        let url = &run.db.url;
        let columns: Vec<String> =
            super::files::CUSTOMER_COLUMNS.iter().map(|c| format!("{} text", c.to_lowercase())).collect();
        let create = format!("CREATE SCHEMA ferry_ref; CREATE TABLE ferry_ref.customers ({})", columns.join(", "));
        tools::psql(url, &create, true).await?;
        let (_, took) = tools::psql(url, &format!("\\copy ferry_ref.customers FROM '{csv}' CSV HEADER"), true).await?;
        let (count, _) = tools::psql(url, "SELECT count(*) FROM ferry_ref.customers", false).await?;
        tools::psql(url, "SET client_min_messages = warning; DROP SCHEMA ferry_ref CASCADE", true).await?;
        let shown = "psql -c \"\\copy ferry_ref.customers FROM 'customers.csv' CSV HEADER\" (plain table, text columns, no key)";
        Ok((count.trim().parse().context("psql count")?, took.as_secs_f64(), shown.to_string()))
    }
}
