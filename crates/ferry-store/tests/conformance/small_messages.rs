//! What makes small messages cheap, and must not cost an invariant: a message's last batch goes
//! in with its end in one transaction (fenced by the end's lease check, all or nothing), and a
//! claim takes many small messages but only a bounded number of large ones, still only lane
//! heads, in enqueue order.

use crate::support::{ALL_TYPES, Db, LEASE, catalog_with, entity, ids, message, row, s};
use ferry_domain::{
    CompanyScope, EntityResult, MessageOutcome, MessageState, NewMessage, Operation, RowCounters, RowKey,
};
use ferry_store::{BatchCounts, ClaimLimits, Enqueued, Fence, InlineFile, RunRecords, Store, StoreError};
use std::time::Duration;

/// A message of one lane with a body of `size` bytes.
fn message_of_size(id: &str, lane: &str, size: i64) -> NewMessage {
    NewMessage { size, ..message(id, &[lane]) }
}

async fn enqueue(store: &Store, m: NewMessage) {
    assert!(matches!(store.enqueue_message(&m, None, None).await.unwrap(), Enqueued::Created(_)));
}

/// The outcome and records a run derives from its last batch's counts.
fn end_of(id: &str, now: chrono::DateTime<chrono::Utc>) -> impl FnOnce(BatchCounts) -> (MessageOutcome, RunRecords) {
    let id = id.to_string();
    move |counts: BatchCounts| {
        let counters = RowCounters { read: 1, inserted: counts.inserted as i64, ..RowCounters::default() };
        let result = EntityResult {
            rows_inserted: counts.inserted as i64,
            finished_at: Some(now),
            ..EntityResult::started(&id, 0, "Customer groups", Some("usmf".into()), now)
        };
        let staging = InlineFile { key: format!("staging/{id}/0.jsonl"), message_id: id, content: b"{}\n".to_vec() };
        let records = RunRecords { results: vec![result], errors: Vec::new(), files: vec![staging] };
        (MessageOutcome::new(MessageState::Processed, None, counters), records)
    }
}

pub async fn a_last_batch_goes_in_with_the_end_or_not_at_all(Db { store, clock, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let key = |id: &str| RowKey { company: Some("usmf".into()), values: vec![s(id)] };
    let now = ferry_domain::Clock::now(clock.as_ref());
    enqueue(&store, message_of_size("m", "a", 10)).await;
    enqueue(&store, message_of_size("m2", "a", 10)).await;
    assert_eq!(ids(&store.claim_messages("w1", ClaimLimits::any(1), LEASE, 5).await.unwrap()), ["m"]);
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(ids(&store.claim_messages("w2", ClaimLimits::any(1), LEASE, 5).await.unwrap()), ["m"]);

    // The old holder writes nothing: neither the rows nor the end nor its records.
    let rows = vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10"))])];
    let old = Fence { message_id: "m".into(), holder: "w1".into(), lease: LEASE };
    let err = store.finish_message_with_batch(&groups, &rows, None, &old, end_of("m", now)).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err:?}");
    assert!(store.get(&groups, &key("10")).await.unwrap().is_none(), "the old holder's rows are not written");
    assert_eq!(store.get_message("m").await.unwrap().unwrap().state, MessageState::Processing);
    assert!(store.entity_results("m").await.unwrap().is_empty());
    assert_eq!(store.inline_file("staging/m/0.jsonl").await.unwrap(), None);

    // A batch the database refuses (here a lookup to a missing row) writes nothing either, and
    // the holder keeps the message: it writes the rows one by one and ends on its own.
    let customers = entity(&catalog, "CustomersV3");
    let orphan = row(
        &customers,
        Some("usmf"),
        &[("CustomerAccount", s("C1")), ("CustomerGroupId", s("99")), ("OrganizationName", s("Org"))],
    );
    let new = Fence { message_id: "m".into(), holder: "w2".into(), lease: LEASE };
    let err = store.finish_message_with_batch(&customers, &[orphan], None, &new, end_of("m", now)).await.unwrap_err();
    assert!(err.is_row_level(), "{err:?}");
    assert_eq!(store.get_message("m").await.unwrap().unwrap().state, MessageState::Processing);
    assert!(store.claim_messages("w3", ClaimLimits::any(5), LEASE, 5).await.unwrap().is_empty(), "m2 waits");

    // The holder's batch, end and records commit together; the lane moves on.
    let (counts, outcome) =
        store.finish_message_with_batch(&groups, &rows, None, &new, end_of("m", now)).await.unwrap();
    assert_eq!((counts.inserted, outcome.counters.inserted), (1, 1));
    assert!(store.get(&groups, &key("10")).await.unwrap().is_some());
    let m = store.get_message("m").await.unwrap().unwrap();
    assert_eq!((m.state, m.counters.inserted, m.attempts), (MessageState::Processed, 1, 2));
    let results = store.entity_results("m").await.unwrap();
    assert_eq!((results.len(), results[0].rows_inserted), (1, 1), "{results:?}");
    assert!(results[0].finished_at.is_some());
    assert_eq!(store.inline_file("staging/m/0.jsonl").await.unwrap().as_deref(), Some(&b"{}\n"[..]));
    assert_eq!(ids(&store.claim_messages("w3", ClaimLimits::any(5), LEASE, 5).await.unwrap()), ["m2"]);
    let again = store.finish_message_with_batch(&groups, &[], None, &new, end_of("m", now)).await;
    assert!(matches!(again, Err(StoreError::LeaseLost { .. })), "a finished message cannot end twice: {again:?}");

    // A small batch written with the request that follows it takes consecutive versions, the
    // last of them the newest visible one.
    let before = store.current_version().await.unwrap();
    let few: Vec<_> =
        ["20", "30", "40"].iter().map(|g| row(&groups, Some("usmf"), &[("CustomerGroupId", s(g))])).collect();
    let counts = store.import_batch(&groups, &few, None, None, &RunRecords::default()).await.unwrap();
    assert_eq!(counts.inserted, 3);
    let changes = store.changes_since(&groups, &CompanyScope::All, before, 10).await.unwrap();
    let mut versions: Vec<i64> = changes.rows.iter().map(|r| r.version).collect();
    versions.sort_unstable();
    let newest = store.current_version().await.unwrap();
    assert_eq!(versions.len(), 3, "{versions:?}");
    assert!(versions.windows(2).all(|w| w[1] == w[0] + 1) && versions[0] > before, "{versions:?} after {before}");
    assert_eq!(versions[2], newest);
}

pub async fn claims_take_many_small_messages_and_few_large_ones(Db { store, .. }: Db) {
    let big = ferry_store::INLINE_FILE_MAX as i64 + 1;
    enqueue(&store, message_of_size("big1", "a", big)).await;
    enqueue(&store, message_of_size("small1", "b", 100)).await;
    enqueue(&store, message_of_size("big2", "c", big)).await;
    enqueue(&store, message_of_size("small2", "d", 100)).await;
    enqueue(&store, message_of_size("small3", "a", 100)).await; // behind big1 in lane a
    enqueue(&store, message_of_size("big3", "e", big)).await;
    let mut export = message_of_size("export", "f", 0);
    export.operation = Operation::Export;
    enqueue(&store, export).await;

    let limits = ClaimLimits { max: 10, large_max: 1 };
    let claimed = store.claim_messages("w", limits, LEASE, 5).await.unwrap();
    assert_eq!(ids(&claimed), ["big1", "small1", "small2"], "one large one, every small lane head");
    assert!(claimed.iter().filter(|m| ClaimLimits::is_large(m)).count() == 1);
    let none_large = ClaimLimits { max: 10, large_max: 0 };
    assert!(store.claim_messages("w", none_large, LEASE, 5).await.unwrap().is_empty(), "small3 waits for big1");
    let claimed = store.claim_messages("w", ClaimLimits { max: 10, large_max: 2 }, LEASE, 5).await.unwrap();
    assert_eq!(ids(&claimed), ["big2", "big3"], "large ones in enqueue order; an export is large");
    let claimed = store.claim_messages("w", ClaimLimits { max: 1, large_max: 1 }, LEASE, 5).await.unwrap();
    assert_eq!(ids(&claimed), ["export"]);
}
