//! Recurring export over HTTP, as the Recurring Integrations Scheduler's Download job uses it, on
//! both store backends: an export job runs on its recurrence; the client dequeues until `204`
//! (collecting every file before downloading any), downloads each `DownloadLocation` with its
//! bearer token and redirects disabled, and acknowledges each with only the three fields RIS
//! sends (the URL rewritten to https). Every file arrives once; the statuses say `Acked`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Backend, TestServer, expect_json, expect_status, on_both_backends};

on_both_backends!(the_download_job_receives_every_file_once);

const JOB: &str = "5e1d0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b";

async fn put(server: &TestServer, path: &str, body: Value) {
    let admin = server.admin_token().await;
    let response = server.http.put(server.url(path)).bearer_auth(admin).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "PUT {path}: {}", response.text().await.unwrap());
}

/// The export runs of the job, newest first.
async fn runs(server: &TestServer, token: &str) -> Vec<Value> {
    let list = expect_json(server.get(&format!("/api/messages?activity={JOB}&limit=100"), token).await, 200).await;
    list["value"].as_array().cloned().unwrap_or_default()
}

async fn the_download_job_receives_every_file_once(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let token = server.token().await;
    for id in ["D1", "D2", "D3"] {
        let body = json!({ "CustomerGroupId": id, "Description": format!("group {id}") });
        expect_json(server.post_json("/data/CustomerGroups", &token, &body).await, 201).await;
    }
    put(
        &server,
        "/api/admin/projects/out",
        json!({ "operation": "export", "entities": [{ "entity": "Customer groups" }] }),
    )
    .await;
    let job =
        json!({ "project": "out", "apps": [{ "client_id": "it-writer" }], "company": "usmf", "recurrence": "1s" });
    put(&server, &format!("/api/admin/jobs/{JOB}"), job.clone()).await;

    // Two runs at least, then stop the recurrence and let what is queued finish.
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs(&server, &token).await.iter().filter(|m| m["state"] == "Processed").count() < 2 {
        assert!(Instant::now() < deadline, "the export job did not run twice: {:?}", runs(&server, &token).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut disabled = job;
    disabled["enabled"] = json!(false);
    put(&server, &format!("/api/admin/jobs/{JOB}"), disabled).await;
    let waiting = |m: &Value| ["Enqueued", "Processing", "Retrying"].contains(&m["state"].as_str().unwrap_or_default());
    while runs(&server, &token).await.iter().any(waiting) {
        assert!(Instant::now() < deadline, "runs did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let produced = runs(&server, &token).await.iter().filter(|m| m["state"] == "Processed").count();
    // A disabled job refuses its clients, as for enqueue: enable it again (hourly) to deliver.
    let job =
        json!({ "project": "out", "apps": [{ "client_id": "it-writer" }], "company": "usmf", "recurrence": "1h" });
    put(&server, &format!("/api/admin/jobs/{JOB}"), job).await;

    // RIS: dequeue until 204, then download and acknowledge each.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut dequeued = Vec::new();
    loop {
        let response =
            http.get(server.url(&format!("/api/connector/dequeue/{JOB}"))).bearer_auth(&token).send().await.unwrap();
        if response.status().as_u16() == 204 {
            assert_eq!(response.bytes().await.unwrap().len(), 0, "204 has an empty body");
            break;
        }
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(fields.len(), 6, "exactly the six fields: {body}");
        assert_eq!(body["IsDownLoadFileExist"], true);
        assert_eq!(body["LastDequeueDateTime"], Value::Null, "first delivery");
        dequeued.push(body);
        assert!(dequeued.len() <= produced, "a file was handed out twice");
    }
    assert_eq!(dequeued.len(), produced, "every produced file is dequeued once");
    for body in &dequeued {
        let location = body["DownloadLocation"].as_str().unwrap();
        assert!(location.starts_with(&server.base), "absolute, under ferry's public URL: {location}");
        let download = http.get(location).bearer_auth(&token).send().await.unwrap();
        assert_eq!(download.status().as_u16(), 200, "no redirect");
        let file = download.text().await.unwrap();
        assert!(file.contains("D1") && file.contains("D3"), "{file}");
        let ack = json!({
            "CorrelationId": body["CorrelationId"],
            "PopReceipt": body["PopReceipt"],
            "DownloadLocation": location.replacen("http://", "https://", 1),
        });
        let response = server.post_json(&format!("/api/connector/ack/{JOB}"), &token, &ack).await;
        expect_status(response, 200).await;
    }
    let again = http.get(server.url(&format!("/en/api/connector/dequeue/{JOB}"))).bearer_auth(&token).send().await;
    assert_eq!(again.unwrap().status().as_u16(), 204, "everything was acknowledged");

    let id = dequeued[0]["CorrelationId"].as_str().unwrap();
    let status = server
        .post_json(
            "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetMessageStatus",
            &token,
            &json!({ "messageId": id }),
        )
        .await;
    assert_eq!(expect_json(status, 200).await["value"], "Acked");
    let job_status = server.get(&format!("/api/connector/jobstatus/{JOB}?jobId={id}"), &token).await;
    assert_eq!(expect_json(job_status, 200).await["DataJobStatus"]["DataJobState"], "Acked");

    let stale = json!({ "CorrelationId": id, "PopReceipt": "bm90IHRoZSByZWNlaXB0" });
    let answer = expect_json(server.post_json(&format!("/api/connector/ack/{JOB}"), &token, &stale).await, 200).await;
    assert_eq!(answer["Acked"], true, "acknowledging an acknowledged file again changes nothing");
    let garbage = server.http.post(server.url(&format!("/api/connector/ack/{JOB}"))).bearer_auth(&token).body("nope");
    let garbage = expect_json(garbage.send().await.unwrap(), 400).await;
    assert!(garbage["error"]["message"].as_str().unwrap().contains("JSON"), "{garbage}");
    server.stop().await;
}
