//! The status actions: what a message or execution is at (`GetMessageStatus`,
//! `GetExecutionIdByMessageId`, `GetExecutionSummaryStatus`), its entities
//! (`GetEntityExecutionSummaryStatusList`), its rejected rows (`GetExecutionErrors`), and the
//! void `InitializeDataManagement`.

use super::Call;
use crate::error::ApiResult;
use crate::wire::{entity_state_name, execution_status_name, message_status_of, stage_name};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_domain::{EntityResult, ErrorFilter, ErrorRecord};
use ferry_integration::MessageView;
use serde_json::{Value, json};

/// The status actions.
pub(super) const ACTIONS: [&str; 6] = [
    "GetMessageStatus",
    "GetExecutionIdByMessageId",
    "GetExecutionSummaryStatus",
    "GetEntityExecutionSummaryStatusList",
    "GetExecutionErrors",
    "InitializeDataManagement",
];

/// What `GetExecutionIdByMessageId` answers for a message it does not know.
const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The most errors `GetExecutionErrors` lists (the pipeline keeps no more per message anyway).
const EXECUTION_ERRORS_MAX: u32 = 100_000;

pub(super) async fn run(call: &Call<'_>) -> ApiResult<Response> {
    let integration = call.state.import()?;
    match call.name {
        "GetMessageStatus" => {
            let id = call.param(&["messageId"])?;
            match integration.message(&id).await? {
                Some(view) => call.string(message_status_of(&view.message)),
                None => Err(call.not_found(&format!("Message details were not found for message id: {id}"))),
            }
        }
        "GetExecutionIdByMessageId" => {
            let id = call.param(&["_messageId", "messageId"])?;
            let execution_id = integration.message(&id).await?.map(|v| v.message.execution_id);
            call.string(execution_id.as_deref().unwrap_or(EMPTY_GUID))
        }
        "GetExecutionSummaryStatus" => {
            let view = execution(call).await?;
            let status = execution_status_name(view.message.state.execution_status());
            call.answer("Microsoft.Dynamics.DataEntities.DMFExecutionSummaryStatus", json!(status))
        }
        "GetEntityExecutionSummaryStatusList" => {
            let view = execution(call).await?;
            let list: Vec<Value> = view.entities.iter().map(entity_summary).collect();
            call.answer("Collection(Microsoft.Dynamics.DataEntities.EntityExecutionSummaryStatus)", json!(list))
        }
        "GetExecutionErrors" => {
            let view = execution(call).await?;
            let filter = ErrorFilter { stage: None, entity: None, after_id: None, limit: EXECUTION_ERRORS_MAX };
            let errors = integration.errors(&view.message.id, &filter).await?;
            call.string(execution_errors_text(&errors))
        }
        "InitializeDataManagement" => Ok(StatusCode::NO_CONTENT.into_response()),
        other => unreachable!("{other} is not a status action"),
    }
}

/// The message whose execution the parameters name (`executionId`; a message id works too,
/// as RIS sends one to `GetExecutionErrors`).
pub(super) async fn execution(call: &Call<'_>) -> ApiResult<MessageView> {
    let id = call.param(&["executionId"])?;
    call.state
        .import()?
        .message(&id)
        .await?
        .ok_or_else(|| call.not_found(&format!("Execution details were not found for execution id: {id}")))
}

/// One entity of `GetEntityExecutionSummaryStatusList`. The shape is not documented by
/// Microsoft; the names follow `DataManagementExecutionJobDetails`.
fn entity_summary(e: &EntityResult) -> Value {
    json!({
        "EntityName": e.entity,
        "Company": e.company,
        "ExecutionStatus": execution_status_name(e.status()),
        "StagingStatus": entity_state_name(e.staging),
        "TargetStatus": entity_state_name(e.target),
        "StagingRecordCount": e.rows_read,
        "StagingErrorCount": e.staging_errors,
        "TargetRecordsCreatedCount": e.rows_inserted,
        "TargetRecordsUpdatedCount": e.rows_updated,
        "TargetRecordsUnchangedCount": e.rows_unchanged,
        "TargetErrorCount": e.target_errors,
        "StartDateTime": crate::connector::time_or_min(e.started_at),
        "EndDateTime": crate::connector::time_or_min(e.finished_at),
    })
}

/// `GetExecutionErrors`' value: a JSON array of `{RecordId, Field, ErrorMessage}` (in that key
/// order, which clients that regex-parse the text rely on) serialized into a string.
fn execution_errors_text(errors: &[ErrorRecord]) -> String {
    let items: Vec<String> = errors
        .iter()
        .map(|e| {
            let record_id = match (&e.key, e.row) {
                (Some(key), _) if !key.is_empty() => key.clone(),
                (_, Some(row)) => row.to_string(),
                _ => String::new(),
            };
            let at = match e.row {
                Some(row) => format!("Row {row}"),
                None => "File".to_string(),
            };
            let message = format!("{at} ({}, {}): {} [{}]", e.entity, stage_name(e.stage), e.message, e.code);
            // Written by hand: a serde_json object would sort its keys.
            format!(
                "{{\"RecordId\":{},\"Field\":{},\"ErrorMessage\":{}}}",
                Value::String(record_id),
                Value::String(e.field.clone().unwrap_or_default()),
                Value::String(message)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_errors_are_valid_json_in_key_order() {
        let error = ErrorRecord {
            id: 1,
            message_id: "m".into(),
            entity: "Customer groups".into(),
            stage: ferry_domain::Stage::Staging,
            row: Some(3),
            key: None,
            field: Some("CustomerGroupId".into()),
            code: "too_long".into(),
            message: "CustomerGroupId: \"x\" is too long\r\n".into(),
        };
        let text = execution_errors_text(&[error]);
        assert!(text.starts_with(r#"[{"RecordId":"3","Field":"CustomerGroupId","ErrorMessage":"Row 3"#), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["Field"], "CustomerGroupId");
        assert!(parsed[0]["ErrorMessage"].as_str().unwrap().contains("too_long"));
        assert_eq!(execution_errors_text(&[]), "[]");
    }
}
