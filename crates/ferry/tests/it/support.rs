//! The end-to-end harness: [`TestServer`] runs a real ferry in-process (port
//! 0, fresh database, temporary data dir) with three apps, `it-writer`,
//! `it-reader` and `it-admin`, and offers token and HTTP helpers. [`ferry_cmd`] runs the
//! real binary for CLI tests. PostgreSQL servers exist only when
//! `FERRY_TEST_POSTGRES_URL` is set; otherwise `start` answers `None`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferry::RunningServer;
use ferry_store::testing::TestDatabase;
use serde_json::Value;

/// The audience test tokens are requested for (`[auth] audiences`).
pub const AUDIENCE: &str = "https://ferry.test";
/// The scope that requests a token for [`AUDIENCE`].
pub const SCOPE: &str = "https://ferry.test/.default";
pub const WRITER: &str = "it-writer";
pub const READER: &str = "it-reader";
pub const ADMIN: &str = "it-admin";

/// The custom entity of the end-to-end tests (`entities/widgets.toml`): company-specific,
/// keyed by `WidgetId`, with a mandatory string, a decimal with a default, an enum with a
/// default and a date.
pub const WIDGETS: &str = r#"
[[enums]]
name = "WidgetColor"
values = [{ name = "Red", code = 0 }, { name = "Blue", code = 1 }]

[[entities]]
label = "Widgets"
public_name = "Widget"
collection = "Widgets"
logical_name = "widget"
company_specific = true
key = ["WidgetId"]
fields = [
  { name = "WidgetId", type = "string(20)" },
  { name = "Name", type = "string(40)", mandatory = true },
  { name = "Price", type = "decimal(32,6)", default = 0 },
  { name = "Color", type = "enum(WidgetColor)", default = "Red" },
  { name = "Released", type = "date" },
]
"#;

/// The fields of [`WIDGETS`].
pub const WIDGETS_FIELDS: usize = 5;

/// [`WIDGETS`] with more fields (TOML inline tables) after its own.
pub fn widgets_with(fields: &[&str]) -> String {
    let end = WIDGETS.rfind(']').expect("the field list ends");
    let added: String = fields.iter().map(|f| format!("  {f},\n")).collect();
    format!("{}{added}{}", &WIDGETS[..end], &WIDGETS[end..])
}

/// Which database a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines `mod $name { sqlite, postgres }`: two `#[tokio::test]`s that each
/// call `async fn $name(backend: Backend)` of the invoking module.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// A ferry server running in this process, with everything it needs.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, also the server's public URL (token issuer).
    pub base: String,
    pub http: reqwest::Client,
    /// The writer app (`it-writer`, role writer, company usmf).
    pub client_id: String,
    pub secret: String,
    reader_secret: String,
    admin_secret: String,
    /// Dropped first: dropping the server starts its graceful shutdown.
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    database: TestDatabase,
}

impl TestServer {
    /// A server with the standard catalog and no extra configuration.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, "", &[]).await
    }

    /// A server whose config is the harness base config merged with
    /// `extra_config_toml` (tables merge, arrays of tables such as `[[apps]]`
    /// append, other values replace), and whose entities dir holds
    /// `entity_files` as `(file name, TOML)`. `None` when the backend is
    /// PostgreSQL and no server is configured.
    pub async fn start_with(
        backend: Backend,
        extra_config_toml: &str,
        entity_files: &[(&str, &str)],
    ) -> Option<TestServer> {
        let database = match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres(&test_name()).await?,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let entities_dir = dir.path().join("entities");
        std::fs::create_dir_all(&entities_dir).expect("create entities dir");
        for (name, text) in entity_files {
            std::fs::write(entities_dir.join(name), text).expect("write entity file");
        }
        let base_config = format!(
            r#"
listen = "127.0.0.1:0"
data_dir = {data_dir}
database = {database}
entities_dir = {entities_dir}

[auth]
audiences = ["{AUDIENCE}"]
clock_skew_secs = 0

[[apps]]
client_id = "{WRITER}"
secret = "env:IT_WRITER_SECRET"
roles = ["writer"]
default_company = "usmf"

[[apps]]
client_id = "{READER}"
secret = "env:IT_READER_SECRET"
roles = ["reader"]
default_company = "usmf"

[[apps]]
client_id = "{ADMIN}"
secret = "env:IT_ADMIN_SECRET"
roles = ["admin"]
default_company = "usmf"
"#,
            data_dir = toml_string(&dir.path().join("data").display().to_string()),
            database = toml_string(&database.url),
            entities_dir = toml_string(&entities_dir.display().to_string()),
        );
        let config_path = dir.path().join("ferry.toml");
        std::fs::write(&config_path, merge_toml(&base_config, extra_config_toml)).expect("write config");

        let secret = ferry_secrets::generate_secret();
        let reader_secret = ferry_secrets::generate_secret();
        let admin_secret = ferry_secrets::generate_secret();
        let server = Self::launch(&config_path, &secrets_env(&secret, &reader_secret, &admin_secret)).await;
        let base = format!("http://{}", server.addr);
        assert_eq!(server.public_url, base, "a derived public url carries the real port");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
        Some(TestServer {
            base,
            http,
            client_id: WRITER.to_owned(),
            secret,
            reader_secret,
            admin_secret,
            server: Some(server),
            dir,
            database,
        })
    }

    async fn launch(config_path: &Path, env: &[(String, String)]) -> RunningServer {
        let config = ferry_config::load(Some(config_path), env, &ferry_config::Overrides::default())
            .unwrap_or_else(|e| panic!("test config is invalid: {e}"));
        RunningServer::start(config, env.to_vec()).await.unwrap_or_else(|e| panic!("ferry did not start: {e:#}"))
    }

    /// Stops the server gracefully, replaces the entities dir's files with `entity_files`, and
    /// starts it again on the same database and data dir (on a new port: `base` changes).
    #[allow(dead_code, reason = "for replication.rs and future tests")]
    pub async fn restart_with_entities(&mut self, entity_files: &[(&str, &str)]) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let entities_dir = self.dir.path().join("entities");
        std::fs::remove_dir_all(&entities_dir).expect("clear entities dir");
        std::fs::create_dir_all(&entities_dir).expect("create entities dir");
        for (name, text) in entity_files {
            std::fs::write(entities_dir.join(name), text).expect("write entity file");
        }
        let env = secrets_env(&self.secret, &self.reader_secret, &self.admin_secret);
        let server = Self::launch(&self.dir.path().join("ferry.toml"), &env).await;
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    /// The URL of the server's database (the store).
    #[allow(dead_code, reason = "for replication.rs and future tests")]
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// The real `ferry` binary, run with this server's config file and app secrets (for admin
    /// commands against the same database).
    #[allow(dead_code, reason = "for replication.rs and future tests")]
    pub fn ferry_cli(&self) -> Command {
        let mut command = ferry_cmd(self.dir.path());
        command.arg("--config").arg(self.dir.path().join("ferry.toml"));
        command.envs(secrets_env(&self.secret, &self.reader_secret, &self.admin_secret));
        command
    }

    /// An admin token (`it-admin`, role admin) for [`AUDIENCE`].
    #[allow(dead_code, reason = "for replication.rs and future tests")]
    pub async fn admin_token(&self) -> String {
        self.token_for(ADMIN, &self.admin_secret).await
    }

    /// The secret of `it-admin` (role admin).
    #[allow(dead_code, reason = "for client_commands.rs")]
    pub fn admin_secret(&self) -> &str {
        &self.admin_secret
    }

    /// The secret of `it-reader` (role reader, company usmf).
    pub fn reader_secret(&self) -> &str {
        &self.reader_secret
    }

    /// The server's temporary directory (config file, data dir, entities dir).
    #[allow(dead_code, reason = "for odata.rs (the lead's) and future tests")]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The signer of the server's blob URLs.
    #[allow(dead_code, reason = "for blob_urls.rs and future tests")]
    pub fn blob_urls(&self) -> &ferry_api::BlobUrls {
        self.server.as_ref().expect("the server is running").blob_urls()
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A writer token (`it-writer`) for [`AUDIENCE`].
    pub async fn token(&self) -> String {
        self.token_for(&self.client_id, &self.secret).await
    }

    /// A token for any app, via `POST /oauth2/token` with [`SCOPE`]; panics
    /// with the answer unless it is 200.
    pub async fn token_for(&self, client_id: &str, secret: &str) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", SCOPE),
        ];
        let response = self.http.post(self.url("/oauth2/token")).form(&form).send().await.expect("token request");
        let body = expect_json(response, 200).await;
        body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {body}")).to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(token).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("POST")
    }

    #[allow(dead_code, reason = "for odata.rs (the lead's) and future tests")]
    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http.patch(self.url(path)).bearer_auth(token).json(body).send().await.expect("PATCH")
    }

    #[allow(dead_code, reason = "for odata.rs (the lead's) and future tests")]
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).bearer_auth(token).send().await.expect("DELETE")
    }

    /// Every endpoint `/openapi.json` documents (the route table records each one), with its
    /// path parameters filled in by [`sample_path`].
    #[allow(dead_code, reason = "for route_sweep.rs and throttle.rs")]
    pub async fn documented_routes(&self) -> Vec<DocumentedRoute> {
        let document = expect_json(self.http.get(self.url("/openapi.json")).send().await.expect("GET"), 200).await;
        let paths = document["paths"].as_object().unwrap_or_else(|| panic!("no paths in {document}"));
        let mut routes = Vec::new();
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().expect("operations by method") {
                routes.push(DocumentedRoute {
                    method: method.to_uppercase().parse().expect("an HTTP method"),
                    path: sample_path(path),
                    secured: operation.get("security").is_some(),
                });
            }
        }
        assert!(routes.len() > 40, "the route table documents every endpoint: {routes:?}");
        routes
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// An endpoint of `/openapi.json`, ready to call.
#[derive(Clone, Debug)]
pub struct DocumentedRoute {
    pub method: reqwest::Method,
    /// The documented path with sample values for its parameters.
    pub path: String,
    /// Whether it needs a bearer token.
    pub secured: bool,
}

/// `path` with every `{parameter}` replaced by a sample value: an entity set and key of the
/// standard catalog, the default tenant, GUIDs for activity and message ids.
pub fn sample_path(path: &str) -> String {
    let samples = [
        ("{entitySet}", "CustomerGroups"),
        ("{key}", "dataAreaId='usmf',CustomerGroupId='10'"),
        ("{tenant}", "ferry"),
        ("{activityId}", "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d"),
        ("{id}", "11111111-2222-3333-4444-555555555555"),
        ("{position}", "1"),
        ("{name}", "Customers"),
    ];
    let filled = samples.iter().fold(path.to_owned(), |p, (name, value)| p.replace(name, value));
    assert!(!filled.contains('{'), "no sample for a parameter of {path}; add one to sample_path");
    filled
}

/// The environment that serves the test apps' `env:VAR` secrets.
fn secrets_env(writer: &str, reader: &str, admin: &str) -> Vec<(String, String)> {
    vec![
        ("IT_WRITER_SECRET".to_owned(), writer.to_owned()),
        ("IT_READER_SECRET".to_owned(), reader.to_owned()),
        ("IT_ADMIN_SECRET".to_owned(), admin.to_owned()),
        // In-process servers run XSLT transforms with the real binary's `xslt-worker`.
        ("FERRY_XSLT_WORKER".to_owned(), env!("CARGO_BIN_EXE_ferry").to_owned()),
    ]
}

/// Asserts the status (printing the body when it differs) and answers the JSON body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// Asserts the status, printing the body when it differs, and answers the body.
pub async fn expect_status(response: reqwest::Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    text
}

/// A real `ferry serve` process, for tests that kill servers or run several on one database;
/// killed (SIGKILL) when dropped.
pub struct ServeProcess {
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// `http://host:port`.
    pub base: String,
    log: PathBuf,
}

impl ServeProcess {
    /// Runs `ferry serve ARGS` in `dir` with `env` added to an empty environment, and waits (up
    /// to 60 s) for its `listening on` line. Stdout is drained so the server never blocks on a
    /// full pipe; stderr goes to a log file in `dir` ([`ServeProcess::stderr`]).
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!("serve-{}.stderr.log", STARTED.fetch_add(1, Ordering::Relaxed)));
        let mut child = ferry_cmd(dir)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .env("FERRY_XSLT_WORKER", env!("CARGO_BIN_EXE_ferry"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("stderr log"))
            .spawn()
            .expect("spawn ferry serve");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        let addr = loop {
            match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        break rest.split_whitespace().next().expect("an address").to_owned();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("ferry serve did not start within 60 s; stdout: {seen:#?}; stderr:\n{err}");
                }
            }
        };
        std::thread::spawn(move || while lines_rx.recv().is_ok() {});
        ServeProcess { child, base: format!("http://{addr}"), addr, log }
    }

    /// SIGKILL: no graceful shutdown, no lease released.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL ferry");
        let _ = self.child.wait();
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `ferry` binary, run in `dir` with an empty environment.
pub fn ferry_cmd(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.current_dir(dir).env_clear();
    command
}

/// The running test's name (the test harness names the thread after it).
fn test_name() -> String {
    std::thread::current().name().unwrap_or("ferry it").to_owned()
}

/// `text` as a TOML basic string.
pub fn toml_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Merges `extra` into `base`: tables merge key by key, arrays of tables
/// append, anything else in `extra` replaces the value in `base`.
fn merge_toml(base: &str, extra: &str) -> String {
    let mut base: toml::Table = base.parse().expect("base config is valid TOML");
    let extra: toml::Table = extra.parse().unwrap_or_else(|e| panic!("extra config is not valid TOML: {e}"));
    merge_tables(&mut base, extra);
    toml::to_string(&base).expect("config serializes")
}

fn merge_tables(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(extra)) => merge_tables(base, extra),
            (Some(toml::Value::Array(base)), toml::Value::Array(extra))
                if base.iter().chain(&extra).all(toml::Value::is_table) =>
            {
                base.extend(extra);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// How to get the Azure Storage SDK for Python the SDK tests run.
const INSTALL_HINT: &str = "install with pip install 'azure-storage-blob==12.31.1' (.ci/run puts it in .ci/venv)";

/// The Python that has the Azure SDK: `FERRY_TEST_PYTHON`, else `python3` on PATH. `None` (with a
/// loud line) when there is none, unless `CI` is set: then the test fails.
pub fn python_with_sdk() -> Option<PathBuf> {
    let program = std::env::var_os("FERRY_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| "python3".into());
    let has_sdk = Command::new(&program)
        .args(["-c", "import azure.storage.blob"])
        .output()
        .is_ok_and(|output| output.status.success());
    if has_sdk {
        return Some(program);
    }
    let why = format!("{} cannot import azure.storage.blob; {INSTALL_HINT}", program.display());
    if std::env::var_os("CI").is_some() {
        panic!("the Azure SDK test needs the SDK in CI (set FERRY_TEST_PYTHON): {why}");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let warning = format!("\n*** SKIPPED (Azure SDK): {why} ***\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), warning.as_bytes());
    None
}

/// A data package as Dynamics 365 writes it: `entities` (name, file, level) in the manifest,
/// `files` (name, text) beside it.
pub fn package_zip(entities: &[(&str, &str, u32)], files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut manifest = String::from(
        "<DataManagementPackageManifest xmlns=\"http://schemas.microsoft.com/dynamics/2015/01/DataManagement\">\
         <DefinitionGroupName>test</DefinitionGroupName><PackageEntityList>",
    );
    for (entity, file, level) in entities {
        manifest.push_str(&format!(
            "<DataManagementPackageEntityData><EntityName>{entity}</EntityName><ExecutionUnit>1</ExecutionUnit>\
             <InputFilePath>{file}</InputFilePath><LevelInExecutionUnit>{level}</LevelInExecutionUnit>\
             <SequenceInLevel>1</SequenceInLevel><SourceFormat>CSV</SourceFormat></DataManagementPackageEntityData>"
        ));
    }
    manifest.push_str("</PackageEntityList></DataManagementPackageManifest>");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in [("Manifest.xml", manifest.as_str())].into_iter().chain(files.iter().copied()) {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}
