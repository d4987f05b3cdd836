//! [`Replication`]: the operations the API and the CLI call — profile CRUD and state changes,
//! test and validate, failures, status, resync and verify. Connection strings are encrypted
//! with the master key at rest and never returned.

use crate::engine::ReplicationEngine;
use crate::secrets::{self, stored_target_spec, target_spec};
use crate::verify::{VerifyReport, compare};
use ferry_domain::{
    ConnectionString, EntitySync, FailureLogEntry, Problem, Profile, ProfileDefinition, ProfileState, validate_profile,
};
use ferry_model::{Catalog, Entity};
use ferry_secrets::MasterKey;
use ferry_store::{Store, StoreError, StoredProfile};
use ferry_target::{Batch, Check, Target, TargetError, TargetSpec};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

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

/// One entity's replication status with its count of records in the retry set.
#[derive(Clone, Debug)]
pub struct EntityStatus {
    pub status: EntitySync,
    pub failed_records: u64,
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

    async fn stored(&self, id: &str) -> Result<StoredProfile, ReplicationError> {
        self.store.get_profile(id).await?.ok_or_else(|| ReplicationError::NotFound(id.to_string()))
    }

    fn checked(&self, mut definition: ProfileDefinition) -> Result<ProfileDefinition, ReplicationError> {
        let problems = validate_profile(&mut definition, &self.catalog);
        if problems.is_empty() { Ok(definition) } else { Err(ReplicationError::Invalid(problems)) }
    }

    async fn check_name_free(&self, name: &str, except_id: Option<&str>) -> Result<(), ReplicationError> {
        let taken =
            self.store.list_profiles().await?.into_iter().any(|p| {
                p.profile.definition.name.eq_ignore_ascii_case(name) && Some(p.profile.id.as_str()) != except_id
            });
        if taken { Err(ReplicationError::Conflict(format!("a profile named '{name}' exists already"))) } else { Ok(()) }
    }

    /// Creates a profile (inactive).
    pub async fn create(
        &self,
        definition: ProfileDefinition,
        connection: &ConnectionString,
    ) -> Result<Profile, ReplicationError> {
        let definition = self.checked(definition)?;
        if connection.as_reference().trim().is_empty() {
            return Err(ReplicationError::Invalid(vec![Problem {
                field: "ConnectionString",
                message: "the target connection string is required".into(),
            }]));
        }
        self.check_name_free(&definition.name, None).await?;
        let now = self.store.clock().now();
        let stored = StoredProfile {
            profile: Profile {
                id: Uuid::new_v4().to_string(),
                definition,
                state: ProfileState::Inactive,
                created_at: now,
                updated_at: now,
            },
            connection_encrypted: secrets::encrypt(&self.master, connection),
        };
        self.store.upsert_profile(&stored).await?;
        Ok(stored.profile)
    }

    /// Replaces a profile's definition (and connection string, when given).
    pub async fn update(
        &self,
        id: &str,
        definition: ProfileDefinition,
        connection: Option<&ConnectionString>,
    ) -> Result<Profile, ReplicationError> {
        let mut stored = self.stored(id).await?;
        let definition = self.checked(definition)?;
        self.check_name_free(&definition.name, Some(id)).await?;
        stored.profile.definition = definition;
        if let Some(connection) = connection.filter(|c| !c.as_reference().trim().is_empty()) {
            stored.connection_encrypted = secrets::encrypt(&self.master, connection);
        }
        stored.profile.updated_at = self.store.clock().now();
        self.store.upsert_profile(&stored).await?;
        self.engine.profiles_changed();
        Ok(stored.profile)
    }

    /// Whether the profile's stored connection string (or `env:VAR` reference) is `connection`,
    /// so callers that declare profiles (the config) can leave an unchanged one alone.
    pub async fn has_connection(&self, id: &str, connection: &ConnectionString) -> Result<bool, ReplicationError> {
        Ok(&secrets::decrypt(&self.master, &self.stored(id).await?)? == connection)
    }

    pub async fn get(&self, id: &str) -> Result<Profile, ReplicationError> {
        Ok(self.stored(id).await?.profile)
    }

    pub async fn list(&self) -> Result<Vec<Profile>, ReplicationError> {
        Ok(self.store.list_profiles().await?.into_iter().map(|p| p.profile).collect())
    }

    /// Deletes a profile. Like the Data Export Service, tables in the target are left in place.
    pub async fn delete(&self, id: &str) -> Result<(), ReplicationError> {
        self.stored(id).await?;
        self.store.delete_profile(id).await?;
        self.engine.profiles_changed();
        Ok(())
    }

    pub async fn set_state(&self, id: &str, state: ProfileState) -> Result<Profile, ReplicationError> {
        let mut stored = self.stored(id).await?;
        stored.profile.state = state;
        stored.profile.updated_at = self.store.clock().now();
        self.store.upsert_profile(&stored).await?;
        self.engine.profiles_changed();
        Ok(stored.profile)
    }

    fn entities(&self, definition: &ProfileDefinition) -> Vec<Arc<Entity>> {
        definition.entities.iter().filter_map(|n| self.catalog.by_any_name(n).cloned()).collect()
    }

    async fn run_checks(&self, spec: &TargetSpec, entities: &[Arc<Entity>]) -> Vec<Check> {
        match Target::connect(spec, self.store.clock().clone()).await {
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
        let stored = self.stored(id).await?;
        let spec = stored_target_spec(&self.master, &stored, &self.env)?;
        Ok(self.run_checks(&spec, &self.entities(&stored.profile.definition)).await)
    }

    /// Checks a profile before it is created: its rules, then the target.
    pub async fn validate(&self, mut definition: ProfileDefinition, connection: &ConnectionString) -> Vec<Check> {
        let problems = validate_profile(&mut definition, &self.catalog);
        let mut checks: Vec<Check> = problems
            .iter()
            .map(|p| Check { name: format!("profile {}", p.field), ok: false, detail: p.message.clone() })
            .collect();
        if problems.is_empty() {
            checks.push(Check { name: "profile".into(), ok: true, detail: "the profile's settings are valid".into() });
        }
        let spec = match target_spec(&definition, connection, &self.env) {
            Ok(spec) if !spec.connection_string.trim().is_empty() => spec,
            Ok(_) => {
                checks.push(Check { name: "connect".into(), ok: false, detail: "no connection string given".into() });
                return checks;
            }
            Err(e) => {
                checks.push(Check { name: "connect".into(), ok: false, detail: e.to_string() });
                return checks;
            }
        };
        checks.extend(self.run_checks(&spec, &self.entities(&definition)).await);
        checks
    }

    /// The newest failure-log lines, newest first.
    pub async fn failures(&self, id: &str, limit: u64) -> Result<Vec<FailureLogEntry>, ReplicationError> {
        self.stored(id).await?;
        Ok(self.store.replication_failure_log(id, limit).await?)
    }

    /// Retries every record in the retry set now; answers how many are in it.
    pub async fn resync(&self, id: &str) -> Result<u64, ReplicationError> {
        self.stored(id).await?;
        let n = self.store.retry_replication_failures_now(id).await?;
        self.engine.wake();
        Ok(n)
    }

    pub async fn status(&self, id: &str) -> Result<Vec<EntityStatus>, ReplicationError> {
        self.stored(id).await?;
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
        let stored = self.stored(id).await?;
        let spec = stored_target_spec(&self.master, &stored, &self.env)?;
        let target = Target::connect(&spec, self.store.clock().clone()).await?;
        let checkpoints = target.load_checkpoints(id).await?;
        let mut report = VerifyReport { repaired: repair, ..Default::default() };
        for entity in self.entities(&stored.profile.definition) {
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
