//! `ferry messages|jobs|projects list/show` (and `messages errors`) with `--env NAME`: the same
//! commands over ferry's REST API instead of the database, so an administrator needs no
//! database access. `--json` prints the server's documents unchanged; tables otherwise.
//! Changing definitions (`apply`, `delete`, `enable`, `disable`) stays local.

use serde_json::Value;

use super::{CommandResult, Done, Exit, code, connect, exit_of, json_text};
use crate::cli::{Command, GlobalArgs, JobsCommand, MessagesCommand, ProjectsCommand};
use ferry_client::{ErrorQuery, MessageQuery};

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn local_only(what: &str) -> Exit {
    Exit::new(code::USAGE, format!("`{what}` works on the database only; leave out --env"))
}

pub(crate) async fn run(command: Command, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    match command {
        Command::Messages(MessagesCommand::List { job, state, limit, json }) => {
            let query = MessageQuery { job, state, limit };
            let messages = connection.list_messages(&query).await.map_err(exit_of)?;
            if json {
                return Ok(Done::ok(json_text(&Value::Array(messages))));
            }
            if messages.is_empty() {
                return Ok(Done::ok("no messages\n".into()));
            }
            let header = ["ID", "JOB", "STATE", "ENTITY", "COMPANY", "READ", "REJECTED", "ENQUEUED"].map(str::to_owned);
            let rows = messages.iter().map(|m| {
                vec![
                    text(&m["id"]),
                    text(&m["activity_id"]),
                    text(&m["state"]),
                    m["entity"].as_str().map_or_else(|| format!("({})", text(&m["kind"])), str::to_owned),
                    text(&m["company"]),
                    text(&m["counters"]["read"]),
                    text(&m["counters"]["rejected"]),
                    text(&m["enqueued_at"]),
                ]
            });
            Ok(Done::ok(crate::table::render(header.to_vec(), rows)))
        }
        Command::Messages(MessagesCommand::Show { id, json }) => {
            let status = connection.status(&id).await.map_err(exit_of)?;
            Ok(Done::ok(if json { json_text(&status.document) } else { super::messages::status_text(&status) }))
        }
        Command::Messages(MessagesCommand::Errors { id, stage, entity, limit, json }) => {
            let rows = connection.message_errors(&id, &ErrorQuery { stage, entity, limit }).await.map_err(exit_of)?;
            if json {
                return Ok(Done::ok(json_text(&Value::Array(rows))));
            }
            if rows.is_empty() {
                return Ok(Done::ok(format!("no rejected rows for message {id}\n")));
            }
            Ok(Done::ok(super::messages::error_table(&rows)))
        }
        Command::Projects(ProjectsCommand::List { json }) => {
            let projects = connection.list_projects().await.map_err(exit_of)?;
            if json {
                return Ok(Done::ok(json_text(&Value::Array(projects))));
            }
            let header = ["NAME", "OPERATION", "ENTITIES", "ORIGIN"].map(str::to_owned);
            let rows = projects.iter().map(|p| {
                let entities: Vec<String> =
                    p["entities"].as_array().into_iter().flatten().map(|e| text(&e["entity"])).collect();
                vec![text(&p["name"]), text(&p["operation"]), entities.join(", "), text(&p["origin"])]
            });
            Ok(Done::ok(crate::table::render(header.to_vec(), rows)))
        }
        Command::Projects(ProjectsCommand::Show { name, .. }) => {
            Ok(Done::ok(json_text(&connection.project(&name).await.map_err(exit_of)?)))
        }
        Command::Jobs(JobsCommand::List { json }) => {
            let jobs = connection.list_jobs().await.map_err(exit_of)?;
            if json {
                return Ok(Done::ok(json_text(&Value::Array(jobs))));
            }
            let header = ["ACTIVITY ID", "PROJECT", "KIND", "ENABLED", "RECURRENCE", "ORIGIN"].map(str::to_owned);
            let rows = jobs.iter().map(|j| {
                vec![
                    text(&j["activity_id"]),
                    text(&j["project"]),
                    text(&j["kind"]),
                    text(&j["enabled"]),
                    text(&j["recurrence"]),
                    text(&j["origin"]),
                ]
            });
            Ok(Done::ok(crate::table::render(header.to_vec(), rows)))
        }
        Command::Jobs(JobsCommand::Show { id, .. }) => {
            Ok(Done::ok(json_text(&connection.job(&id).await.map_err(exit_of)?)))
        }
        Command::Projects(_) => Err(local_only("ferry projects apply|delete")),
        Command::Jobs(_) => Err(local_only("ferry jobs apply|enable|disable|delete")),
        _ => Err(Exit::new(code::USAGE, "--env applies to the client commands and to messages, jobs and projects")),
    }
}
