//! `ensure_schema`: DES tables and columns, metadata tables, schema evolution (added and
//! widened columns, incompatible changes) and `reset_entity`.

use crate::support::{catalog_with, checkpoint, entity, on_all_targets, row, s, standard_catalog};
use ferry_domain::{Phase, TargetKind};
use ferry_model::Value;
use ferry_target::{Batch, SchemaChanges};
use uuid::Uuid;

#[tokio::test]
async fn ensure_schema_creates_des_tables_and_metadata() {
    on_all_targets("ensure_schema_creates_des_tables_and_metadata", |env| async move {
        let catalog = standard_catalog();
        let entities = vec![entity(&catalog, "CustomersV3"), entity(&catalog, "accounts")];
        let target = env.target("crm", false).await;
        assert_eq!(target.table_name(&entities[0]), "crm_customerv3");

        let changes = target.ensure_schema(&catalog, &entities).await.unwrap();
        let created = vec!["crm_customerv3".to_string(), "crm_account".to_string()];
        assert_eq!(changes, SchemaChanges { tables_created: created, ..Default::default() });

        let customers = env.columns("crm_customerv3").await;
        assert_eq!(&customers[..3], ["Id", "dataareaid", "customeraccount"]);
        assert_eq!(&customers[customers.len() - 3..], ["versionnumber", "SinkCreatedOn", "SinkModifiedOn"]);
        assert!(customers.windows(2).any(|w| w == ["customergroupid", "customergroupid_entitytype"]), "{customers:?}");
        assert!(customers.contains(&"salescurrencycode_entitytype".to_string()));
        // Id, dataareaid, one per field, two lookups, three system columns.
        assert_eq!(customers.len(), 2 + entities[0].fields.len() + 2 + 3);

        let accounts = env.columns("crm_account").await;
        assert_eq!(&accounts[..3], ["Id", "accountid", "name"]);
        assert!(!accounts.contains(&"dataareaid".to_string()));
        for column in ["statecode", "statuscode", "parentaccountid_entitytype", "primarycontactid_entitytype"] {
            assert!(accounts.contains(&column.to_string()), "account lacks {column}");
        }

        let tables = env.tables().await;
        for table in [
            "crm_OptionSetMetadata",
            "crm_GlobalOptionSetMetadata",
            "crm_StateMetadata",
            "crm_StatusMetadata",
            "crm_TargetMetadata",
            "crm_AttributeMetadata",
            "crm_ferry_checkpoint",
            "crm_ferry_tables",
        ] {
            assert!(tables.contains(&table.to_string()), "{table} missing from {tables:?}");
        }
        assert!(!tables.contains(&"crm_DeleteLog".to_string()), "DeleteLog only when enabled");

        let state = env
            .select(
                "crm_StateMetadata",
                &["EntityName", "State", "LocalizedLabelLanguageCode", "LocalizedLabel"],
                "State",
            )
            .await;
        let expected = |code: &str, label: &str| ["account", code, "1033", label].map(|t| Some(t.to_string())).to_vec();
        assert_eq!(state, vec![expected("0", "Active"), expected("1", "Inactive")]);
        let status =
            env.select("crm_StatusMetadata", &["EntityName", "State", "Status", "LocalizedLabel"], "Status").await;
        assert_eq!(status[0], vec![Some("account".into()), None, Some("1".into()), Some("Active".into())]);

        let options = env
            .select(
                "crm_GlobalOptionSetMetadata",
                &["EntityName", "OptionSetName", "Option", "LocalizedLabel", "GlobalOptionSetName"],
                "Option",
            )
            .await;
        assert!(
            options.iter().any(|r| r[..2] == [Some("customerv3".into()), Some("partytype".into())]
                && r[4].as_deref() == Some("DirPartyBaseType")),
            "{options:?}"
        );
        assert!(options.iter().all(|r| !matches!(r[1].as_deref(), Some("statecode" | "statuscode"))));
        assert_eq!(env.count("crm_OptionSetMetadata").await, options.len());

        let lookups = env
            .select(
                "crm_TargetMetadata",
                &["EntityName", "AttributeName", "ReferencedEntity", "ReferencedAttribute"],
                "AttributeName",
            )
            .await;
        assert!(
            lookups.contains(
                &["customerv3", "customergroupid", "customergroup", "customergroupid"]
                    .map(|t| Some(t.to_string()))
                    .to_vec()
            ),
            "{lookups:?}"
        );
        assert!(
            lookups.contains(
                &["account", "parentaccountid", "account", "accountid"].map(|t| Some(t.to_string())).to_vec()
            )
        );
        let attributes = env.count("crm_AttributeMetadata").await;
        assert_eq!(attributes, customers.len() + accounts.len());

        // A second run changes nothing and refills (does not duplicate) the metadata.
        assert_eq!(target.ensure_schema(&catalog, &entities).await.unwrap(), SchemaChanges::default());
        assert_eq!(env.count("crm_AttributeMetadata").await, attributes);
        assert_eq!(env.count("crm_StateMetadata").await, 2);
        target.close().await;
    })
    .await;
}

const GADGETS_V1: &str = r#"
[[entities]]
label = "Gadgets"
public_name = "Gadget"
collection = "Gadgets"
logical_name = "gadget"
key = ["Code"]
fields = [
  { name = "Code", type = "string(10)" },
  { name = "Name", type = "string(20)" },
  { name = "Qty", type = "int" },
]
"#;

/// Name grows to 40 characters, Qty to int64, and Colour is new.
const GADGETS_V2: &str = r#"
[[entities]]
label = "Gadgets"
public_name = "Gadget"
collection = "Gadgets"
logical_name = "gadget"
key = ["Code"]
fields = [
  { name = "Code", type = "string(10)" },
  { name = "Name", type = "string(40)" },
  { name = "Qty", type = "int64" },
  { name = "Colour", type = "string(10)" },
]
"#;

/// Qty becomes a string: not something a column can follow.
const GADGETS_V3: &str = r#"
[[entities]]
label = "Gadgets"
public_name = "Gadget"
collection = "Gadgets"
logical_name = "gadget"
key = ["Code"]
fields = [
  { name = "Code", type = "string(10)" },
  { name = "Name", type = "string(40)" },
  { name = "Qty", type = "string(10)" },
  { name = "Colour", type = "string(10)" },
]
"#;

#[tokio::test]
async fn schema_evolves_without_losing_data() {
    on_all_targets("schema_evolves_without_losing_data", |env| async move {
        let target = env.target("x", false).await;
        let v1 = catalog_with(GADGETS_V1);
        let gadget = entity(&v1, "Gadgets");
        let changes = target.ensure_schema(&v1, std::slice::from_ref(&gadget)).await.unwrap();
        assert_eq!(changes.tables_created, ["x_gadget"]);
        let first = Uuid::new_v4();
        let batch = Batch {
            upserts: vec![row(
                &gadget,
                first,
                1,
                None,
                &[("Code", s("G1")), ("Name", s("Gadget one")), ("Qty", Value::Int(3))],
            )],
            deletes: vec![],
        };
        target.apply(&gadget, &batch, &checkpoint("gadget", Phase::Initial, 1, 1)).await.unwrap();

        // A new field adds a column, grown fields are widened, and the data stays.
        let v2 = catalog_with(GADGETS_V2);
        let gadget = entity(&v2, "Gadgets");
        let changes = target.ensure_schema(&v2, std::slice::from_ref(&gadget)).await.unwrap();
        let widened: Vec<String> = match env.kind {
            TargetKind::Sqlite => vec![],
            _ => vec!["x_gadget.name".into(), "x_gadget.qty".into()],
        };
        assert_eq!(
            changes,
            SchemaChanges {
                columns_added: vec!["x_gadget.colour".into()],
                columns_widened: widened,
                ..Default::default()
            }
        );
        assert_eq!(
            env.select("x_gadget", &["code", "name", "qty", "colour"], "Id").await,
            vec![vec![Some("G1".into()), Some("Gadget one".into()), Some("3".into()), None]]
        );
        let long_name = "A gadget with a much longer name"; // 32 characters
        let batch = Batch {
            upserts: vec![row(
                &gadget,
                Uuid::new_v4(),
                2,
                None,
                &[("Code", s("G2")), ("Name", s(long_name)), ("Qty", Value::Int(5_000_000_000)), ("Colour", s("Blue"))],
            )],
            deletes: vec![],
        };
        target.apply(&gadget, &batch, &checkpoint("gadget", Phase::Delta, 2, 2)).await.unwrap();
        assert_eq!(target.row_count(&gadget).await.unwrap(), 2);
        let rows = env.select("x_gadget", &["name", "qty", "colour"], "code").await;
        assert_eq!(rows[1], vec![Some(long_name.into()), Some("5000000000".into()), Some("Blue".into())]);

        // A kind change is reported and not applied; a reset rebuilds the table.
        let v3 = catalog_with(GADGETS_V3);
        let gadget = entity(&v3, "Gadgets");
        let changes = target.ensure_schema(&v3, std::slice::from_ref(&gadget)).await.unwrap();
        assert_eq!(changes.incompatible.len(), 1, "{changes:?}");
        let (name, reason) = &changes.incompatible[0];
        assert_eq!(name, "gadget");
        assert!(reason.contains("x_gadget.qty") && reason.contains("string(10)"), "{reason}");
        assert_eq!(target.row_count(&gadget).await.unwrap(), 2, "nothing is dropped");

        target.reset_entity(&gadget).await.unwrap();
        assert_eq!(target.row_count(&gadget).await.unwrap(), 0);
        assert!(target.load_checkpoints("p1").await.unwrap().is_empty(), "reset forgets the checkpoint");
        assert_eq!(target.ensure_schema(&v3, std::slice::from_ref(&gadget)).await.unwrap(), SchemaChanges::default());
        target.close().await;
    })
    .await;
}

#[tokio::test]
async fn every_standard_entity_gets_a_table() {
    on_all_targets("every_standard_entity_gets_a_table", |env| async move {
        let catalog = standard_catalog();
        let target = env.target("all", true).await;
        let changes = target.ensure_schema(&catalog, catalog.entities()).await.unwrap();
        assert!(changes.incompatible.is_empty(), "{:?}", changes.incompatible);
        assert_eq!(changes.tables_created.len(), catalog.entities().len());
        for e in catalog.entities() {
            assert_eq!(target.row_count(e).await.unwrap(), 0, "{}", e.logical_name);
        }
        target.close().await;
    })
    .await;
}
