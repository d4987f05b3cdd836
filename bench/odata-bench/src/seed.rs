//! Seeds many customers straight into the database with `ferry_store` (set-based inserts in
//! batches), the same code path the server's own writes take minus HTTP and JSON.

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

/// Opens the store at `url`, makes sure the entity tables exist (idempotent) and inserts
/// `rows` customers `S{tag}00000000`… in `company`, `batch` rows per `Store::insert` call (one
/// transaction each).
pub async fn seed_customers(url: &str, company: &str, tag: &str, rows: u64, batch: u64) -> Result<Seeded> {
    let store = Store::open(url, ferry_domain::SystemClock::shared()).await.context("opening the store for seeding")?;
    let catalog = Arc::new(Catalog::build(&standard_sources()).context("building the standard catalog")?);
    store.prepare_entities(catalog.clone()).await.context("preparing entity tables")?;
    let entity = catalog.by_collection("CustomersV3").context("no CustomersV3 in the catalog")?.clone();
    let template = Template::new(&entity)?;

    let start = Instant::now();
    let mut batches = 0;
    let mut next = 0u64;
    while next < rows {
        let end = (next + batch.max(1)).min(rows);
        let new_rows: Vec<NewRow> = (next..end).map(|n| template.row(company, tag, n)).collect::<Result<_>>()?;
        store.insert(&entity, new_rows).await.with_context(|| format!("inserting customers S{tag}{next:08}…"))?;
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
    fn new(entity: &Arc<Entity>) -> Result<Template> {
        let defaults = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
        Ok(Template { entity: entity.clone(), defaults })
    }

    /// Sets field `name` from text or a number, through the field's own coercion.
    fn set(&self, values: &mut [Value], name: &str, input: Input<'_>) -> Result<()> {
        let (i, field) = self.entity.field(name).ok_or_else(|| anyhow!("CustomersV3 has no field {name}"))?;
        values[i] = field.ty.coerce(input).map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(())
    }

    fn row(&self, company: &str, tag: &str, n: u64) -> Result<NewRow> {
        let mut values = self.defaults.clone();
        let account = format!("S{tag}{n:08}");
        let name = format!("Seeded customer {n}");
        let limit = ((n % 1000) * 100).to_string();
        let email = format!("c{n}@example.com");
        self.set(&mut values, "CustomerAccount", Input::Text(&account))?;
        self.set(&mut values, "OrganizationName", Input::Text(&name))?;
        self.set(&mut values, "CustomerGroupId", Input::Text("10"))?;
        self.set(&mut values, "SalesCurrencyCode", Input::Text("USD"))?;
        self.set(&mut values, "CreditLimit", Input::Number(&limit))?;
        self.set(&mut values, "AddressCity", Input::Text("Seattle"))?;
        self.set(&mut values, "AddressCountryRegionId", Input::Text("USA"))?;
        self.set(&mut values, "PrimaryContactEmail", Input::Text(&email))?;
        Ok(NewRow { company: Some(company.to_string()), values })
    }
}
