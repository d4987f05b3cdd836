//! Per-client-app throttling over HTTP: the request after an app's limit is answered `429` with
//! an integer `Retry-After` and Dynamics' message, on every secured route (the entity API's
//! case-insensitive fallback too), while other apps, apps with limits of their own, the token,
//! discovery and health endpoints and `/metrics` go on; a request held open (an enqueue whose
//! body is still coming) counts as running until it is answered; and with throttling off (the
//! default) the same limits change nothing. No test depends on timing: the windows are an hour
//! long, and the held request is seen running through the blob file it is streamed into.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header::RETRY_AFTER;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, READER, TestServer, expect_json, expect_status, on_both_backends};

on_both_backends!(
    the_request_over_the_limit_is_answered_429_for_that_app_only,
    a_request_held_open_counts_as_running,
    with_throttling_off_the_limits_change_nothing,
);

const JOB: &str = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";
const ENQUEUE: &str = "/api/connector/enqueue/6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d?entity=Customer%20groups";

/// An app with limits of its own (it shares the writer's secret).
const BULK: &str = "it-bulk";
const BULK_APP: &str = r#"
[[apps]]
client_id = "it-bulk"
secret = "env:IT_WRITER_SECRET"
roles = ["writer"]
default_company = "usmf"
throttle = { requests = 5 }
"#;

/// Asserts a 429 with an integer `Retry-After` in `retry_after` and `message`; answers the seconds.
async fn expect_throttled(
    response: reqwest::Response,
    message: &str,
    retry_after: std::ops::RangeInclusive<u32>,
) -> u32 {
    let header = response.headers().get(RETRY_AFTER).map(|v| v.to_str().expect("ASCII").to_owned());
    let body = expect_json(response, 429).await;
    let header = header.unwrap_or_else(|| panic!("no Retry-After; body {body}"));
    let secs: u32 = header.parse().unwrap_or_else(|_| panic!("Retry-After {header:?} is not whole seconds"));
    assert!(retry_after.contains(&secs), "Retry-After {secs} outside {retry_after:?}");
    assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
    secs
}

async fn the_request_over_the_limit_is_answered_429_for_that_app_only(backend: Backend) {
    let config = format!("[throttle]\nenabled = true\nrequests = 3\nwindow_secs = 3600\n{BULK_APP}");
    let Some(server) = TestServer::start_with(backend, &config, &[]).await else { return };
    let writer = server.token().await;
    let reader = server.token_for(READER, server.reader_secret()).await;
    let bulk = server.token_for(BULK, &server.secret).await;

    for _ in 0..3 {
        expect_json(server.get("/data/CustomerGroups", &writer).await, 200).await;
    }
    let over = "Number of requests exceeded the limit of 3 over the time window of 3600 seconds.";
    // Slots are a minute long: the first request stops counting an hour and a minute after it.
    expect_throttled(server.get("/data/CustomerGroups", &writer).await, over, 1..=3660).await;

    // Every secured route is throttled, whatever it is and whatever the app's roles allow.
    let routes = server.documented_routes().await;
    let mut missed = Vec::new();
    for route in routes.iter().filter(|r| r.secured && r.path != "/metrics") {
        let response = server.http.request(route.method.clone(), server.url(&route.path)).bearer_auth(&writer);
        let status = response.send().await.expect("request").status();
        if status != 429 {
            missed.push(format!("{} {}: {status}", route.method, route.path));
        }
    }
    assert!(missed.is_empty(), "answered without throttling: {missed:#?}");
    for path in ["/Data/customergroups", "/en/api/connector/jobstatus/6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d?jobId=x"] {
        expect_throttled(server.get(path, &writer).await, over, 1..=3660).await;
    }
    // Without a valid token it is still a 401: the caller is known before its app is throttled.
    expect_status(server.get("/data/CustomerGroups", "not-a-token").await, 401).await;

    // Other apps are not affected; an app with limits of its own is held to them.
    expect_json(server.get("/data/CustomerGroups", &reader).await, 200).await;
    for _ in 0..5 {
        expect_json(server.get("/data/CustomerGroups", &bulk).await, 200).await;
    }
    let bulk_over = "Number of requests exceeded the limit of 5 over the time window of 3600 seconds.";
    expect_throttled(server.get("/data/CustomerGroups", &bulk).await, bulk_over, 1..=3660).await;

    // Tokens, discovery, health and metrics are never throttled.
    for _ in 0..4 {
        server.token().await;
    }
    for path in ["/healthz", "/readyz", "/.well-known/openid-configuration", "/discovery/keys", "/openapi.json"] {
        expect_status(server.http.get(server.url(path)).send().await.expect("GET"), 200).await;
    }
    let metrics = expect_status(server.get("/metrics", &writer).await, 200).await;
    let counted = |app: &str| {
        metrics.lines().any(|l| {
            l.starts_with("ferry_http_throttled_total{")
                && l.contains(&format!("client_id=\"{app}\""))
                && l.contains("reason=\"requests\"")
        })
    };
    assert!(counted("it-writer") && counted(BULK), "metrics:\n{metrics}");
    server.stop().await;
}

async fn a_request_held_open_counts_as_running(backend: Backend) {
    let config = "[throttle]\nenabled = true\nconcurrent = 1\n";
    let Some(server) = TestServer::start_with(backend, config, &[]).await else { return };
    let writer = server.token().await;
    let reader = server.token_for(READER, server.reader_secret()).await;
    set_up_job(&server).await;

    let held = HeldEnqueue::open(&server, &writer).await;
    held.wait_until_running(&server.dir().join("data/blobs/.tmp")).await;
    let busy = "Number of concurrent requests exceeded the limit of 1.";
    expect_throttled(server.get("/data/CustomerGroups", &writer).await, busy, 1..=1).await;
    // The case-insensitive fallback holds its app to the same count.
    expect_throttled(server.get("/DATA/CustomerGroups", &writer).await, busy, 1..=1).await;
    expect_json(server.get("/data/CustomerGroups", &reader).await, 200).await;

    // Once the enqueue is answered, its place is free: the next request is let in.
    let (status, body) = held.finish().await;
    assert!(status.contains(" 200 "), "{status}\n{body}");
    expect_json(server.get("/data/CustomerGroups", &writer).await, 200).await;
    expect_json(server.get("/data/CustomerGroups", &writer).await, 200).await;
    server.stop().await;
}

async fn with_throttling_off_the_limits_change_nothing(backend: Backend) {
    // Limits of one request, but `enabled` is left at its default.
    let config = format!("[throttle]\nrequests = 1\nconcurrent = 1\n{BULK_APP}");
    let Some(server) = TestServer::start_with(backend, &config, &[]).await else { return };
    let writer = server.token().await;
    set_up_job(&server).await;

    let held = HeldEnqueue::open(&server, &writer).await;
    held.wait_until_running(&server.dir().join("data/blobs/.tmp")).await;
    for _ in 0..5 {
        let response = server.get("/data/CustomerGroups", &writer).await;
        assert!(response.headers().get(RETRY_AFTER).is_none());
        expect_json(response, 200).await;
    }
    let get = || server.get("/data/CustomerGroups", &writer);
    let (a, b, c) = tokio::join!(get(), get(), get());
    for response in [a, b, c] {
        expect_json(response, 200).await;
    }
    let (status, body) = held.finish().await;
    assert!(status.contains(" 200 "), "{status}\n{body}");
    server.stop().await;
}

/// The customer-group project `cg` and the job [`JOB`] the writer may enqueue into.
async fn set_up_job(server: &TestServer) {
    let admin = server.admin_token().await;
    let put =
        |path: &str, body: serde_json::Value| server.http.put(server.url(path)).bearer_auth(&admin).json(&body).send();
    let project = json!({ "entities": [{ "entity": "Customer groups" }] });
    expect_json(put("/api/admin/projects/cg", project).await.expect("PUT"), 201).await;
    let job = json!({ "project": "cg", "apps": [{ "client_id": "it-writer" }], "company": "usmf" });
    expect_json(put(&format!("/api/admin/jobs/{JOB}"), job).await.expect("PUT"), 201).await;
}

/// An enqueue whose chunked body is still being sent, over a socket of its own: a request that
/// runs until [`HeldEnqueue::finish`].
struct HeldEnqueue {
    socket: TcpStream,
}

impl HeldEnqueue {
    async fn open(server: &TestServer, token: &str) -> HeldEnqueue {
        let addr = server.base.trim_start_matches("http://");
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {ENQUEUE} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("send the head");
        socket.write_all(&chunk(b"CustomerGroupId,Description\r\n")).await.expect("send a chunk");
        // More than the 64 KiB a small body is kept in memory for, so it streams into a blob file.
        let rows: String = (0..4000).map(|n| format!("H{n:05},Held open\r\n")).collect();
        socket.write_all(&chunk(rows.as_bytes())).await.expect("send a chunk");
        HeldEnqueue { socket }
    }

    /// Waits until the server streams the body into a temporary blob file (`tmp`), which it does
    /// only once the request is let in and running.
    async fn wait_until_running(&self, tmp: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let files = std::fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0);
            if files > 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the enqueue never started streaming into {}", tmp.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends the rest of the body; answers the status line and the body of the answer.
    async fn finish(mut self) -> (String, String) {
        let mut rest = chunk(b"T1,Held open\r\n");
        rest.extend_from_slice(b"0\r\n\r\n");
        self.socket.write_all(&rest).await.expect("send the rest");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), self.socket.read_to_end(&mut answer))
            .await
            .expect("answered within 30 s")
            .expect("read the answer");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    }
}

/// `data` as one chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}
