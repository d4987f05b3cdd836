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
    let (commits, took, command) = reference(run).await?;
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

/// Most one-row commits the reference makes.
const REFERENCE_COMMITS: u64 = 5_000;

/// Durable one-row commits by the database's own client, as many as messages (at most
/// [`REFERENCE_COMMITS`]); answers commits, seconds and the command as shown.
async fn reference(run: &Run<'_>) -> Result<(u64, f64, String)> {
    let commits = run.args.messages.min(REFERENCE_COMMITS);
    if run.db.sqlite_file.is_some() {
        let db = run.dir.join("commits.db");
        let script = run.dir.join("commits.sql");
        let mut sql = String::from(
            "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
        );
        for i in 0..commits {
            sql.push_str(&format!("INSERT INTO t (v) VALUES ('message {i}');\n"));
        }
        std::fs::write(&script, sql)?;
        let read = format!(".read '{}'", script.display());
        let (_, took) = crate::tools::sqlite3(&db, &[&read], true).await?;
        for f in [&db, &script] {
            let _ = std::fs::remove_file(f);
        }
        let shown = format!(
            "sqlite3 {} \".read commits.sql\": {commits} INSERTs in autocommit, WAL, synchronous=FULL",
            db.display()
        );
        Ok((commits, took.as_secs_f64(), shown))
    } else {
        let url = &run.db.url;
        let clients = u32::try_from(run.args.clients.clamp(1, 64)).unwrap_or(8);
        let per_client = (commits / u64::from(clients)).max(1);
        crate::tools::psql(url, "CREATE TABLE ferry_ref_commits (id BIGSERIAL PRIMARY KEY, v TEXT)", true).await?;
        let script = run.dir.join("commits.pgbench");
        std::fs::write(&script, "INSERT INTO ferry_ref_commits (v) VALUES ('message');\n")?;
        let (_, took) = crate::tools::pgbench(url, &script, clients, per_client).await?;
        crate::tools::psql(url, "DROP TABLE ferry_ref_commits", true).await?;
        let _ = std::fs::remove_file(&script);
        let shown = format!("pgbench -c {clients} -t {per_client}: one-row INSERT transactions");
        Ok((per_client * u64::from(clients), took.as_secs_f64(), shown))
    }
}
