//! Seeds many customers straight into ferry's database with `ferry_store` (set-based inserts in
//! batches, one transaction each: the path the server's own writes take minus HTTP and JSON).
//! The `odata` paging steps seed beside a running server; `replication` seeds its source before
//! the server starts, so it also migrates the database and inserts the currency and customer
//! group the customers refer to. This uses the workspace's `ferry_store`, so it fits a ferry
//! binary whose store schema is the workspace's.

use anyhow::{Context, Result, anyhow};
use ferry_domain::NewRow;
use ferry_model::{Catalog, Entity, Input, Value, standard_sources};
use ferry_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::per_second;

/// What to seed.
pub struct SeedPlan<'a> {
    pub company: &'a str,
    /// Customers are `<prefix>00000000`, `<prefix>00000001`, …
    pub prefix: &'a str,
    pub rows: u64,
    /// Rows per `Store::insert` call (one transaction).
    pub batch: u64,
    /// A new database: migrate it and insert the currency `USD` and customer group `10` first.
    pub new_database: bool,
}

/// Figures of one seeding run (the customers only).
pub struct Seeded {
    pub rows: u64,
    pub batches: u64,
    pub batch: u64,
    pub elapsed: Duration,
}

impl Seeded {
    pub fn rate(&self) -> f64 {
        per_second(self.rows as f64, self.elapsed.as_secs_f64())
    }

    /// `1000000 rows  500 batches of 2000  … s  … rows/s`
    pub fn describe(&self) -> String {
        format!(
            "{} rows  {} batches of {}  {:.2} s  {:.0} rows/s",
            self.rows,
            self.batches,
            self.batch,
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rows": self.rows, "batches": self.batches, "batch_rows": self.batch,
            "seconds": self.elapsed.as_secs_f64(), "rows_per_second": self.rate(),
        })
    }
}

/// Opens the store at `url`, makes sure the entity tables exist (idempotent) and inserts the
/// customers of `plan`.
pub async fn seed_customers(url: &str, plan: &SeedPlan<'_>) -> Result<Seeded> {
    let store = Store::open(url, ferry_domain::SystemClock::shared()).await.context("opening the store for seeding")?;
    if plan.new_database {
        store.migrate().await.context("migrating the store")?;
    }
    let catalog = Arc::new(Catalog::build(&standard_sources()).context("building the standard catalog")?);
    store.prepare_entities(catalog.clone()).await.context("preparing entity tables")?;
    let template = |collection: &str| -> Result<Template> {
        let entity = catalog.by_collection(collection).with_context(|| format!("no {collection} in the catalog"))?;
        Ok(Template::new(entity))
    };
    if plan.new_database {
        let currencies = template("Currencies")?;
        let usd = currencies.row(None, &[("CurrencyCode", Input::Text("USD")), ("Name", Input::Text("US dollar"))])?;
        store.insert(&currencies.entity, vec![usd]).await.context("inserting USD")?;
        let groups = template("CustomerGroups")?;
        let group = groups.row(
            Some(plan.company),
            &[("CustomerGroupId", Input::Text("10")), ("Description", Input::Text("Bench"))],
        )?;
        store.insert(&groups.entity, vec![group]).await.context("inserting customer group 10")?;
    }

    let customers = template("CustomersV3")?;
    let start = Instant::now();
    let mut batches = 0;
    let mut next = 0u64;
    while next < plan.rows {
        let end = (next + plan.batch.max(1)).min(plan.rows);
        let rows: Vec<NewRow> = (next..end).map(|n| customer(&customers, plan, n)).collect::<Result<_>>()?;
        store
            .insert(&customers.entity, rows)
            .await
            .with_context(|| format!("inserting customers {}{next:08}…", plan.prefix))?;
        batches += 1;
        next = end;
    }
    let elapsed = start.elapsed();
    store.close().await;
    Ok(Seeded { rows: plan.rows, batches, batch: plan.batch, elapsed })
}

fn customer(t: &Template, plan: &SeedPlan<'_>, n: u64) -> Result<NewRow> {
    let account = format!("{}{n:08}", plan.prefix);
    let name = format!("Seeded customer {n}");
    let limit = ((n % 1000) * 100).to_string();
    let email = format!("c{n}@example.com");
    let phone = format!("+1 206 555 {:04}", n % 10_000);
    t.row(
        Some(plan.company),
        &[
            ("CustomerAccount", Input::Text(&account)),
            ("OrganizationName", Input::Text(&name)),
            ("CustomerGroupId", Input::Text("10")),
            ("SalesCurrencyCode", Input::Text("USD")),
            ("CreditLimit", Input::Number(&limit)),
            ("AddressStreet", Input::Text("1 Main Street")),
            ("AddressCity", Input::Text("Seattle")),
            ("AddressCountryRegionId", Input::Text("USA")),
            ("PrimaryContactEmail", Input::Text(&email)),
            ("PrimaryContactPhone", Input::Text(&phone)),
        ],
    )
}

/// Builds rows of an entity: defaults everywhere, then the given fields.
struct Template {
    entity: Arc<Entity>,
    defaults: Vec<Value>,
}

impl Template {
    fn new(entity: &Arc<Entity>) -> Template {
        let defaults = entity.fields.iter().map(|f| f.default.clone().unwrap_or(Value::Null)).collect();
        Template { entity: entity.clone(), defaults }
    }

    /// A row with `fields` set through each field's own coercion.
    fn row(&self, company: Option<&str>, fields: &[(&str, Input<'_>)]) -> Result<NewRow> {
        let collection = &self.entity.collection;
        let mut values = self.defaults.clone();
        for (name, input) in fields {
            let (i, field) = self.entity.field(name).ok_or_else(|| anyhow!("{collection} has no field {name}"))?;
            values[i] = field.ty.coerce(*input).map_err(|e| anyhow!("{collection}.{name}: {e}"))?;
        }
        Ok(NewRow { company: company.map(str::to_string), values })
    }
}
