//! The data management package API end to end, as its clients use it, on both store backends:
//! import (GetAzureWriteUrl → block upload with the real Azure Storage SDK → ImportFromPackage →
//! poll GetExecutionSummaryStatus → GetExecutionErrors and the error-file URLs, fetched without a
//! token), export (ExportToPackage → poll → GetExportedPackageUrl → GET without a token, no
//! redirect) and a round trip into a second server; ten parallel ImportFromPackage calls for one
//! project run one at a time in the order they were queued.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Backend, TestServer, expect_json, on_both_backends, package_zip, python_with_sdk};

on_both_backends!(
    import_flow_with_the_azure_sdk_and_error_files,
    export_flow_and_round_trip_into_a_second_server,
    parallel_imports_of_one_project_run_in_order,
);

const ACTIONS: &str = "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.";

/// Calls a package action as the writer app; answers `value`.
async fn action(server: &TestServer, token: &str, name: &str, body: Value) -> Value {
    let response = server.post_json(&format!("{ACTIONS}{name}"), token, &body).await;
    expect_json(response, 200).await["value"].clone()
}

/// Creates (or replaces) a data project through the admin API.
async fn project(server: &TestServer, name: &str, body: Value) {
    let admin = server.admin_token().await;
    let url = server.url(&format!("/api/admin/projects/{name}"));
    let response = server.http.put(url).bearer_auth(admin).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "project {name}: {}", response.text().await.unwrap());
}

/// Polls GetExecutionSummaryStatus until the execution is no longer waiting or running.
async fn final_status(server: &TestServer, token: &str, execution_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = action(server, token, "GetExecutionSummaryStatus", json!({ "executionId": execution_id })).await;
        let status = status.as_str().unwrap().to_owned();
        if !["NotRun", "Executing"].contains(&status.as_str()) {
            return status;
        }
        assert!(Instant::now() < deadline, "execution {execution_id} still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs a URL without a bearer token and without following redirects; answers the body.
async fn fetch_without_token(url: &str) -> Vec<u8> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    response.bytes().await.unwrap().to_vec()
}

/// A signed write URL from GetAzureWriteUrl: its value is a string holding JSON.
async fn write_url(server: &TestServer, token: &str, name: &str) -> String {
    let value = action(server, token, "GetAzureWriteUrl", json!({ "uniqueFileName": name })).await;
    let inner: Value = serde_json::from_str(value.as_str().expect("a string holding JSON")).unwrap();
    assert!(inner["BlobId"].as_str().unwrap().starts_with('{'), "{inner}");
    inner["BlobUrl"].as_str().unwrap().to_owned()
}

/// Uploads `bytes` to a signed URL the way RIS does: one Put Blob, no token.
async fn put_blob(url: &str, bytes: Vec<u8>) {
    let http = reqwest::Client::new();
    let response = http
        .put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-date", "Sat, 05 Dec 2026 00:00:00 GMT")
        .header("Overwrite", "T")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

async fn import_flow_with_the_azure_sdk_and_error_files(backend: Backend) {
    let Some(python) = python_with_sdk() else { return };
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    project(
        &server,
        "pkg",
        json!({ "entities": [{ "entity": "Customer groups" }, { "entity": "Customers V3", "level": 2 }] }),
    )
    .await;
    // Enough rows for several blocks; one group too long (staging), one customer naming a group
    // that does not exist (target).
    let mut groups = String::from("CUSTOMERGROUPID,DESCRIPTION\n");
    for n in 0..1500 {
        groups.push_str(&format!("G{n:04},Group number {n} with a longer description\n"));
    }
    groups.push_str("THISGROUPIDISFARTOOLONG,Too long\n");
    let customers = "CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID\nC1,Fine,G0001\nC2,Orphan,NOSUCH\n";
    let bytes = package_zip(
        &[("Customer groups", "groups.csv", 1), ("Customers V3", "customers.csv", 2)],
        &[("groups.csv", &groups), ("customers.csv", customers)],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("package.zip");
    std::fs::write(&path, &bytes).unwrap();

    let url = write_url(&server, &token, "package.zip").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/package_upload.py");
    let upload = (url.clone(), path.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python).arg(script).arg(&upload.0).arg(&upload.1).arg("8192").output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success(), "upload: {}", String::from_utf8_lossy(&output.stderr));

    let import = json!({
        "packageUrl": url, "definitionGroupId": "pkg", "executionId": "pkg-import-1",
        "execute": true, "overwrite": false, "legalEntityId": "usmf",
    });
    assert_eq!(action(&server, &token, "ImportFromPackage", import.clone()).await, "pkg-import-1");
    let reused = server.post_json(&format!("{ACTIONS}ImportFromPackage"), &token, &import).await;
    let reused = expect_json(reused, 409).await;
    assert!(reused["error"]["message"].as_str().unwrap().contains("already used"), "{reused}");
    assert_eq!(final_status(&server, &token, "pkg-import-1").await, "PartiallySucceeded");

    let errors = action(&server, &token, "GetExecutionErrors", json!({ "executionId": "pkg-import-1" })).await;
    let errors: Value = serde_json::from_str(errors.as_str().unwrap()).unwrap();
    assert_eq!(errors.as_array().unwrap().len(), 2, "{errors}");

    let execution = json!({ "executionId": "pkg-import-1", "entityName": "Customers V3" });
    let generated = action(&server, &token, "GenerateImportTargetErrorKeysFile", execution.clone()).await;
    assert_eq!(generated, true);
    let keys_url = action(&server, &token, "GetImportTargetErrorKeysFileUrl", execution).await;
    let keys = String::from_utf8(fetch_without_token(keys_url.as_str().unwrap()).await).unwrap();
    assert!(keys.contains("C2"), "{keys}");
    let staging = json!({ "executionId": "pkg-import-1", "entityName": "Customer groups" });
    let staging_url = action(&server, &token, "GetImportStagingErrorFileUrl", staging).await;
    let rejected = String::from_utf8(fetch_without_token(staging_url.as_str().unwrap()).await).unwrap();
    assert!(rejected.contains("THISGROUPIDISFARTOOLONG"), "{rejected}");
    let groups_only = json!({ "executionId": "pkg-import-1", "entityName": "Customer groups" });
    assert_eq!(action(&server, &token, "GenerateImportTargetErrorKeysFile", groups_only).await, false);
    let page = action(&server, &token, "GetExecutionSummaryPageUrl", json!({ "executionId": "pkg-import-1" })).await;
    assert!(page.as_str().unwrap().contains("/api/messages/"), "{page}");
    let count = expect_json(server.get("/data/CustomerGroups?$count=true&$top=0", &token).await, 200).await;
    assert_eq!(count["@odata.count"], 1500);
    server.stop().await;
}

/// Every customer group of the server's company, by key: (id, description).
async fn groups(server: &TestServer, token: &str) -> Vec<(Value, Value)> {
    let path = "/data/CustomerGroups?$select=CustomerGroupId,Description&$orderby=CustomerGroupId";
    let page = expect_json(server.get(path, token).await, 200).await;
    page["value"].as_array().unwrap().iter().map(|r| (r["CustomerGroupId"].clone(), r["Description"].clone())).collect()
}

async fn export_flow_and_round_trip_into_a_second_server(backend: Backend) {
    let Some(source) = TestServer::start(backend).await else { return };
    let Some(target) = TestServer::start(backend).await else { return };
    let (token, target_token) = (source.token().await, target.token().await);
    for n in 0..40 {
        let body = json!({ "CustomerGroupId": format!("X{n:02}"), "Description": format!("exported {n}") });
        expect_json(source.post_json("/data/CustomerGroups", &token, &body).await, 201).await;
    }
    let entities = json!([{ "entity": "Customer groups", "format": "CSV-Unicode" }]);
    project(&source, "out", json!({ "operation": "export", "entities": entities })).await;
    project(&target, "in", json!({ "entities": [{ "entity": "Customer groups" }] })).await;

    let export = json!({
        "definitionGroupId": "out", "packageName": "groups", "executionId": "",
        "reExecute": false, "legalEntityId": "usmf",
    });
    let execution_id = action(&source, &token, "ExportToPackage", export).await.as_str().unwrap().to_owned();
    assert!(!execution_id.is_empty());
    assert_eq!(final_status(&source, &token, &execution_id).await, "Succeeded");
    let url = action(&source, &token, "GetExportedPackageUrl", json!({ "executionId": execution_id })).await;
    let url = url.as_str().unwrap().to_owned();
    assert!(url.contains("/blobs/") && url.contains("sig="), "{url}");
    let package = fetch_without_token(&url).await;
    assert_eq!(&package[..2], b"PK", "a zip");

    let upload = write_url(&target, &target_token, "groups.zip").await;
    put_blob(&upload, package).await;
    let import = json!({
        "packageUrl": upload, "definitionGroupId": "in", "executionId": "", "execute": true,
        "overwrite": false, "legalEntityId": "usmf",
    });
    let imported = action(&target, &target_token, "ImportFromPackage", import).await.as_str().unwrap().to_owned();
    assert_eq!(final_status(&target, &target_token, &imported).await, "Succeeded");
    let (exported, reimported) = (groups(&source, &token).await, groups(&target, &target_token).await);
    assert_eq!(exported.len(), 40);
    assert_eq!(exported, reimported, "the entity contents are equal");
    let projects = expect_json(source.get("/data/DataManagementDefinitionGroups", &token).await, 200).await;
    assert_eq!(projects["value"][0]["OperationType"], "Export", "{projects}");
    source.stop().await;
    target.stop().await;
}

async fn parallel_imports_of_one_project_run_in_order(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    project(&server, "par", json!({ "entities": [{ "entity": "Customer groups" }] })).await;
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..10 {
        let url = write_url(&server, &token, &format!("p{n}.zip")).await;
        let csv = format!("CUSTOMERGROUPID,DESCRIPTION\nPAR,call {n}\n");
        put_blob(&url, package_zip(&[("Customer groups", "g.csv", 1)], &[("g.csv", &csv)])).await;
        let (base, http, token) = (server.url(ACTIONS), server.http.clone(), token.clone());
        calls.spawn(async move {
            let body = json!({ "packageUrl": url, "definitionGroupId": "par", "executionId": "", "execute": true,
                               "overwrite": false, "legalEntityId": "usmf" });
            let response =
                http.post(format!("{base}ImportFromPackage")).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let value: Value = response.json().await.unwrap();
            (n, value["value"].as_str().unwrap().to_owned())
        });
    }
    let mut messages = Vec::new();
    while let Some(call) = calls.join_next().await {
        let (n, id) = call.unwrap();
        assert_eq!(final_status(&server, &token, &id).await, "Succeeded");
        messages.push((n, expect_json(server.get(&format!("/api/messages/{id}"), &token).await, 200).await));
    }
    assert_eq!(messages.len(), 10, "every call succeeded");
    messages.sort_by_key(|(_, m)| m["seq"].as_i64().unwrap());
    for pair in messages.windows(2) {
        let (before, after) = (pair[0].1["finished_at"].as_str().unwrap(), pair[1].1["started_at"].as_str().unwrap());
        assert!(before <= after, "one at a time, in queue order: {before} then {after}");
    }
    let (last, _) = messages.last().unwrap();
    let path = "/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='PAR')";
    let group = expect_json(server.get(path, &token).await, 200).await;
    assert_eq!(group["Description"], format!("call {last}"), "the last queued import wins");
    server.stop().await;
}
