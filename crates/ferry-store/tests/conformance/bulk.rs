//! Large import batches — on PostgreSQL the bulk path (new rows `COPY`ed straight into the table,
//! others into a temporary table, then one merge): every type and awkward text survives it,
//! counts and versions are those of the small path, several large batches in one transaction (an
//! all-or-nothing import) work, a key another writer inserts after the batch looked for it
//! is updated, not refused, and a batch copied before anything is read (no earlier batch of its
//! import met a stored key) is merged when a key exists after all.

use crate::support::{ALL_TYPES, Db, catalog_with, entity, row, s};
use chrono::{NaiveDate, TimeZone, Utc};
use ferry_domain::{NewRow, RowKey};
use ferry_model::{Entity, FieldType, Input, Value};
use ferry_store::{AtomicBatch, RunRecords};
use std::sync::Arc;

/// Rows per batch: well above the size from which PostgreSQL copies.
const ROWS: usize = 300;

/// Row `n`, every field set but for every seventh row, whose optional fields are null; text
/// with the characters COPY's text format escapes.
fn row_n(all: &Entity, n: usize, memo: &str) -> NewRow {
    let code = s(&format!("R{n:04}"));
    if n.is_multiple_of(7) {
        return row(all, Some(if n.is_multiple_of(2) { "usmf" } else { "demf" }), &[("Code", code)]);
    }
    let decimal = |t: &str| FieldType::Decimal { precision: 32, scale: 6 }.coerce(Input::Number(t)).unwrap();
    let stamp = Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 58).unwrap() + chrono::Duration::microseconds(n as i64);
    row(
        all,
        Some(if n.is_multiple_of(2) { "usmf" } else { "demf" }),
        &[
            ("Code", code),
            ("Memo", s(&format!("{memo} {n}: tab\there, newline\nhere, cr\rhere, backslash \\N \\ ü€😀"))),
            ("Small", Value::Int(-(n as i64))),
            ("Big", Value::Int(9_007_199_254_740_993 - n as i64)),
            ("Amount", decimal(&format!("-{n}.000123"))),
            ("Ratio", Value::Real(n as f64 / 3.0)),
            ("Flag", Value::Bool(n.is_multiple_of(3))),
            ("Day", Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap() + chrono::Duration::days(n as i64))),
            ("Stamp", Value::DateTime(stamp)),
            ("Ref", Value::Guid(uuid::Uuid::from_u128(n as u128 + 1))),
            ("Color", Value::Int((n % 2) as i64)),
        ],
    )
}

async fn assert_stored(store: &ferry_store::Store, all: &Entity, rows: &[NewRow]) {
    for wanted in rows {
        let key = RowKey { company: wanted.company.clone(), values: vec![wanted.values[0].clone()] };
        let got = store.get(all, &key).await.unwrap().unwrap_or_else(|| panic!("{key:?} missing"));
        assert_eq!(got.values, wanted.values, "{key:?}");
    }
}

pub async fn large_import_batches_round_trip_every_type(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let first: Vec<NewRow> = (0..ROWS).map(|n| row_n(&all, n, "first")).collect();
    let c = store.import_batch(&all, &first, None, None, &RunRecords::default()).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (ROWS as u64, 0, 0));
    assert_stored(&store, &all, &first).await;

    // The same rows again, every second one changed: only those are written, each with a version.
    let before = store.current_version().await.unwrap();
    let second: Vec<NewRow> = (0..ROWS)
        .map(|n| row_n(&all, n, if n % 2 == 1 && !n.is_multiple_of(7) { "second" } else { "first" }))
        .collect();
    let changed = (0..ROWS).filter(|n| n % 2 == 1 && !n.is_multiple_of(7)).count() as u64;
    let c = store.import_batch(&all, &second, None, None, &RunRecords::default()).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (0, changed, ROWS as u64 - changed));
    assert_eq!(store.current_version().await.unwrap(), before + changed as i64, "unchanged rows take no version");
    assert_stored(&store, &all, &second).await;

    // Two large batches of one entity and one of another in one transaction.
    let groups = entity(&catalog, "CustomerGroups");
    let group =
        |n: usize| row(&groups, Some("usmf"), &[("CustomerGroupId", s(&format!("G{n}"))), ("Description", s("d"))]);
    let third: Vec<NewRow> = (ROWS..3 * ROWS).map(|n| row_n(&all, n, "third")).collect();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let every_field = |e: &Entity| Arc::new((0..e.fields.len()).collect::<Vec<_>>());
    for (position, entity, rows) in [
        (0, all.clone(), third[..ROWS].to_vec()),
        (0, all.clone(), third[ROWS..].to_vec()),
        (1, groups.clone(), (0..ROWS).map(group).collect()),
    ] {
        let update_fields = every_field(&entity);
        tx.send(AtomicBatch { position, entity, update_fields, rows }).await.unwrap();
    }
    drop(tx);
    let counts = store.import_atomically(rx, None).await.unwrap().expect("nothing refused");
    assert_eq!(counts[&0].inserted, 2 * ROWS as u64);
    assert_eq!(counts[&1].inserted, ROWS as u64);
    assert_stored(&store, &all, &third).await;
}

/// PostgreSQL: a batch of new rows is copied straight into the table; when another transaction
/// inserts one of its keys after the batch found none of them, the copy waits for that
/// transaction, fails on the key when it commits, and the batch is merged instead.
pub async fn a_key_inserted_after_the_read_is_merged_not_refused(Db { store, url, .. }: Db) {
    use ferry_sql::sqlx::{self, Connection as _};
    if store.dialect() != ferry_sql::Dialect::Postgres {
        return; // SQLite's write lock is held from the read on: no other writer in between.
    }
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let rows: Vec<NewRow> = (0..ROWS).map(|n| row_n(&all, n, "batch")).collect();
    // Another transaction inserts row 5's key and keeps it uncommitted.
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    let racer = "INSERT INTO \"e_alltypes\" (\"_id\", \"_company\", \"_created_at\", \"_modified_at\", \"_version\", \"Code\") \
                 VALUES (gen_random_uuid(), $1, now(), now(), 0, 'R0005')";
    sqlx::query(racer).bind(rows[5].company.clone().unwrap()).execute(&mut other).await.unwrap();
    let import = {
        let (store, all, rows) = (store.clone(), all.clone(), rows.clone());
        tokio::spawn(async move { store.import_batch(&all, &rows, None, None, &RunRecords::default()).await })
    };
    // Once the batch's copy waits for the racer's key, the racer commits (watched from a
    // connection of its own: inside a transaction, pg_stat_activity would not change).
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query LIKE 'COPY %'";
    for _ in 0..600 {
        let n: i64 = sqlx::query_scalar(waiting).fetch_one(&mut watcher).await.unwrap();
        if n > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    import.await.unwrap().expect("the batch is merged over the racer's row");
    assert_stored(&store, &all, &rows).await;
}

/// A batch its import expects to be new is copied before anything is read; when some of its keys
/// exist after all, it is read and merged like any batch: the same counts, the same rows.
pub async fn a_batch_expected_new_is_merged_when_a_key_exists(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let none = RunRecords::default();
    let first: Vec<NewRow> = (0..ROWS).map(|n| row_n(&all, n, "first")).collect();
    let c =
        store.import_batch_committing(&all, &first, None, None, &none, true).await.unwrap().durable().await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (ROWS as u64, 0, 0));
    assert_stored(&store, &all, &first).await;

    // Its first half is stored already (every even row changed), its second half is new.
    let memo = |n: usize| if n.is_multiple_of(2) { "second" } else { "first" };
    let second: Vec<NewRow> = (ROWS / 2..ROWS + ROWS / 2).map(|n| row_n(&all, n, memo(n))).collect();
    let changed = (ROWS / 2..ROWS).filter(|n| n.is_multiple_of(2) && !n.is_multiple_of(7)).count() as u64;
    let c =
        store.import_batch_committing(&all, &second, None, None, &none, true).await.unwrap().durable().await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), ((ROWS / 2) as u64, changed, (ROWS / 2) as u64 - changed));
    assert_stored(&store, &all, &second).await;
    assert_stored(&store, &all, &first[..ROWS / 2]).await;
}
