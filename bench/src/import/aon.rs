//! Step `aon-writers`: does an all-or-nothing import block other writers? One writer client
//! sends single-row `POST /data/BenchWrites` one after the other (closed loop) — first alone
//! for a few seconds (the baseline), then from just before a customers file is enqueued to
//! the all-or-nothing job until that message is final. Each request's latency is kept; the
//! figures compare the two phases, and the longest wait says how long the writer went without
//! getting a write through. `import-aon-writer-<backend>.csv` traces every request.

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::files::WRITER_COLLECTION;
use super::{AON_ACTIVITY, Run, queue, shown};
use crate::api::Api;
use crate::load::{self, LoadResult, Outcome, Until};
use crate::report::line;
use crate::stats::{ms, per_second};

/// One POST of the writer: item `<phase><n>` of `BenchWrites`.
async fn write(api: Api, phase: char, n: u64) -> Outcome {
    let item = format!("{phase}{n:08}");
    let body = json!({ "ItemId": item, "Name": format!("Written beside an import, {n}"), "Quantity": n % 97 + 1, "Price": 1.25 });
    let request = api.request(Method::POST, &format!("/data/{WRITER_COLLECTION}")).json(&body);
    Api::outcome(request, &format!("POST /data/{WRITER_COLLECTION} {item}"), StatusCode::CREATED, None).await
}

/// The writer, alone, until `until`.
async fn writer(api: &Api, phase: char, until: Until) -> LoadResult {
    let api = api.clone();
    load::run(1, until, move |_, n| write(api.clone(), phase, n)).await
}

/// `812 requests (162 req/s)  p50 … ms  p99 … ms  max … ms  errors 0  longest wait … ms`
fn describe(r: &LoadResult) -> String {
    format!(
        "{} requests ({:.0} req/s)  {}  errors {}  longest wait {:.1} ms",
        r.requests,
        per_second(r.requests as f64, r.elapsed.as_secs_f64()),
        r.latencies.describe(2),
        r.errors,
        ms(r.longest_wait)
    )
}

pub async fn run(run: &mut Run<'_>) -> Result<()> {
    let file = run.inputs.aon.as_ref().context("no all-or-nothing customers file")?;
    let backend = run.backend;
    run.api.renew().await?;
    let writer_api = run.api.clone();

    let baseline = writer(&writer_api, 'B', Until::Elapsed(Duration::from_secs(run.args.aon_baseline_secs))).await;
    line(
        "aon-base",
        backend,
        &format!("writer alone {:.1} s: {}", baseline.elapsed.as_secs_f64(), describe(&baseline)),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writer_started = chrono::Utc::now();
    let during = {
        let (api, stop) = (writer_api.clone(), stop.clone());
        tokio::spawn(async move { writer(&api, 'W', Until::Flag(stop)).await })
    };
    let (t0, started) = (chrono::Utc::now(), Instant::now());
    let waited = async {
        let id = queue::enqueue_file(&run.api, AON_ACTIVITY, "Customers V3", &file.path).await?;
        let upload = started.elapsed().as_secs_f64();
        let m = queue::wait_message(&run.api, &id, t0, run.args.timeout(), run.args.poll(), None).await?;
        anyhow::Ok((upload, m))
    }
    .await;
    stop.store(true, Ordering::SeqCst);
    let during = during.await.context("the writer task failed")?;
    let (upload, m) = waited?;
    // The import ran from the enqueue to `finished_at`; the writer went on until a poll saw
    // the message final. Keep the requests that started before `finished_at`.
    let during = match m.end_to_end_s {
        Some(e2e) => {
            during.before((t0 - writer_started).to_std().unwrap_or_default() + Duration::from_secs_f64(e2e.max(0.0)))
        }
        None => during,
    };

    line(
        "aon-import",
        backend,
        &format!(
            "{} rows  {}  enqueue→Processed {} s  {} rows/s  processing {} s  (upload {upload:.2} s; all-or-nothing job; inserted {})",
            file.rows,
            m.state,
            shown(m.end_to_end_s, 2),
            shown(m.end_to_end_s.map(|s| per_second(file.rows as f64, s)), 0),
            shown(m.processing_s, 2),
            m.counters["inserted"]
        ),
    );
    line(
        "aon-writer",
        backend,
        &format!("during the import {:.1} s: {}", during.elapsed.as_secs_f64(), describe(&during)),
    );
    let times = |a: f64, b: f64| if b > 0.0 { format!("{:.1}x", a / b) } else { "n/a".to_string() };
    let (lb, ld) = (&baseline.latencies, &during.latencies);
    line(
        "aon-ratio",
        backend,
        &format!(
            "during / alone: p50 {}  p99 {}  max {}  req/s {}  (longest wait {:.1} ms against {:.1} ms)",
            times(ld.quantile(0.5), lb.quantile(0.5)),
            times(ld.quantile(0.99), lb.quantile(0.99)),
            times(ld.max(), lb.max()),
            times(during.rate(), baseline.rate()),
            ms(during.longest_wait),
            ms(baseline.longest_wait)
        ),
    );
    for (phase, r) in [("alone", &baseline), ("during", &during)] {
        if let Some(e) = &r.first_error {
            eprintln!("aon-writer {backend:<8}  {} errors {phase}; first: {e}", r.errors);
        }
    }
    if m.timed_out {
        run.problems.push(format!("aon: no final state within {} s (state {})", run.args.timeout_secs, m.state));
    }
    if m.state != "Processed" || m.counter("inserted") != Some(file.rows) {
        run.problems.push(format!("aon: the all-or-nothing import ended {} with {}: {}", m.state, m.counters, m.why()));
    }
    let trace = run.ctx.out.join(format!("import-aon-writer-{backend}.csv"));
    write_trace(&trace, &baseline, &during)?;
    for (key, value) in [
        ("aon_rows", json!(file.rows)),
        ("aon_state", json!(m.state)),
        ("aon_e2e_s", json!(m.end_to_end_s)),
        ("aon_processing_s", json!(m.processing_s)),
        ("aon_writer_base_requests", json!(baseline.requests)),
        ("aon_writer_base_p50_ms", json!(lb.quantile(0.5))),
        ("aon_writer_base_p99_ms", json!(lb.quantile(0.99))),
        ("aon_writer_base_max_ms", json!(lb.max())),
        ("aon_writer_requests", json!(during.requests)),
        ("aon_writer_errors", json!(during.errors)),
        ("aon_writer_p50_ms", json!(ld.quantile(0.5))),
        ("aon_writer_p99_ms", json!(ld.quantile(0.99))),
        ("aon_writer_max_ms", json!(ld.max())),
        ("aon_writer_longest_wait_ms", json!(ms(during.longest_wait))),
    ] {
        run.set(key, value);
    }
    Ok(())
}

/// `phase,seconds,latency_ms,ok` for every request of both phases (seconds from each phase's
/// start).
fn write_trace(path: &std::path::Path, baseline: &LoadResult, during: &LoadResult) -> Result<()> {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    writeln!(out, "phase,seconds,latency_ms,ok")?;
    for (phase, r) in [("alone", baseline), ("during", during)] {
        for s in &r.samples {
            writeln!(out, "{phase},{:.3},{:.2},{}", s.at.as_secs_f64(), ms(s.took), u8::from(s.ok))?;
        }
    }
    out.flush()?;
    Ok(())
}
