//! Keys an all-or-nothing message is about to write. Its valid rows wait in spill files until
//! the final apply, so when a later entity of the message looks up an earlier one (customers
//! naming the customer groups the same package brings), the lookup is answered here instead of
//! by the database, as it would be had the earlier entity been written already.
//!
//! Bounded: only the fields some entity of the message looks up are kept, and at most
//! [`PENDING_KEYS_MAX`] values. Past that, lookups to the entity no longer tracked are left to
//! the final apply, which checks every lookup inside its transaction and refuses the whole
//! message if one names nothing.

use ferry_domain::NewRow;
use ferry_model::{Catalog, Entity};
use ferry_store::LookupMiss;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most looked-up values kept for one message (about 100 MB at worst).
pub(crate) const PENDING_KEYS_MAX: usize = 1_000_000;

/// A looked-up field of an entity of the message: its collection and field index.
type Target = (String, usize);

pub(crate) struct PendingKeys {
    catalog: Arc<Catalog>,
    /// Per target, the (company, value) pairs spilled so far.
    keys: HashMap<Target, HashSet<(Option<String>, String)>>,
    /// Targets whose values stopped being kept: lookups to them are deferred to the apply.
    overflowed: HashSet<String>,
    kept: usize,
}

impl PendingKeys {
    /// Watches every field that one of `entities` (the message's) looks up in another of them.
    pub fn new(catalog: Arc<Catalog>, entities: &[Arc<Entity>]) -> PendingKeys {
        let mut keys = HashMap::new();
        for entity in entities {
            for lookup in entity.fields.iter().filter_map(|f| f.lookup.as_ref()) {
                let Some(target) = catalog.by_collection(&lookup.entity) else { continue };
                let Some((field, _)) = target.field(&lookup.field) else { continue };
                if entities.iter().any(|e| Arc::ptr_eq(e, target)) {
                    keys.insert((target.collection.clone(), field), HashSet::new());
                }
            }
        }
        PendingKeys { catalog, keys, overflowed: HashSet::new(), kept: 0 }
    }

    /// Notes the watched values of rows of `entity` that will be written.
    pub fn record(&mut self, entity: &Entity, rows: &[NewRow]) {
        for ((collection, field), values) in self.keys.iter_mut() {
            if *collection != entity.collection || self.overflowed.contains(collection) {
                continue;
            }
            for row in rows {
                let Some(text) = row.values[*field].to_text() else { continue };
                if self.kept >= PENDING_KEYS_MAX {
                    self.overflowed.insert(collection.clone());
                    values.clear();
                    break;
                }
                if values.insert((row.company.clone(), text)) {
                    self.kept += 1;
                }
            }
        }
    }

    /// Whether a lookup the database found missing names a row the message will write (or one
    /// the final apply must check).
    pub fn covers(&self, entity: &Entity, row: &NewRow, miss: &LookupMiss) -> bool {
        let Some(lookup) = &entity.fields[miss.field].lookup else { return false };
        let Some(target) = self.catalog.by_collection(&lookup.entity) else { return false };
        let Some((field, _)) = target.field(&lookup.field) else { return false };
        if self.overflowed.contains(&target.collection) {
            return true;
        }
        let Some(values) = self.keys.get(&(target.collection.clone(), field)) else { return false };
        let company = if target.company_specific { row.company.clone() } else { None };
        miss.value.to_text().is_some_and(|text| values.contains(&(company, text)))
    }
}
