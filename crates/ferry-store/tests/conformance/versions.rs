//! Change versions: one increasing sequence across entities and concurrent writers, and
//! "changes since V" returning exactly the later changes, deletes included.

use crate::support::{ALL_TYPES, Db, catalog_with, entity, row, s};
use ferry_domain::{CompanyScope, RowKey};
use ferry_model::Value;
use std::collections::BTreeSet;

pub async fn versions_increase_across_entities(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let currencies = entity(&catalog, "Currencies");
    let start = store.current_version().await.unwrap();
    let a = store.insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10"))])]).await.unwrap();
    let b = store
        .insert(&currencies, vec![row(&currencies, None, &[("CurrencyCode", s("EUR")), ("Name", s("Euro"))])])
        .await
        .unwrap();
    let c = store.insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("20"))])]).await.unwrap();
    assert!(start < a[0].version && a[0].version < b[0].version && b[0].version < c[0].version);
    assert_eq!(store.current_version().await.unwrap(), c[0].version);
}

pub async fn concurrent_writers_get_distinct_ordered_versions(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let vendor_groups = entity(&catalog, "VendorGroups");
    const WRITERS: usize = 8;
    const ROWS_PER_WRITER: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let entity = if w % 2 == 0 { groups.clone() } else { vendor_groups.clone() };
        let key_field = if w % 2 == 0 { "CustomerGroupId" } else { "VendorGroupId" };
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..ROWS_PER_WRITER {
                let r = row(&entity, Some(&format!("c{w}")), &[(key_field, s(&format!("{i}")))]);
                versions.push(store.insert(&entity, vec![r]).await.unwrap()[0].version);
            }
            versions
        }));
    }
    // A reader follows the changes while writers run; it must end up seeing every row.
    let reader = {
        let store = store.clone();
        let (groups, vendor_groups) = (groups.clone(), vendor_groups.clone());
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut tokens = [0i64, 0i64];
            while seen.len() < WRITERS * ROWS_PER_WRITER {
                for (n, entity) in [&groups, &vendor_groups].into_iter().enumerate() {
                    let changes = store.changes_since(entity, &CompanyScope::All, tokens[n], 1000).await.unwrap();
                    for r in &changes.rows {
                        assert!(r.version > tokens[n], "a change older than the token came back");
                        seen.insert(r.id);
                    }
                    tokens[n] = changes.through_version;
                }
                tokio::task::yield_now().await;
            }
            seen.len()
        })
    };
    let mut all = Vec::new();
    for t in tasks {
        let versions = t.await.unwrap();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "one writer's versions increase");
        all.extend(versions);
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), WRITERS * ROWS_PER_WRITER, "versions are never shared");
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader).await.expect("reader saw every row");
    assert_eq!(seen.unwrap(), WRITERS * ROWS_PER_WRITER);
}

pub async fn changes_since_returns_exactly_later_changes_and_deletes(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let g = |id: &str| row(&groups, Some("usmf"), &[("CustomerGroupId", s(id))]);
    let key = |id: &str| RowKey { company: Some("usmf".into()), values: vec![s(id)] };
    let before = store.insert(&groups, vec![g("A"), g("B"), g("D")]).await.unwrap();
    let v = store.current_version().await.unwrap();
    let (desc, _) = groups.field("Description").unwrap();
    store.update(&groups, &key("A"), vec![(desc, s("changed"))]).await.unwrap().unwrap();
    assert!(store.delete(&groups, &key("B")).await.unwrap());
    let c = store.insert(&groups, vec![g("C")]).await.unwrap();
    // Another company's change is not in the usmf scope.
    store.insert(&groups, vec![row(&groups, Some("demf"), &[("CustomerGroupId", s("Z"))])]).await.unwrap();

    let changes = store.changes_since(&groups, &CompanyScope::One("usmf".into()), v, 100).await.unwrap();
    let ids: Vec<_> = changes.rows.iter().map(|r| r.values[0].clone()).collect();
    assert_eq!(ids, vec![s("A"), s("C")]);
    assert_eq!(changes.rows[0].values[desc], s("changed"));
    assert_eq!(changes.rows[1].id, c[0].id);
    assert_eq!(changes.deleted.len(), 1);
    assert_eq!(changes.deleted[0].id, before[1].id);
    assert_eq!(changes.deleted[0].key, vec!["B".to_string()]);
    assert_eq!(changes.deleted[0].company.as_deref(), Some("usmf"));
    assert!(!changes.more);
    assert_eq!(changes.through_version, store.current_version().await.unwrap());

    let all = store.changes_since(&groups, &CompanyScope::All, v, 100).await.unwrap();
    assert_eq!(all.rows.len(), 3);
    let nothing = store.changes_since(&groups, &CompanyScope::All, changes.through_version, 100).await.unwrap();
    assert!(nothing.rows.is_empty() && nothing.deleted.is_empty());
    // D was not touched after v.
    assert!(!all.rows.iter().any(|r| r.values[0] == Value::String("D".into())));
}

pub async fn changes_since_pages_by_limit(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let start = store.current_version().await.unwrap();
    for i in 0..8 {
        store
            .insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s(&format!("G{i}")))])])
            .await
            .unwrap();
    }
    for i in 0..2 {
        let k = RowKey { company: Some("usmf".into()), values: vec![s(&format!("G{i}"))] };
        store.delete(&groups, &k).await.unwrap();
    }
    let mut token = start;
    let mut sizes = Vec::new();
    let mut rows = 0;
    let mut deletes = 0;
    loop {
        let batch = store.changes_since(&groups, &CompanyScope::All, token, 3).await.unwrap();
        sizes.push(batch.rows.len() + batch.deleted.len());
        rows += batch.rows.len();
        deletes += batch.deleted.len();
        assert!(batch.through_version >= token);
        token = batch.through_version;
        if !batch.more {
            break;
        }
    }
    // G0 and G1 were deleted after their insert: their rows are gone, their tombstones remain.
    assert_eq!((rows, deletes), (6, 2));
    assert_eq!(sizes, vec![3, 3, 2]);
}

/// Sixteen writers insert, update, delete and import batches of up to 2,000 rows (long
/// transactions that take their versions early and commit late) while a reader follows
/// `changes_since`; the reader's copy, built only from what it was shown, ends equal to the table:
/// no change became visible after a reader had moved past its version.
pub async fn a_reader_following_sixteen_concurrent_writers_misses_nothing(Db { store, .. }: Db) {
    use std::collections::BTreeMap;
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let (desc, _) = groups.field("Description").unwrap();
    const WRITERS: usize = 16;
    const ROUNDS: usize = 12;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, groups, done) = (store.clone(), groups.clone(), done.clone());
        tokio::spawn(async move {
            let mut copy: BTreeMap<uuid::Uuid, i64> = BTreeMap::new();
            let mut token = 0i64;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let changes = store.changes_since(&groups, &CompanyScope::All, token, 5000).await.unwrap();
                for r in &changes.rows {
                    assert!(r.version > token, "a change older than the token came back");
                    copy.insert(r.id, r.version);
                }
                for t in &changes.deleted {
                    if copy.get(&t.id).is_some_and(|&v| v < t.version) {
                        copy.remove(&t.id);
                    }
                }
                token = changes.through_version;
                if finished && !changes.more {
                    return copy;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, groups) = (store.clone(), groups.clone());
        writers.push(tokio::spawn(async move {
            let company = format!("c{w:02}");
            let key = |i: usize| RowKey { company: Some(company.clone()), values: vec![s(&format!("{i}"))] };
            let new = |i: usize| row(&groups, Some(&company), &[("CustomerGroupId", s(&format!("{i}")))]);
            for round in 0..ROUNDS {
                match (w + round) % 4 {
                    // A long transaction: many rows, versions taken early, commit late.
                    0 => {
                        let rows: Vec<_> =
                            (0..500 + 125 * (w % 13)).map(|i| new(10_000 + round * 10_000 + i)).collect();
                        store
                            .import_batch(&groups, &rows, None, None, &ferry_store::RunRecords::default())
                            .await
                            .unwrap();
                    }
                    1 => {
                        store.insert(&groups, vec![new(round)]).await.unwrap();
                    }
                    2 => {
                        store.insert(&groups, vec![new(round)]).await.unwrap();
                        store.update(&groups, &key(round), vec![(desc, s("changed"))]).await.unwrap();
                    }
                    _ => {
                        store.insert(&groups, vec![new(round)]).await.unwrap();
                        assert!(store.delete(&groups, &key(round)).await.unwrap());
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let copy =
        tokio::time::timeout(std::time::Duration::from_secs(120), reader).await.expect("the reader ends").unwrap();
    let table: BTreeMap<uuid::Uuid, i64> = store.row_versions(&groups).await.unwrap().into_iter().collect();
    assert!(table.len() > WRITERS * ROUNDS, "the writers wrote");
    let missing = table.iter().filter(|(id, v)| copy.get(*id) != Some(*v)).count();
    let extra = copy.keys().filter(|id| !table.contains_key(*id)).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "the reader's copy differs from the table: {missing} rows missing or stale, {extra} deleted rows kept"
    );
}

/// Concurrent writes (on SQLite, committed in groups): a write that fails leaves no trace and
/// takes nothing from the others; a write abandoned at any point (its future dropped, also
/// between two of its statements) is all or nothing, never half.
pub async fn concurrent_writes_fail_and_cancel_alone(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let g = |id: String| row(&groups, Some("usmf"), &[("CustomerGroupId", s(&id))]);
    store.insert(&groups, vec![g("taken".into())]).await.unwrap();
    const BIG: usize = 3000;
    let mut tasks = Vec::new();
    for w in 0..30 {
        let (store, groups) = (store.clone(), groups.clone());
        let rows: Vec<_> = match w % 3 {
            // The last row's key exists: the whole write fails.
            0 => vec![g(format!("w{w}-0")), g("taken".into())],
            1 => (0..BIG).map(|i| g(format!("w{w}-{i}"))).collect(),
            _ => vec![g(format!("w{w}-0")), g(format!("w{w}-1"))],
        };
        tasks.push(tokio::spawn(async move {
            if w % 3 == 1 {
                // Abandoned after 0–5 ms: before, inside (between its statements) or after its work.
                let cut = std::time::Duration::from_micros(500 * (w as u64 % 11));
                return tokio::time::timeout(cut, store.insert(&groups, rows)).await.map(|r| r.is_ok()).ok();
            }
            Some(store.insert(&groups, rows).await.is_ok())
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    // A later write still works (nothing was left half done).
    store.insert(&groups, vec![g("after".into())]).await.unwrap();
    let everything = ferry_store::RowQuery {
        scope: CompanyScope::All,
        filter: None,
        order: Vec::new(),
        after: None,
        versions: None,
        offset: 0,
        limit: 1_000_000,
    };
    let all = store.query(&groups, &everything).await.unwrap();
    let count = |w: usize| all.iter().filter(|r| r.values[0].to_text().unwrap().starts_with(&format!("w{w}-"))).count();
    for (w, outcome) in outcomes.into_iter().enumerate() {
        let n = count(w);
        match (w % 3, outcome) {
            (0, _) => assert_eq!(n, 0, "write {w} conflicted and must leave nothing"),
            (1, Some(true)) => assert_eq!(n, BIG, "write {w} answered Ok"),
            (1, None) => assert!(n == 0 || n == BIG, "abandoned write {w} is half applied: {n} of {BIG} rows"),
            (_, ok) => assert_eq!(n, if ok == Some(true) { 2 } else { 0 }, "write {w}"),
        }
    }
}
