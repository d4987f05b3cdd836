//! Messages as ferry's own REST API (`/api/messages`) and `ferry messages --json` show them:
//! snake_case names like the configuration, times in RFC 3339 UTC, `null` for "not yet", the
//! state in ferry's and in the Dynamics protocols' spellings, and links.

use super::states::{
    data_job_state_of, delivery_state_name, entity_state_name, execution_status_name, job_kind_name,
    message_state_name, message_status_of, operation_name, stage_name,
};
use chrono::{DateTime, Utc};
use ferry_domain::{EntityResult, ErrorRecord, Message, RowCounters};
use ferry_integration::{IntegrationError, IntegrationService, MessageView};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
}

fn counters(c: &RowCounters) -> Value {
    json!({
        "read": c.read, "rejected": c.rejected, "inserted": c.inserted, "updated": c.updated,
        "unchanged": c.unchanged,
    })
}

/// The fields of a message every view shows; `base` is ferry's public URL.
pub fn message_summary_json(m: &Message, base: &str) -> Value {
    json!({
        "id": m.id,
        "seq": m.seq,
        "execution_id": m.execution_id,
        "activity_id": m.activity_id,
        "project": m.project,
        "operation": operation_name(m.operation),
        "kind": job_kind_name(m.kind),
        "entity": m.entity,
        "company": m.company,
        "external_id": m.external_id,
        "size": m.size,
        "enqueued_by": m.enqueued_by,
        "state": message_state_name(m.state),
        "message_status": message_status_of(m),
        "attempts": m.attempts,
        "enqueued_at": time(Some(m.enqueued_at)),
        "started_at": time(m.started_at),
        "finished_at": time(m.finished_at),
        "counters": counters(&m.counters),
        "link": format!("{base}/api/messages/{}", m.id),
    })
}

/// Everything known about one message: the summary, why it is where it is, timings, lease,
/// warnings, and each entity with links to its errors, rejected rows and staged rows.
pub async fn message_document(
    import: &IntegrationService,
    view: &MessageView,
    base: &str,
) -> Result<Value, IntegrationError> {
    let m = &view.message;
    let link = format!("{base}/api/messages/{}", m.id);
    let mut body = message_summary_json(m, base);
    body["data_job_state"] = json!(data_job_state_of(m).0);
    body["execution_summary"] = json!(execution_status_name(m.state.execution_status()));
    body["final"] = json!(m.state.is_final());
    body["reason"] = json!(view.reason);
    body["content_hash"] = json!(m.content_hash);
    body["execute"] = json!(m.execute);
    body["rerun_of"] = json!(m.rerun_of);
    body["delivery"] = m.delivery.as_ref().map_or(Value::Null, |d| {
        json!({
            "state": delivery_state_name(d.state),
            "dequeue_count": d.dequeue_count,
            "last_dequeued_at": time(d.last_dequeued_at),
            "visible_at": time(d.visible_at),
            "downloaded_at": time(d.downloaded_at),
            "acked_at": time(d.acked_at),
            "acked_by": d.acked_by,
        })
    });
    if !m.parameters.is_default() {
        body["parameters"] = json!({
            "preview_rows": m.parameters.preview_rows,
            "delta": m.parameters.delta,
            "entities": m.parameters.entities,
        });
    }
    body["not_before"] = time(Some(m.not_before));
    body["heartbeat_at"] = time(m.heartbeat_at);
    body["lease_holder"] = json!(m.lease_holder);
    body["lease_until"] = time(m.lease_until);
    body["warnings"] = json!(
        m.warnings
            .as_deref()
            .map(|w| w.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    let mut entities = Vec::new();
    for e in &view.entities {
        entities.push(entity_json(import, view, e, &link).await?);
    }
    body["entities"] = Value::Array(entities);
    body["errors_link"] = json!(format!("{link}/errors"));
    Ok(body)
}

async fn entity_json(
    import: &IntegrationService,
    view: &MessageView,
    e: &EntityResult,
    link: &str,
) -> Result<Value, IntegrationError> {
    // Only entities with rejected rows can have a file: spare the blob store the others.
    let rejected = if e.errors() > 0 || view.message.counters.rejected > 0 {
        import.rejected_file(view, e.position).await?.map(|_| format!("{link}/rejected/{}", e.position))
    } else {
        None
    };
    let entity_param = utf8_percent_encode(&e.entity, NON_ALPHANUMERIC);
    Ok(json!({
        "position": e.position,
        "entity": e.entity,
        "company": e.company,
        "staging_status": entity_state_name(e.staging),
        "target_status": entity_state_name(e.target),
        "execution_summary": execution_status_name(e.status()),
        "rows_read": e.rows_read,
        "rows_staged": e.rows_staged,
        "staging_errors": e.staging_errors,
        "rows_inserted": e.rows_inserted,
        "rows_updated": e.rows_updated,
        "rows_unchanged": e.rows_unchanged,
        "target_errors": e.target_errors,
        "started_at": time(e.started_at),
        "finished_at": time(e.finished_at),
        "errors_link": format!("{link}/errors?entity={entity_param}"),
        "rejected_link": rejected,
        "staging_link": format!("{link}/staging/{}", e.position),
    }))
}

/// One rejected row.
pub fn error_json(e: &ErrorRecord) -> Value {
    json!({
        "id": e.id, "entity": e.entity, "stage": stage_name(e.stage), "row_number": e.row,
        "record_key": e.key, "field": e.field, "code": e.code, "message": e.message,
    })
}
