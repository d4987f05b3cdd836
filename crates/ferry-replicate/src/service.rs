//! The replication operations the API and the CLI call: profile CRUD and state changes, test
//! and validate, failures, status, resync and verify. Connection strings are encrypted with
//! the master key at rest and never returned.

use crate::engine::ReplicationEngine;
use crate::profile::{self, Problem, ProfileDefinition, ProfileState};
use crate::target::{Batch, Check, Target, TargetError, TargetSpec};
use chrono::{DateTime, Utc};
use ferry_auth::MasterKey;
use ferry_model::{Catalog, Entity};
use ferry_store::{EntityStatusRecord, FailureLogLine, ProfileRecord, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

const CONNECTION_PURPOSE: &str = "ferry-profile-connection";

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("the profile is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("no profile with id '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("target: {0}")]
    Target(#[from] TargetError),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secret(String),
}

/// A profile as the API shows it (never with its connection string).
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: String,
    pub definition: ProfileDefinition,
    pub state: ProfileState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One entity's replication status with its count of records in the retry set.
#[derive(Clone, Debug)]
pub struct EntityStatus {
    pub status: EntityStatusRecord,
    pub failed_records: u64,
}

/// One failure-log line in the Data Export Service's text format (newline included):
/// `Entity: …, RecordId: …, NotificationTime: …, ChangeType: …, FailureReason: …`.
pub fn failure_log_text(line: &FailureLogLine) -> String {
    format!(
        "Entity: {}, RecordId: {}, NotificationTime: {}, ChangeType: {}, FailureReason: {}\n",
        line.entity,
        line.record_id,
        line.notified_at.format("%m/%d/%Y %H:%M:%S"),
        line.change_type,
        line.reason.replace(['\n', '\r'], " ")
    )
}

/// What `verify` found for one entity.
#[derive(Clone, Debug, Default)]
pub struct EntityVerify {
    pub entity: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Key ranges (by the first hex digit of `Id`) compared, and those whose checksum differed.
    pub ranges: u32,
    pub ranges_differing: u32,
    pub missing: Vec<Uuid>,
    pub extra: Vec<Uuid>,
    pub outdated: Vec<Uuid>,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub entities: Vec<EntityVerify>,
    pub repaired: bool,
}

impl VerifyReport {
    pub fn differences(&self) -> usize {
        self.entities.iter().map(|e| e.missing.len() + e.extra.len() + e.outdated.len()).sum()
    }
}

pub struct Replication {
    store: Store,
    catalog: Arc<Catalog>,
    master: Arc<MasterKey>,
    engine: ReplicationEngine,
    env: Arc<Vec<(String, String)>>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication").finish_non_exhaustive()
    }
}

/// Decrypts a profile's connection string and resolves an `env:VAR` reference.
pub(crate) fn target_spec(
    record: &ProfileRecord,
    definition: &ProfileDefinition,
    master: &MasterKey,
    env: &[(String, String)],
) -> Result<TargetSpec, ReplicationError> {
    let plain = master
        .decrypt(CONNECTION_PURPOSE, &record.connection_encrypted)
        .map_err(|e| ReplicationError::Secret(e.to_string()))?;
    let text =
        String::from_utf8(plain).map_err(|_| ReplicationError::Secret("connection string is not text".into()))?;
    let connection_string = resolve_reference(&text, env)?;
    Ok(TargetSpec {
        kind: definition.target_kind,
        connection_string,
        schema: definition.schema_name.clone(),
        table_prefix: definition.table_prefix.clone(),
        write_delete_log: definition.write_delete_log,
    })
}

fn resolve_reference(text: &str, env: &[(String, String)]) -> Result<String, ReplicationError> {
    match text.strip_prefix("env:") {
        Some(var) => env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()).ok_or_else(|| {
            ReplicationError::Secret(format!(
                "the connection string refers to environment variable {var}, which is not set"
            ))
        }),
        None => Ok(text.to_string()),
    }
}

pub(crate) fn decode_profile(record: &ProfileRecord) -> Result<Profile, ReplicationError> {
    let definition: ProfileDefinition = serde_json::from_str(&record.definition)
        .map_err(|e| ReplicationError::Conflict(format!("stored profile {} is unreadable: {e}", record.id)))?;
    Ok(Profile {
        id: record.id.clone(),
        definition,
        state: ProfileState::parse(&record.state).unwrap_or(ProfileState::Inactive),
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

impl Replication {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        master: Arc<MasterKey>,
        engine: ReplicationEngine,
        env: Vec<(String, String)>,
    ) -> Replication {
        Replication { store, catalog, master, engine, env: Arc::new(env) }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    async fn record(&self, id: &str) -> Result<ProfileRecord, ReplicationError> {
        self.store.get_profile(id).await?.ok_or_else(|| ReplicationError::NotFound(id.to_string()))
    }

    fn checked(&self, mut definition: ProfileDefinition) -> Result<ProfileDefinition, ReplicationError> {
        let problems = profile::validate(&mut definition, &self.catalog);
        if problems.is_empty() { Ok(definition) } else { Err(ReplicationError::Invalid(problems)) }
    }

    async fn check_name_free(&self, name: &str, except_id: Option<&str>) -> Result<(), ReplicationError> {
        let taken = self
            .store
            .list_profiles()
            .await?
            .into_iter()
            .any(|p| p.name.eq_ignore_ascii_case(name) && Some(p.id.as_str()) != except_id);
        if taken { Err(ReplicationError::Conflict(format!("a profile named '{name}' exists already"))) } else { Ok(()) }
    }

    /// Creates a profile (inactive). `connection` is a connection string or `env:VAR`.
    pub async fn create(&self, definition: ProfileDefinition, connection: &str) -> Result<Profile, ReplicationError> {
        let definition = self.checked(definition)?;
        if connection.trim().is_empty() {
            return Err(ReplicationError::Invalid(vec![Problem {
                field: "ConnectionString",
                message: "the target connection string is required".into(),
            }]));
        }
        self.check_name_free(&definition.name, None).await?;
        let now = Utc::now();
        let record = ProfileRecord {
            id: Uuid::new_v4().to_string(),
            name: definition.name.clone(),
            definition: serde_json::to_string(&definition).expect("definition serializes"),
            connection_encrypted: self.master.encrypt(CONNECTION_PURPOSE, connection.trim().as_bytes()),
            state: ProfileState::Inactive.as_str().into(),
            created_at: now,
            updated_at: now,
        };
        self.store.upsert_profile(&record).await?;
        decode_profile(&record)
    }

    /// Replaces a profile's definition (and connection string, when given).
    pub async fn update(
        &self,
        id: &str,
        definition: ProfileDefinition,
        connection: Option<&str>,
    ) -> Result<Profile, ReplicationError> {
        let mut record = self.record(id).await?;
        let definition = self.checked(definition)?;
        self.check_name_free(&definition.name, Some(id)).await?;
        record.name = definition.name.clone();
        record.definition = serde_json::to_string(&definition).expect("definition serializes");
        if let Some(connection) = connection.filter(|c| !c.trim().is_empty()) {
            record.connection_encrypted = self.master.encrypt(CONNECTION_PURPOSE, connection.trim().as_bytes());
        }
        record.updated_at = Utc::now();
        self.store.upsert_profile(&record).await?;
        self.engine.profiles_changed();
        decode_profile(&record)
    }

    /// Whether the profile's stored connection string (or `env:VAR` reference) is `connection`,
    /// so callers that declare profiles (the config) can leave an unchanged one alone.
    pub async fn has_connection(&self, id: &str, connection: &str) -> Result<bool, ReplicationError> {
        let record = self.record(id).await?;
        let plain = self
            .master
            .decrypt(CONNECTION_PURPOSE, &record.connection_encrypted)
            .map_err(|e| ReplicationError::Secret(e.to_string()))?;
        Ok(plain == connection.trim().as_bytes())
    }

    pub async fn get(&self, id: &str) -> Result<Profile, ReplicationError> {
        decode_profile(&self.record(id).await?)
    }

    pub async fn list(&self) -> Result<Vec<Profile>, ReplicationError> {
        self.store.list_profiles().await?.iter().map(decode_profile).collect()
    }

    /// Deletes a profile. Like the Data Export Service, tables in the target are left in place.
    pub async fn delete(&self, id: &str) -> Result<(), ReplicationError> {
        self.record(id).await?;
        self.store.delete_profile(id).await?;
        self.engine.profiles_changed();
        Ok(())
    }

    pub async fn set_state(&self, id: &str, state: ProfileState) -> Result<Profile, ReplicationError> {
        let mut record = self.record(id).await?;
        record.state = state.as_str().into();
        record.updated_at = Utc::now();
        self.store.upsert_profile(&record).await?;
        self.engine.profiles_changed();
        decode_profile(&record)
    }

    fn entities(&self, definition: &ProfileDefinition) -> Vec<Arc<Entity>> {
        definition.entities.iter().filter_map(|n| self.catalog.by_any_name(n).cloned()).collect()
    }

    async fn run_checks(&self, spec: &TargetSpec, entities: &[Arc<Entity>]) -> Vec<Check> {
        match Target::connect(spec).await {
            Ok(target) => {
                let checks = target.check(entities).await;
                target.close().await;
                checks
            }
            Err(e) => vec![Check { name: "connect".into(), ok: false, detail: e.to_string() }],
        }
    }

    /// Runs every check against an existing profile's target.
    pub async fn test(&self, id: &str) -> Result<Vec<Check>, ReplicationError> {
        let record = self.record(id).await?;
        let profile = decode_profile(&record)?;
        let spec = target_spec(&record, &profile.definition, &self.master, &self.env)?;
        Ok(self.run_checks(&spec, &self.entities(&profile.definition)).await)
    }

    /// Checks a profile before it is created: its rules, then the target.
    pub async fn validate(&self, mut definition: ProfileDefinition, connection: &str) -> Vec<Check> {
        let problems = profile::validate(&mut definition, &self.catalog);
        let mut checks: Vec<Check> = problems
            .iter()
            .map(|p| Check { name: format!("profile {}", p.field), ok: false, detail: p.message.clone() })
            .collect();
        if problems.is_empty() {
            checks.push(Check { name: "profile".into(), ok: true, detail: "the profile's settings are valid".into() });
        }
        let connection = match resolve_reference(connection.trim(), &self.env) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => {
                checks.push(Check { name: "connect".into(), ok: false, detail: "no connection string given".into() });
                return checks;
            }
            Err(e) => {
                checks.push(Check { name: "connect".into(), ok: false, detail: e.to_string() });
                return checks;
            }
        };
        let spec = TargetSpec {
            kind: definition.target_kind,
            connection_string: connection,
            schema: definition.schema_name.clone(),
            table_prefix: definition.table_prefix.clone(),
            write_delete_log: definition.write_delete_log,
        };
        checks.extend(self.run_checks(&spec, &self.entities(&definition)).await);
        checks
    }

    /// The newest failure-log lines, newest first.
    pub async fn failures(&self, id: &str, limit: u64) -> Result<Vec<FailureLogLine>, ReplicationError> {
        self.record(id).await?;
        Ok(self.store.replication_failure_log(id, limit).await?)
    }

    /// Retries every record in the retry set now; answers how many are in it.
    pub async fn resync(&self, id: &str) -> Result<u64, ReplicationError> {
        self.record(id).await?;
        let n = self.store.retry_replication_failures_now(id).await?;
        self.engine.wake();
        Ok(n)
    }

    pub async fn status(&self, id: &str) -> Result<Vec<EntityStatus>, ReplicationError> {
        self.record(id).await?;
        let failures = self.store.pending_replication_failures(id, None, 100_000).await?;
        let mut failed: BTreeMap<String, u64> = BTreeMap::new();
        for f in failures {
            *failed.entry(f.entity).or_default() += 1;
        }
        Ok(self
            .store
            .replication_status(id)
            .await?
            .into_iter()
            .map(|status| EntityStatus { failed_records: failed.get(&status.entity).copied().unwrap_or(0), status })
            .collect())
    }

    /// Compares source and target (row counts, then a checksum of `(Id, versionnumber)` per key
    /// range) and, with `repair`, re-copies missing or outdated rows and removes extra ones.
    pub async fn verify(&self, id: &str, repair: bool) -> Result<VerifyReport, ReplicationError> {
        let record = self.record(id).await?;
        let profile = decode_profile(&record)?;
        let spec = target_spec(&record, &profile.definition, &self.master, &self.env)?;
        let target = Target::connect(&spec).await?;
        let checkpoints = target.load_checkpoints(id).await?;
        let mut report = VerifyReport { repaired: repair, ..Default::default() };
        for entity in self.entities(&profile.definition) {
            let source = self.store.row_versions(&entity).await?;
            let copy = target.row_versions(&entity).await?;
            let mut result = compare(&entity.logical_name, &source, &copy);
            if repair {
                if !result.extra.is_empty() {
                    target.delete_rows(&entity, &result.extra).await?;
                }
                let checkpoint = checkpoints.iter().find(|c| c.entity == entity.logical_name).cloned();
                if let Some(checkpoint) = checkpoint {
                    for chunk in result.missing.iter().chain(&result.outdated).collect::<Vec<_>>().chunks(500) {
                        let mut batch = Batch::default();
                        for &&row_id in chunk {
                            if let Some(row) = self.store.get_by_id(&entity, row_id).await? {
                                batch.upserts.push(row);
                            }
                        }
                        target
                            .apply(&entity, &batch, &checkpoint)
                            .await
                            .map_err(|e| ReplicationError::Target(TargetError::Rejected(e.to_string())))?;
                    }
                }
            }
            result.source_rows = source.len() as u64;
            result.target_rows = copy.len() as u64;
            report.entities.push(result);
        }
        target.close().await;
        Ok(report)
    }
}

/// Compares sorted `(Id, version)` lists: per key range (first hex digit of the Id) a count
/// and checksum, then the exact differences inside ranges that differ.
fn compare(entity: &str, source: &[(Uuid, i64)], target: &[(Uuid, i64)]) -> EntityVerify {
    fn range(id: &Uuid) -> usize {
        (id.as_bytes()[0] >> 4) as usize
    }
    fn checksums(rows: &[(Uuid, i64)]) -> [(u64, u64); 16] {
        let mut sums = [(0u64, 0u64); 16];
        for (id, version) in rows {
            let r = &mut sums[range(id)];
            r.0 += 1;
            let h = (id.as_u128() as u64)
                ^ ((id.as_u128() >> 64) as u64)
                ^ (*version as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            r.1 = r.1.wrapping_add(h.rotate_left(17).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        }
        sums
    }
    let (a, b) = (checksums(source), checksums(target));
    let differing: Vec<usize> = (0..16).filter(|&i| a[i] != b[i]).collect();
    let mut result = EntityVerify {
        entity: entity.to_string(),
        ranges: 16,
        ranges_differing: differing.len() as u32,
        ..Default::default()
    };
    if differing.is_empty() {
        return result;
    }
    let source_map: BTreeMap<Uuid, i64> =
        source.iter().filter(|(id, _)| differing.contains(&range(id))).copied().collect();
    let target_map: BTreeMap<Uuid, i64> =
        target.iter().filter(|(id, _)| differing.contains(&range(id))).copied().collect();
    for (id, version) in &source_map {
        match target_map.get(id) {
            None => result.missing.push(*id),
            Some(v) if v != version => result.outdated.push(*id),
            Some(_) => {}
        }
    }
    result.extra = target_map.keys().filter(|id| !source_map.contains_key(id)).copied().collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_missing_extra_and_outdated_rows() {
        let ids: Vec<Uuid> = (0..40u128).map(|i| Uuid::from_u128(i << 122 | i)).collect();
        let source: Vec<(Uuid, i64)> = ids[..30].iter().map(|id| (*id, 1)).collect();
        let mut target = source.clone();
        target.remove(3);
        target[10].1 = 0;
        target.push((ids[35], 1));
        target.sort();
        let r = compare("x", &source, &target);
        assert_eq!(r.missing, vec![ids[3]]);
        assert_eq!(r.outdated, vec![ids[11]]);
        assert_eq!(r.extra, vec![ids[35]]);
        assert!(r.ranges_differing >= 1 && r.ranges_differing <= 3);
        assert_eq!(compare("x", &source, &source).ranges_differing, 0);
    }
}
