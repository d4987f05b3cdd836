//! `copy`, the initial copy's bulk path (PostgreSQL `COPY`, MySQL plain multi-row `INSERT`s):
//! it writes exactly what the guarded upsert writes, every type and awkward string included;
//! over rows already in the table it falls back to the version-guarded upsert (an older
//! version never overwrites a newer one); a refused chunk writes nothing, checkpoint included.

use crate::support::{Env, catalog_with, checkpoint, entity, id, on_all_targets, row, s};
use chrono::{NaiveDate, TimeZone, Utc};
use ferry_domain::{Phase, StoredRow, TargetKind};
use ferry_model::{Decimal, Entity, Value};
use ferry_target::{ApplyError, ApplyOutcome, Batch};

/// Every field type, a lookup, and text columns of both kinds.
const SAMPLES: &str = r#"
[[entities]]
label = "Samples"
public_name = "Sample"
collection = "Samples"
logical_name = "sample"
key = ["Code"]
fields = [
  { name = "Code", type = "string(20)" },
  { name = "Note", type = "string(200)" },
  { name = "Memo", type = "string" },
  { name = "Small", type = "int" },
  { name = "Big", type = "int64" },
  { name = "Amount", type = "decimal(32,6)" },
  { name = "Ratio", type = "real" },
  { name = "Flag", type = "bool" },
  { name = "Day", type = "date" },
  { name = "Stamp", type = "datetime" },
  { name = "Ref", type = "guid" },
]
"#;

/// Strings the COPY text format has to escape, and others that look like its markers.
const AWKWARD: [&str; 8] = [
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash \\N \\t",
    "\\N",
    "",
    "quotes \" ' and , commas",
    "Łukasiewicz 東京 😀",
];

fn sample(e: &Entity, n: u128, version: i64) -> StoredRow {
    let i = n as usize;
    if i % 5 == 4 {
        // Nothing but the key: every other column NULL.
        return row(e, id(n), version, None, &[("Code", s(&format!("S{n:04}")))]);
    }
    row(
        e,
        id(n),
        version,
        None,
        &[
            ("Code", s(&format!("S{n:04}"))),
            ("Note", s(AWKWARD[i % AWKWARD.len()])),
            ("Memo", s(&AWKWARD.join("|").repeat(i % 3 + 1))),
            ("Small", Value::Int(-(i as i64) * 7)),
            ("Big", Value::Int(i64::MAX - i as i64)),
            ("Amount", Value::Decimal(Decimal::parse(&format!("-{i}.000125"), 32, 6).unwrap())),
            ("Ratio", Value::Real(0.1 + i as f64 / 3.0)),
            ("Flag", Value::Bool(i.is_multiple_of(2))),
            ("Day", Value::Date(NaiveDate::from_ymd_opt(1999 + i as i32, 12, 31).unwrap())),
            ("Stamp", Value::DateTime(Utc.timestamp_opt(1_700_000_000 + i as i64, 123_456_000).unwrap())),
            ("Ref", Value::Guid(id(1000 + n))),
        ],
    )
}

/// The whole table as text, without the `Sink…` stamps (the two tables are written at
/// different times).
async fn contents(env: &Env, table: &str) -> Vec<Vec<Option<String>>> {
    let columns: Vec<String> = env.columns(table).await.into_iter().filter(|c| !c.starts_with("Sink")).collect();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    env.select(table, &names, "Id").await
}

#[tokio::test]
async fn copy_writes_what_the_upsert_writes() {
    on_all_targets("copy_writes_what_the_upsert_writes", |env| async move {
        let catalog = catalog_with(SAMPLES);
        let samples = entity(&catalog, "Samples");
        let upserted = env.target("up", false).await;
        let copied = env.target("cp", false).await;
        for target in [&upserted, &copied] {
            target.ensure_schema(&catalog, std::slice::from_ref(&samples)).await.unwrap();
        }
        let rows: Vec<StoredRow> = (1..=40).map(|n| sample(&samples, n, 100 + n as i64)).collect();
        let batch = Batch { upserts: rows, deletes: vec![] };
        let next = checkpoint("sample", Phase::Initial, 0, 40);
        assert_eq!(upserted.apply(&samples, &batch, &next).await.unwrap(), ApplyOutcome { upserted: 40, deleted: 0 });
        assert_eq!(copied.copy(&samples, &batch, &next).await.unwrap(), ApplyOutcome { upserted: 40, deleted: 0 });
        let (up, cp) = (contents(&env, "up_sample").await, contents(&env, "cp_sample").await);
        assert_eq!(up.len(), 40);
        assert_eq!(cp, up, "COPY/INSERT wrote other values than the upsert");
        assert_eq!(copied.load_checkpoints("p1").await.unwrap(), vec![next]);
        let stamps = env.select("cp_sample", &["SinkCreatedOn", "SinkModifiedOn"], "Id").await;
        assert!(stamps.iter().all(|r| r[0].is_some() && r[0] == r[1]), "{stamps:?}");
        upserted.close().await;
        copied.close().await;
    })
    .await;
}

#[tokio::test]
async fn copy_over_rows_already_there_keeps_the_newer_versions() {
    on_all_targets("copy_over_rows_already_there_keeps_the_newer_versions", |env| async move {
        let catalog = catalog_with(SAMPLES);
        let samples = entity(&catalog, "Samples");
        let target = env.target("cp", false).await;
        target.ensure_schema(&catalog, std::slice::from_ref(&samples)).await.unwrap();
        // A table an earlier profile filled: row 1 newer than the source's, row 2 older.
        let earlier = Batch { upserts: vec![sample(&samples, 1, 50), sample(&samples, 2, 5)], deletes: vec![] };
        target.apply(&samples, &earlier, &checkpoint("sample", Phase::Delta, 50, 2)).await.unwrap();

        let chunk = Batch {
            upserts: vec![sample(&samples, 1, 10), sample(&samples, 2, 6), sample(&samples, 3, 7)],
            deletes: vec![],
        };
        let first = checkpoint("sample", Phase::Initial, 0, 3);
        let outcome = target.copy(&samples, &chunk, &first).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 2, deleted: 0 }, "row 1 is newer in the table");
        assert_eq!(target.row_versions(&samples).await.unwrap(), vec![(id(1), 50), (id(2), 6), (id(3), 7)]);
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![first]);

        // Later chunks of the table, from this target and from a new one, land as well.
        let second = checkpoint("sample", Phase::Initial, 0, 5);
        let chunk = Batch { upserts: vec![sample(&samples, 4, 8), sample(&samples, 5, 9)], deletes: vec![] };
        assert_eq!(target.copy(&samples, &chunk, &second).await.unwrap(), ApplyOutcome { upserted: 2, deleted: 0 });
        let fresh = env.target("cp", false).await;
        let third = checkpoint("sample", Phase::Delta, 100, 6);
        let chunk = Batch { upserts: vec![sample(&samples, 6, 10)], deletes: vec![] };
        assert_eq!(fresh.copy(&samples, &chunk, &third).await.unwrap(), ApplyOutcome { upserted: 1, deleted: 0 });
        let versions: Vec<i64> = target.row_versions(&samples).await.unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(versions, [50, 6, 7, 8, 9, 10]);
        assert_eq!(fresh.load_checkpoints("p1").await.unwrap(), vec![third]);
        target.close().await;
        fresh.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_copy_writes_nothing() {
    on_all_targets("a_refused_copy_writes_nothing", |env| async move {
        let catalog = catalog_with(SAMPLES);
        let samples = entity(&catalog, "Samples");
        let target = env.target("cp", false).await;
        target.ensure_schema(&catalog, std::slice::from_ref(&samples)).await.unwrap();
        let first = checkpoint("sample", Phase::Initial, 0, 1);
        // Row 4 has no note (see `sample`), so the column can be narrowed by hand.
        target.copy(&samples, &Batch { upserts: vec![sample(&samples, 4, 1)], deletes: vec![] }, &first).await.unwrap();

        let table = env.table("cp_sample");
        match env.kind {
            TargetKind::Postgres => {
                env.exec(&format!("ALTER TABLE {table} ALTER COLUMN \"note\" TYPE varchar(3)")).await
            }
            TargetKind::MySql => env.exec(&format!("ALTER TABLE {table} MODIFY `note` varchar(3)")).await,
            TargetKind::Sqlite => {
                env.exec(&format!(
                    "CREATE TRIGGER narrow BEFORE INSERT ON {table} WHEN length(NEW.note) > 3 \
                     BEGIN SELECT RAISE(ABORT, 'note is longer than 3 characters'); END"
                ))
                .await
            }
        }
        let chunk = Batch { upserts: vec![sample(&samples, 2, 2), sample(&samples, 3, 3)], deletes: vec![] };
        let error = target.copy(&samples, &chunk, &checkpoint("sample", Phase::Initial, 0, 3)).await.unwrap_err();
        let ApplyError::Rejected(message) = error else { panic!("expected Rejected, got {error:?}") };
        assert!(message.contains("cp_sample"), "{message}");
        assert_eq!(target.row_versions(&samples).await.unwrap(), vec![(id(4), 1)], "nothing of the chunk written");
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![first], "the checkpoint stayed");
        target.close().await;
    })
    .await;
}
