//! Replication storage: profiles, status, the retry set and failure log, leases, and change
//! notifications.

use crate::support::{ALL_TYPES, catalog_with, entity, row, s};
use chrono::{Duration, TimeZone, Utc};
use ferry_store::{EntityStatusRecord, FailureRecord, ProfileRecord, Store};

pub async fn profiles_status_and_failures(store: Store) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let profile = ProfileRecord {
        id: "p1".into(),
        name: "Reporting".into(),
        definition: "{}".into(),
        connection_encrypted: "v1:xyz".into(),
        state: "Inactive".into(),
        created_at: now,
        updated_at: now,
    };
    store.upsert_profile(&profile).await.unwrap();
    store.upsert_profile(&ProfileRecord { state: "Active".into(), ..profile.clone() }).await.unwrap();
    assert_eq!(store.get_profile("p1").await.unwrap().unwrap().state, "Active");
    assert_eq!(store.list_profiles().await.unwrap().len(), 1);

    let status = EntityStatusRecord {
        profile_id: "p1".into(),
        entity: "account".into(),
        phase: "Initial".into(),
        state: "Running".into(),
        reason: None,
        rows_copied: 5,
        rows_total: 10,
        last_version: 3,
        lag_versions: 7,
        lag_seconds: 1.5,
        updated_at: now,
    };
    store.put_replication_status(&status).await.unwrap();
    store.put_replication_status(&EntityStatusRecord { rows_copied: 10, ..status.clone() }).await.unwrap();
    assert_eq!(store.replication_status("p1").await.unwrap()[0].rows_copied, 10);

    let id = uuid::Uuid::new_v4();
    let failure = FailureRecord {
        profile_id: "p1".into(),
        entity: "account".into(),
        record_id: id,
        change_type: "Update".into(),
        reason: "value too long".into(),
        attempts: 1,
        first_failed_at: now,
        next_attempt_at: now + Duration::seconds(30),
        resolved_at: None,
    };
    store.record_replication_failure(&failure).await.unwrap();
    store.record_replication_failure(&failure).await.unwrap();
    let pending = store.pending_replication_failures("p1", None, 10).await.unwrap();
    assert_eq!((pending.len(), pending[0].attempts), (1, 2), "one record in the retry set, two attempts");
    assert!(store.pending_replication_failures("p1", Some(now), 10).await.unwrap().is_empty(), "not due yet");
    assert_eq!(store.retry_replication_failures_now("p1").await.unwrap(), 1);
    assert_eq!(store.pending_replication_failures("p1", Some(Utc::now()), 10).await.unwrap().len(), 1);
    assert_eq!(store.replication_failure_log("p1", 10).await.unwrap().len(), 2, "the log only grows");
    store.resolve_replication_failure("p1", "account", id).await.unwrap();
    assert!(store.pending_replication_failures("p1", None, 10).await.unwrap().is_empty());
    assert_eq!(store.replication_failure_log("p1", 10).await.unwrap().len(), 2);

    assert!(store.delete_profile("p1").await.unwrap());
    assert!(store.replication_status("p1").await.unwrap().is_empty());
    assert!(store.replication_failure_log("p1", 10).await.unwrap().is_empty());
}

pub async fn leases_go_to_one_holder_until_they_expire(store: Store) {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let ttl = Duration::seconds(10);
    assert!(store.acquire_lease("profile:p1", "node-a", t0, t0 + ttl).await.unwrap());
    assert!(!store.acquire_lease("profile:p1", "node-b", t0 + Duration::seconds(5), t0 + ttl * 2).await.unwrap());
    assert!(
        store.acquire_lease("profile:p1", "node-a", t0 + Duration::seconds(5), t0 + ttl * 2).await.unwrap(),
        "renewal"
    );
    assert!(!store.acquire_lease("profile:p1", "node-b", t0 + Duration::seconds(15), t0 + ttl * 3).await.unwrap());
    assert!(
        store.acquire_lease("profile:p1", "node-b", t0 + Duration::seconds(21), t0 + ttl * 4).await.unwrap(),
        "taken over after expiry"
    );
    store.release_lease("profile:p1", "node-b").await.unwrap();
    assert!(store.acquire_lease("profile:p1", "node-a", t0 + Duration::seconds(22), t0 + ttl * 4).await.unwrap());
}

pub async fn writes_wake_subscribers(store: Store) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let mut changes = store.subscribe_changes();
    changes.borrow_and_update();
    store.insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10"))])]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), changes.changed()).await.expect("woken").unwrap();
    // A second store on the same database (another node) is woken too on PostgreSQL.
    let by_id = store
        .get_by_id(
            &groups,
            store
                .get(&groups, &ferry_store::RowKey { company: Some("usmf".into()), values: vec![s("10")] })
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert!(by_id.is_some());
}
