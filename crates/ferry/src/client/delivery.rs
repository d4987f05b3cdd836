//! `ferry dequeue`: takes every file a recurring export job has ready — dequeue until `204`,
//! and for each: download (fsync'd in place), optionally unzip, then acknowledge.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::args::DequeueArgs;
use super::{CommandResult, Done, connect, exit_of, json_text, progress};
use crate::cli::GlobalArgs;

pub(crate) async fn dequeue(args: DequeueArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    let mut taken = Vec::new();
    let mut out = String::new();
    while args.max.is_none_or(|max| (taken.len() as u32) < max) {
        let Some(file) = connection.dequeue(&args.job).await.map_err(exit_of)? else { break };
        let bar = progress();
        let delivered = connection
            .deliver(&args.job, &file, &args.out, args.unzip, !args.no_ack, bar.as_ref())
            .await
            .map_err(exit_of)?;
        let files: Vec<String> = delivered.files.iter().map(|f| f.display().to_string()).collect();
        let _ = writeln!(
            out,
            "{}\t{}{}",
            delivered.correlation_id,
            delivered.path.display(),
            if delivered.acked { "" } else { "\t(not acknowledged)" }
        );
        taken.push(json!({
            "correlation_id": delivered.correlation_id,
            "path": delivered.path.display().to_string(),
            "files": files,
            "acked": delivered.acked,
        }));
    }
    if args.json {
        return Ok(Done::ok(json_text(&Value::Array(taken))));
    }
    if taken.is_empty() {
        out.push_str("no files waiting\n");
    }
    Ok(Done::ok(out))
}
