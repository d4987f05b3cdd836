//! `check` and identifier rules: a ready target passes every check and keeps no probe table;
//! a foreign table with an entity table's name is a collision that nothing overwrites.

use crate::support::{entity, on_all_targets, standard_catalog};
use ferry_domain::{SystemClock, TargetKind, validate_identifier_part};
use ferry_target::{Target, TargetError, TargetSpec};

#[tokio::test]
async fn check_passes_on_an_empty_schema_and_reports_collisions() {
    on_all_targets("check_passes_on_an_empty_schema_and_reports_collisions", |env| async move {
        let catalog = standard_catalog();
        let entities = vec![entity(&catalog, "CustomersV3"), entity(&catalog, "accounts")];
        // No prefix: tables are named by the logical name alone.
        let target = env.target("", false).await;
        assert_eq!(target.kind(), env.kind);
        assert_eq!(target.table_name(&entities[1]), "account");

        let checks = target.check(&entities).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["connect", "create table", "insert/update/delete", "alter table", "table customerv3", "table account"]
        );
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
        assert!(env.tables().await.iter().all(|t| !t.contains("ferry_probe")), "the probe table was left behind");

        // Someone else's table named like an entity table.
        env.exec(&format!("CREATE TABLE {} (x int)", env.table("account"))).await;
        let checks = target.check(&entities).await;
        let account = checks.iter().find(|c| c.name == "table account").unwrap();
        assert!(!account.ok);
        assert_eq!(
            account.detail,
            "table account already exists and was not created by ferry; drop it or choose another TablePrefix"
        );

        let changes = target.ensure_schema(&catalog, &entities).await.unwrap();
        assert_eq!(changes.tables_created, ["customerv3"]);
        assert_eq!(changes.incompatible.len(), 1);
        assert_eq!(changes.incompatible[0].0, "account");
        assert!(changes.incompatible[0].1.contains("not created by ferry"));
        let TargetError::Rejected(message) = target.reset_entity(&entities[1]).await.unwrap_err() else {
            panic!("reset of a foreign table must be refused")
        };
        assert!(message.contains("not created by ferry"), "{message}");
        assert_eq!(env.columns("account").await, ["x"], "the foreign table is untouched");

        let checks = target.check(&entities).await;
        let customers = checks.iter().find(|c| c.name == "table customerv3").unwrap();
        assert!(customers.ok && customers.detail.contains("created by ferry"), "{customers:?}");
        let tables = env.tables().await;
        for table in ["OptionSetMetadata", "StateMetadata", "ferry_checkpoint", "ferry_tables"] {
            assert!(tables.contains(&table.to_string()), "{table} missing from {tables:?}");
        }
        target.close().await;
    })
    .await;
}

#[tokio::test]
async fn identifiers_are_refused_before_any_sql() {
    let e = validate_identifier_part("TablePrefix", "x; DROP TABLE y", 15).unwrap_err();
    assert!(e.contains("TablePrefix"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let spec = TargetSpec {
        kind: TargetKind::Sqlite,
        connection_string: format!("sqlite://{}", dir.path().join("t.db").display()),
        schema: None,
        table_prefix: "x; DROP TABLE y".into(),
        write_delete_log: false,
    };
    let TargetError::Config(message) = Target::connect(&spec, SystemClock::shared()).await.unwrap_err() else {
        panic!("expected Config")
    };
    assert!(message.contains("TablePrefix"), "{message}");
    assert!(!dir.path().join("t.db").exists(), "nothing was created");
}
