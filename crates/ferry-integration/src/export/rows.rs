//! Reading what an export of one entity holds, page by page in key order: every row (that the
//! filter selects), or — incremental — the rows changed and the rows deleted between the scope's
//! watermark and the version the run started at. Versions up to the store's clock are all
//! committed, so bounding by the start version makes a change part of exactly one export.

use ferry_domain::{CompanyScope, StoredRow, Tombstone};
use ferry_model::Entity;
use ferry_query::BoundExpr;
use ferry_store::{RowQuery, Store, StoreError};
use std::sync::Arc;

/// Rows read per query.
pub(crate) const PAGE_ROWS: u64 = 2_000;

/// Which rows an export of one entity reads.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub entity: Arc<Entity>,
    pub scope: CompanyScope,
    pub filter: Option<BoundExpr>,
    /// Incremental: changes above the first version and up to the second.
    pub versions: Option<(i64, i64)>,
    /// At most this many rows (a preview).
    pub limit: Option<u64>,
}

/// Pages of rows in key order.
pub(crate) struct RowPages {
    store: Store,
    selection: Selection,
    after: Option<ferry_domain::RowKey>,
    read: u64,
    done: bool,
}

impl RowPages {
    pub fn new(store: Store, selection: Selection) -> RowPages {
        RowPages { store, selection, after: None, read: 0, done: false }
    }

    /// The next page, empty at the end.
    pub async fn next_page(&mut self) -> Result<Vec<StoredRow>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let remaining = self.selection.limit.map_or(PAGE_ROWS, |l| l.saturating_sub(self.read).min(PAGE_ROWS));
        if remaining == 0 {
            self.done = true;
            return Ok(Vec::new());
        }
        let query = RowQuery {
            scope: self.selection.scope.clone(),
            filter: self.selection.filter.clone(),
            order: Vec::new(),
            after: self.after.take(),
            versions: self.selection.versions,
            offset: 0,
            limit: remaining,
        };
        let rows = self.store.query(&self.selection.entity, &query).await?;
        self.read += rows.len() as u64;
        self.done = (rows.len() as u64) < remaining;
        self.after = rows.last().map(|r| r.key(&self.selection.entity));
        Ok(rows)
    }
}

/// Pages of the deletes of an incremental selection, in version order (none for a full one).
pub(crate) struct DeletePages {
    store: Store,
    selection: Selection,
    since: i64,
    done: bool,
}

impl DeletePages {
    pub fn new(store: Store, selection: Selection) -> DeletePages {
        let (since, done) = selection.versions.map_or((0, true), |(since, _)| (since, false));
        DeletePages { store, selection, since, done }
    }

    /// The next page, empty at the end.
    pub async fn next_page(&mut self) -> Result<Vec<Tombstone>, StoreError> {
        let Some((_, upto)) = self.selection.versions else { return Ok(Vec::new()) };
        if self.done {
            return Ok(Vec::new());
        }
        let page = self
            .store
            .deleted_between(&self.selection.entity, &self.selection.scope, self.since, upto, PAGE_ROWS as usize)
            .await?;
        self.done = (page.len() as u64) < PAGE_ROWS;
        if let Some(last) = page.last() {
            self.since = last.version;
        }
        Ok(page)
    }
}
