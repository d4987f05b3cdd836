//! Seeds the source: the currency `USD`, the customer group `10` and many customers written
//! straight into ferry's database with `ferry_store` (set-based inserts in batches, the path the
//! server's own writes take minus HTTP and JSON), while the server is not running. The same
//! approach as `bench/odata-bench/src/seed.rs`, plus migrations and the lookup targets, since
//! here the database is new.

use anyhow::{Context, Result, anyhow};
use ferry_domain::NewRow;
use ferry_model::{Catalog, Entity, Input, Value, standard_sources};
use ferry_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Figures of one seeding run.
pub struct Seeded {
    pub rows: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

impl Seeded {
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Opens the store at `url`, migrates it, creates the entity tables, inserts the lookup targets
/// and then `rows` customers `S00000000`… in `company`, `batch` rows per `Store::insert` call
/// (one transaction each). Only the customers are timed.
pub async fn seed(url: &str, company: &str, rows: u64, batch: u64) -> Result<Seeded> {
    let store = Store::open(url, ferry_domain::SystemClock::shared()).await.context("opening the store for seeding")?;
    store.migrate().await.context("migrating the store")?;
    let catalog = Arc::new(Catalog::build(&standard_sources()).context("building the standard catalog")?);
    store.prepare_entities(catalog.clone()).await.context("preparing entity tables")?;
    let entity = |collection: &str| -> Result<Arc<Entity>> {
        catalog.by_collection(collection).cloned().with_context(|| format!("no {collection} in the catalog"))
    };

    let currencies = Template::new(&entity("Currencies")?);
    let mut usd = currencies.defaults.clone();
    currencies.set(&mut usd, "CurrencyCode", Input::Text("USD"))?;
    currencies.set(&mut usd, "Name", Input::Text("US dollar"))?;
    store.insert(&currencies.entity, vec![NewRow { company: None, values: usd }]).await.context("inserting USD")?;
    let groups = Template::new(&entity("CustomerGroups")?);
    let mut group = groups.defaults.clone();
    groups.set(&mut group, "CustomerGroupId", Input::Text("10"))?;
    groups.set(&mut group, "Description", Input::Text("Bench"))?;
    store
        .insert(&groups.entity, vec![NewRow { company: Some(company.to_string()), values: group }])
        .await
        .context("inserting customer group 10")?;

    let customers = Template::new(&entity("CustomersV3")?);
    let start = Instant::now();
    let mut batches = 0;
    let mut next = 0u64;
    while next < rows {
        let end = (next + batch.max(1)).min(rows);
        let new_rows: Vec<NewRow> = (next..end).map(|n| customers.customer(company, n)).collect::<Result<_>>()?;
        store.insert(&customers.entity, new_rows).await.with_context(|| format!("inserting customers S{next:08}…"))?;
        batches += 1;
        next = end;
    }
    let elapsed = start.elapsed();
    store.close().await;
    Ok(Seeded { rows, batches, elapsed })
}

/// Builds rows of an entity: defaults everywhere, then a few fields set per row.
struct Template {
    entity: Arc<Entity>,
    defaults: Vec<Value>,
}

impl Template {
    fn new(entity: &Arc<Entity>) -> Template {
        let defaults = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
        Template { entity: entity.clone(), defaults }
    }

    /// Sets field `name` from text or a number, through the field's own coercion.
    fn set(&self, values: &mut [Value], name: &str, input: Input<'_>) -> Result<()> {
        let collection = &self.entity.collection;
        let (i, field) = self.entity.field(name).ok_or_else(|| anyhow!("{collection} has no field {name}"))?;
        values[i] = field.ty.coerce(input).map_err(|e| anyhow!("{collection}.{name}: {e}"))?;
        Ok(())
    }

    fn customer(&self, company: &str, n: u64) -> Result<NewRow> {
        let mut values = self.defaults.clone();
        let account = format!("S{n:08}");
        let name = format!("Seeded customer {n}");
        let limit = ((n % 1000) * 100).to_string();
        let email = format!("c{n}@example.com");
        let phone = format!("+1 206 555 {:04}", n % 10_000);
        self.set(&mut values, "CustomerAccount", Input::Text(&account))?;
        self.set(&mut values, "OrganizationName", Input::Text(&name))?;
        self.set(&mut values, "CustomerGroupId", Input::Text("10"))?;
        self.set(&mut values, "SalesCurrencyCode", Input::Text("USD"))?;
        self.set(&mut values, "CreditLimit", Input::Number(&limit))?;
        self.set(&mut values, "AddressStreet", Input::Text("1 Main Street"))?;
        self.set(&mut values, "AddressCity", Input::Text("Seattle"))?;
        self.set(&mut values, "AddressCountryRegionId", Input::Text("USA"))?;
        self.set(&mut values, "PrimaryContactEmail", Input::Text(&email))?;
        self.set(&mut values, "PrimaryContactPhone", Input::Text(&phone))?;
        Ok(NewRow { company: Some(company.to_string()), values })
    }
}
