//! Replication profiles as the Data Export Service's API shows them (`/crm/exporter/profiles…`)
//! and `ferry profiles … --json` prints them: the profile, each entity's status, the failure log
//! and test results, with the service's PascalCase names.

use super::states::{change_type_name, phase_name, profile_state_name, sync_state_name};
use ferry_domain::{FailureLogEntry, Profile};
use ferry_replicate::EntityStatus;
use ferry_target::Check;
use serde_json::{Value, json};

/// A profile (never its connection string).
pub fn profile_json(profile: &Profile) -> Value {
    let d = &profile.definition;
    json!({
        "Id": profile.id,
        "Name": d.name,
        "Description": d.description,
        "TargetType": d.target_kind.name(),
        "SchemaName": d.schema(),
        "TablePrefix": d.table_prefix,
        "RetryCount": d.retry_count,
        "RetryInterval": d.retry_interval_secs,
        "WriteDeleteLog": d.write_delete_log,
        "Entities": d.entities,
        "Relationships": d.relationships,
        "State": profile_state_name(profile.state),
        "CreatedOn": profile.created_at.to_rfc3339(),
        "ModifiedOn": profile.updated_at.to_rfc3339(),
    })
}

/// A profile with the status of each of its entities (`EntityStatus`).
pub fn profile_document(profile: &Profile, statuses: &[EntityStatus]) -> Value {
    let mut body = profile_json(profile);
    body["EntityStatus"] = Value::Array(statuses.iter().map(entity_status_json).collect());
    body
}

/// What the profile's task last reported for one entity.
pub fn entity_status_json(e: &EntityStatus) -> Value {
    let s = &e.status;
    json!({
        "EntityName": s.entity, "Phase": phase_name(s.phase), "State": sync_state_name(s.state), "Reason": s.reason,
        "RowsCopied": s.rows_copied, "RowsTotal": s.rows_total, "LastAppliedVersion": s.last_version,
        "LagVersions": s.lag_versions, "LagSeconds": s.lag_seconds, "FailedRecords": e.failed_records,
        "UpdatedOn": s.updated_at.to_rfc3339(),
    })
}

/// The failure log of profile `id`.
pub fn failures_json(id: &str, lines: &[FailureLogEntry]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "Entity": l.entity, "RecordId": l.record_id, "NotificationTime": l.notified_at.to_rfc3339(),
                "ChangeType": change_type_name(l.change), "FailureReason": l.reason,
            })
        })
        .collect();
    json!({ "ProfileId": id, "Failures": items })
}

/// The checks of a profile test or validation.
pub fn checks_json(checks: &[Check]) -> Value {
    let ok = checks.iter().all(|c| c.ok);
    json!({
        "Result": if ok { "Succeeded" } else { "Failed" },
        "Checks": checks.iter().map(|c| json!({
            "Name": c.name, "Result": if c.ok { "Passed" } else { "Failed" }, "Details": c.detail,
        })).collect::<Vec<_>>(),
    })
}
