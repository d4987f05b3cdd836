//! `ferry enqueue`, `ferry status` and `ferry errors`: files into a recurring import job, where
//! a message stands (with `--wait`, a live line on the terminal until it finishes), and its
//! rejected rows — as a table, JSON, or the rejected-rows file in the input's format.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_client::{Connection, Enqueue, ErrorQuery, Outcome, ServerKind, Source, Status};
use serde_json::{Value, json};

use super::args::{EnqueueArgs, ErrorsArgs, StatusArgs};
use super::{CommandResult, Done, Exit, code, company, connect, exit_of, exit_of_outcome, json_text, progress};
use crate::cli::GlobalArgs;

pub(crate) async fn enqueue(args: EnqueueArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    if args.external_id.is_some() && args.files.len() > 1 {
        return Err(Exit::new(code::USAGE, "--external-id names one file; give one FILE with it"));
    }
    let company = company(args.company, &connection);
    let mut results = Vec::new();
    let mut out = String::new();
    for file in &args.files {
        let source = if file == "-" { Source::Stdin } else { Source::File(PathBuf::from(file)) };
        let external_id = args.external_id.clone().or_else(|| match &source {
            Source::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            Source::Stdin => None,
        });
        let request =
            Enqueue { job: args.job.clone(), entity: args.entity.clone(), company: company.clone(), external_id };
        let id = match connection.enqueue(&request, &source, progress()).await {
            Ok(id) => id,
            Err(e) => {
                // What went in before the failure is reported with it.
                let mut exit = exit_of(e);
                if !results.is_empty() {
                    exit.message = format!("{}\n(enqueued before: {out})", exit.message);
                }
                return Err(exit);
            }
        };
        let _ = writeln!(out, "{file}\t{id}");
        results.push(json!({ "file": file, "message_id": id, "external_id": request.external_id }));
    }
    let mut exit = None;
    if args.wait {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let mut worst = Outcome::Succeeded;
        out.clear();
        for result in &mut results {
            let id = result["message_id"].as_str().unwrap_or_default().to_owned();
            let status = wait(&connection, &id, deadline, Duration::from_secs(1), args.json).await?;
            worst = worse(worst, status.outcome);
            result["state"] = json!(status.state);
            result["counters"] = status.document["counters"].clone();
            let _ = writeln!(out, "{}\t{id}\t{}", result["file"].as_str().unwrap_or_default(), status.state);
        }
        exit = exit_of_outcome(worst, "an enqueued message");
    }
    let output = if args.json { json_text(&Value::Array(results)) } else { out };
    Ok(Done { output, exit })
}

/// The worse of two outcomes (pending over failed over record errors over success).
fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o| match o {
        Outcome::Succeeded => 0,
        Outcome::RecordErrors => 1,
        Outcome::Failed => 2,
        Outcome::Pending => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Polls until the message finishes or `deadline` passes; a live line on a terminal meanwhile.
async fn wait(
    connection: &Connection,
    id: &str,
    deadline: Instant,
    interval: Duration,
    quiet: bool,
) -> Result<Status, Exit> {
    let live = !quiet && std::io::stderr().is_terminal();
    loop {
        let status = connection.status(id).await.map_err(exit_of)?;
        if status.outcome.is_final() || Instant::now() >= deadline {
            if live {
                eprint!("\r\x1b[2K");
            }
            return Ok(status);
        }
        if live {
            let counters = ["read", "inserted", "updated", "rejected"]
                .iter()
                .filter_map(|c| status.counter(c).map(|n| format!("{n} {c}")))
                .collect::<Vec<_>>()
                .join(", ");
            let reason = status.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
            eprint!("\r\x1b[2K{id}: {}{reason} {counters}", status.state);
            let _ = std::io::stderr().flush();
        }
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

pub(crate) async fn status(args: StatusArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    let status = if args.wait {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let interval = Duration::from_secs_f64(args.interval.clamp(0.1, 3600.0));
        wait(&connection, &args.id, deadline, interval, args.json).await?
    } else {
        connection.status(&args.id).await.map_err(exit_of)?
    };
    let output = if args.json { json_text(&status.document) } else { status_text(&status) };
    let exit = match status.outcome {
        Outcome::Pending if args.wait => Some(Exit::new(
            code::TIMED_OUT,
            format!("{} is still {} after {} s", status.id, status.state, args.timeout),
        )),
        Outcome::Pending => None,
        outcome => exit_of_outcome(outcome, &format!("message {}", status.id)),
    };
    Ok(Done { output, exit })
}

/// A message document for people.
pub(crate) fn status_text(status: &Status) -> String {
    let d = &status.document;
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "message:     {}", status.id);
    if d["execution_id"].is_string() && d["execution_id"] != d["id"] {
        let _ = writeln!(out, "execution:   {}", text(&d["execution_id"]));
    }
    if d["activity_id"].is_string() {
        let _ = writeln!(out, "job:         {} (project '{}')", text(&d["activity_id"]), text(&d["project"]));
    }
    if d["entity"].is_string() {
        let _ = writeln!(out, "entity:      {}", text(&d["entity"]));
    }
    if d["external_id"].is_string() {
        let _ = writeln!(out, "external id: {}", text(&d["external_id"]));
    }
    let _ = writeln!(out, "state:       {}", status.state);
    if let Some(reason) = &status.reason {
        let _ = writeln!(out, "why:         {reason}");
    }
    if d["delivery"].is_object() {
        let _ = writeln!(out, "delivery:    {}", text(&d["delivery"]["state"]));
    }
    if d["counters"].is_object() {
        let c = &d["counters"];
        let _ = writeln!(
            out,
            "rows:        {} read, {} inserted, {} updated, {} unchanged, {} rejected",
            c["read"], c["inserted"], c["updated"], c["unchanged"], c["rejected"]
        );
    }
    if let Some(entities) = d["entities"].as_array().filter(|e| !e.is_empty()) {
        out.push('\n');
        let header = ["#", "ENTITY", "COMPANY", "STAGING", "TARGET", "READ", "ERRORS", "INS", "UPD"].map(str::to_owned);
        let rows = entities.iter().map(|e| {
            let errors = e["staging_errors"].as_u64().unwrap_or(0) + e["target_errors"].as_u64().unwrap_or(0);
            vec![
                e["position"].to_string(),
                text(&e["entity"]),
                text(&e["company"]),
                text(&e["staging_status"]),
                text(&e["target_status"]),
                e["rows_read"].to_string(),
                errors.to_string(),
                e["rows_inserted"].to_string(),
                e["rows_updated"].to_string(),
            ]
        });
        out.push_str(&crate::table::render(header.to_vec(), rows));
    }
    if status.outcome == Outcome::RecordErrors {
        let _ = writeln!(out, "\n`ferry errors {}` lists the rejected rows", status.id);
    }
    out
}

pub(crate) async fn errors(args: ErrorsArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    if connection.environment().server == ServerKind::Dynamics {
        // Dynamics: GetExecutionErrors (ferry and recent Dynamics accept a message id too).
        let rows = connection.execution_errors(&args.id).await.map_err(exit_of)?;
        if args.json {
            return Ok(Done::ok(json_text(&Value::Array(rows))));
        }
        let table = rows.iter().map(|r| {
            ["RecordId", "Field", "ErrorMessage"]
                .iter()
                .map(|k| r[*k].as_str().unwrap_or("-").replace('\n', " "))
                .collect()
        });
        let header = ["RECORD", "FIELD", "MESSAGE"].map(str::to_owned).to_vec();
        return Ok(Done::ok(crate::table::render(header, table)));
    }
    if let Some(dest) = &args.download {
        let status = connection.status(&args.id).await.map_err(exit_of)?;
        let files = connection.download_rejected(&status.document, dest, progress().as_ref()).await.map_err(exit_of)?;
        if files.is_empty() {
            return Err(Exit::new(
                code::FAILED,
                format!("message {} has no rejected-rows file ({})", status.id, status.state),
            ));
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let output =
            if args.json { json_text(&json!(names)) } else { names.iter().map(|n| format!("{n}\n")).collect() };
        return Ok(Done::ok(output));
    }
    let query = ErrorQuery { stage: args.stage, entity: args.entity, limit: args.limit };
    let rows = connection.message_errors(&args.id, &query).await.map_err(exit_of)?;
    if args.json {
        return Ok(Done::ok(json_text(&Value::Array(rows))));
    }
    if rows.is_empty() {
        return Ok(Done::ok(format!("no rejected rows for {}\n", args.id)));
    }
    Ok(Done::ok(error_table(&rows)))
}

/// Rejected rows (ferry's `/errors` documents) as a table.
pub(crate) fn error_table(rows: &[Value]) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.replace('\n', " "),
        other => other.to_string(),
    };
    let header = ["ROW", "ENTITY", "STAGE", "FIELD", "KEY", "CODE", "MESSAGE"].map(str::to_owned).to_vec();
    let table = rows.iter().map(|e| {
        ["row_number", "entity", "stage", "field", "record_key", "code", "message"]
            .iter()
            .map(|k| text(&e[*k]))
            .collect()
    });
    crate::table::render(header, table)
}
