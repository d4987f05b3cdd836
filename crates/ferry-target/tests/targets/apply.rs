//! `apply` and the reads `verify` uses: upserts and deletes, version guards and replays,
//! DeleteLog rows, checkpoints in the same transaction, refused batches.

use crate::support::{Env, checkpoint, decimal_text, entity, id, on_all_targets, row, s, standard_catalog, tombstone};
use chrono::{TimeZone, Utc};
use ferry_domain::{Phase, StoredRow, TargetKind};
use ferry_model::{Decimal, Entity, Value};
use ferry_target::{ApplyError, ApplyOutcome, Batch, Target};
use std::sync::Arc;

fn customer(e: &Entity, n: u128, version: i64, name: &str) -> StoredRow {
    row(
        e,
        id(n),
        version,
        Some("usmf"),
        &[
            ("CustomerAccount", s(&format!("C{n:03}"))),
            ("OrganizationName", s(name)),
            ("CustomerGroupId", s("10")),
            ("CreditLimit", Value::Decimal(Decimal::parse("1234.5", 32, 6).unwrap())),
            ("AddressValidFrom", Value::DateTime(Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap())),
        ],
    )
}

async fn prepared(env: &Env, delete_log: bool) -> (Target, Arc<Entity>, Arc<Entity>) {
    let catalog = standard_catalog();
    let customers = entity(&catalog, "CustomersV3");
    let accounts = entity(&catalog, "accounts");
    let target = env.target("crm", delete_log).await;
    target.ensure_schema(&catalog, &[customers.clone(), accounts.clone()]).await.unwrap();
    (target, customers, accounts)
}

#[tokio::test]
async fn apply_writes_rows_deletes_and_checkpoints() {
    on_all_targets("apply_writes_rows_deletes_and_checkpoints", |env| async move {
        let (target, customers, accounts) = prepared(&env, false).await;
        let batch = Batch {
            upserts: vec![
                customer(&customers, 3, 12, "Gamma"),
                customer(&customers, 1, 10, "Alpha"),
                customer(&customers, 2, 11, "Beta"),
            ],
            deletes: vec![],
        };
        let first = checkpoint("customerv3", Phase::Initial, 0, 3);
        let outcome = target.apply(&customers, &batch, &first).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 3, deleted: 0 });
        assert_eq!(target.row_count(&customers).await.unwrap(), 3);
        assert_eq!(target.row_versions(&customers).await.unwrap(), vec![(id(1), 10), (id(2), 11), (id(3), 12)]);
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![first]);
        assert!(target.load_checkpoints("other").await.unwrap().is_empty());

        let rows = env
            .select(
                "crm_customerv3",
                &[
                    "Id",
                    "dataareaid",
                    "customeraccount",
                    "organizationname",
                    "customergroupid_entitytype",
                    "salescurrencycode_entitytype",
                    "creditlimit",
                    "versionnumber",
                ],
                "Id",
            )
            .await;
        assert_eq!(rows.len(), 3);
        let first_row = &rows[0];
        assert_eq!(first_row[0].as_deref(), Some(id(1).to_string().as_str()));
        assert_eq!(
            first_row[1..6],
            [Some("usmf".into()), Some("C001".into()), Some("Alpha".into()), Some("customergroup".into()), None]
        );
        assert_eq!(decimal_text(first_row[6].as_deref().unwrap()), "1234.5");
        assert_eq!(first_row[7].as_deref(), Some("10"));

        // Then: one update, one delete, the checkpoint moves on.
        let batch =
            Batch { upserts: vec![customer(&customers, 1, 14, "Alpha renamed")], deletes: vec![tombstone(id(2), 13)] };
        let second = checkpoint("customerv3", Phase::Delta, 14, 3);
        let outcome = target.apply(&customers, &batch, &second).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 1, deleted: 1 });
        assert_eq!(target.row_versions(&customers).await.unwrap(), vec![(id(1), 14), (id(3), 12)]);
        assert_eq!(
            env.select("crm_customerv3", &["organizationname"], "Id").await[0][0].as_deref(),
            Some("Alpha renamed")
        );
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![second.clone()]);

        // Dataverse rows: the primary id column equals Id; option sets, booleans, lookups.
        let account = row(
            &accounts,
            id(7),
            20,
            None,
            &[
                ("name", s("Contoso")),
                ("revenue", Value::Decimal(Decimal::parse("1000000.25", 19, 4).unwrap())),
                ("numberofemployees", Value::Int(250)),
                ("creditonhold", Value::Bool(true)),
                ("statecode", Value::Int(1)),
                ("parentaccountid", Value::Guid(id(8))),
            ],
        );
        let batch = Batch { upserts: vec![account], deletes: vec![] };
        target.apply(&accounts, &batch, &checkpoint("account", Phase::Initial, 0, 1)).await.unwrap();
        let rows = env
            .select(
                "crm_account",
                &[
                    "accountid",
                    "name",
                    "revenue",
                    "numberofemployees",
                    "statecode",
                    "parentaccountid",
                    "parentaccountid_entitytype",
                    "primarycontactid_entitytype",
                ],
                "Id",
            )
            .await;
        assert_eq!(rows[0][0].as_deref(), Some(id(7).to_string().as_str()));
        assert_eq!(decimal_text(rows[0][2].as_deref().unwrap()), "1000000.25");
        assert_eq!(
            rows[0][3..],
            [Some("250".into()), Some("1".into()), Some(id(8).to_string()), Some("account".into()), None]
        );
        let flag = env.select("crm_account", &["creditonhold"], "Id").await;
        assert!(matches!(flag[0][0].as_deref(), Some("true" | "1")), "{flag:?}");
        assert_eq!(target.load_checkpoints("p1").await.unwrap().len(), 2);

        // verify --repair removes rows by Id.
        assert_eq!(target.delete_rows(&customers, &[id(3), id(99)]).await.unwrap(), 1);
        assert_eq!(target.row_count(&customers).await.unwrap(), 1);
        target.close().await;
    })
    .await;
}

#[tokio::test]
async fn older_versions_and_replays_change_nothing() {
    on_all_targets("older_versions_and_replays_change_nothing", |env| async move {
        let (target, customers, _) = prepared(&env, false).await;
        let current = Batch { upserts: vec![customer(&customers, 1, 5, "Current")], deletes: vec![] };
        target.apply(&customers, &current, &checkpoint("customerv3", Phase::Delta, 5, 1)).await.unwrap();
        let before = env.snapshot("crm_customerv3").await;

        let stale = Batch { upserts: vec![customer(&customers, 1, 3, "Stale")], deletes: vec![tombstone(id(1), 4)] };
        let outcome = target.apply(&customers, &stale, &checkpoint("customerv3", Phase::Delta, 5, 1)).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 0, deleted: 0 });
        assert_eq!(env.snapshot("crm_customerv3").await, before, "an older version overwrote a newer one");

        // Replaying the batch rewrites the same values: nothing changes, not even SinkModifiedOn.
        env.clock.advance(std::time::Duration::from_millis(5));
        let outcome = target.apply(&customers, &current, &checkpoint("customerv3", Phase::Delta, 5, 1)).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 1, deleted: 0 });
        assert_eq!(env.snapshot("crm_customerv3").await, before, "a replay changed the row");

        // A newer version moves SinkModifiedOn but keeps SinkCreatedOn.
        env.clock.advance(std::time::Duration::from_millis(5));
        let newer = Batch { upserts: vec![customer(&customers, 1, 6, "Newer")], deletes: vec![] };
        target.apply(&customers, &newer, &checkpoint("customerv3", Phase::Delta, 6, 1)).await.unwrap();
        let after = env
            .select("crm_customerv3", &["organizationname", "versionnumber", "SinkCreatedOn", "SinkModifiedOn"], "Id")
            .await;
        assert_eq!(after[0][..2], [Some("Newer".into()), Some("6".into())]);
        let created_col = before_column(&env, &before, "SinkCreatedOn").await;
        let modified_col = before_column(&env, &before, "SinkModifiedOn").await;
        assert_eq!(after[0][2], created_col);
        assert_ne!(after[0][3], modified_col);

        // Duplicate Ids in one batch: the highest version wins.
        let twice = Batch {
            upserts: vec![customer(&customers, 2, 9, "Second"), customer(&customers, 2, 8, "First")],
            deletes: vec![],
        };
        target.apply(&customers, &twice, &checkpoint("customerv3", Phase::Delta, 9, 2)).await.unwrap();
        let names = env.select("crm_customerv3", &["organizationname"], "Id").await;
        assert_eq!(names[1][0].as_deref(), Some("Second"));
        target.close().await;
    })
    .await;
}

/// The value of `column` in the first row of a snapshot.
async fn before_column(env: &Env, snapshot: &[Vec<Option<String>>], column: &str) -> Option<String> {
    let columns = env.columns("crm_customerv3").await;
    let at = columns.iter().position(|c| c == column).unwrap();
    snapshot[0][at].clone()
}

#[tokio::test]
async fn deletes_are_logged_once() {
    on_all_targets("deletes_are_logged_once", |env| async move {
        let (target, customers, _) = prepared(&env, true).await;
        assert!(env.tables().await.contains(&"crm_DeleteLog".to_string()));
        let insert = Batch { upserts: vec![customer(&customers, 1, 1, "Doomed")], deletes: vec![] };
        target.apply(&customers, &insert, &checkpoint("customerv3", Phase::Delta, 1, 1)).await.unwrap();

        let delete = Batch { upserts: vec![], deletes: vec![tombstone(id(1), 2)] };
        let outcome = target.apply(&customers, &delete, &checkpoint("customerv3", Phase::Delta, 2, 1)).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 0, deleted: 1 });
        let log = env.select("crm_DeleteLog", &["EntityName", "RecordId", "VersionNumber"], "Id").await;
        assert_eq!(log, vec![vec![Some("customerv3".into()), Some(id(1).to_string()), Some("2".into())]]);
        let time = env.select("crm_DeleteLog", &["SinkDeleteTime"], "Id").await;
        assert!(time[0][0].is_some());

        // A replay writes no second row; a delete of a row already gone is still logged.
        target.apply(&customers, &delete, &checkpoint("customerv3", Phase::Delta, 2, 1)).await.unwrap();
        assert_eq!(env.count("crm_DeleteLog").await, 1);
        let gone = Batch { upserts: vec![], deletes: vec![tombstone(id(5), 3)] };
        let outcome = target.apply(&customers, &gone, &checkpoint("customerv3", Phase::Delta, 3, 1)).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 0, deleted: 0 });
        let log = env.select("crm_DeleteLog", &["RecordId", "VersionNumber"], "Id").await;
        assert_eq!(log[1], vec![Some(id(5).to_string()), Some("3".into())]);
        target.close().await;
    })
    .await;
}

#[tokio::test]
async fn refused_batches_write_nothing() {
    on_all_targets("refused_batches_write_nothing", |env| async move {
        let catalog = standard_catalog();
        let (target, customers, _) = prepared(&env, false).await;
        let first = checkpoint("customerv3", Phase::Initial, 0, 1);
        let batch = Batch { upserts: vec![customer(&customers, 1, 1, "Acme")], deletes: vec![] };
        target.apply(&customers, &batch, &first).await.unwrap();

        // Someone narrows a column by hand (SQLite enforces no lengths: a trigger refuses instead).
        let table = env.table("crm_customerv3");
        match env.kind {
            TargetKind::Postgres => {
                env.exec(&format!("ALTER TABLE {table} ALTER COLUMN \"organizationname\" TYPE varchar(5)")).await
            }
            TargetKind::MySql => env.exec(&format!("ALTER TABLE {table} MODIFY `organizationname` varchar(5)")).await,
            TargetKind::Sqlite => {
                env.exec(&format!(
                    "CREATE TRIGGER narrow BEFORE INSERT ON {table} WHEN length(NEW.organizationname) > 5 \
                     BEGIN SELECT RAISE(ABORT, 'organizationname is longer than 5 characters'); END"
                ))
                .await
            }
        }
        let batch = Batch {
            upserts: vec![customer(&customers, 2, 2, "Fine"), customer(&customers, 3, 3, "Far too long a name")],
            deletes: vec![tombstone(id(1), 4)],
        };
        let second = checkpoint("customerv3", Phase::Delta, 4, 3);
        let error = target.apply(&customers, &batch, &second).await.unwrap_err();
        let ApplyError::Rejected(message) = error else { panic!("expected Rejected, got {error:?}") };
        assert!(message.contains("crm_customerv3") && message.contains("organizationname"), "{message}");
        if env.kind != TargetKind::Sqlite {
            assert!(message.contains("at most 5 characters") && message.contains(&id(3).to_string()), "{message}");
        }
        eprintln!("refused: {message}");
        assert_eq!(
            target.row_versions(&customers).await.unwrap(),
            vec![(id(1), 1)],
            "nothing of the batch was written"
        );
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![first], "the checkpoint stayed");

        // ensure_schema widens the column back to the field's length; the batch then goes through.
        let changes = target.ensure_schema(&catalog, std::slice::from_ref(&customers)).await.unwrap();
        match env.kind {
            TargetKind::Sqlite => {
                assert!(changes.columns_widened.is_empty());
                env.exec("DROP TRIGGER narrow").await;
            }
            _ => assert_eq!(changes.columns_widened, ["crm_customerv3.organizationname"]),
        }
        let outcome = target.apply(&customers, &batch, &second).await.unwrap();
        assert_eq!(outcome, ApplyOutcome { upserted: 2, deleted: 1 });
        assert_eq!(target.load_checkpoints("p1").await.unwrap(), vec![second]);
        target.close().await;
    })
    .await;
}
