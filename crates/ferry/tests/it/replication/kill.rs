//! SIGKILL during the initial copy: the real `ferry serve` binary, with a profile declared in
//! `[[profiles]]` (state active), is killed while it copies the customers and started again; the
//! copy resumes from its checkpoint (not from zero) and the target ends equal to the source,
//! every row once. On a SQLite target once, as soon as the copy made progress; on PostgreSQL
//! (`COPY`) and MariaDB (bulk `INSERT`s) several times, each at a random point — after a random
//! number of chunks plus a random few milliseconds, so inside reading, writing or committing a
//! chunk — with the seed printed so a failure can be replayed (`FERRY_TEST_SEED`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_domain::NewRow;
use ferry_model::{Catalog, Value as Cell};
use ferry_store::Store;
use serde_json::Value;

use super::assert_target_equals_source;
use super::targets::TargetDb;
use crate::support::{SCOPE, ServeProcess, expect_json, ferry_cmd, toml_string};

const CUSTOMERS: usize = 20_000;
const ADMIN_SECRET_VAR: &str = "IT_ADMIN_SECRET";

/// `ferry serve` with the test's config and admin secret.
fn start_serve(dir: &Path, secret: &str) -> ServeProcess {
    ServeProcess::start(dir, &["--config", "ferry.toml"], &[(ADMIN_SECRET_VAR, secret)])
}

async fn admin_token(http: &reqwest::Client, base: &str, secret: &str) -> String {
    let form =
        [("grant_type", "client_credentials"), ("client_id", "it-admin"), ("client_secret", secret), ("scope", SCOPE)];
    let response = http.post(format!("{base}/oauth2/token")).form(&form).send().await.expect("token request");
    expect_json(response, 200).await["access_token"].as_str().expect("access_token").to_owned()
}

/// The one profile's entity status (the profile comes from the config).
async fn status(http: &reqwest::Client, base: &str, token: &str) -> (String, Value) {
    let list =
        expect_json(http.get(format!("{base}/crm/exporter/profiles")).bearer_auth(token).send().await.unwrap(), 200)
            .await;
    let id = list[0]["Id"].as_str().expect("the declared profile").to_owned();
    let profile = expect_json(
        http.get(format!("{base}/crm/exporter/profiles/{id}")).bearer_auth(token).send().await.unwrap(),
        200,
    )
    .await;
    (id, profile["EntityStatus"][0].clone())
}

/// Writes `customers` source rows straight into the store, before ferry first starts.
async fn seed(database_url: &str, catalog: &Arc<Catalog>, customers_count: usize) {
    let store = Store::open(database_url, ferry_domain::SystemClock::shared()).await.expect("open source");
    store.migrate().await.expect("migrate source");
    store.prepare_entities(catalog.clone()).await.expect("prepare source");
    let groups = catalog.by_collection("CustomerGroups").unwrap();
    let mut values = vec![Cell::Null; groups.fields.len()];
    values[0] = Cell::String("10".into());
    store.insert(groups, vec![NewRow { company: Some("usmf".into()), values }]).await.expect("insert group");
    let customers = catalog.by_collection("CustomersV3").unwrap();
    let index = |name: &str| customers.field(name).expect("field").0;
    let (account, name, group) = (index("CustomerAccount"), index("OrganizationName"), index("CustomerGroupId"));
    for chunk in (0..customers_count).collect::<Vec<_>>().chunks(2_000) {
        let rows = chunk
            .iter()
            .map(|i| {
                let mut values = vec![Cell::Null; customers.fields.len()];
                values[account] = Cell::String(format!("K{i:06}"));
                values[name] = Cell::String(format!("Customer number {i}"));
                values[group] = Cell::String("10".into());
                NewRow { company: Some("usmf".into()), values }
            })
            .collect();
        store.insert(customers, rows).await.expect("insert customers");
    }
    store.close().await;
}

/// A data directory with a seeded source and a config whose one profile copies CustomersV3
/// into `target` (prefix `k`): (the directory, the source's URL, the catalog).
async fn prepare(target: &TargetDb, customers: usize) -> (tempfile::TempDir, String, Arc<Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("data").join("ferry.db").display());
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let catalog = Arc::new(Catalog::build(&ferry_model::standard_sources()).unwrap());
    seed(&database_url, &catalog, customers).await;
    let config = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = {data_dir}
[auth]
audiences = ["https://ferry.test"]
[[apps]]
client_id = "it-admin"
secret = "env:{ADMIN_SECRET_VAR}"
roles = ["admin"]
[[profiles]]
name = "Crash"
target_type = "{target_type}"
connection_string = {target}
table_prefix = "k"
entities = ["CustomersV3"]
state = "active"
"#,
        data_dir = toml_string(&dir.path().join("data").display().to_string()),
        target_type = target.type_name(),
        target = toml_string(&target.url),
    );
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    (dir, database_url, catalog)
}

/// Waits until the copy resumed and finished after the last restart, then checks the target
/// against the source (and with `ferry profiles verify`).
async fn finish_and_compare(
    dir: &Path,
    secret: &str,
    database_url: &str,
    catalog: &Arc<Catalog>,
    target: &TargetDb,
    customers: usize,
    copied_before_kill: u64,
) -> ServeProcess {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let restarted_at = chrono::Utc::now();
    let serve = start_serve(dir, secret);
    let token = admin_token(&http, &serve.base, secret).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut resumed_from = None;
    let (id, done) = loop {
        let (id, entity) = status(&http, &serve.base, &token).await;
        let updated = entity["UpdatedOn"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if resumed_from.is_none() && updated.is_some_and(|t| t > restarted_at) {
            resumed_from = entity["RowsCopied"].as_u64();
        }
        if entity["Phase"] == "DeltaSync" && entity["LagVersions"] == 0 {
            break (id, entity);
        }
        assert!(Instant::now() < deadline, "the copy did not finish after the restart: {entity}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let resumed_from = resumed_from.expect("a status reported after the restart");
    assert!(
        resumed_from >= copied_before_kill,
        "resumed at {resumed_from}, but {copied_before_kill} were copied before"
    );
    assert_eq!(done["RowsCopied"], customers, "every row copied once: {done}");
    assert_eq!(target.count("k_customerv3").await, customers as u64);
    let source = Store::open(database_url, ferry_domain::SystemClock::shared()).await.unwrap();
    assert_target_equals_source(&source, catalog, target, "k", "customerv3").await;
    source.close().await;

    let mut command = ferry_cmd(dir);
    command.args(["profiles", "verify", &id, "--config", "ferry.toml"]).env(ADMIN_SECRET_VAR, secret);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("customerv3: source {customers} rows, target {customers} rows")), "{stdout}");
    eprintln!("resumed at {resumed_from}");
    serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_the_initial_copy_resumes_and_ends_equal() {
    let target = TargetDb::sqlite().await;
    let (dir, database_url, catalog) = prepare(&target, CUSTOMERS).await;
    let secret = ferry_secrets::generate_secret();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    // First run: kill it as soon as the copy has made progress.
    let serve = start_serve(dir.path(), &secret);
    let token = admin_token(&http, &serve.base, &secret).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let copied_before_kill = loop {
        let (_, entity) = status(&http, &serve.base, &token).await;
        let copied = entity["RowsCopied"].as_u64().unwrap_or(0);
        assert_ne!(entity["Phase"], "DeltaSync", "the copy finished before the test could kill it: {entity}");
        if copied > 0 {
            break copied;
        }
        assert!(Instant::now() < deadline, "the initial copy did not start: {entity}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    serve.kill();
    assert!((copied_before_kill as usize) < CUSTOMERS);

    // Second run: the copy resumes from the checkpoint written with the last chunk.
    let serve =
        finish_and_compare(dir.path(), &secret, &database_url, &catalog, &target, CUSTOMERS, copied_before_kill).await;
    eprintln!("killed after {copied_before_kill} rows");
    drop(serve);
}

/// Rows of the random-interruption scenario: twelve chunks of 5,000.
const INTERRUPTED_CUSTOMERS: usize = 60_000;
/// Kills during one copy (fewer when the copy ends first).
const KILLS: usize = 3;

/// A small xorshift generator: the tests need a few random numbers, reproducible by seed.
struct Random(u64);

impl Random {
    fn from_env_or_clock() -> Random {
        let seed = std::env::var("FERRY_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("random interruption points: FERRY_TEST_SEED={seed}");
        Random(seed.max(1))
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Kills `ferry serve` at random points of the initial copy into `target`, restarting it each
/// time, then lets the copy finish and compares the target with the source.
async fn interrupted_at_random_points(target: TargetDb) {
    let (dir, database_url, catalog) = prepare(&target, INTERRUPTED_CUSTOMERS).await;
    let secret = ferry_secrets::generate_secret();
    let mut random = Random::from_env_or_clock();
    let mut copied_before_kill = 0;
    let mut kills = 0;
    for _ in 0..KILLS {
        let serve = start_serve(dir.path(), &secret);
        // Kill once the checkpoint passed a random number of rows (beyond the last kill's),
        // plus a random few milliseconds: inside reading, copying or committing a chunk.
        let remaining = INTERRUPTED_CUSTOMERS as u64 - copied_before_kill;
        let threshold = copied_before_kill + random.below(remaining / 2);
        let deadline = Instant::now() + Duration::from_secs(120);
        let finished = loop {
            match target.checkpoint("k").await {
                Some((phase, _)) if phase == "delta" => break true,
                Some((_, copied)) if copied > threshold || (threshold == 0 && copied == 0) => break false,
                _ => {}
            }
            assert!(Instant::now() < deadline, "the initial copy made no progress:\n{}", serve.stderr());
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(random.below(60))).await;
        serve.kill();
        kills += 1;
        let (phase, copied) = target.checkpoint("k").await.expect("a checkpoint");
        eprintln!("killed after the threshold {threshold}: checkpoint {phase}, {copied} rows");
        assert!(copied >= copied_before_kill, "the checkpoint went back from {copied_before_kill} to {copied}");
        copied_before_kill = copied;
        if phase == "delta" {
            break;
        }
        // What the target holds matches its checkpoint: chunks commit with it, whole.
        assert_eq!(target.count("k_customerv3").await, copied, "rows in the target beside its checkpoint");
    }
    assert!(kills > 0, "the copy finished before the first kill");
    let serve = finish_and_compare(
        dir.path(),
        &secret,
        &database_url,
        &catalog,
        &target,
        INTERRUPTED_CUSTOMERS,
        copied_before_kill,
    )
    .await;
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_initial_copy_killed_at_random_points_ends_equal() {
    let Some(target) = TargetDb::postgres("postgres_initial_copy_killed_at_random_points_ends_equal").await else {
        return;
    };
    interrupted_at_random_points(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_initial_copy_killed_at_random_points_ends_equal() {
    let Some(target) = TargetDb::mysql("mariadb_initial_copy_killed_at_random_points_ends_equal").await else {
        return;
    };
    interrupted_at_random_points(target).await;
}
