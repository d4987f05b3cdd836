//! Recurring export below HTTP, on a fake clock: runs come at their recurrence, files are
//! delivered through dequeue, download and acknowledgement (and offered again after the
//! visibility timeout unless acknowledged), incremental exports carry exactly what changed
//! (deletes included), empty runs produce nothing when the job says so; the package API's
//! exports, cancellation, re-runs and retention.

mod support;

use ferry_domain::{
    CompanyScope, ExecutionParameters, FakeClock, Message, MessageFilter, MessageState, NewRow, Operation, RowKey,
};
use ferry_formats::package::Package;
use ferry_formats::{Cell, Limits, open_reader};
use ferry_integration::{IntegrationError, PackageExport, PackageImport, PackageSource};
use ferry_model::Value;
use std::sync::Arc;
use std::time::Duration;
use support::{APP, EXPORT_FILE_JOB, EXPORT_PACKAGE_JOB, EXPORT_PROJECT, Harness};

/// Runs each named `async fn(Harness, Arc<FakeClock>)` on SQLite and on PostgreSQL.
macro_rules! on_both_with_clock {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = ferry_store::testing::TestDatabase::sqlite();
                    let clock = ferry_domain::FakeClock::ticking(std::time::Duration::from_millis(1));
                    super::$name(super::support::harness_on(&db.url, clock.clone()).await, clock).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = ferry_store::testing::TestDatabase::postgres(concat!("exp_", stringify!($name))).await else { return };
                    let clock = ferry_domain::FakeClock::ticking(std::time::Duration::from_millis(1));
                    super::$name(super::support::harness_on(&db.url, clock.clone()).await, clock).await;
                }
            )*
        }
    };
}

on_both_with_clock!(
    recurring_exports_are_delivered_once_and_acknowledged,
    unacknowledged_files_come_back_after_the_visibility_timeout,
    incremental_exports_carry_exactly_the_changes,
    package_api_exports_and_imports_round_trip,
    cancel_rerun_and_retention,
);

/// Inserts customer groups `ids` (company usmf).
async fn add_groups(h: &Harness, ids: &[&str]) {
    let entity = h.catalog.by_collection("CustomerGroups").unwrap().clone();
    let (key, _) = entity.field("CustomerGroupId").unwrap();
    let (description, _) = entity.field("Description").unwrap();
    let rows = ids
        .iter()
        .map(|id| {
            let mut values = vec![Value::Null; entity.fields.len()];
            values[key] = Value::String((*id).into());
            values[description] = Value::String(format!("group {id}"));
            NewRow { company: Some("usmf".into()), values }
        })
        .collect();
    h.store.insert(&entity, rows).await.unwrap();
}

/// The newest export run of `job` once it has finished.
async fn finished_run(h: &Harness, job: &str, after_seq: i64) -> Message {
    for _ in 0..1200 {
        let filter = MessageFilter {
            activity_id: Some(job.into()),
            operation: Some(Operation::Export),
            limit: 1,
            ..MessageFilter::default()
        };
        if let Some(m) = h.service.list_messages(&filter).await.unwrap().pop()
            && m.seq > after_seq
            && m.state.is_final()
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no export run of {job} finished");
}

/// Moves the clock past the jobs' next (hourly) run and waits for `job`'s run.
async fn next_run(h: &Harness, clock: &FakeClock, job: &str, after_seq: i64) -> Message {
    clock.advance(Duration::from_secs(3601));
    finished_run(h, job, after_seq).await
}

/// The cells of every record of the file at `path` in the format `format` (a project's name).
fn records(path: &std::path::Path, format: &str) -> (Vec<String>, Vec<Vec<Cell>>) {
    let format = ferry_domain::DataFormat::from_name(format, None).unwrap();
    let mut reader = open_reader(&format, Box::new(std::fs::File::open(path).unwrap()), &Limits::default()).unwrap();
    let mut out = Vec::new();
    while let Some(record) = reader.next_record() {
        out.push(record.unwrap().cells);
    }
    (reader.columns().to_vec(), out)
}

async fn recurring_exports_are_delivered_once_and_acknowledged(h: Harness, clock: Arc<FakeClock>) {
    add_groups(&h, &["E1", "E2", "E3"]).await;
    let run = next_run(&h, &clock, EXPORT_FILE_JOB, 0).await;
    assert_eq!(run.state, MessageState::Processed, "{:?}", run.reason);
    assert_eq!(run.counters.read, 3);

    let dequeued = h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap().expect("a file to dequeue");
    assert_eq!(dequeued.message.id, run.id);
    assert_eq!(dequeued.previous_dequeue, None);
    assert!(h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap().is_none(), "hidden while dequeued");
    let (_, key) = h.service.download(EXPORT_FILE_JOB, &run.id, APP).await.unwrap();
    let file = h.service.blobs().local_copy(&key).await.unwrap();
    let (columns, rows) = records(file.path(), "CSV");
    assert_eq!(&columns[..2], ["DATAAREAID", "CUSTOMERGROUPID"]);
    let ids: Vec<&Cell> = rows.iter().map(|r| &r[1]).collect();
    assert_eq!(ids, [&Cell::Text("E1".into()), &Cell::Text("E2".into()), &Cell::Text("E3".into())]);

    let acked = h.service.ack(EXPORT_FILE_JOB, &run.id, Some(&dequeued.receipt), APP).await.unwrap();
    assert_eq!(acked.delivery.unwrap().acked_by.as_deref(), Some(APP));
    h.service.ack(EXPORT_FILE_JOB, &run.id, Some(&dequeued.receipt), APP).await.expect("acknowledging twice is fine");
    clock.advance(Duration::from_secs(31 * 60));
    let next = h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap();
    assert!(next.is_none_or(|d| d.message.id != run.id), "an acknowledged file is not offered again");
    let unknown = h.service.ack(EXPORT_FILE_JOB, "00000000-0000-0000-0000-000000000001", None, APP).await;
    assert!(matches!(unknown, Err(IntegrationError::NotFound(_))), "{unknown:?}");
    let stranger = h.service.dequeue(EXPORT_FILE_JOB, "someone-else").await;
    assert!(matches!(stranger, Err(IntegrationError::Unauthorized { .. })), "{stranger:?}");
    h.stop().await;
}

async fn unacknowledged_files_come_back_after_the_visibility_timeout(h: Harness, clock: Arc<FakeClock>) {
    add_groups(&h, &["V1"]).await;
    let run = next_run(&h, &clock, EXPORT_FILE_JOB, 0).await;
    let first = h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(29 * 60));
    assert!(h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap().is_none(), "still hidden after 29 minutes");
    clock.advance(Duration::from_secs(2 * 60));
    let again = h.service.dequeue(EXPORT_FILE_JOB, APP).await.unwrap().expect("offered again after 30 minutes");
    assert_eq!(again.message.id, run.id);
    assert!(again.previous_dequeue.is_some(), "a re-delivery says when it was dequeued before");
    assert_ne!(again.receipt, first.receipt);
    let stale = h.service.ack(EXPORT_FILE_JOB, &run.id, Some(&first.receipt), APP).await;
    assert!(matches!(stale, Err(IntegrationError::Conflict(_))), "the old receipt is stale: {stale:?}");
    h.service.ack(EXPORT_FILE_JOB, &run.id, Some(&again.receipt), APP).await.unwrap();
    h.stop().await;
}

/// The customer-group records of the package of `run` and its delete list.
async fn package_groups(h: &Harness, run: &Message) -> (Vec<String>, Vec<String>) {
    let copy = h.service.blobs().local_copy(&run.blob_key).await.unwrap();
    let mut package = Package::open(std::fs::File::open(copy.path()).unwrap(), &Limits::default()).unwrap();
    let manifest = package.manifest().clone();
    let groups = manifest.entities.iter().find(|e| e.entity_name == "Customer groups").unwrap();
    assert!(groups.incremental);
    let dir = tempfile::tempdir().unwrap();
    let mut read = |name: &str| {
        let path = dir.path().join(name);
        package.extract(name, &mut std::fs::File::create(&path).unwrap()).unwrap();
        let (_, rows) = records(&path, "CSV-Unicode");
        rows.iter()
            .map(|r| match &r[1] {
                Cell::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let rows = read(&groups.input_file_path);
    let deleted = groups.deleted_records_path.as_deref().map(&mut read).unwrap_or_default();
    (rows, deleted)
}

async fn incremental_exports_carry_exactly_the_changes(h: Harness, clock: Arc<FakeClock>) {
    add_groups(&h, &["I1", "I2", "I3"]).await;
    let first = next_run(&h, &clock, EXPORT_PACKAGE_JOB, 0).await;
    assert_eq!(first.state, MessageState::Processed, "{:?}", first.reason);
    assert_eq!(package_groups(&h, &first).await, (vec!["I1".into(), "I2".into(), "I3".into()], vec![]));

    // Nothing changed: the job skips empty exports.
    let quiet = next_run(&h, &clock, EXPORT_PACKAGE_JOB, first.seq).await;
    assert!(!quiet.has_file() && quiet.delivery.is_none(), "{quiet:?}");
    assert!(quiet.reason.unwrap_or_default().contains("nothing produced"));

    let entity = h.catalog.by_collection("CustomerGroups").unwrap().clone();
    add_groups(&h, &["I4"]).await;
    let key = |id: &str| RowKey { company: Some("usmf".into()), values: vec![Value::String(id.into())] };
    let (description, _) = entity.field("Description").unwrap();
    h.store.update(&entity, &key("I2"), vec![(description, Value::String("changed".into()))]).await.unwrap();
    assert!(h.store.delete(&entity, &key("I3")).await.unwrap());
    let second = next_run(&h, &clock, EXPORT_PACKAGE_JOB, quiet.seq).await;
    assert_eq!(second.state, MessageState::Processed, "{:?}", second.reason);
    let (mut rows, deleted) = package_groups(&h, &second).await;
    rows.sort();
    assert_eq!((rows, deleted), (vec!["I2".into(), "I4".into()], vec!["I3".into()]), "exactly the changes");
    assert_eq!(h.store.count(&entity, &CompanyScope::All, None).await.unwrap(), 3);
    h.stop().await;
}

async fn package_api_exports_and_imports_round_trip(h: Harness, _clock: Arc<FakeClock>) {
    add_groups(&h, &["R1", "R2"]).await;
    let export = |execution_id: Option<&str>, re_execute: bool| PackageExport {
        project: EXPORT_PROJECT.into(),
        execution_id: execution_id.map(str::to_owned),
        package_name: Some("groups".into()),
        re_execute,
        company: Some("usmf".into()),
        parameters: ExecutionParameters::default(),
        client_id: APP.into(),
        app_default_company: None,
    };
    let id = h.service.export_to_package(export(Some("my-export-1"), false)).await.unwrap();
    assert_eq!(id, "my-export-1");
    let taken = h.service.export_to_package(export(Some("my-export-1"), false)).await;
    assert!(matches!(taken, Err(IntegrationError::Conflict(_))), "a reused execution id: {taken:?}");
    let mut package = None;
    for _ in 0..1200 {
        if let Some((_, key)) = h.service.exported_package(&id).await.unwrap() {
            package = Some(key);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let key = package.expect("the package is ready");
    assert!(key.ends_with("/groups.zip"), "{key}");
    // Delete the rows, then import the package back: they return.
    let entity = h.catalog.by_collection("CustomerGroups").unwrap().clone();
    for id in ["R1", "R2"] {
        let row_key = RowKey { company: Some("usmf".into()), values: vec![Value::String(id.into())] };
        h.store.delete(&entity, &row_key).await.unwrap();
    }
    let import = PackageImport {
        source: PackageSource::Blob(key),
        project: "Customers".into(),
        execution_id: None,
        execute: true,
        company: Some("usmf".into()),
        client_id: APP.into(),
        app_default_company: None,
    };
    let execution = h.service.import_from_package(import).await.unwrap();
    let view = h.wait(&execution).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    assert_eq!(h.count("CustomerGroups").await, 2);
    let again = h.service.export_to_package(export(Some("my-export-1"), true)).await.unwrap();
    assert_eq!(again, "my-export-1", "reExecute runs the same execution id again");
    h.stop().await;
}

async fn cancel_rerun_and_retention(h: Harness, clock: Arc<FakeClock>) {
    // A message of a job with a recurrence waits for its processing time, holding its lane; a
    // message behind it in that lane waits too. Cancelling the first lets the second run.
    const HOURLY: &str = "b1b2c3d4-0000-4000-8000-000000000003";
    let hourly = ferry_domain::Job {
        apps: vec![ferry_domain::AuthorizedApp::enabled(APP)],
        company: Some("usmf".into()),
        recurrence: Some("1h".into()),
        ..ferry_domain::Job::new(HOURLY, "Customers")
    };
    h.service.put_job(hourly, ferry_domain::Origin::Api).await.unwrap();
    let waiting = h.enqueue(HOURLY, Some("Customer groups"), b"CUSTOMERGROUPID\nW1\n".to_vec()).await;
    let behind = h.enqueue(support::JOB, Some("Customer groups"), b"CUSTOMERGROUPID\nW2\n".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.view(&behind).await.message.state, MessageState::Enqueued, "waits behind in its lane");
    let cancelled = h.service.cancel(&waiting, APP).await.unwrap();
    assert_eq!(cancelled.state, MessageState::Canceled);
    assert!(cancelled.reason.unwrap_or_default().contains(&format!("cancelled by {APP}")));
    assert_eq!(h.wait(&behind).await.message.state, MessageState::Processed);
    let again = h.service.cancel(&waiting, APP).await;
    assert!(matches!(again, Err(IntegrationError::Conflict(_))), "{again:?}");

    // A finished message runs again as a new message on the same file.
    let rerun = h.service.rerun(&behind, APP).await.unwrap();
    assert_eq!(rerun.rerun_of.as_deref(), Some(behind.as_str()));
    let rerun_view = h.wait(&rerun.id).await;
    assert_eq!(rerun_view.message.state, MessageState::Processed, "{:?}", rerun_view.reason);
    assert_eq!(rerun_view.message.blob_key, h.view(&behind).await.message.blob_key);

    // Retention: what ended eight days ago goes (the shared file with the last message that
    // names it); a message younger than the retention stays.
    clock.advance(Duration::from_secs(8 * 24 * 3600));
    let young = h.enqueue(support::JOB, Some("Customer groups"), b"CUSTOMERGROUPID\nY1\n".to_vec()).await;
    h.wait(&young).await;
    let file = h.view(&behind).await.message.blob_key;
    let report = h.service.sweep_retention().await.unwrap();
    assert!(report.messages >= 3, "{report:?}");
    for id in [&waiting, &behind, &rerun.id] {
        assert!(h.service.message(id).await.unwrap().is_none(), "{id} was removed");
    }
    assert!(h.service.blobs().size(&file).await.unwrap().is_none(), "the file went with its last message");
    assert!(h.service.message(&young).await.unwrap().is_some(), "a young message stays");
    h.stop().await;
}
