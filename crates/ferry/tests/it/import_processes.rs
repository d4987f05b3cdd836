//! Recurring integrations across real `ferry serve` processes: a server killed with SIGKILL in
//! the middle of a large import restarts and finishes it with the same result as a clean run; one
//! killed in the middle of an incremental export restarts and exports every row once, and the next
//! run exactly what changed since; and two servers on one PostgreSQL database share the queue
//! without running a lane twice at once or losing or duplicating anything.

use crate::support::{AUDIENCE, SCOPE, ServeProcess, toml_string};
use ferry_store::testing::TestDatabase;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const JOB: &str = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";
/// The incremental export job of customer groups (every 2 s, nothing produced when nothing changed).
const EXPORT_JOB: &str = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0022";
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

/// [`write_config`] with an incremental export of customer groups: project `Exports`, job
/// [`EXPORT_JOB`].
fn write_export_config(dir: &Path, database: &str) -> std::path::PathBuf {
    let path = write_config(dir, database, &["Customer groups"], &[], 5);
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(&format!(
        "\n[[projects]]\nname = \"Exports\"\noperation = \"export\"\n[[projects.entities]]\nentity = \"Customer groups\"\n\
         mode = \"incremental\"\n\n[[jobs]]\nactivity_id = \"{EXPORT_JOB}\"\nproject = \"Exports\"\nkind = \"file\"\n\
         recurrence = \"2s\"\nskip_empty = true\ncompany = \"usmf\"\napps = [{{ client_id = \"{APP}\" }}]\n"
    ));
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

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).bearer_auth(&self.token).send().await.unwrap()
    }

    /// The export runs of [`EXPORT_JOB`], newest first.
    async fn export_runs(&self, base: &str) -> Vec<Value> {
        let list: Value =
            self.get(&format!("{base}/api/messages?activity={EXPORT_JOB}&limit=1000")).await.json().await.unwrap();
        list["value"].as_array().cloned().unwrap_or_default()
    }

    /// Dequeues, downloads and acknowledges every delivered export file; answers their texts.
    async fn take_exports(&self, base: &str) -> Vec<String> {
        let mut files = Vec::new();
        loop {
            let response = self.get(&format!("{base}/api/connector/dequeue/{EXPORT_JOB}")).await;
            if response.status().as_u16() == 204 {
                return files;
            }
            let d: Value = response.json().await.unwrap();
            files.push(self.get(d["DownloadLocation"].as_str().unwrap()).await.text().await.unwrap());
            let ack = serde_json::json!({ "CorrelationId": d["CorrelationId"], "PopReceipt": d["PopReceipt"] });
            let url = format!("{base}/api/connector/ack/{EXPORT_JOB}");
            let acked = self.http.post(url).bearer_auth(&self.token).json(&ack).send().await.unwrap();
            assert_eq!(acked.status().as_u16(), 200);
        }
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

/// The server is SIGKILLed while a 250,000-row import is writing batches (on PostgreSQL each
/// batch is `COPY`ed into a temporary table and merged, so the kill lands in a COPY-based
/// import); after a restart the message runs again and every row is there exactly once.
async fn sigkill_then_restart(database: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    // A short lease: the heartbeat publishes progress every third of it, and the import must be
    // seen under way (rows written) well before it ends.
    let config = write_config(dir.path(), &database.url, &["Customer groups", "Customers V3"], &[], 5);
    let first = spawn(dir.path(), &config);
    let c = client(&first.base).await;
    let groups = c.enqueue(&first.base, "Customer groups", b"CUSTOMERGROUPID,DESCRIPTION\n10,Retail\n".to_vec()).await;
    assert_eq!(c.wait_final(&first.base, &groups, Duration::from_secs(60)).await["state"], "Processed");

    const ROWS: usize = 250_000;
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
        tokio::time::sleep(Duration::from_millis(50)).await;
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

/// The customer groups store of `database`, migrated (as a server would), with `rows` groups.
async fn seeded_groups(database: &str, rows: usize) -> (ferry_store::Store, std::sync::Arc<ferry_model::Entity>) {
    let store = ferry_store::Store::open(database, ferry_domain::SystemClock::shared()).await.unwrap();
    let catalog = std::sync::Arc::new(ferry_model::Catalog::build(&ferry_model::standard_sources()).unwrap());
    store.migrate().await.unwrap();
    store.prepare_entities(catalog.clone()).await.unwrap();
    let entity = catalog.by_collection("CustomerGroups").unwrap().clone();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(5000) {
        let new: Vec<ferry_domain::NewRow> =
            chunk.iter().map(|n| group_row(&entity, &format!("G{n:06}"), "seeded")).collect();
        store.insert(&entity, new).await.unwrap();
    }
    (store, entity)
}

fn group_row(entity: &ferry_model::Entity, id: &str, description: &str) -> ferry_domain::NewRow {
    let mut values = vec![ferry_model::Value::Null; entity.fields.len()];
    values[entity.field("CustomerGroupId").unwrap().0] = ferry_model::Value::String(id.into());
    values[entity.field("Description").unwrap().0] = ferry_model::Value::String(description.into());
    ferry_domain::NewRow { company: Some("usmf".into()), values }
}

/// The group ids of an exported CSV file (the second column; the first is the company).
fn exported_ids(file: &str) -> Vec<String> {
    file.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').nth(1).unwrap().to_owned()).collect()
}

async fn sigkill_during_an_export(database: TestDatabase) {
    const ROWS: usize = 120_000;
    let dir = tempfile::tempdir().unwrap();
    let (store, groups) = seeded_groups(&database.url, ROWS).await;
    let config = write_export_config(dir.path(), &database.url);
    let first = spawn(dir.path(), &config);
    let c = client(&first.base).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let runs = c.export_runs(&first.base).await;
        if let Some(run) = runs.iter().find(|m| m["state"] == "Processing") {
            break run["id"].as_str().unwrap().to_owned();
        }
        assert!(
            runs.iter().all(|m| m["state"] != "Processed"),
            "the export finished before it could be killed: {runs:?}"
        );
        assert!(Instant::now() < deadline, "the export did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill();

    let second = spawn(dir.path(), &config);
    let c = client(&second.base).await;
    let m = c.wait_final(&second.base, &run, Duration::from_secs(300)).await;
    assert_eq!(m["state"], "Processed", "{m}");
    assert!(m["attempts"].as_i64().unwrap() >= 2, "the run was run again: {m}");
    let files = c.take_exports(&second.base).await;
    assert_eq!(files.len(), 1, "one file: the killed run produced nothing");
    let mut ids = exported_ids(&files[0]);
    assert_eq!(ids.len(), ROWS, "every row once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ROWS, "no row twice");

    // The next run exports exactly what changed since.
    store.insert(&groups, vec![group_row(&groups, "NEW1", "new"), group_row(&groups, "NEW2", "new")]).await.unwrap();
    let key = |id: &str| ferry_domain::RowKey {
        company: Some("usmf".into()),
        values: vec![ferry_model::Value::String(id.into())],
    };
    let description = groups.field("Description").unwrap().0;
    store
        .update(&groups, &key("G000007"), vec![(description, ferry_model::Value::String("changed".into()))])
        .await
        .unwrap();
    assert!(store.delete(&groups, &key("G000009")).await.unwrap());
    let mut changes = Vec::new();
    while changes.is_empty() {
        assert!(Instant::now() < deadline + Duration::from_secs(120), "no export of the changes");
        tokio::time::sleep(Duration::from_millis(200)).await;
        changes = c.take_exports(&second.base).await;
    }
    let mut ids: Vec<String> = changes.iter().flat_map(|f| exported_ids(f)).collect();
    ids.sort();
    assert_eq!(ids, ["G000007", "NEW1", "NEW2"], "exactly the inserts and the update");
    drop(second);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_mid_export_resumes_without_loss_or_duplicates() {
    sigkill_during_an_export(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_killed_mid_export_resumes_without_loss_or_duplicates() {
    let Some(db) = TestDatabase::postgres("export_sigkill").await else { return };
    sigkill_during_an_export(db).await;
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
