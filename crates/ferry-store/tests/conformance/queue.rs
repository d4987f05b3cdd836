//! The import queue and set-based import: lane order, one message per lane, packages holding
//! several lanes, leases and fencing, retries that keep their place, dedupe, poison messages,
//! and the upsert's insert/update/unchanged counts.

use crate::support::{ALL_TYPES, Db, LEASE, catalog_with, entity, ids, message, row, s};
use ferry_domain::{EntityResult, ErrorFilter, ErrorRecord, MessageOutcome, MessageState, RowCounters, RowKey, Stage};
use ferry_store::{ClaimLimits, Enqueued, Fence, InlineFile, RunRecords, Store, StoreError};
use std::time::Duration;

async fn enqueue(store: &Store, id: &str, lanes: &[&str]) {
    match store.enqueue_message(&message(id, lanes), None, None).await.unwrap() {
        Enqueued::Created(m) => assert_eq!(m.state, MessageState::Enqueued),
        Enqueued::Duplicate(_) | Enqueued::ExecutionIdInUse(_) => panic!("not a duplicate"),
    }
}

fn done() -> MessageOutcome {
    MessageOutcome::new(MessageState::Processed, None, RowCounters::default())
}

pub async fn lanes_run_one_message_at_a_time_in_enqueue_order(Db { store, .. }: Db) {
    enqueue(&store, "a1", &["a"]).await;
    enqueue(&store, "b1", &["b"]).await;
    enqueue(&store, "a2", &["a"]).await;
    enqueue(&store, "ab", &["a", "b"]).await; // a package holding both lanes
    enqueue(&store, "b2", &["b"]).await;

    let first = store.claim_messages("w1", ClaimLimits::any(10), LEASE, 5).await.unwrap();
    assert_eq!(ids(&first), ["a1", "b1"], "only lane heads run");
    assert!(store.claim_messages("w2", ClaimLimits::any(10), LEASE, 5).await.unwrap().is_empty(), "heads are leased");
    let pos = store.lane_position("a2").await.unwrap().expect("a2 waits");
    assert_eq!((pos.head_message_id.as_str(), pos.ahead), ("a1", 1));

    assert!(store.finish_message("a1", "w1", &done(), &RunRecords::default()).await.unwrap());
    assert_eq!(ids(&store.claim_messages("w2", ClaimLimits::any(10), LEASE, 5).await.unwrap()), ["a2"]);
    assert!(store.finish_message("b1", "w1", &done(), &RunRecords::default()).await.unwrap());
    assert!(
        store.claim_messages("w2", ClaimLimits::any(10), LEASE, 5).await.unwrap().is_empty(),
        "ab waits for a2 in lane a"
    );
    assert!(store.finish_message("a2", "w2", &done(), &RunRecords::default()).await.unwrap());
    assert_eq!(
        ids(&store.claim_messages("w1", ClaimLimits::any(10), LEASE, 5).await.unwrap()),
        ["ab"],
        "b2 stays behind ab"
    );
    assert!(store.finish_message("ab", "w1", &done(), &RunRecords::default()).await.unwrap());
    assert_eq!(ids(&store.claim_messages("w1", ClaimLimits::any(10), LEASE, 5).await.unwrap()), ["b2"]);
    assert!(store.finish_message("b2", "w1", &done(), &RunRecords::default()).await.unwrap());
    let m = store.get_message("ab").await.unwrap().unwrap();
    assert_eq!((m.state, m.attempts), (MessageState::Processed, 1));
    assert!(m.started_at.is_some() && m.finished_at.is_some());
}

pub async fn leases_expire_and_fence_the_old_holder(Db { store, clock, .. }: Db) {
    enqueue(&store, "m", &["a"]).await;
    let claimed = store.claim_messages("w1", ClaimLimits::any(1), LEASE, 5).await.unwrap();
    assert_eq!(ids(&claimed), ["m"]);
    assert!(store.claim_messages("w2", ClaimLimits::any(1), LEASE, 5).await.unwrap().is_empty(), "the lease holds");
    clock.advance(LEASE + Duration::from_secs(1));
    let again = store.claim_messages("w2", ClaimLimits::any(1), LEASE, 5).await.unwrap();
    assert_eq!(ids(&again), ["m"], "an expired lease is claimed again");
    assert_eq!(again[0].attempts, 2);

    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let old = Fence { message_id: "m".into(), holder: "w1".into(), lease: LEASE };
    let rows = vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10"))])];
    let started =
        EntityResult::started("m", 0, "Customer groups", Some("usmf".into()), ferry_domain::Clock::now(clock.as_ref()));
    let rejected = ErrorRecord {
        id: 0,
        message_id: "m".into(),
        entity: "Customer groups".into(),
        stage: Stage::Staging,
        row: Some(2),
        key: None,
        field: Some("CustomerGroupId".into()),
        code: "too_long".into(),
        message: "too long".into(),
    };
    let staging = InlineFile { key: "staging/m/0.jsonl".into(), message_id: "m".into(), content: b"{}\n".to_vec() };
    let records = RunRecords { results: vec![started.clone()], errors: vec![rejected], files: vec![staging.clone()] };
    let err = store.import_batch(&groups, &rows, None, Some(&old), &records).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err:?}");
    assert!(!store.renew_message_lease("m", "w1", LEASE, None).await.unwrap());
    assert!(!store.finish_message("m", "w1", &done(), &records).await.unwrap(), "the old holder cannot finish");
    assert!(store.entity_results("m").await.unwrap().is_empty(), "nothing the old holder recorded is written");
    assert!(store.errors("m", &ErrorFilter { limit: 100, ..ErrorFilter::default() }).await.unwrap().is_empty());
    assert_eq!(store.inline_file(&staging.key).await.unwrap(), None);

    // The holder's records go in with its batch, and the entity's last result with its end.
    let new = Fence { message_id: "m".into(), holder: "w2".into(), lease: LEASE };
    store.import_batch(&groups, &rows, None, Some(&new), &records).await.unwrap();
    assert_eq!(store.entity_results("m").await.unwrap().len(), 1);
    assert_eq!(store.errors("m", &ErrorFilter { limit: 100, ..ErrorFilter::default() }).await.unwrap().len(), 1);
    let finished =
        EntityResult { rows_read: 2, finished_at: Some(ferry_domain::Clock::now(clock.as_ref())), ..started };
    let staging = InlineFile { content: b"{\"row\":2}\n".to_vec(), ..staging };
    let end = RunRecords { results: vec![finished], errors: Vec::new(), files: vec![staging.clone()] };
    assert!(store.finish_message("m", "w2", &done(), &end).await.unwrap());
    assert_eq!(store.inline_file(&staging.key).await.unwrap(), Some(staging.content), "a file is replaced");
    let results = store.entity_results("m").await.unwrap();
    assert_eq!((results.len(), results[0].rows_read), (1, 2), "{results:?}");
}

pub async fn retries_keep_their_place_and_poison_ends(Db { store, clock, .. }: Db) {
    enqueue(&store, "r1", &["a"]).await;
    enqueue(&store, "r2", &["a"]).await;
    store.claim_messages("w", ClaimLimits::any(1), LEASE, 5).await.unwrap();
    assert!(store.retry_message_later("r1", "w", Duration::from_secs(3600), "database busy").await.unwrap());
    let r1 = store.get_message("r1").await.unwrap().unwrap();
    assert_eq!((r1.state, r1.reason.as_deref()), (MessageState::Retrying, Some("database busy")));
    assert!(
        store.claim_messages("w", ClaimLimits::any(5), LEASE, 5).await.unwrap().is_empty(),
        "r2 stays behind the retrying r1"
    );

    // A message whose runs keep dying ends as poison and frees its lane.
    enqueue(&store, "p1", &["p"]).await;
    enqueue(&store, "p2", &["p"]).await;
    for _ in 0..2 {
        let c = store.claim_messages("w", ClaimLimits::any(5), LEASE, 2).await.unwrap();
        assert_eq!(ids(&c), ["p1"]);
        clock.advance(LEASE + Duration::from_secs(1));
    }
    let c = store.claim_messages("w", ClaimLimits::any(5), LEASE, 2).await.unwrap();
    assert_eq!(ids(&c), ["p2"], "p1 gave up, p2 runs");
    let p1 = store.get_message("p1").await.unwrap().unwrap();
    assert_eq!(p1.state, MessageState::PreProcessingError);
    assert!(p1.reason.unwrap().contains("gave up after 2 attempts"));
}

/// Enqueues into one lane wait for each other (on PostgreSQL, a lock per lane), so of the same
/// file sent many times at once exactly one is queued; the others answer it.
pub async fn concurrent_duplicate_enqueues_create_one_message(Db { store, .. }: Db) {
    let window = Some(Duration::from_secs(3600));
    let sends = (0..8).map(|n| {
        let store = store.clone();
        let mut m = message(&format!("c{n}"), &["a", "b"]);
        m.external_id = Some("same.csv".into());
        m.content_hash = "same-content".into();
        tokio::spawn(async move { store.enqueue_message(&m, window, None).await.unwrap() })
    });
    let mut created = Vec::new();
    for send in futures::future::join_all(sends).await {
        if let Enqueued::Created(m) = send.unwrap() {
            created.push(m.id);
        }
    }
    assert_eq!(created.len(), 1, "one message, the rest duplicates of it: {created:?}");
}

/// Enqueues racing a claimer: 8 clients enqueue 25 messages each into lanes `a`, `b` and both
/// (with small bodies, as the connector does), while a worker claims and finishes whatever heads
/// its lanes. Within a lane, messages run in the order of their sequence numbers, and every
/// message runs exactly once.
pub async fn enqueues_racing_a_claimer_keep_lane_order(Db { store, .. }: Db) {
    let lanes_of = |client: usize, n: usize| -> &'static [&'static str] {
        match (client + n) % 5 {
            0 => &["a", "b"],
            1 | 2 => &["a"],
            _ => &["b"],
        }
    };
    let mut lanes_by_id = std::collections::HashMap::new();
    for client in 0..8 {
        for n in 0..25 {
            lanes_by_id.insert(format!("c{client}-{n}"), lanes_of(client, n));
        }
    }
    let sends = (0..8).map(|client| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..25 {
                let m = message(&format!("c{client}-{n}"), lanes_of(client, n));
                let created = store.enqueue_message(&m, None, Some(b"A\n1\n")).await.unwrap();
                assert!(matches!(created, Enqueued::Created(_)));
            }
        })
    });
    let sending = futures::future::join_all(sends);
    tokio::pin!(sending);
    let mut ran: Vec<(i64, &[&str])> = Vec::new();
    let mut sent = false;
    loop {
        let claimed = store.claim_messages("w", ClaimLimits::any(10), LEASE, 5).await.unwrap();
        for m in &claimed {
            assert!(store.finish_message(&m.id, "w", &done(), &RunRecords::default()).await.unwrap());
            ran.push((m.seq, lanes_by_id[&m.id]));
        }
        if sent && claimed.is_empty() {
            break;
        }
        if !sent {
            tokio::select! {
                results = &mut sending => {
                    results.into_iter().for_each(|r| r.unwrap());
                    sent = true;
                }
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
    }
    assert_eq!(ran.len(), 200, "every message ran once");
    for lane in ["a", "b"] {
        let seqs: Vec<i64> = ran.iter().filter(|(_, lanes)| lanes.contains(&lane)).map(|(s, _)| *s).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "lane {lane} ran out of order: {seqs:?}");
    }
}

pub async fn duplicate_enqueues_answer_the_original(Db { store, .. }: Db) {
    let mut m = message("d1", &["a"]);
    m.external_id = Some("file.csv".into());
    let window = Some(Duration::from_secs(3600));
    // A small body is kept in the database with its message.
    assert!(matches!(store.enqueue_message(&m, window, Some(b"A,B\n1,2\n")).await.unwrap(), Enqueued::Created(_)));
    assert_eq!(store.inline_file(&m.blob_key).await.unwrap().as_deref(), Some(&b"A,B\n1,2\n"[..]));
    let mut again = message("d2", &["a"]);
    again.external_id = Some("file.csv".into());
    again.content_hash = m.content_hash.clone();
    again.blob_key = "messages/d2".into();
    match store.enqueue_message(&again, window, Some(b"A,B\n1,2\n")).await.unwrap() {
        Enqueued::Duplicate(original) => assert_eq!(original.id, "d1"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(store.inline_file("messages/d2").await.unwrap(), None, "a duplicate keeps no body");
    assert!(store.delete_inline_file(&m.blob_key).await.unwrap());
    assert_eq!(store.inline_file(&m.blob_key).await.unwrap(), None);
    let mut changed = message("d3", &["a"]);
    changed.external_id = Some("file.csv".into());
    assert!(matches!(store.enqueue_message(&changed, window, None).await.unwrap(), Enqueued::Created(_)));
}

pub async fn import_batches_upsert_by_key_and_count(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let g = |id: &str, desc: &str| row(&groups, Some("usmf"), &[("CustomerGroupId", s(id)), ("Description", s(desc))]);
    let c =
        store.import_batch(&groups, &[g("10", "A"), g("20", "B")], None, None, &RunRecords::default()).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (2, 0, 0));
    let before = store.current_version().await.unwrap();
    let c = store
        .import_batch(&groups, &[g("10", "A"), g("20", "B2"), g("30", "C")], None, None, &RunRecords::default())
        .await
        .unwrap();
    assert_eq!((c.inserted, c.updated, c.unchanged), (1, 1, 1));
    assert_eq!(store.current_version().await.unwrap(), before + 2, "unchanged rows take no version");
    // Fields the file does not give keep their stored values.
    let (desc, _) = groups.field("Description").unwrap();
    let c = store.import_batch(&groups, &[g("20", "ignored")], Some(&[]), None, &RunRecords::default()).await.unwrap();
    assert_eq!(c.unchanged, 1);
    let got =
        store.get(&groups, &RowKey { company: Some("usmf".into()), values: vec![s("20")] }).await.unwrap().unwrap();
    assert_eq!(got.values[desc], s("B2"));

    // Lookups: misses are reported per row without writing.
    let customers = entity(&catalog, "CustomersV3");
    let (group_field, _) = customers.field("CustomerGroupId").unwrap();
    let mut r1 = row(&customers, Some("usmf"), &[("CustomerAccount", s("C1")), ("CustomerGroupId", s("10"))]);
    let mut r2 = row(&customers, Some("usmf"), &[("CustomerAccount", s("C2")), ("CustomerGroupId", s("99"))]);
    for r in [&mut r1, &mut r2] {
        let (name, _) = customers.field("OrganizationName").unwrap_or(customers.field("CustomerAccount").unwrap());
        if r.values[name].is_null() {
            r.values[name] = s("Org");
        }
    }
    let misses = store.missing_lookups(&customers, &[r1, r2]).await.unwrap();
    assert_eq!(misses.len(), 1);
    assert_eq!((misses[0].row, misses[0].field), (1, group_field));
    assert!(misses[0].target.contains("CustomerGroups"), "{}", misses[0].target);
}

pub async fn errors_are_stored_fenced_and_paged(Db { store, .. }: Db) {
    enqueue(&store, "e", &["a"]).await;
    store.claim_messages("w", ClaimLimits::any(1), LEASE, 5).await.unwrap();
    let fence = Fence { message_id: "e".into(), holder: "w".into(), lease: LEASE };
    let errors: Vec<ErrorRecord> = (1..=5)
        .map(|n| ErrorRecord {
            id: 0,
            message_id: "e".into(),
            entity: "Customer groups".into(),
            stage: if n % 2 == 0 { Stage::Target } else { Stage::Staging },
            row: Some(n + 1),
            key: Some(format!("CustomerGroupId='{n}'")),
            field: Some("Description".into()),
            code: "string_too_long".into(),
            message: format!("row {n}"),
        })
        .collect();
    store.add_errors(&errors, &fence).await.unwrap();
    let page = store.errors("e", &ErrorFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.row).collect::<Vec<_>>(), [Some(2), Some(3)]);
    let next = ErrorFilter { after_id: Some(page[1].id), limit: 10, ..Default::default() };
    assert_eq!(store.errors("e", &next).await.unwrap().len(), 3);
    let target = ErrorFilter { stage: Some(Stage::Target), limit: 10, ..Default::default() };
    assert_eq!(store.errors("e", &target).await.unwrap().len(), 2);
    let stranger = Fence { message_id: "e".into(), holder: "other".into(), lease: LEASE };
    assert!(matches!(store.add_errors(&errors, &stranger).await, Err(StoreError::LeaseLost { .. })));
    // A new attempt starts clean.
    store.begin_message_attempt(&fence).await.unwrap();
    assert!(store.errors("e", &next).await.unwrap().is_empty());
}
