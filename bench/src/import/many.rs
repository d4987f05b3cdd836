//! Step `messages`: many one-row CSVs enqueued round-robin over the custom entities by N
//! concurrent clients (each sending its share one after the other over a kept-alive
//! connection), then waited for until every message of the job is final. The reference: the
//! database's own durable one-row commits on the same disk — `sqlite3` running one-row INSERTs
//! in autocommit (WAL, `synchronous=FULL`, as ferry opens it), `pgbench` running one-row INSERT
//! transactions from as many clients — with ferry idle.

use anyhow::Result;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

use super::{MESSAGES_ACTIVITY, Run, files, queue, shown};
use crate::report::line;
use crate::stats::per_second;

/// Failed enqueues shown.
const FAILURES_SHOWN: usize = 5;

pub async fn run(run: &mut Run<'_>) -> Result<()> {
    let (backend, count, entities, clients) =
        (run.backend, run.args.messages as usize, run.args.entities as usize, run.args.clients as usize);
    run.api.renew().await?;
    let (t0, started) = (chrono::Utc::now(), Instant::now());
    let api = Arc::new(run.api.clone());
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let api = api.clone();
            tokio::spawn(async move {
                let (mut ok, mut failures) = (0u64, Vec::new());
                for i in (client..count).step_by(clients) {
                    let e = i % entities + 1;
                    let body = files::one_row_message(i, e);
                    match queue::enqueue_body(&api, MESSAGES_ACTIVITY, &files::message_entity(e), body).await {
                        Ok(_) => ok += 1,
                        Err(e) if failures.len() < FAILURES_SHOWN => failures.push(format!("{e:#}")),
                        Err(_) => {}
                    }
                }
                (ok, failures)
            })
        })
        .collect();
    let (mut ok, mut failures) = (0u64, Vec::new());
    for task in futures::future::join_all(tasks).await {
        let (n, f) = task?;
        ok += n;
        failures.extend(f);
    }
    let enqueue_s = started.elapsed().as_secs_f64();
    let enqueue_rate = per_second(ok as f64, enqueue_s);
    line(
        "enqueue",
        backend,
        &format!(
            "{ok} of {count} one-row messages over {entities} entities from {clients} clients in {enqueue_s:.2} s  {enqueue_rate:.0} messages/s"
        ),
    );
    if ok < count as u64 {
        run.problems.push(format!("{} enqueues failed; first: {}", count as u64 - ok, failures.join(" | ")));
    }
    let Some(done) = queue::wait_activity(&run.api, MESSAGES_ACTIVITY, ok, run.args.timeout(), t0).await? else {
        run.problems.push(format!("messages: not all final within {} s", run.args.timeout_secs));
        return Ok(());
    };
    let processed = done.count("Processed");
    let e2e_rate = done.end_to_end_s.map(|s| per_second(processed as f64, s));
    line(
        "messages",
        backend,
        &format!(
            "enqueue→all final {} s  {} messages/s  states {}  (first started after {} s; seen all final after {:.2} s)",
            shown(done.end_to_end_s, 2),
            shown(e2e_rate, 0),
            done.states_json(),
            shown(done.first_started_after_s, 2),
            done.seen_final_s
        ),
    );
    if processed < done.messages {
        run.problems.push(format!("{} messages did not end Processed", done.messages - processed));
    }
    let commits = run.args.messages.min(crate::commits::REFERENCE_COMMITS);
    let (commits, took, command) = crate::commits::one_row_commits(run.db, run.dir, run.args.clients, commits).await?;
    let reference_rate = per_second(commits as f64, took);
    line(
        "reference",
        backend,
        &format!("{commits} one-row commits  {took:.2} s  {reference_rate:.0} commits/s  ({command})"),
    );
    let ratio = e2e_rate.filter(|r| *r > 0.0 && reference_rate > 0.0).map(|r| r / reference_rate);
    line("ratio", backend, &format!("ferry / reference (messages/s over commits/s): {}", shown(ratio, 3)));
    run.set("messages_reference_commits_per_s", json!(reference_rate));
    run.set("messages_ratio", json!(ratio));
    for (key, value) in [
        ("messages", json!(ok)),
        ("messages_enqueue_s", json!(enqueue_s)),
        ("messages_enqueue_per_s", json!(enqueue_rate)),
        ("messages_e2e_s", json!(done.end_to_end_s)),
        ("messages_e2e_per_s", json!(e2e_rate)),
        ("messages_processed", json!(processed)),
        ("messages_other", json!(done.messages - processed)),
    ] {
        run.set(key, value);
    }
    Ok(())
}
