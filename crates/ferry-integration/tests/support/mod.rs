//! The integration service's test harness: a real store (SQLite, or PostgreSQL when
//! `FERRY_TEST_POSTGRES_URL` is set), a real blob directory, the standard catalog, one import
//! project and job per data format, file and package import jobs over five entities, export
//! projects with a file job and a package job, and workers running. Time is the system clock, or
//! a fake one for tests of schedules, visibility timeouts and retention.

#![allow(dead_code)] // each test binary uses its own part

use bytes::Bytes;
use ferry_blob::BlobStore;
use ferry_domain::{
    AuthorizedApp, BlobStoreConfig, CompanyScope, ImportSettings, IntegrationSettings, Job, JobKind, MessageState,
    Operation, Origin, Project, ProjectEntity, RefreshMode, SharedClock, SystemClock,
};
use ferry_integration::{EnqueueRequest, IntegrationRuntime, IntegrationService, MessageView, WorkerHandle};
use ferry_model::{Catalog, Value, standard_sources};
use ferry_store::{RowQuery, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The file job over the five-entity "Customers" project (company usmf).
pub const JOB: &str = "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";
/// The package job over the same project.
pub const PACKAGE_JOB: &str = "7e42f1a0-5b5c-4f3c-8d2f-1d6a1b2c3d4e";
/// An all-or-nothing package job over the same project.
pub const ATOMIC_PACKAGE_JOB: &str = "8f53a2b1-6c6d-4a4d-9e3a-2e7b2c3d4e5f";
/// A file job over the same project that names no company.
pub const NO_COMPANY_JOB: &str = "9a64b3c2-7d7e-4b5e-8f4b-3f8c3d4e5f60";
/// The application every harness job authorizes.
pub const APP: &str = "app";
/// An export job of one entity (customer groups, CSV, every row), hourly.
pub const EXPORT_FILE_JOB: &str = "a1b2c3d4-0000-4000-8000-000000000001";
/// An export job of a package (customer groups in CSV-Unicode, customers V3 in XML, both
/// incremental), hourly, producing nothing when nothing changed.
pub const EXPORT_PACKAGE_JOB: &str = "a1b2c3d4-0000-4000-8000-000000000002";
/// The export project of [`EXPORT_PACKAGE_JOB`], also exported through the package API.
pub const EXPORT_PROJECT: &str = "Export customers";

/// Job of the per-format projects: 0 CSV-Unicode (all or nothing), 1 XML-Element,
/// 2 XML-Attribute, 3 JSON, 4 EXCEL.
pub fn format_job(n: usize) -> String {
    format!("00000000-0000-0000-0000-00000000000{n}")
}

pub struct Harness {
    pub service: IntegrationService,
    pub store: Store,
    pub catalog: Arc<Catalog>,
    dir: tempfile::TempDir,
    workers: Option<WorkerHandle>,
}

/// The harness's settings: small batches and four workers, polling often.
pub fn test_settings() -> ImportSettings {
    ImportSettings { poll_interval: Duration::from_millis(50), batch_rows: 7, workers: 4, ..ImportSettings::default() }
}

pub async fn harness(url: &str) -> Harness {
    harness_on(url, SystemClock::shared()).await
}

/// The harness on `clock`, workers running.
pub async fn harness_on(url: &str, clock: SharedClock) -> Harness {
    let mut h = harness_idle(url, clock).await;
    h.start_workers();
    h
}

/// The harness without workers: messages wait until [`Harness::start_workers`].
pub async fn harness_idle(url: &str, clock: SharedClock) -> Harness {
    let settings = IntegrationSettings { import: test_settings(), ..IntegrationSettings::default() };
    let catalog = Arc::new(Catalog::build(&standard_sources()).unwrap());
    let store = Store::open(url, clock).await.unwrap();
    store.migrate().await.unwrap();
    store.prepare_entities(catalog.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(&BlobStoreConfig::Local { dir: dir.path().join("blobs") }).await.unwrap();
    let work_dir = dir.path().join("work");
    std::fs::create_dir_all(&work_dir).unwrap();
    let runtime = IntegrationRuntime { work_dir, xslt: Err("XSLT is not set up in these tests".into()) };
    let service = IntegrationService::new(store.clone(), blobs, catalog.clone(), settings, runtime);
    let entity = |name: &str, format: &str| ProjectEntity { format: format.into(), ..ProjectEntity::new(name) };
    let mut formats = Vec::new();
    for (format, entity_name) in
        [("CSV-Unicode", "Customer groups"), ("XML-Element", "Vendor groups"), ("XML-Attribute", "Currencies")]
    {
        formats.push(Project::new(format!("p-{format}"), vec![entity(entity_name, format)]));
    }
    formats.push(Project::new("p-JSON", vec![entity("Customer groups", "JSON")]));
    formats.push(Project::new(
        "p-EXCEL",
        vec![ProjectEntity { sheet: Some("Groups".into()), ..entity("Customer groups", "EXCEL") }],
    ));
    let job = |id: &str, project: &str| Job {
        apps: vec![AuthorizedApp { client_id: APP.into(), enabled: true }],
        company: Some("usmf".into()),
        ..Job::new(id, project)
    };
    for (n, p) in formats.into_iter().enumerate() {
        let name = p.name.clone();
        service.put_project(p, Origin::Api).await.unwrap();
        service.put_job(Job { all_or_nothing: n == 0, ..job(&format_job(n), &name) }, Origin::Api).await.unwrap();
    }
    let project = Project::new(
        "Customers",
        ["Customer groups", "Customers V3", "General journal", "Vendor groups", "Currencies"]
            .into_iter()
            .map(|name| entity(name, "CSV"))
            .collect(),
    );
    service.put_project(project, Origin::Api).await.unwrap();
    service.put_job(job(JOB, "Customers"), Origin::Api).await.unwrap();
    service.put_job(Job { kind: JobKind::Package, ..job(PACKAGE_JOB, "Customers") }, Origin::Api).await.unwrap();
    let atomic = Job { kind: JobKind::Package, all_or_nothing: true, ..job(ATOMIC_PACKAGE_JOB, "Customers") };
    service.put_job(atomic, Origin::Api).await.unwrap();
    service.put_job(Job { company: None, ..job(NO_COMPANY_JOB, "Customers") }, Origin::Api).await.unwrap();

    let export = |p: Project| Project { operation: Operation::Export, ..p };
    service
        .put_project(export(Project::new("Export groups", vec![ProjectEntity::new("Customer groups")])), Origin::Api)
        .await
        .unwrap();
    let incremental =
        |name: &str, format: &str| ProjectEntity { mode: RefreshMode::Incremental, ..entity(name, format) };
    let package = Project::new(
        EXPORT_PROJECT,
        vec![
            incremental("Customer groups", "CSV-Unicode"),
            ProjectEntity { level: 2, ..incremental("Customers V3", "XML-Element") },
        ],
    );
    service.put_project(export(package), Origin::Api).await.unwrap();
    let hourly = |id: &str, project: &str| Job { recurrence: Some("1h".into()), ..job(id, project) };
    service.put_job(hourly(EXPORT_FILE_JOB, "Export groups"), Origin::Api).await.unwrap();
    let package_job = Job { kind: JobKind::Package, skip_empty: true, ..hourly(EXPORT_PACKAGE_JOB, EXPORT_PROJECT) };
    service.put_job(package_job, Origin::Api).await.unwrap();
    Harness { service, store, catalog, dir, workers: None }
}

impl Harness {
    pub fn start_workers(&mut self) {
        self.workers.get_or_insert_with(|| self.service.start_workers("test"));
    }

    pub async fn enqueue(&self, job: &str, entity: Option<&str>, body: Vec<u8>) -> String {
        let req = EnqueueRequest {
            activity_id: job.into(),
            entity: entity.map(str::to_string),
            company: None,
            external_id: None,
            client_id: APP.into(),
            app_default_company: None,
        };
        self.enqueue_request(req, body).await
    }

    pub async fn enqueue_request(&self, req: EnqueueRequest, body: Vec<u8>) -> String {
        let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(body))]);
        self.service.enqueue(req, stream).await.unwrap().message_id
    }

    pub async fn view(&self, id: &str) -> MessageView {
        self.service.message(id).await.unwrap().unwrap()
    }

    /// The message once it is final (its state, reason and entities).
    pub async fn wait(&self, id: &str) -> MessageView {
        for _ in 0..1200 {
            let view = self.view(id).await;
            if view.message.state.is_final() {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} did not finish");
    }

    /// Waits until the message is claimed by a worker.
    pub async fn wait_processing(&self, id: &str) {
        for _ in 0..1200 {
            if self.view(id).await.message.state != MessageState::Enqueued {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("message {id} was not claimed");
    }

    pub async fn rows_by_key(&self, collection: &str, key: &str, value: &str) -> BTreeMap<String, String> {
        let entity = self.catalog.by_collection(collection).unwrap();
        let (k, _) = entity.field(key).unwrap();
        let (v, _) = entity.field(value).unwrap();
        self.rows(collection)
            .await
            .into_iter()
            .map(|r| (r[k].to_text().unwrap(), r[v].to_text().unwrap_or_default()))
            .collect()
    }

    pub async fn rows(&self, collection: &str) -> Vec<Vec<Value>> {
        let entity = self.catalog.by_collection(collection).unwrap();
        let q = RowQuery {
            scope: CompanyScope::All,
            filter: None,
            order: vec![],
            after: None,
            versions: None,
            offset: 0,
            limit: 1000,
        };
        self.store.query(entity, &q).await.unwrap().into_iter().map(|r| r.values).collect()
    }

    pub async fn count(&self, collection: &str) -> u64 {
        let entity = self.catalog.by_collection(collection).unwrap();
        self.store.count(entity, &CompanyScope::All, None).await.unwrap()
    }

    pub async fn stop(mut self) {
        self.workers.take().unwrap().shutdown(Duration::from_secs(5)).await;
    }
}

/// Runs each named `async fn(Harness)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = ferry_store::testing::TestDatabase::sqlite();
                    super::$name(super::support::harness(&db.url).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = ferry_store::testing::TestDatabase::postgres(concat!("imp_", stringify!($name))).await else { return };
                    super::$name(super::support::harness(&db.url).await).await;
                }
            )*
        }
    };
}

/// A data package: the manifest lists `entities` (entity name, file name, level) in that order.
pub fn package(entities: &[(&str, &str, u32)], files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut manifest = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?>
<DataManagementPackageManifest xmlns="http://schemas.microsoft.com/dynamics/2015/01/DataManagement" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
 <DefinitionGroupName>Customers</DefinitionGroupName>
 <PackageEntityList>
"#,
    );
    for (entity, file, level) in entities {
        manifest.push_str(&format!(
            "  <DataManagementPackageEntityData>\n   <EntityName>{entity}</EntityName><InputFilePath>{file}</InputFilePath>\n   \
             <ExecutionUnit>1</ExecutionUnit><LevelInExecutionUnit>{level}</LevelInExecutionUnit><SequenceInLevel>1</SequenceInLevel>\n   \
             <SourceFormat>CSV</SourceFormat>\n  </DataManagementPackageEntityData>\n"
        ));
    }
    manifest.push_str(" </PackageEntityList>\n</DataManagementPackageManifest>");
    let header = r#"<DataManagementPackageHeader xmlns="http://schemas.microsoft.com/dynamics/2015/01/DataManagement"><Description>Customers</Description><ManifestType>Microsoft.Dynamics.AX.Framework.Tools.DataManagement.Serialization.DataManagementPackageManifest</ManifestType><PackageType>DefinitionGroup</PackageType><PackageVersion>2</PackageVersion></DataManagementPackageHeader>"#;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in
        [("Manifest.xml", manifest.as_str()), ("PackageHeader.xml", header)].into_iter().chain(files.iter().copied())
    {
        zip.start_file(name, opts).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Text as UTF-16 LE with a byte-order mark, as Dynamics writes `CSV-Unicode`.
pub fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend(unit.to_le_bytes());
    }
    out
}
