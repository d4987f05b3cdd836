//! Recurring import across real `ferry serve` processes: a server killed with SIGKILL in the
//! middle of a large import restarts and finishes it with the same result as a clean run, and two
//! servers on one PostgreSQL database share the queue without running a lane twice at once or
//! losing or duplicating anything.

use crate::support::{AUDIENCE, SCOPE, ServeProcess, toml_string};
use ferry_store::testing::TestDatabase;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const JOB: &str = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";
const APP: &str = "it-importer";
const SECRET: &str = "it-importer-secret-0123456789abcdef";

/// `ferry serve --config CONFIG` in `dir`, with the importer app's secret.
fn spawn(dir: &Path, config: &Path) -> ServeProcess {
    ServeProcess::start(dir, &["--config", config.to_str().expect("a UTF-8 path")], &[("IT_IMPORTER_SECRET", SECRET)])
}

/// Writes the config of a server on `database` importing into `entities` through one file job.
fn write_config(
    dir: &Path,
    database: &str,
    entities: &[&str],
    entity_files: &[(String, String)],
    lease_secs: u32,
) -> std::path::PathBuf {
    let entities_dir = dir.join("entities");
    std::fs::create_dir_all(&entities_dir).unwrap();
    for (name, text) in entity_files {
        std::fs::write(entities_dir.join(name), text).unwrap();
    }
    let mut config = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = {data}
database = {database}
entities_dir = {entities}

[auth]
audiences = ["{AUDIENCE}"]

[import]
workers = 4
lease_secs = {lease_secs}
poll_interval_ms = 100

[[apps]]
client_id = "{APP}"
secret = "env:IT_IMPORTER_SECRET"
roles = ["writer"]
default_company = "usmf"

[[projects]]
name = "Imports"
"#,
        data = toml_string(&dir.join("data").display().to_string()),
        database = toml_string(database),
        entities = toml_string(&entities_dir.display().to_string()),
    );
    for entity in entities {
        config.push_str(&format!("\n[[projects.entities]]\nentity = {}\nformat = \"CSV\"\n", toml_string(entity)));
    }
    config.push_str(&format!(
        "\n[[jobs]]\nactivity_id = \"{JOB}\"\nproject = \"Imports\"\nkind = \"file\"\ncompany = \"usmf\"\napps = [{{ client_id = \"{APP}\" }}]\n"
    ));
    let path = dir.join("ferry.toml");
    std::fs::write(&path, config).unwrap();
    path
}

struct Client {
    http: reqwest::Client,
    token: String,
}

async fn client(base: &str) -> Client {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let token: Value = http
        .post(format!("{base}/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", APP), ("client_secret", SECRET), ("scope", SCOPE)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("access token").to_owned();
    Client { http, token }
}

impl Client {
    async fn enqueue(&self, base: &str, entity: &str, body: Vec<u8>) -> String {
        let url = format!("{base}/api/connector/enqueue/{JOB}?entity={}", entity.replace(' ', "%20"));
        let response = self.http.post(url).bearer_auth(&self.token).body(body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json::<String>().await.unwrap()
    }

    async fn message(&self, base: &str, id: &str) -> Value {
        let response =
            self.http.get(format!("{base}/api/messages/{id}")).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    async fn wait_final(&self, base: &str, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.message(base, id).await;
            if matches!(m["state"].as_str(), Some("Processed" | "ProcessedWithErrors" | "PreProcessingError")) {
                return m;
            }
            assert!(Instant::now() < deadline, "message {id} not final in time: {m}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn customers_csv(rows: usize) -> String {
    let mut body = String::from("CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID,CREDITLIMIT\n");
    for n in 0..rows {
        body.push_str(&format!("K{n:07},\"Kunde {n}, Köln\",10,{}.25\n", n % 10_000));
    }
    body
}

async fn count_rows(database: &str, collection: &str) -> u64 {
    let store = ferry_store::Store::open(database, ferry_domain::SystemClock::shared()).await.unwrap();
    let catalog = std::sync::Arc::new(ferry_model::Catalog::build(&ferry_model::standard_sources()).unwrap());
    let entity = catalog.by_collection(collection).unwrap().clone();
    let n = store.count(&entity, &ferry_domain::CompanyScope::All, None).await.unwrap();
    store.close().await;
    n
}

async fn sigkill_then_restart(database: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &database.url, &["Customer groups", "Customers V3"], &[], 10);
    let first = spawn(dir.path(), &config);
    let c = client(&first.base).await;
    let groups = c.enqueue(&first.base, "Customer groups", b"CUSTOMERGROUPID,DESCRIPTION\n10,Retail\n".to_vec()).await;
    assert_eq!(c.wait_final(&first.base, &groups, Duration::from_secs(60)).await["state"], "Processed");

    const ROWS: usize = 150_000;
    let id = c.enqueue(&first.base, "Customers V3", customers_csv(ROWS).into_bytes()).await;
    // Kill it once the import is under way (rows written, not finished).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = first;
    loop {
        let m = c.message(&first.base, &id).await;
        let written = m["counters"]["inserted"].as_i64().unwrap_or(0);
        if m["state"] == "Processing" && written > 0 {
            break;
        }
        assert_ne!(m["state"], "Processed", "the import finished before it could be killed; use a larger file");
        assert!(Instant::now() < deadline, "the import did not start: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = first.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let _ = first.child.wait();
    drop(first);

    let second = spawn(dir.path(), &config);
    let c = client(&second.base).await;
    let m = c.wait_final(&second.base, &id, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "Processed", "{m}");
    assert!(m["attempts"].as_i64().unwrap() >= 2, "the message was run again: {m}");
    drop(second);
    assert_eq!(count_rows(&database.url, "CustomersV3").await, ROWS as u64, "nothing lost, nothing duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_mid_import_finishes_after_restart() {
    sigkill_then_restart(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_killed_mid_import_finishes_after_restart() {
    let Some(db) = TestDatabase::postgres("import_sigkill").await else { return };
    sigkill_then_restart(db).await;
}

/// 20 company-specific entities of the same simple shape.
fn lane_entities() -> Vec<(String, String)> {
    (0..20)
        .map(|n| {
            (
                format!("lane{n}.toml"),
                format!(
                    "[[entities]]\nlabel = \"Lane {n}\"\npublic_name = \"Lane{n}\"\ncollection = \"Lanes{n}\"\n\
                     logical_name = \"lane{n}\"\ncompany_specific = true\nkey = [\"Code\"]\nfields = [\n  \
                     {{ name = \"Code\", type = \"string(20)\" }},\n  {{ name = \"Value\", type = \"string(60)\" }},\n]\n"
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_postgres_queue() {
    let Some(db) = TestDatabase::postgres("import_two_servers").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<String> = (0..20).map(|n| format!("Lane {n}")).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let config = write_config(dir.path(), &db.url, &label_refs, &lane_entities(), 10);
    let a = spawn(dir.path(), &config);
    let b = spawn(dir.path(), &config);
    let ca = client(&a.base).await;
    let cb = client(&b.base).await;

    // 1,000 messages, 50 per lane, each writing 3 keys of 10 with its own number; half through each server.
    let mut sends = tokio::task::JoinSet::new();
    let ca = std::sync::Arc::new(ca);
    let cb = std::sync::Arc::new(cb);
    for worker in 0..8usize {
        let (c, base) = if worker % 2 == 0 { (ca.clone(), a.base.clone()) } else { (cb.clone(), b.base.clone()) };
        sends.spawn(async move {
            let mut ids = Vec::new();
            for n in (worker..1000).step_by(8) {
                let lane = n % 20;
                let body = format!("CODE,VALUE\nk{},m{n}\nk{},m{n}\nk{},m{n}\n", n % 10, (n + 3) % 10, (n + 6) % 10);
                ids.push((n, c.enqueue(&base, &format!("Lane {lane}"), body.into_bytes()).await));
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(sent) = sends.join_next().await {
        ids.extend(sent.unwrap());
    }
    assert_eq!(ids.len(), 1000);
    let mut messages = Vec::new();
    for (n, id) in &ids {
        let m = ca.wait_final(&a.base, id, Duration::from_secs(300)).await;
        assert_eq!(m["state"], "Processed", "message {n}: {m}");
        messages.push((*n, m));
    }
    // Per lane: never two at once, in enqueue order.
    let time = |m: &Value, k: &str| chrono::DateTime::parse_from_rfc3339(m[k].as_str().unwrap()).unwrap();
    for lane in 0..20 {
        let mut in_lane: Vec<&Value> = messages.iter().filter(|(n, _)| n % 20 == lane).map(|(_, m)| m).collect();
        in_lane.sort_by_key(|m| m["seq"].as_i64().unwrap());
        assert_eq!(in_lane.len(), 50);
        for pair in in_lane.windows(2) {
            assert!(
                time(pair[0], "finished_at") <= time(pair[1], "started_at"),
                "lane {lane}: overlap {} / {}",
                pair[0],
                pair[1]
            );
        }
        // The table holds the last writer of each key in enqueue order.
        let mut expected = std::collections::BTreeMap::new();
        for m in &in_lane {
            let n = messages.iter().find(|(_, x)| x["id"] == m["id"]).unwrap().0;
            for k in [n % 10, (n + 3) % 10, (n + 6) % 10] {
                expected.insert(format!("k{k}"), format!("m{n}"));
            }
        }
        let store = ferry_store::Store::open(&db.url, ferry_domain::SystemClock::shared()).await.unwrap();
        let mut sources = ferry_model::standard_sources();
        for (name, text) in lane_entities() {
            sources.push(ferry_model::CatalogSource { origin: name, text });
        }
        let catalog = ferry_model::Catalog::build(&sources).unwrap();
        let entity = catalog.by_collection(&format!("Lanes{lane}")).unwrap().clone();
        let q = ferry_store::RowQuery {
            scope: ferry_domain::CompanyScope::All,
            filter: None,
            order: vec![],
            after: None,
            versions: None,
            offset: 0,
            limit: 100,
        };
        let got: std::collections::BTreeMap<String, String> = store
            .query(&entity, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.values[0].to_text().unwrap(), r.values[1].to_text().unwrap()))
            .collect();
        store.close().await;
        assert_eq!(got, expected, "lane {lane}");
    }
    drop(a);
    drop(b);
}
