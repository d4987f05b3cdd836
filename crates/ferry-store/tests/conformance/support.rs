//! Shared set-up for conformance tests: a migrated store with the standard catalog plus a test
//! entity that has one field of every type.

use ferry_domain::{ExecutionParameters, FakeClock, JobKind, Lane, Message, NewMessage, NewRow, Operation};
use ferry_model::{Catalog, CatalogSource, Entity, Value, standard_sources};
use ferry_store::Store;
use std::sync::Arc;

pub const ALL_TYPES: &str = r#"
[[enums]]
name = "TestColor"
values = [{ name = "Red", code = 0 }, { name = "Blue", code = 1 }]

[[entities]]
label = "All types"
public_name = "AllTypes"
collection = "AllTypes"
logical_name = "alltypes"
company_specific = true
key = ["Code"]
fields = [
  { name = "Code", type = "string(20)" },
  { name = "Memo", type = "string" },
  { name = "Small", type = "int" },
  { name = "Big", type = "int64" },
  { name = "Amount", type = "decimal(32,6)" },
  { name = "Ratio", type = "real" },
  { name = "Flag", type = "bool" },
  { name = "Day", type = "date" },
  { name = "Stamp", type = "datetime" },
  { name = "Ref", type = "guid" },
  { name = "Color", type = "enum(TestColor)" },
]
"#;

pub fn catalog_with(extra: &str) -> Arc<Catalog> {
    let mut sources = standard_sources();
    sources.push(CatalogSource { origin: "test/alltypes.toml".into(), text: extra.into() });
    Arc::new(Catalog::build(&sources).expect("test catalog builds"))
}

/// A migrated store with the test catalog, and the fake clock it reads (which ticks a
/// millisecond at every reading, so no two events share a time).
pub struct Db {
    pub store: Store,
    pub clock: Arc<FakeClock>,
    /// Where the store is (for a second store on the same database: another node).
    pub url: String,
}

pub async fn open(url: &str) -> Db {
    let clock = FakeClock::ticking(std::time::Duration::from_millis(1));
    let store = Store::open(url, clock.clone()).await.expect("open store");
    store.migrate().await.expect("migrate");
    store.prepare_entities(catalog_with(ALL_TYPES)).await.expect("prepare entities");
    Db { store, clock, url: url.to_owned() }
}

pub fn entity(store_catalog: &Catalog, collection: &str) -> Arc<Entity> {
    store_catalog.by_collection(collection).expect("entity exists").clone()
}

/// A row of `entity` with the given field values and nulls (or defaults) elsewhere.
pub fn row(entity: &Entity, company: Option<&str>, fields: &[(&str, Value)]) -> NewRow {
    let mut values: Vec<Value> = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
    for (name, value) in fields {
        let (i, _) = entity.field(name).unwrap_or_else(|| panic!("no field {name}"));
        values[i] = value.clone();
    }
    NewRow { company: company.map(str::to_string), values }
}

pub fn s(text: &str) -> Value {
    Value::String(text.into())
}

/// How long the queue tests' leases last.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// A one-byte import message of the CustomerGroups job in `lanes`, runnable at once.
pub fn message(id: &str, lanes: &[&str]) -> NewMessage {
    NewMessage {
        id: id.into(),
        execution_id: id.into(),
        activity_id: "job".into(),
        project: "p".into(),
        operation: Operation::Import,
        kind: JobKind::File,
        entity: Some("CustomerGroups".into()),
        company: Some("usmf".into()),
        external_id: None,
        content_hash: format!("hash-{id}"),
        blob_key: format!("messages/{id}"),
        size: 1,
        enqueued_by: "app".into(),
        execute: true,
        rerun_of: None,
        parameters: ExecutionParameters::default(),
        lanes: lanes.iter().map(|l| Lane::named(*l)).collect(),
        not_before: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    }
}

/// The ids of claimed messages, in claim order.
pub fn ids(claimed: &[Message]) -> Vec<&str> {
    claimed.iter().map(|m| m.id.as_str()).collect()
}
