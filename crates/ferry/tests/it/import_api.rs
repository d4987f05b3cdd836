//! Recurring import over HTTP, as RIS and d365fo.integrations use it: projects and jobs through
//! the admin API, enqueue through the connector (activity ids in every spelling, the
//! authorization policy, disabled jobs, size limits, repeated enqueues), status through
//! `jobstatus` and the DMF actions (single-quoted JSON too), and the rejected rows of a CSV
//! through `GetExecutionErrors`, `/api/messages/{id}/errors` (paged) and the rejected-rows
//! download. Messages are imported by the server's workers, so tests poll for final states.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::{Backend, READER, TestServer, expect_json, expect_status, on_both_backends};

/// The recurring job the tests enqueue into, as D365 shows it (upper case).
const JOB: &str = "6D31E09F-4A4B-4E2B-9C1E-0C5F0A0B1C2D";
/// The same job as ferry stores it.
const JOB_ID: &str = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";
/// `max_enqueue_bytes` of the test servers.
const MAX_ENQUEUE_BYTES: usize = 4096;
const FINAL_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const ACTIONS: &str = "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.";
const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";

on_both_backends!(
    enqueue_answers_the_message_id_and_enforces_the_policy,
    a_bad_row_is_reported_by_every_status_api,
    rejected_rows_page_with_next_links,
    projects_and_jobs_are_administered_over_http,
    an_enqueue_without_company_lands_in_the_apps_company,
);

/// A server with fast workers, the customer-group project `cg` and job [`JOB`] (which lets
/// `it-writer` enqueue), and tokens for the three test apps.
struct Import {
    server: TestServer,
    writer: String,
    reader: String,
    admin: String,
}

impl Import {
    async fn start(backend: Backend) -> Option<Import> {
        let config = format!("[import]\nworkers = 2\npoll_interval_ms = 50\nmax_enqueue_bytes = {MAX_ENQUEUE_BYTES}\n");
        let server = TestServer::start_with(backend, &config, &[]).await?;
        let writer = server.token().await;
        let reader = server.token_for(READER, server.reader_secret()).await;
        let admin = server.admin_token().await;
        let import = Import { server, writer, reader, admin };
        import.put("/api/admin/projects/cg", &json!({ "entities": [{ "entity": "Customer groups" }] }), 201).await;
        let job = json!({ "project": "cg", "apps": [{ "client_id": "it-writer" }], "company": "usmf" });
        import.put(&format!("/api/admin/jobs/{JOB}"), &job, 201).await;
        Some(import)
    }

    async fn put(&self, path: &str, body: &Value, status: u16) -> Value {
        let response =
            self.server.http.put(self.server.url(path)).bearer_auth(&self.admin).json(body).send().await.expect("PUT");
        expect_json(response, status).await
    }

    /// Enqueues `body` as the writer app; answers the raw response.
    async fn enqueue_raw(&self, path: &str, external_id: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self.server.http.post(self.server.url(path)).bearer_auth(&self.writer).body(body.to_owned());
        if let Some(x) = external_id {
            request = request.header("x-ms-dyn-externalidentifier", x);
        }
        request.send().await.expect("enqueue")
    }

    /// Enqueues a customer-group CSV into [`JOB`]; answers the message id.
    async fn enqueue(&self, external_id: Option<&str>, csv: &str) -> String {
        let path = format!("/api/connector/enqueue/{JOB}?entity=Customer%20groups&company=usmf");
        message_id(self.enqueue_raw(&path, external_id, csv).await).await
    }

    /// Calls a DMF action with a raw body (as PowerShell clients send it).
    async fn action(&self, action: &str, body: &str) -> reqwest::Response {
        self.server
            .http
            .post(self.server.url(&format!("{ACTIONS}{action}")))
            .bearer_auth(&self.reader)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("action")
    }

    /// The `value` of a successful action.
    async fn action_value(&self, action: &str, body: &str) -> Value {
        let answer = expect_json(self.action(action, body).await, 200).await;
        assert!(answer["@odata.context"].as_str().is_some_and(|c| c.contains("/data/$metadata#")), "{answer}");
        answer["value"].clone()
    }

    /// Polls `GetMessageStatus` (with d365fo.integrations' single-quoted body) until the message
    /// is final; answers the status.
    async fn wait_final(&self, message_id: &str) -> String {
        let deadline = Instant::now() + FINAL_TIMEOUT;
        loop {
            let status = self.action_value("GetMessageStatus", &format!("{{'messageId':'{message_id}'}}")).await;
            let status = status.as_str().expect("a status name").to_owned();
            if ["Processed", "ProcessedWithErrors", "PreProcessingError"].contains(&status.as_str()) {
                return status;
            }
            assert!(Instant::now() < deadline, "message {message_id} still {status} after {FINAL_TIMEOUT:?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The message id of a `200` enqueue answer: a JSON string literal, quotes included.
async fn message_id(response: reqwest::Response) -> String {
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = expect_status(response, 200).await;
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(text.starts_with('"') && text.ends_with('"'), "the message id is quoted: {text}");
    let id: String = serde_json::from_str(&text).expect("a JSON string");
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("a GUID: {id}"));
    id
}

const GOOD_CSV: &str = "CustomerGroupId,Description\r\nG1,Group one\r\nG2,Group two\r\n";
const ONE_BAD_ROW_CSV: &str = "CustomerGroupId,Description\r\nB1,Fine\r\nTOOLONGGROUPID1,Too long\r\nB3,Fine too\r\n";

async fn enqueue_answers_the_message_id_and_enforces_the_policy(backend: Backend) {
    let Some(t) = Import::start(backend).await else { return };

    // Every spelling of the activity id, query names in any case, an optional culture segment.
    let mut ids = Vec::new();
    for path in [
        format!("/api/connector/enqueue/{JOB_ID}?entity=Customer%20groups&company=usmf"),
        format!("/api/connector/enqueue/{{{JOB}}}?ENTITY=CustomerGroups"),
        format!("/api/connector/enqueue/%7B{JOB}%7D?Entity=customer%20groups&Company=USMF"),
        format!("/en/api/connector/enqueue/%7B{JOB}%7D?entity=Customer%20groups"),
    ] {
        let id = message_id(t.enqueue_raw(&path, None, GOOD_CSV).await).await;
        assert!(!ids.contains(&id), "each enqueue is a new message");
        ids.push(id);
    }
    let response = t.enqueue_raw(&format!("/xyz/api/connector/enqueue/{JOB}"), None, GOOD_CSV).await;
    expect_json(response, 404).await;

    // No such job.
    let unknown = "/api/connector/enqueue/11111111-2222-3333-4444-555555555555?entity=Customer%20groups";
    let error = expect_json(t.enqueue_raw(unknown, None, GOOD_CSV).await, 404).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("11111111-2222-3333-4444-555555555555"), "{error}");

    // An app that is not in the job's policy: 401 naming app and job.
    let response = t
        .server
        .http
        .post(t.server.url(&format!("/api/connector/enqueue/{JOB}")))
        .bearer_auth(&t.reader)
        .body(GOOD_CSV)
        .send()
        .await
        .unwrap();
    let error = expect_json(response, 401).await;
    let text = error["error"]["message"].as_str().unwrap();
    assert!(text.contains(READER) && text.contains(JOB_ID), "{error}");

    // Wrong entity: 400 with the reason.
    let path = format!("/api/connector/enqueue/{JOB}?entity=Vendors%20V2");
    let error = expect_json(t.enqueue_raw(&path, None, GOOD_CSV).await, 400).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("Vendors V2"), "{error}");

    // A disabled job: 409 until it is enabled again.
    let disabled =
        expect_json(t.server.post_json(&format!("/api/admin/jobs/{JOB}/disable"), &t.admin, &json!({})).await, 200)
            .await;
    assert_eq!(disabled["enabled"], false);
    let path = format!("/api/connector/enqueue/{JOB}?entity=Customer%20groups");
    let error = expect_json(t.enqueue_raw(&path, None, GOOD_CSV).await, 409).await;
    assert!(error["error"]["message"].as_str().unwrap().contains("disabled"), "{error}");
    expect_json(t.server.post_json(&format!("/api/admin/jobs/{JOB}/enable"), &t.admin, &json!({})).await, 200).await;

    // Too large: rejected by Content-Length, and while streaming when there is none.
    let big = format!("CustomerGroupId,Description\r\n{}", "G9,Padding padding padding\r\n".repeat(200));
    assert!(big.len() > MAX_ENQUEUE_BYTES);
    let error = expect_json(t.enqueue_raw(&path, None, &big).await, 413).await;
    assert!(error["error"]["message"].as_str().unwrap().contains(&MAX_ENQUEUE_BYTES.to_string()), "{error}");
    let status = chunked_post(&t.server, &path, &t.writer, big.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // A repeated enqueue (same external id, same content) answers the first message; new
    // content under the same external id is a new message.
    let first = t.enqueue(Some("groups-2024-01-01.csv"), GOOD_CSV).await;
    let again = t.enqueue(Some("groups-2024-01-01.csv"), GOOD_CSV).await;
    assert_eq!(first, again);
    let changed = t.enqueue(Some("groups-2024-01-01.csv"), ONE_BAD_ROW_CSV).await;
    assert_ne!(first, changed);

    // jobstatus: the DataJobStatusDetail of a message of this job (jobId or jobid).
    assert_eq!(t.wait_final(&first).await, "Processed");
    let status =
        expect_json(t.server.get(&format!("/api/connector/jobstatus/%7B{JOB}%7D?jobId={first}"), &t.writer).await, 200)
            .await;
    let job = &status["DataJobStatus"];
    assert_eq!(job["DataProject"], "cg", "{status}");
    assert_eq!(job["DataJobIdentifier"], first.as_str());
    assert_eq!(job["ExternalIdentifier"], "groups-2024-01-01.csv");
    assert_eq!(job["ExecutionIdentifier"], first.as_str());
    assert_eq!(job["DataJobState"], "Processed");
    for time in [&job["DataJobStartedDateTime"], &job["DataJobCompletedDateTime"]] {
        let text = time.as_str().expect("a time");
        assert!(text.ends_with('Z') && !text.starts_with("0001"), "{status}");
        chrono::DateTime::parse_from_rfc3339(text).expect("ISO-8601");
    }
    assert!(status["ExecutionLog"].is_string(), "{status}");
    let detail = status["ExecutionDetail"].as_array().expect("ExecutionDetail");
    assert_eq!(detail.len(), 1, "{status}");
    assert_eq!(detail[0]["EntityName"], "Customer groups");
    assert_eq!(detail[0]["Company"], "usmf");
    assert_eq!(detail[0]["StagingRecords"], 2);
    assert_eq!(detail[0]["StagingErrorCount"], 0);
    assert_eq!(detail[0]["TargetRecords"], 2);
    assert_eq!(detail[0]["TargetErrorCount"], 0);
    assert_eq!(detail[0]["StagingStatus"], "Finished");
    assert_eq!(detail[0]["TargetStatus"], "Finished");
    let lower =
        expect_json(t.server.get(&format!("/en/api/connector/jobstatus/{JOB_ID}?jobid={first}"), &t.writer).await, 200)
            .await;
    assert_eq!(lower["DataJobStatus"]["DataJobState"], "Processed");
    // A message of another job, an unknown message, a missing jobId.
    let other = "/api/connector/jobstatus/11111111-2222-3333-4444-555555555555?jobId=".to_owned() + &first;
    expect_json(t.server.get(&other, &t.writer).await, 404).await;
    let unknown = format!("/api/connector/jobstatus/{JOB}?jobId={EMPTY_GUID}");
    expect_json(t.server.get(&unknown, &t.writer).await, 404).await;
    expect_json(t.server.get(&format!("/api/connector/jobstatus/{JOB}"), &t.writer).await, 400).await;

    // The imported rows are there.
    let groups =
        expect_json(t.server.get("/data/CustomerGroups?$filter=CustomerGroupId eq 'G2'", &t.reader).await, 200).await;
    assert_eq!(groups["value"][0]["Description"], "Group two", "{groups}");
    t.server.stop().await;
}

/// POSTs `body` to `path` with `Transfer-Encoding: chunked` (no Content-Length), by hand over
/// a socket; answers the status line.
async fn chunked_post(server: &TestServer, path: &str, token: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in body.chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before it has read everything.
    let _ = socket.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

async fn a_bad_row_is_reported_by_every_status_api(backend: Backend) {
    let Some(t) = Import::start(backend).await else { return };
    let id = t.enqueue(Some("bad.csv"), ONE_BAD_ROW_CSV).await;

    // Known at once: the execution id; unknown ids answer the empty GUID or the D365 400s.
    let execution_id = t.action_value("GetExecutionIdByMessageId", &format!("{{'_messageId':'{id}'}}")).await;
    assert_eq!(execution_id, id.as_str());
    let unknown = t.action_value("GetExecutionIdByMessageId", &format!(r#"{{"_messageId":"{EMPTY_GUID}"}}"#)).await;
    assert_eq!(unknown, EMPTY_GUID);
    let error =
        expect_json(t.action("GetExecutionSummaryStatus", r#"{"executionId":"no-such-execution"}"#).await, 400).await;
    let text = error["error"]["message"].as_str().unwrap();
    assert!(text.contains("Execution details were not found for execution id: no-such-execution"), "{error}");
    let error = expect_json(t.action("GetMessageStatus", &format!("{{'messageId':'{EMPTY_GUID}'}}")).await, 400).await;
    let text = error["error"]["message"].as_str().unwrap();
    assert!(text.contains(&format!("Message details were not found for message id: {EMPTY_GUID}")), "{error}");

    assert_eq!(t.wait_final(&id).await, "ProcessedWithErrors");
    let summary = t.action_value("GetExecutionSummaryStatus", &format!(r#"{{"ExecutionId":{execution_id}}}"#)).await;
    assert_eq!(summary, "PartiallySucceeded");
    let status =
        expect_json(t.server.get(&format!("/api/connector/jobstatus/{JOB}?jobId={id}"), &t.writer).await, 200).await;
    assert_eq!(status["DataJobStatus"]["DataJobState"], "ProcessedWithErrors", "{status}");
    assert_eq!(status["ExecutionDetail"][0]["StagingErrorCount"], 1, "{status}");
    assert_eq!(status["ExecutionDetail"][0]["TargetRecords"], 2, "{status}");

    // GetExecutionErrors, called with the message id as RIS does: a string holding a JSON array
    // with exactly the bad row, keys in D365's order.
    let value = t.action_value("GetExecutionErrors", &format!("{{'executionId':'{id}'}}")).await;
    let text = value.as_str().expect("the value is a string");
    assert!(text.starts_with(r#"[{"RecordId":"#), "{text}");
    let errors: Value = serde_json::from_str(text).expect("the string holds JSON");
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 1, "{text}");
    assert_eq!(errors[0]["RecordId"], "CustomerGroupId='TOOLONGGROUPID1'", "{text}");
    assert_eq!(errors[0]["Field"], "CustomerGroupId", "{text}");
    let message = errors[0]["ErrorMessage"].as_str().unwrap();
    assert!(message.contains("Row 3") && message.contains("string_too_long") && message.contains("10"), "{message}");

    let entities = t.action_value("GetEntityExecutionSummaryStatusList", &format!("{{'executionId':'{id}'}}")).await;
    assert_eq!(entities[0]["EntityName"], "Customer groups", "{entities}");
    assert_eq!(entities[0]["ExecutionStatus"], "PartiallySucceeded", "{entities}");
    assert_eq!(entities[0]["StagingErrorCount"], 1, "{entities}");
    assert_eq!(entities[0]["TargetRecordsCreatedCount"], 2, "{entities}");

    // Other methods and unknown actions keep the OData error envelope.
    expect_json(t.server.get(&format!("{ACTIONS}GetMessageStatus"), &t.reader).await, 405).await;
    expect_json(t.action("NoSuchAction", "{}").await, 404).await;
    expect_json(t.action("GetMessageStatus", "{}").await, 400).await;
    let lower = "/data/datamanagementdefinitiongroups/Microsoft.Dynamics.DataEntities.GetMessageStatus";
    let response = t
        .server
        .http
        .post(t.server.url(lower))
        .bearer_auth(&t.reader)
        .body(format!("{{'messageId':'{id}'}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["value"], "ProcessedWithErrors");

    // The message for people: state, reason, counters, the entity and its links.
    let view = expect_json(t.server.get(&format!("/api/messages/{id}"), &t.reader).await, 200).await;
    assert_eq!(view["state"], "ProcessedWithErrors", "{view}");
    assert_eq!(view["external_id"], "bad.csv");
    assert_eq!(view["counters"]["read"], 3, "{view}");
    assert_eq!(view["counters"]["rejected"], 1, "{view}");
    assert_eq!(view["counters"]["inserted"], 2, "{view}");
    assert!(view["finished_at"].is_string() && view["enqueued_at"].is_string(), "{view}");
    let entity = &view["entities"][0];
    assert_eq!(entity["entity"], "Customer groups", "{view}");
    assert_eq!(entity["staging_errors"], 1, "{view}");
    let rejected_link = entity["rejected_link"].as_str().expect("a rejected-rows link").to_owned();
    assert!(rejected_link.ends_with(&format!("/api/messages/{id}/rejected/0")), "{rejected_link}");

    // The rejected rows, downloaded: the header and the bad row only.
    let response = t.server.http.get(&rejected_link).bearer_auth(&t.reader).send().await.unwrap();
    let content_type = response.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
    let disposition = response.headers().get(CONTENT_DISPOSITION).unwrap().to_str().unwrap().to_owned();
    let file = expect_status(response, 200).await;
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(disposition, format!("attachment; filename=\"{id}-0-rejected.csv\""));
    assert!(file.contains("CustomerGroupId") && file.contains("TOOLONGGROUPID1"), "{file}");
    assert!(!file.contains("B1") && !file.contains("B3"), "{file}");
    let missing = expect_json(t.server.get(&format!("/api/messages/{id}/rejected/1"), &t.reader).await, 404).await;
    assert!(missing["error"]["message"].as_str().unwrap().contains("position 1"), "{missing}");

    // A clean message has no rejected file, and says so.
    let clean = t.enqueue(None, GOOD_CSV).await;
    assert_eq!(t.wait_final(&clean).await, "Processed");
    let none = expect_json(t.server.get(&format!("/api/messages/{clean}/rejected/0"), &t.reader).await, 404).await;
    assert!(none["error"]["message"].as_str().unwrap().contains("rejected no rows"), "{none}");
    let view = expect_json(t.server.get(&format!("/api/messages/{clean}"), &t.reader).await, 200).await;
    assert!(view["entities"][0]["rejected_link"].is_null(), "{view}");

    // The list, newest first, filtered by job and state.
    let list = expect_json(t.server.get(&format!("/api/messages?activity=%7B{JOB}%7D"), &t.reader).await, 200).await;
    let listed: Vec<&str> = list["value"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [clean.as_str(), id.as_str()], "{list}");
    let list = expect_json(t.server.get("/api/messages?state=processedwitherrors&limit=1", &t.reader).await, 200).await;
    assert_eq!(list["value"][0]["id"], id.as_str(), "{list}");
    let next = list["next"].as_str().expect("a full page has a next link");
    let rest = expect_json(t.server.http.get(next).bearer_auth(&t.reader).send().await.unwrap(), 200).await;
    assert_eq!(rest["value"].as_array().unwrap().len(), 0, "{rest}");
    expect_json(t.server.get("/api/messages?state=Bogus", &t.reader).await, 400).await;
    expect_json(t.server.get(&format!("/api/messages/{EMPTY_GUID}"), &t.reader).await, 404).await;
    t.server.stop().await;
}

async fn rejected_rows_page_with_next_links(backend: Backend) {
    let Some(t) = Import::start(backend).await else { return };
    let mut csv = String::from("CustomerGroupId,Description\r\n");
    for i in 0..5 {
        csv.push_str(&format!("BADGROUPID-{i},Too long\r\n"));
    }
    csv.push_str("OK1,Fine\r\n");
    let id = t.enqueue(None, &csv).await;
    assert_eq!(t.wait_final(&id).await, "ProcessedWithErrors");

    let mut rows = Vec::new();
    let mut next =
        Some(t.server.url(&format!("/api/messages/{id}/errors?stage=staging&entity=CustomerGroups&limit=2")));
    let mut pages = 0;
    while let Some(url) = next {
        let page = expect_json(t.server.http.get(&url).bearer_auth(&t.reader).send().await.unwrap(), 200).await;
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        for item in items {
            assert_eq!(item["stage"], "staging", "{item}");
            assert_eq!(item["field"], "CustomerGroupId", "{item}");
            assert_eq!(item["code"], "string_too_long", "{item}");
            rows.push(item["row_number"].as_i64().unwrap());
        }
        next = page["next"].as_str().map(str::to_owned);
        if let Some(url) = &next {
            assert!(url.contains("after=") && url.contains("limit=2"), "{url}");
        }
        pages += 1;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(rows, [2, 3, 4, 5, 6]);
    let none =
        expect_json(t.server.get(&format!("/api/messages/{id}/errors?stage=target"), &t.reader).await, 200).await;
    assert_eq!(none["value"].as_array().unwrap().len(), 0, "{none}");
    assert!(none["next"].is_null());
    expect_json(t.server.get(&format!("/api/messages/{id}/errors?stage=nope"), &t.reader).await, 400).await;
    expect_json(t.server.get(&format!("/api/messages/{id}/errors?limit=0"), &t.reader).await, 400).await;
    t.server.stop().await;
}

async fn projects_and_jobs_are_administered_over_http(backend: Backend) {
    let Some(t) = Import::start(backend).await else { return };
    let message = |v: &Value| v["error"]["message"].as_str().unwrap_or_default().to_owned();

    // Projects: list, read, validation errors, replace.
    let list = expect_json(t.server.get("/api/admin/projects", &t.admin).await, 200).await;
    assert_eq!(list[0]["name"], "cg", "{list}");
    assert_eq!(list[0]["origin"], "api", "{list}");
    assert_eq!(list[0]["entities"][0]["format"], "CSV", "{list}");
    let project = expect_json(t.server.get("/api/admin/projects/cg", &t.admin).await, 200).await;
    assert_eq!(project["operation"], "import");
    expect_json(t.server.get("/api/admin/projects/nope", &t.admin).await, 404).await;
    let error = t.put("/api/admin/projects/p2", &json!({ "entities": [{ "entity": "No such entity" }] }), 400).await;
    assert!(message(&error).contains("No such entity"), "{error}");
    let error = t.put("/api/admin/projects/p2", &json!({ "entities": [] }), 400).await;
    assert!(message(&error).contains("names no entity"), "{error}");
    let error =
        t.put("/api/admin/projects/p2", &json!({ "entities": [{ "entity": "Currencies" }], "colour": 1 }), 400).await;
    assert!(message(&error).contains("colour"), "{error}");
    let error = t
        .put("/api/admin/projects/p2", &json!({ "name": "other", "entities": [{ "entity": "Currencies" }] }), 400)
        .await;
    assert!(message(&error).contains("differs"), "{error}");
    let error = t
        .put("/api/admin/projects/p2", &json!({ "entities": [{ "entity": "Currencies", "format": "PDF" }] }), 400)
        .await;
    assert!(message(&error).contains("PDF"), "{error}");
    let created = t.put("/api/admin/projects/p2", &json!({ "entities": [{ "entity": "Currencies" }] }), 201).await;
    assert_eq!(created["name"], "p2");
    let mapping = json!({ "entities": [{ "entity": "Currencies", "mapping": { "Code": "CurrencyCode" } }] });
    let replaced = t.put("/api/admin/projects/p2", &mapping, 200).await;
    assert_eq!(replaced["entities"][0]["mapping"]["Code"], "CurrencyCode");

    // Jobs: validation, read, enable and disable, delete.
    const JOB2: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let error = t.put("/api/admin/jobs/not-a-guid", &json!({ "project": "p2" }), 400).await;
    assert!(message(&error).contains("not-a-guid"), "{error}");
    let error = t.put(&format!("/api/admin/jobs/{JOB2}"), &json!({ "project": "missing" }), 400).await;
    assert!(message(&error).contains("missing"), "{error}");
    let error =
        t.put(&format!("/api/admin/jobs/{JOB2}"), &json!({ "project": "p2", "recurrence": "every day" }), 400).await;
    assert!(message(&error).contains("every day"), "{error}");
    let error =
        t.put(&format!("/api/admin/jobs/{JOB2}"), &json!({ "project": "p2", "activity_id": JOB_ID }), 400).await;
    assert!(message(&error).contains("differs"), "{error}");
    let body = json!({ "project": "p2", "kind": "file", "apps": [{ "client_id": "it-writer", "enabled": false }] });
    let job = t.put(&format!("/api/admin/jobs/%7B{}%7D", JOB2.to_uppercase()), &body, 201).await;
    assert_eq!(job["activity_id"], JOB2, "{job}");
    assert_eq!(job["enabled"], true, "{job}");
    let jobs = expect_json(t.server.get("/api/admin/jobs", &t.admin).await, 200).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs}");
    let read = expect_json(t.server.get(&format!("/api/admin/jobs/{{{JOB2}}}"), &t.admin).await, 200).await;
    assert_eq!(read["project"], "p2");
    let disabled =
        expect_json(t.server.post_json(&format!("/api/admin/jobs/{JOB2}/disable"), &t.admin, &json!({})).await, 200)
            .await;
    assert_eq!(disabled["enabled"], false);
    expect_json(t.server.post_json(&format!("/api/admin/jobs/{JOB2}/pause"), &t.admin, &json!({})).await, 404).await;
    expect_json(t.server.post_json(&format!("/api/admin/jobs/{EMPTY_GUID}/enable"), &t.admin, &json!({})).await, 404)
        .await;

    // A disabled app in the policy is not authorized.
    let response =
        t.enqueue_raw(&format!("/api/connector/enqueue/{JOB2}"), None, "CurrencyCode,Name\r\nEUR,Euro\r\n").await;
    expect_json(response, 401).await;

    // A project in use cannot go; once its job is gone it can.
    let error = expect_json(t.server.delete("/api/admin/projects/p2", &t.admin).await, 409).await;
    assert!(message(&error).contains(JOB2), "{error}");
    expect_status(t.server.delete(&format!("/api/admin/jobs/{JOB2}"), &t.admin).await, 204).await;
    expect_json(t.server.delete(&format!("/api/admin/jobs/{JOB2}"), &t.admin).await, 404).await;
    expect_status(t.server.delete("/api/admin/projects/p2", &t.admin).await, 204).await;
    expect_json(t.server.delete("/api/admin/projects/p2", &t.admin).await, 404).await;

    // Administration needs the admin role; messages and actions only the reader role.
    expect_json(t.server.get("/api/admin/projects", &t.writer).await, 403).await;
    expect_json(t.server.get("/api/admin/jobs", &t.reader).await, 403).await;
    expect_json(t.server.get("/api/messages", &t.reader).await, 200).await;

    // The routes are documented.
    let openapi = expect_json(t.server.get("/openapi.json", "").await, 200).await;
    for path in ["/api/connector/enqueue/{activityId}", "/api/messages/{id}/errors", "/api/admin/jobs/{activityId}"] {
        assert!(openapi["paths"][path].is_object(), "{path} is in /openapi.json");
    }
    t.server.stop().await;
}

/// A job that names no company, an enqueue that names none: the rows land in the enqueuing
/// app's default company (`usmf` for `it-writer`), so the app reads them back without
/// `cross-company=true` (before, they landed in `import.default_company`).
async fn an_enqueue_without_company_lands_in_the_apps_company(backend: Backend) {
    let Some(t) = Import::start(backend).await else { return };
    const OPEN_JOB: &str = "1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d";
    t.put(
        &format!("/api/admin/jobs/{OPEN_JOB}"),
        &json!({ "project": "cg", "apps": [{ "client_id": "it-writer" }] }),
        201,
    )
    .await;
    let path = format!("/api/connector/enqueue/{OPEN_JOB}?entity=Customer%20groups");
    let id =
        message_id(t.enqueue_raw(&path, None, "CustomerGroupId,Description\r\nAPP1,The app's own\r\n").await).await;
    assert_eq!(t.wait_final(&id).await, "Processed");
    let message = expect_json(t.server.get(&format!("/api/messages/{id}"), &t.admin).await, 200).await;
    assert_eq!(message["company"], "usmf", "{message}");
    let own =
        expect_json(t.server.get("/data/CustomerGroups?$filter=CustomerGroupId%20eq%20'APP1'", &t.writer).await, 200)
            .await;
    assert_eq!(own["value"].as_array().map(Vec::len), Some(1), "the app sees its rows: {own}");
    assert_eq!(own["value"][0]["dataAreaId"], "usmf");
    t.server.stop().await;
}
