//! `ferry messages list|show|errors`: the import queue's messages, their state, reason, timings,
//! counters and rejected rows, read from the store through the import service.

use std::fmt::Write as _;

use anyhow::{anyhow, bail};
use ferry_api::wire::{
    entity_state_name, error_json, job_kind_name, message_document, message_state_from_name, message_state_name,
    message_summary_json, stage_from_name, stage_name,
};
use ferry_config::Config;
use ferry_domain::{ErrorFilter, MessageFilter, MessageState, normalize_activity_id};
use ferry_integration::{IntegrationService, MessageView};
use serde_json::Value;

use crate::cli::MessagesCommand;
use crate::imports::{failed, with_service};

pub(crate) async fn messages(
    config: &Config,
    env: &[(String, String)],
    command: MessagesCommand,
) -> anyhow::Result<String> {
    with_service(config, env, async |service| match command {
        MessagesCommand::List { job, state, limit, json } => {
            list_messages(service, &config.public_url, job.as_deref(), state.as_deref(), limit, json).await
        }
        MessagesCommand::Show { id, json } => {
            let view = find_message(service, &id).await?;
            if json {
                let document = message_document(service, &view, &config.public_url).await.map_err(failed)?;
                Ok(format!("{document:#}\n"))
            } else {
                Ok(message_text(&view))
            }
        }
        MessagesCommand::Errors { id, stage, entity, limit, json } => {
            message_errors(service, &id, stage.as_deref(), entity.as_deref(), limit, json).await
        }
    })
    .await
}

async fn find_message(service: &IntegrationService, id: &str) -> anyhow::Result<MessageView> {
    service
        .message(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| anyhow!("no message or execution has id {id} (`ferry messages list` shows the newest messages)"))
}

async fn list_messages(
    service: &IntegrationService,
    base: &str,
    job: Option<&str>,
    state: Option<&str>,
    limit: u32,
    as_json: bool,
) -> anyhow::Result<String> {
    if !(1..=1000).contains(&limit) {
        bail!("--limit must be 1 to 1000, got {limit}");
    }
    let activity_id = job
        .map(|id| normalize_activity_id(id).ok_or_else(|| anyhow!("--job: '{id}' is not an activity id (a GUID)")))
        .transpose()?;
    let state = state
        .map(|s| {
            message_state_from_name(s).ok_or_else(|| {
                let known: Vec<&str> = MessageState::ALL.into_iter().map(message_state_name).collect();
                anyhow!("--state: unknown state '{s}' (known: {})", known.join(", "))
            })
        })
        .transpose()?;
    let filter = MessageFilter { activity_id, operation: None, state, before_seq: None, limit };
    let messages = service.list_messages(&filter).await.map_err(failed)?;
    if as_json {
        return Ok(format!("{}\n", Value::Array(messages.iter().map(|m| message_summary_json(m, base)).collect())));
    }
    if messages.is_empty() {
        return Ok("no messages\n".into());
    }
    let header =
        ["ID", "JOB", "STATE", "ENTITY", "COMPANY", "READ", "REJECTED", "ENQUEUED"].map(str::to_owned).to_vec();
    let rows = messages.iter().map(|m| {
        vec![
            m.id.clone(),
            m.activity_id.clone(),
            message_state_name(m.state).to_owned(),
            m.entity.clone().unwrap_or_else(|| format!("({})", job_kind_name(m.kind))),
            m.company.clone().unwrap_or_else(|| "-".into()),
            m.counters.read.to_string(),
            m.counters.rejected.to_string(),
            m.enqueued_at.to_rfc3339(),
        ]
    });
    Ok(crate::table::render(header, rows))
}

fn message_text(view: &MessageView) -> String {
    let m = &view.message;
    let c = &m.counters;
    let shown = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
    let mut out = String::new();
    let _ = writeln!(out, "message:     {}", m.id);
    if m.execution_id != m.id {
        let _ = writeln!(out, "execution:   {}", m.execution_id);
    }
    let _ = writeln!(out, "job:         {} (project '{}', {})", m.activity_id, m.project, job_kind_name(m.kind));
    if let Some(entity) = &m.entity {
        let _ = writeln!(out, "entity:      {entity}");
    }
    let _ = writeln!(out, "company:     {}", m.company.as_deref().unwrap_or("-"));
    if let Some(external) = &m.external_id {
        let _ = writeln!(out, "external id: {external}");
    }
    let _ = writeln!(out, "state:       {}", message_state_name(m.state));
    if let Some(reason) = &view.reason {
        let _ = writeln!(out, "why:         {reason}");
    }
    let _ = writeln!(out, "attempts:    {}", m.attempts);
    let _ = writeln!(out, "size:        {} bytes (sha256 {})", m.size, m.content_hash);
    let _ = writeln!(out, "enqueued:    {} by {}", m.enqueued_at.to_rfc3339(), m.enqueued_by);
    let _ = writeln!(out, "started:     {}", shown(m.started_at));
    let _ = writeln!(out, "finished:    {}", shown(m.finished_at));
    let _ = writeln!(
        out,
        "rows:        {} read, {} inserted, {} updated, {} unchanged, {} rejected",
        c.read, c.inserted, c.updated, c.unchanged, c.rejected
    );
    if let Some(warnings) = m.warnings.as_deref().filter(|w| !w.is_empty()) {
        for line in warnings.lines() {
            let _ = writeln!(out, "warning:     {line}");
        }
    }
    if !view.entities.is_empty() {
        out.push('\n');
        let header = ["#", "ENTITY", "COMPANY", "STAGING", "TARGET", "READ", "STAGED", "ERRORS", "INS", "UPD", "SAME"]
            .map(str::to_owned)
            .to_vec();
        let rows = view.entities.iter().map(|e| {
            vec![
                e.position.to_string(),
                e.entity.clone(),
                e.company.clone().unwrap_or_else(|| "-".into()),
                entity_state_name(e.staging).to_owned(),
                entity_state_name(e.target).to_owned(),
                e.rows_read.to_string(),
                e.rows_staged.to_string(),
                (e.staging_errors + e.target_errors).to_string(),
                e.rows_inserted.to_string(),
                e.rows_updated.to_string(),
                e.rows_unchanged.to_string(),
            ]
        });
        out.push_str(&crate::table::render(header, rows));
    }
    if c.rejected > 0 {
        let _ = writeln!(out, "\n`ferry messages errors {}` lists the rejected rows", m.id);
    }
    out
}

async fn message_errors(
    service: &IntegrationService,
    id: &str,
    stage: Option<&str>,
    entity: Option<&str>,
    limit: u32,
    as_json: bool,
) -> anyhow::Result<String> {
    if !(1..=100_000).contains(&limit) {
        bail!("--limit must be 1 to 100000, got {limit}");
    }
    let stage = stage
        .map(|s| {
            stage_from_name(s).ok_or_else(|| anyhow!("--stage: unknown stage '{s}' (known: parse, staging, target)"))
        })
        .transpose()?;
    // Errors are recorded under the entity's label; accept any of its names.
    let entity = entity
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| service.catalog().by_any_name(e).map_or_else(|| e.to_owned(), |entity| entity.label.clone()));
    let view = find_message(service, id).await?;
    let filter = ErrorFilter { stage, entity, after_id: None, limit };
    let m = &view.message;
    let errors = service.errors(&m.id, &filter).await.map_err(failed)?;
    if as_json {
        return Ok(format!("{}\n", Value::Array(errors.iter().map(error_json).collect())));
    }
    if errors.is_empty() {
        return Ok(format!("no rejected rows for message {} ({})\n", m.id, message_state_name(m.state)));
    }
    let header = ["ROW", "ENTITY", "STAGE", "FIELD", "KEY", "CODE", "MESSAGE"].map(str::to_owned).to_vec();
    let rows = errors.iter().map(|e| {
        vec![
            e.row.map_or_else(|| "-".into(), |n| n.to_string()),
            e.entity.clone(),
            stage_name(e.stage).to_owned(),
            e.field.clone().unwrap_or_else(|| "-".into()),
            e.key.clone().unwrap_or_else(|| "-".into()),
            e.code.clone(),
            e.message.replace('\n', " "),
        ]
    });
    let mut out = crate::table::render(header, rows);
    if errors.len() as u64 >= u64::from(limit) {
        let _ = writeln!(out, "(the first {limit} rejected rows; --limit shows more)");
    }
    Ok(out)
}
