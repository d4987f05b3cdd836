//! The client commands of the real `ferry` binary against a real server: `login` with an
//! Entra-shaped token endpoint (`/{tenant}/oauth2/v2.0/token`) and a scope, `enqueue --wait`,
//! `status`, `errors` (table, JSON, the rejected-rows file), remote `messages` and `jobs`,
//! `import-package` of a folder, `export-package --unzip`, `dequeue` — each with `--json` checked
//! and its exit code (0 done, 1 refused, 2 configuration, 3 unreachable, 4 rejected records).

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Backend, TestServer, WIDGETS, expect_json, ferry_cmd};

pub const JOB: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const EXPORT_JOB: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c55";

/// Runs `ferry ARGS` in `dir` with the client config there and the apps' secrets.
pub async fn ferry(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = ferry_cmd(dir);
    command.env("FERRY_CLIENT_CONFIG", dir.join("client.toml")).envs(env.iter().copied()).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("run ferry")).await.unwrap()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn json_of(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&output.stderr)))
}

fn expect_code(output: &Output, expected: i32) {
    assert_eq!(
        code(output),
        expected,
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// PUTs an admin definition.
pub async fn put(server: &TestServer, path: &str, body: Value) {
    let admin = server.admin_token().await;
    let response = server.http.put(server.url(path)).bearer_auth(admin).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "PUT {path}: {}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_command_end_to_end() {
    let server = TestServer::start_with(Backend::Sqlite, "", &[("widgets.toml", WIDGETS)]).await.unwrap();
    put(&server, "/api/admin/projects/widgets", json!({ "entities": [{ "entity": "Widgets", "format": "CSV" }] }))
        .await;
    put(
        &server,
        &format!("/api/admin/jobs/{JOB}"),
        json!({ "project": "widgets", "apps": [{ "client_id": "it-writer" }], "company": "usmf" }),
    )
    .await;
    put(&server, "/api/admin/projects/wout", json!({ "operation": "export", "entities": [{ "entity": "Widgets" }] }))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secrets = [("IT_SECRET", server.secret.as_str()), ("ADMIN_SECRET", "unused")];

    // login: Entra ID's shape, served by ferry under tenant "ferry".
    let login = ferry(
        d,
        &secrets,
        &[
            "login",
            "--env",
            "it",
            "--url",
            &server.base,
            "--tenant",
            "ferry",
            "--authority",
            &server.base,
            "--scope",
            "https://ferry.test/.default",
            "--client-id",
            "it-writer",
            "--secret-env",
            "IT_SECRET",
            "--company",
            "usmf",
            "--json",
        ],
    )
    .await;
    expect_code(&login, 0);
    let shown = json_of(&login);
    assert_eq!(shown["token_url"], format!("{}/ferry/oauth2/v2.0/token", server.base));
    assert_eq!(shown["default"], true);
    let all_output = format!("{}{}", String::from_utf8_lossy(&login.stdout), String::from_utf8_lossy(&login.stderr));
    assert!(!all_output.contains(&server.secret), "the secret is never printed");
    let config = std::fs::read_to_string(d.join("client.toml")).unwrap();
    assert!(config.contains("env:IT_SECRET") && !config.contains(&server.secret), "{config}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [d.join("client.toml"), d.join("tokens/it.json")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is private", file.display());
        }
    }
    let admin_secret = server_admin_secret(&server);
    let admin_env = [("IT_SECRET", server.secret.as_str()), ("ADMIN_SECRET", admin_secret.as_str())];
    let login_admin = ferry(
        d,
        &admin_env,
        &[
            "login",
            "--env",
            "admin",
            "--url",
            &server.base,
            "--client-id",
            "it-admin",
            "--secret-env",
            "ADMIN_SECRET",
            "--scope",
            "https://ferry.test/.default",
        ],
    )
    .await;
    expect_code(&login_admin, 0);

    // enqueue --wait: one clean file, one with a rejected row.
    std::fs::write(d.join("good.csv"), "WidgetId,Name,Price\nW1,One,1\nW2,Two,2\nW3,Three,3\n").unwrap();
    std::fs::write(d.join("bad.csv"), "WidgetId,Name,Price\nW8,Eight,8\nW9,,9\n").unwrap();
    let enqueued = ferry(
        d,
        &secrets,
        &["enqueue", "--job", JOB, "--entity", "Widgets", "good.csv", "bad.csv", "--wait", "--json"],
    )
    .await;
    expect_code(&enqueued, 4);
    let enqueued = json_of(&enqueued);
    assert_eq!(enqueued[0]["external_id"], "good.csv");
    assert_eq!(enqueued[0]["state"], "Processed");
    assert_eq!(enqueued[1]["state"], "ProcessedWithErrors");
    let good = enqueued[0]["message_id"].as_str().unwrap().to_owned();
    let bad = enqueued[1]["message_id"].as_str().unwrap().to_owned();
    // Enqueued again, the same file is the same message (the external identifier dedupes).
    let again = ferry(d, &secrets, &["enqueue", "--job", JOB, "--entity", "Widgets", "good.csv", "--json"]).await;
    expect_code(&again, 0);
    assert_eq!(json_of(&again)[0]["message_id"], good.as_str());

    let status = ferry(d, &secrets, &["status", &good, "--json"]).await;
    expect_code(&status, 0);
    assert_eq!(json_of(&status)["counters"]["inserted"], 3);
    let status = ferry(d, &secrets, &["status", &bad, "--wait"]).await;
    expect_code(&status, 4);
    assert!(String::from_utf8_lossy(&status.stdout).contains("ProcessedWithErrors"));

    let errors = ferry(d, &secrets, &["errors", &bad, "--json"]).await;
    expect_code(&errors, 0);
    let rows = json_of(&errors);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["record_key"].as_str().map(|k| k.contains("W9")), Some(true), "{rows}");
    let table = ferry(d, &secrets, &["errors", &bad]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("STAGE"));
    let download = ferry(d, &secrets, &["errors", &bad, "--download", "rejected.csv"]).await;
    expect_code(&download, 0);
    let rejected = std::fs::read_to_string(d.join("rejected.csv")).unwrap();
    assert!(rejected.contains("W9") && !rejected.contains("W8"), "{rejected}");

    // Remote admin: messages with the writer, jobs with the admin; the writer may not read jobs.
    let messages = ferry(d, &admin_env, &["messages", "list", "--env", "it", "--job", JOB, "--json"]).await;
    expect_code(&messages, 0);
    let ids: Vec<String> =
        json_of(&messages).as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&good) && ids.contains(&bad), "{ids:?}");
    let shown = ferry(d, &admin_env, &["messages", "show", &bad, "--env", "it"]).await;
    assert!(String::from_utf8_lossy(&shown.stdout).contains("Widgets"));
    let jobs = ferry(d, &admin_env, &["jobs", "list", "--env", "admin", "--json"]).await;
    expect_code(&jobs, 0);
    assert!(json_of(&jobs).as_array().unwrap().iter().any(|j| j["activity_id"] == JOB));
    let refused = ferry(d, &admin_env, &["jobs", "list", "--env", "it"]).await;
    expect_code(&refused, 1);

    // import-package of a folder: wrapped with the project's manifest.
    std::fs::create_dir(d.join("pkg")).unwrap();
    std::fs::write(d.join("pkg/Widgets.csv"), "WidgetId,Name\nP1,Packaged one\nP2,Packaged two\n").unwrap();
    let imported = ferry(d, &secrets, &["import-package", "--project", "widgets", "pkg", "--json"]).await;
    expect_code(&imported, 0);
    assert_eq!(json_of(&imported)["status"], "Succeeded");

    // export-package --unzip.
    let exported =
        ferry(d, &secrets, &["export-package", "--project", "wout", "--out", "exports", "--unzip", "--json"]).await;
    expect_code(&exported, 0);
    let exported = json_of(&exported);
    let files: Vec<&str> = exported["files"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(files.iter().any(|f| f.ends_with("Manifest.xml")), "{files:?}");

    // dequeue: a recurring export job produces files; every one is taken once, then none.
    let job = json!({ "project": "wout", "kind": "package", "apps": [{ "client_id": "it-writer" }], "company": "usmf", "recurrence": "1s" });
    put(&server, &format!("/api/admin/jobs/{EXPORT_JOB}"), job.clone()).await;
    let token = server.token().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = expect_json(server.get(&format!("/api/messages?activity={EXPORT_JOB}"), &token).await, 200).await;
        if list["value"].as_array().unwrap().iter().any(|m| m["state"] == "Processed") {
            break;
        }
        assert!(Instant::now() < deadline, "no export ran: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut hourly = job;
    hourly["recurrence"] = json!("1h");
    put(&server, &format!("/api/admin/jobs/{EXPORT_JOB}"), hourly).await;
    let taken = ferry(d, &secrets, &["dequeue", "--job", EXPORT_JOB, "--out", "dl", "--unzip", "--json"]).await;
    expect_code(&taken, 0);
    let taken = json_of(&taken);
    assert!(!taken.as_array().unwrap().is_empty(), "{taken}");
    assert!(
        taken.as_array().unwrap().iter().all(|t| t["acked"] == true && d.join(t["path"].as_str().unwrap()).is_dir()),
        "{taken}"
    );
    // Runs that finish after the first dequeue are taken by the second; then nothing is left.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = ferry(d, &secrets, &["dequeue", "--job", EXPORT_JOB, "--out", "dl", "--json"]).await;
    let none = ferry(d, &secrets, &["dequeue", "--job", EXPORT_JOB, "--out", "dl", "--json"]).await;
    expect_code(&none, 0);
    assert_eq!(json_of(&none), json!([]));

    // Could not reach the server: 3; an unknown environment: 2; a refused request: 1.
    let mut config = std::fs::read_to_string(d.join("client.toml")).unwrap();
    config.push_str(
        "\n[environments.down]\nurl = \"http://127.0.0.1:9\"\nclient_id = \"x\"\nsecret = \"s\"\nattempts = 2\n",
    );
    std::fs::write(d.join("client.toml"), config).unwrap();
    let down = ferry(d, &secrets, &["status", &good, "--env", "down"]).await;
    expect_code(&down, 3);
    let unknown = ferry(d, &secrets, &["status", &good, "--env", "nope"]).await;
    expect_code(&unknown, 2);
    let missing = ferry(d, &secrets, &["status", "00000000-1111-2222-3333-444444444444"]).await;
    expect_code(&missing, 1);
    server.stop().await;
}

/// The admin app's secret (the harness keeps it; its token helper proves it).
fn server_admin_secret(server: &TestServer) -> String {
    server.admin_secret().to_owned()
}
