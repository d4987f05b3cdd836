//! The agent (`ferry agent`, a real process) against a real server: 100 files for three entities
//! uploaded, monitored and moved, and a recurring export downloaded and acknowledged, while the
//! agent is killed with SIGKILL and restarted at random points — no file lost or in two folders,
//! none imported twice, every record in; and a proxy that answers 429, then 502, for a while does
//! not stop it: it catches up.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client_commands::put;
use crate::support::{Backend, TestServer, expect_json, ferry_cmd, toml_string};

const JOB: &str = "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e";
const EXPORT_JOB: &str = "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d99";
const ENTITIES: [&str; 3] = ["Gadgets", "Gizmos", "Doodads"];

fn entity_toml(label: &str) -> String {
    let single = label.trim_end_matches('s');
    format!(
        "[[entities]]\nlabel = \"{label}\"\npublic_name = \"{single}\"\ncollection = \"{label}\"\nlogical_name = \"{}\"\n\
         company_specific = true\nkey = [\"Id\"]\nfields = [{{ name = \"Id\", type = \"string(30)\" }}, {{ name = \"Name\", type = \"string(40)\" }}]\n",
        single.to_lowercase()
    )
}

/// The client config: the server (or a proxy before it) with Entra's token path.
fn client_config(dir: &Path, url: &str) {
    let config = format!(
        "default = \"it\"\n[environments.it]\nurl = {url}\ntenant = \"ferry\"\nauthority = {url}\nclient_id = \"it-writer\"\n\
         secret = \"env:IT_SECRET\"\nscope = \"https://ferry.test/.default\"\ncompany = \"usmf\"\n",
        url = toml_string(url)
    );
    std::fs::write(dir.join("client.toml"), config).unwrap();
}

/// A running `ferry agent`, SIGKILLed when dropped — also when an assertion fails first, so a
/// failing run leaves no agent behind.
struct AgentProcess(Child);

impl AgentProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_agent(dir: &Path, secret: &str) -> AgentProcess {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).unwrap();
    let mut child = ferry_cmd(dir)
        .args(["agent", "--config", "agent.toml"])
        .env("FERRY_CLIENT_CONFIG", dir.join("client.toml"))
        .env("IT_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn ferry agent");
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    AgentProcess(child)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".csv"));
    names.sort();
    names
}

/// A tiny deterministic random sequence (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn messages(server: &TestServer, token: &str, job: &str) -> Vec<Value> {
    let list = expect_json(server.get(&format!("/api/messages?activity={job}&limit=1000"), token).await, 200).await;
    list["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_survives_sigkill_and_loses_or_repeats_nothing() {
    let entity_files: Vec<(String, String)> =
        ENTITIES.iter().map(|e| (format!("{}.toml", e.to_lowercase()), entity_toml(e))).collect();
    let files: Vec<(&str, &str)> = entity_files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let server = TestServer::start_with(Backend::Sqlite, "[import]\npoll_interval_ms = 100\n", &files).await.unwrap();
    let entities: Vec<Value> = ENTITIES.iter().map(|e| json!({ "entity": e, "format": "CSV" })).collect();
    put(&server, "/api/admin/projects/things", json!({ "entities": entities })).await;
    let apps = json!([{ "client_id": "it-writer" }]);
    put(&server, &format!("/api/admin/jobs/{JOB}"), json!({ "project": "things", "apps": apps, "company": "usmf" }))
        .await;
    put(&server, "/api/admin/projects/out", json!({ "operation": "export", "entities": [{ "entity": "Gadgets" }] }))
        .await;
    let export = json!({ "project": "out", "kind": "package", "apps": apps, "company": "usmf", "recurrence": "2s" });
    put(&server, &format!("/api/admin/jobs/{EXPORT_JOB}"), export.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    client_config(d, &server.base);
    let mut agent_toml = String::from("state_dir = \"state\"\nlisten = \"127.0.0.1:0\"\n");
    for entity in ENTITIES {
        let e = entity.to_lowercase();
        std::fs::create_dir_all(d.join(format!("in/{e}"))).unwrap();
        agent_toml.push_str(&format!(
            "\n[[jobs]]\nname = \"up-{e}\"\ntype = \"upload\"\nschedule = \"1s\"\njob = \"{JOB}\"\nentity = \"{entity}\"\n\
             input = \"in/{e}\"\nsuccess = \"sent/{e}\"\nerror = \"refused/{e}\"\npattern = \"*.csv\"\n\
             \n[[jobs]]\nname = \"watch-{e}\"\ntype = \"monitor\"\nschedule = \"1s\"\nfolder = \"sent/{e}\"\n\
             processed = \"done/{e}\"\nerror = \"failed/{e}\"\n"
        ));
    }
    agent_toml.push_str("\n[[jobs]]\nname = \"down\"\ntype = \"download\"\nschedule = \"1s\"\n");
    agent_toml.push_str(&format!("job = \"{EXPORT_JOB}\"\noutput = \"exports\"\n"));
    std::fs::write(d.join("agent.toml"), agent_toml).unwrap();
    // 100 files of 3 rows each, spread over the three entities.
    let mut expected = [0u64; 3];
    for i in 0..100 {
        let k = i % 3;
        let e = ENTITIES[k].to_lowercase();
        let rows: String = (0..3).map(|r| format!("F{i:03}-{r},Name {i} {r}\n")).collect();
        std::fs::write(d.join(format!("in/{e}/file-{i:03}.csv")), format!("Id,Name\n{rows}")).unwrap();
        expected[k] += 3;
    }

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut random = Lcg(seed);
    let mut agent = spawn_agent(d, &server.secret);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300 + random.next(1500))).await;
        agent.kill();
        agent = spawn_agent(d, &server.secret);
    }
    let token = server.token().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done: usize = ENTITIES.iter().map(|e| files_in(&d.join(format!("done/{}", e.to_lowercase()))).len()).sum();
        if done == 100 {
            break;
        }
        let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "seed {seed}: only {done} of 100 files processed; agent log:\n{log}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every file in exactly one folder.
    for i in 0..100 {
        let e = ENTITIES[i % 3].to_lowercase();
        let name = format!("file-{i:03}.csv");
        let places: Vec<&str> = ["in", "sent", "refused", "done", "failed"]
            .into_iter()
            .filter(|folder| d.join(format!("{folder}/{e}/{name}")).exists())
            .collect();
        assert_eq!(places, ["done"], "seed {seed}: {name} is in {places:?}");
    }
    // Nothing imported twice: one message per file, every one processed.
    let imported = messages(&server, &token, JOB).await;
    assert_eq!(imported.len(), 100, "seed {seed}: one message per file");
    let mut external: Vec<&str> = imported.iter().filter_map(|m| m["external_id"].as_str()).collect();
    external.sort_unstable();
    external.dedup();
    assert_eq!(external.len(), 100);
    assert!(imported.iter().all(|m| m["state"] == "Processed"), "seed {seed}");
    for (k, entity) in ENTITIES.iter().enumerate() {
        let page = expect_json(server.get(&format!("/data/{entity}?$count=true&$top=1"), &token).await, 200).await;
        assert_eq!(page["@odata.count"], expected[k], "seed {seed}: {entity}");
    }
    // The exports: stop producing, then every produced file is downloaded once and acknowledged.
    let mut hourly = export;
    hourly["recurrence"] = json!("1h");
    put(&server, &format!("/api/admin/jobs/{EXPORT_JOB}"), hourly).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = messages(&server, &token, EXPORT_JOB).await;
        let produced: Vec<&Value> = runs.iter().filter(|m| m["state"] == "Processed").collect();
        let waiting =
            runs.iter().any(|m| ["Enqueued", "Processing", "Retrying"].contains(&m["state"].as_str().unwrap_or("")));
        let acked = produced.iter().filter(|m| m["message_status"] == "Acked").count();
        let saved = std::fs::read_dir(d.join("exports")).map(|r| r.count()).unwrap_or(0);
        if !waiting && !produced.is_empty() && acked == produced.len() && saved == produced.len() {
            break;
        }
        assert!(Instant::now() < deadline, "seed {seed}: {acked} of {} exports acked, {saved} saved", produced.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    agent.kill();
    server.stop().await;
}

/// A TCP proxy before `target` that answers 429 (`Retry-After: 1`) for `throttled`, then 502
/// for `failing`, then passes everything through.
async fn flaky_proxy(target: String, throttled: Duration, failing: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let target = target.clone();
            tokio::spawn(async move {
                let elapsed = started.elapsed();
                if elapsed < throttled + failing {
                    // Read the request head, answer, close.
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
                    let answer = if elapsed < throttled {
                        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    } else {
                        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    };
                    let _ = client.write_all(answer.as_bytes()).await;
                    let _ = client.shutdown().await;
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_catches_up_after_429_and_502() {
    let entity_files = [("gadgets.toml".to_owned(), entity_toml("Gadgets"))];
    let files: Vec<(&str, &str)> = entity_files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let server = TestServer::start_with(Backend::Sqlite, "", &files).await.unwrap();
    put(&server, "/api/admin/projects/things", json!({ "entities": [{ "entity": "Gadgets" }] })).await;
    let apps = json!([{ "client_id": "it-writer" }]);
    put(&server, &format!("/api/admin/jobs/{JOB}"), json!({ "project": "things", "apps": apps, "company": "usmf" }))
        .await;
    let proxy = flaky_proxy(
        server.base.trim_start_matches("http://").to_owned(),
        Duration::from_secs(3),
        Duration::from_secs(3),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    client_config(d, &proxy);
    std::fs::create_dir_all(d.join("in")).unwrap();
    for i in 0..10 {
        std::fs::write(d.join(format!("in/g-{i}.csv")), format!("Id,Name\nG{i},Gadget {i}\n")).unwrap();
    }
    std::fs::write(
        d.join("agent.toml"),
        format!("[[jobs]]\nname = \"up\"\ntype = \"upload\"\nschedule = \"1s\"\njob = \"{JOB}\"\nentity = \"Gadgets\"\ninput = \"in\"\nsuccess = \"sent\"\nerror = \"refused\"\n"),
    )
    .unwrap();
    let mut agent = spawn_agent(d, &server.secret);
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_in(&d.join("sent")).len() < 10 {
        let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "the agent did not catch up: {:?}; log:\n{log}", files_in(&d.join("sent")));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(files_in(&d.join("refused")).is_empty(), "a transient failure never refuses a file");
    let log = std::fs::read_to_string(d.join("agent.log")).unwrap();
    assert!(log.contains("429") && log.contains("502"), "it met both: {log}");
    agent.kill();
    let token = server.token().await;
    assert_eq!(messages(&server, &token, JOB).await.len(), 10);
    server.stop().await;
}
