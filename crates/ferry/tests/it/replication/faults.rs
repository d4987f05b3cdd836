//! Failures that must never lose a change: a target that becomes unreachable during delta sync
//! (a TCP proxy between ferry and PostgreSQL or MariaDB is stopped, then restarted on the same
//! port) pauses the profile with a reason and it resumes by itself; a record the target rejects
//! (a column narrowed by hand) lands in the failure log and the retry set, and arrives after
//! the column is widened and a resync is requested.

use serde_json::{Value, json};

use super::proxy::{Proxy, address_of, via_port};
use super::targets::{Kind, TargetDb};
use super::workload::mixed_changes;
use super::{Harness, STANDARD, seed_reference_data, standard_profile};
use crate::support::{Backend, expect_json, expect_status};

fn entity_statuses(profile: &Value) -> Vec<Value> {
    profile["EntityStatus"].as_array().cloned().unwrap_or_default()
}

async fn target_outage(target: TargetDb) {
    let Some(h) = Harness::start(Backend::Sqlite, &[]).await else { return };
    seed_reference_data(&h.server, &h.writer).await;
    mixed_changes(&h.server, &h.writer, 90, "A").await;
    let default_port = if target.kind == Kind::MySql { 3306 } else { 5432 };
    let mut proxy = Proxy::start(address_of(&target.url, default_port).await).await;
    let url = via_port(&target.url, proxy.port);
    let id = h.create_profile(&standard_profile("Outage", &target, &url, "rep")).await;
    h.action(&id, "activate").await;
    let entities: Vec<&str> = STANDARD.iter().map(|(_, logical)| *logical).collect();
    h.wait_converged(&id, &target, "rep", &entities).await;

    // Take the target away: new connections are refused, open ones cut.
    proxy.stop();
    let changes = mixed_changes(&h.server, &h.writer, 300, "B").await;
    let paused = h
        .wait_for(&id, "the profile to pause", |p| {
            entity_statuses(p)
                .iter()
                .any(|s| s["State"] == "Paused" && s["Reason"].as_str().is_some_and(|r| r.contains("unreachable")))
        })
        .await;
    eprintln!(
        "paused: {}",
        entity_statuses(&paused).iter().map(|s| s["Reason"].to_string()).collect::<Vec<_>>().join("; ")
    );

    // Bring it back on the same port: the profile resumes by itself and nothing is lost.
    proxy.restart().await;
    let profile = h.wait_converged(&id, &target, "rep", &entities).await;
    for entity in &entities {
        h.assert_equal(&target, "rep", entity).await;
    }
    for status in entity_statuses(&profile) {
        assert_eq!(status["State"], "Running", "{status}");
        assert_eq!(status["FailedRecords"], 0, "an outage is not a record failure: {status}");
    }
    let failures =
        expect_json(h.server.get(&format!("/crm/exporter/profiles/{id}/failures"), &h.admin).await, 200).await;
    assert_eq!(failures["Failures"], json!([]), "{failures}");
    let log = target.select("rep_DeleteLog", &["EntityName"]).await;
    let deletes: usize = changes.deletes.values().sum();
    assert_eq!(log.len(), deletes, "every delete made while the target was away is logged");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_target_pauses_and_resumes() {
    let Some(target) = TargetDb::postgres("unreachable_postgres_target_pauses_and_resumes").await else { return };
    target_outage(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_mariadb_target_pauses_and_resumes() {
    let Some(target) = TargetDb::mysql("unreachable_mariadb_target_pauses_and_resumes").await else { return };
    target_outage(target).await;
}

/// The SQL that sets `rep_customerv3.organizationname` to `varchar(n)` by hand.
fn resize_name_column(target: &TargetDb, n: u32) -> String {
    match target.kind {
        Kind::Postgres => format!("ALTER TABLE \"rep_customerv3\" ALTER COLUMN \"organizationname\" TYPE varchar({n})"),
        Kind::MySql => format!("ALTER TABLE `rep_customerv3` MODIFY `organizationname` varchar({n})"),
        Kind::Sqlite => unreachable!("SQLite does not enforce column lengths"),
    }
}

async fn customer_id(h: &Harness, account: &str) -> String {
    let entity = h.catalog.by_any_name("customerv3").unwrap();
    let key = ferry_domain::RowKey::from_text(
        entity,
        &ferry_domain::KeyText { company: Some("usmf".into()), values: vec![account.to_owned()] },
    )
    .expect("key");
    h.source.get(entity, &key).await.expect("read source").expect("customer exists").id.to_string()
}

async fn target_name(target: &TargetDb, id: &str) -> Option<String> {
    target.rows_by_id("rep_customerv3", &["organizationname"]).await.get(id).cloned().and_then(|mut r| r.remove(0))
}

async fn rejected_record(target: TargetDb) {
    let Some(h) = Harness::start(Backend::Sqlite, &[]).await else { return };
    seed_reference_data(&h.server, &h.writer).await;
    for account in ["C1", "C2", "C3"] {
        let body =
            json!({"CustomerAccount": account, "OrganizationName": format!("N{account}"), "CustomerGroupId": "10"});
        expect_json(h.server.post_json("/data/CustomersV3", &h.writer, &body).await, 201).await;
    }
    let body = json!({
        "Name": "Narrow", "TargetType": target.type_name(), "ConnectionString": target.url, "TablePrefix": "rep",
        "RetryCount": 1, "RetryInterval": 0, "Entities": ["CustomersV3"],
    });
    let id = h.create_profile(&body).await;
    h.action(&id, "activate").await;
    h.wait_converged(&id, &target, "rep", &["customerv3"]).await;

    // A user narrows a column by hand; a longer name then cannot be written.
    target.exec(&resize_name_column(&target, 5)).await;
    let c1 = customer_id(&h, "C1").await;
    let path = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='C1')";
    let long_name = "Contoso Pharmaceuticals";
    expect_status(h.server.patch_json(path, &h.writer, &json!({"OrganizationName": long_name})).await, 204).await;
    // Later changes still flow past the rejected one.
    let path2 = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='C2')";
    expect_status(h.server.patch_json(path2, &h.writer, &json!({"OrganizationName": "Fab"})).await, 204).await;

    let profile = h
        .wait_for(&id, "the rejected record to be counted", |p| {
            entity_statuses(p).iter().any(|s| s["FailedRecords"] == 1)
        })
        .await;
    assert_eq!(entity_statuses(&profile)[0]["Phase"], "DeltaSync", "{profile}");
    let failures =
        expect_json(h.server.get(&format!("/crm/exporter/profiles/{id}/failures"), &h.admin).await, 200).await;
    let list = failures["Failures"].as_array().expect("Failures");
    assert!(list.iter().any(|f| f["Entity"] == "customerv3" && f["RecordId"] == c1.as_str()), "{failures}");
    let failure = list.iter().find(|f| f["RecordId"] == c1.as_str()).unwrap();
    assert!(failure["FailureReason"].as_str().is_some_and(|r| !r.is_empty()), "{failure}");
    assert_eq!(failure["ChangeType"], "Update", "{failure}");
    let text =
        expect_status(h.server.get(&format!("/crm/exporter/profiles/{id}/failures?format=text"), &h.admin).await, 200)
            .await;
    let prefix = format!("Entity: customerv3, RecordId: {c1}, NotificationTime: ");
    assert!(
        text.lines().any(|l| l.starts_with(&prefix) && l.contains("ChangeType: Update, FailureReason: ")),
        "{text}"
    );
    let (code, cli_text, err) = h.cli(&["failures", "Narrow", "--text"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(cli_text.lines().any(|l| l.starts_with(&prefix)), "{cli_text}");

    let c2 = customer_id(&h, "C2").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while target_name(&target, &c2).await.as_deref() != Some("Fab") {
        assert!(std::time::Instant::now() < deadline, "C2's change did not arrive");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(target_name(&target, &c1).await.as_deref(), Some("NC1"), "the rejected change is not in the target");
    // Automatic retries keep failing while the column is narrow: the record stays in the set.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let profile = h.profile(&id).await;
    assert_eq!(entity_statuses(&profile)[0]["FailedRecords"], 1, "{profile}");

    // Widen the column and ask for a resync: the record arrives and leaves the retry set.
    target.exec(&resize_name_column(&target, 100)).await;
    let answer = h.action(&id, "resync").await;
    assert!(answer["RecordsToRetry"].as_u64().is_some_and(|n| n >= 1), "{answer}");
    h.wait_for(&id, "the retry set to empty", |p| entity_statuses(p).iter().all(|s| s["FailedRecords"] == 0)).await;
    assert_eq!(target_name(&target, &c1).await.as_deref(), Some(long_name));
    h.wait_converged(&id, &target, "rep", &["customerv3"]).await;
    h.assert_equal(&target, "rep", "customerv3").await;
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_record_is_retried_after_resync_on_postgres() {
    let Some(target) = TargetDb::postgres("rejected_record_is_retried_after_resync_on_postgres").await else { return };
    rejected_record(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_record_is_retried_after_resync_on_mariadb() {
    let Some(target) = TargetDb::mysql("rejected_record_is_retried_after_resync_on_mariadb").await else { return };
    rejected_record(target).await;
}
