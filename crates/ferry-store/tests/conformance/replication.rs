//! Replication storage: profiles, status, the retry set and failure log, leases, and change
//! notifications.

use crate::support::{ALL_TYPES, Db, catalog_with, entity, row, s};
use chrono::{Duration, TimeZone, Utc};
use ferry_domain::{
    ChangeType, Clock, EntitySync, Phase, Profile, ProfileDefinition, ProfileState, ReplicationFailure, SyncState,
    TargetKind,
};
use ferry_store::StoredProfile;

pub async fn profiles_status_and_failures(Db { store, clock, .. }: Db) {
    let now = clock.now();
    let mut stored = StoredProfile {
        profile: Profile {
            id: "p1".into(),
            definition: ProfileDefinition::new("Reporting", TargetKind::Postgres, vec!["account".into()]),
            state: ProfileState::Inactive,
            created_at: now,
            updated_at: now,
        },
        connection_encrypted: "v1:xyz".into(),
    };
    store.upsert_profile(&stored).await.unwrap();
    stored.profile.state = ProfileState::Active;
    store.upsert_profile(&stored).await.unwrap();
    let got = store.get_profile("p1").await.unwrap().unwrap();
    assert_eq!(got.profile.state, ProfileState::Active);
    assert_eq!(got.profile.definition, stored.profile.definition);
    assert_eq!(got.connection_encrypted, "v1:xyz");
    assert_eq!(store.list_profiles().await.unwrap().len(), 1);

    let status = EntitySync {
        profile_id: "p1".into(),
        entity: "account".into(),
        phase: Phase::Initial,
        state: SyncState::Running,
        reason: None,
        rows_copied: 5,
        rows_total: 10,
        last_version: 3,
        lag_versions: 7,
        lag_seconds: 1.5,
        updated_at: now,
    };
    store.put_replication_status(&status).await.unwrap();
    store.put_replication_status(&EntitySync { rows_copied: 10, ..status.clone() }).await.unwrap();
    assert_eq!(store.replication_status("p1").await.unwrap()[0].rows_copied, 10);

    let id = uuid::Uuid::new_v4();
    let failure = ReplicationFailure {
        profile_id: "p1".into(),
        entity: "account".into(),
        record_id: id,
        change: ChangeType::Update,
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
    assert_eq!(store.pending_replication_failures("p1", Some(clock.now()), 10).await.unwrap().len(), 1);
    assert_eq!(store.replication_failure_log("p1", 10).await.unwrap().len(), 2, "the log only grows");
    store.resolve_replication_failure("p1", "account", id).await.unwrap();
    assert!(store.pending_replication_failures("p1", None, 10).await.unwrap().is_empty());
    assert_eq!(store.replication_failure_log("p1", 10).await.unwrap().len(), 2);

    assert!(store.delete_profile("p1").await.unwrap());
    assert!(store.replication_status("p1").await.unwrap().is_empty());
    assert!(store.replication_failure_log("p1", 10).await.unwrap().is_empty());
}

pub async fn leases_go_to_one_holder_until_they_expire(Db { store, clock, .. }: Db) {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let at = |secs: i64| clock.set(t0 + Duration::seconds(secs));
    let ttl = |secs: u64| std::time::Duration::from_secs(secs);
    at(0);
    assert!(store.acquire_lease("profile:p1", "node-a", ttl(10)).await.unwrap());
    at(5);
    assert!(!store.acquire_lease("profile:p1", "node-b", ttl(15)).await.unwrap());
    assert!(store.acquire_lease("profile:p1", "node-a", ttl(15)).await.unwrap(), "renewal");
    at(15);
    assert!(!store.acquire_lease("profile:p1", "node-b", ttl(15)).await.unwrap());
    at(21);
    assert!(store.acquire_lease("profile:p1", "node-b", ttl(19)).await.unwrap(), "taken over after expiry");
    store.release_lease("profile:p1", "node-b").await.unwrap();
    at(22);
    assert!(store.acquire_lease("profile:p1", "node-a", ttl(18)).await.unwrap());
}

pub async fn writes_wake_subscribers(Db { store, clock, url }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let group = |n: usize| row(&groups, Some("usmf"), &[("CustomerGroupId", s(&n.to_string()))]);
    let mut changes = store.subscribe_changes();
    changes.borrow_and_update();
    store.insert(&groups, vec![group(1)]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), changes.changed()).await.expect("woken").unwrap();
    if store.dialect() != ferry_sql::Dialect::Postgres {
        return;
    }
    // Another node on the same database is woken by a notification sent after the commit. Its
    // listener connects in the background: write until it hears one.
    let other = ferry_store::Store::open(&url, clock).await.unwrap();
    let mut theirs = other.subscribe_changes();
    theirs.borrow_and_update();
    for n in 2.. {
        store.insert(&groups, vec![group(n)]).await.unwrap();
        if tokio::time::timeout(std::time::Duration::from_millis(200), theirs.changed()).await.is_ok() {
            break;
        }
        assert!(n < 50, "the other node was never woken");
    }
    other.close().await;
}
