//! The [`Store`] operations of replication: profiles, the status profile tasks report, the
//! retry set and failure log, leases and settings.

use crate::replication;
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use ferry_domain::{EntitySync, FailureLogEntry, ReplicationFailure};
use replication::StoredProfile;

impl Store {
    pub async fn upsert_profile(&self, profile: &StoredProfile) -> StoreResult<()> {
        self.write(async |conn| replication::upsert_profile(conn, profile).await).await
    }

    pub async fn get_profile(&self, id: &str) -> StoreResult<Option<StoredProfile>> {
        self.read(async |conn| replication::get_profile(conn, id).await).await
    }

    pub async fn list_profiles(&self) -> StoreResult<Vec<StoredProfile>> {
        self.read(async |conn| replication::list_profiles(conn).await).await
    }

    /// Deletes a profile with its status, retry set and failure log.
    pub async fn delete_profile(&self, id: &str) -> StoreResult<bool> {
        self.write(async |conn| replication::delete_profile(conn, id).await).await
    }

    pub async fn put_replication_status(&self, status: &EntitySync) -> StoreResult<()> {
        self.write(async |conn| replication::put_status(conn, status).await).await
    }

    pub async fn replication_status(&self, profile_id: &str) -> StoreResult<Vec<EntitySync>> {
        self.read(async |conn| replication::list_status(conn, profile_id).await).await
    }

    /// Puts a record into the retry set and appends a failure-log line.
    pub async fn record_replication_failure(&self, failure: &ReplicationFailure) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| replication::record_failure(conn, failure, now).await).await
    }

    /// Unresolved failures of a profile (only those due by `due_by`, when given).
    pub async fn pending_replication_failures(
        &self,
        profile_id: &str,
        due_by: Option<DateTime<Utc>>,
        limit: u64,
    ) -> StoreResult<Vec<ReplicationFailure>> {
        self.read(async |conn| replication::pending_failures(conn, profile_id, due_by, limit).await).await
    }

    pub async fn resolve_replication_failure(
        &self,
        profile_id: &str,
        entity: &str,
        record_id: uuid::Uuid,
    ) -> StoreResult<()> {
        let now = self.now();
        self.write(async |conn| replication::resolve_failure(conn, profile_id, entity, record_id, now).await).await
    }

    /// Makes every unresolved failure of a profile due now; answers how many there are.
    pub async fn retry_replication_failures_now(&self, profile_id: &str) -> StoreResult<u64> {
        let now = self.now();
        self.write(async |conn| replication::retry_failures_now(conn, profile_id, now).await).await
    }

    /// The newest `limit` failure-log lines of a profile, newest first.
    pub async fn replication_failure_log(&self, profile_id: &str, limit: u64) -> StoreResult<Vec<FailureLogEntry>> {
        self.read(async |conn| replication::failure_log(conn, profile_id, limit).await).await
    }

    /// Takes or renews a lease until `ttl` past the clock's time; answers whether `holder`
    /// holds it.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> StoreResult<bool> {
        let now = self.now();
        let expires_at = ferry_domain::later(now, ttl);
        self.write(async |conn| replication::acquire_lease(conn, name, holder, now, expires_at).await).await
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.write(async |conn| replication::release_lease(conn, name, holder).await).await
    }

    pub async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.read(async |conn| replication::get_setting(conn, name).await).await
    }

    pub async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        self.write(async |conn| replication::put_setting(conn, name, value).await).await
    }
}
