//! The store's own data types: page requests over an entity, client apps and signing keys.
//! Entity rows and changes are the domain's (`ferry_domain::{StoredRow, RowKey, …}`).

use chrono::{DateTime, Utc};
use ferry_domain::{CompanyScope, RowKey};
use ferry_query::{BoundExpr, Column};

/// A page request over one entity.
#[derive(Clone, Debug)]
pub struct RowQuery {
    pub scope: CompanyScope,
    pub filter: Option<BoundExpr>,
    /// Requested order; the natural key always follows as a tie-breaker.
    pub order: Vec<(Column, bool)>,
    /// Keyset paging: only rows after this key in natural-key order (only with empty `order`).
    pub after: Option<RowKey>,
    /// Only rows whose change version is above the first and at most the second.
    pub versions: Option<(i64, i64)>,
    pub offset: u64,
    pub limit: u64,
}

/// Where a client app was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppOrigin {
    Config,
    Cli,
}

impl AppOrigin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AppOrigin::Config => "config",
            AppOrigin::Cli => "cli",
        }
    }
}

/// A client app allowed to obtain tokens (client-credentials grant).
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    pub client_id: String,
    pub name: String,
    /// argon2 PHC hash of the secret; the secret itself is never stored.
    pub secret_hash: String,
    pub roles: Vec<String>,
    pub default_company: Option<String>,
    pub enabled: bool,
    pub origin: AppOrigin,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("default_company", &self.default_company)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A token signing key. The private key is stored encrypted by the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// What a run recorded about itself since its last write — entity results (started, finished)
/// and rejected rows — written in the same transaction as its next batch or its end, so a small
/// message costs one transaction per batch plus one to end, not one per record.
#[derive(Clone, Debug, Default)]
pub struct RunRecords {
    pub results: Vec<ferry_domain::EntityResult>,
    pub errors: Vec<ferry_domain::ErrorRecord>,
    /// Small files of the run (staging files), kept in the database.
    pub files: Vec<crate::InlineFile>,
}

impl RunRecords {
    /// Keeps the latest result of each entity position.
    pub fn put_result(&mut self, result: ferry_domain::EntityResult) {
        self.results.retain(|r| r.position != result.position);
        self.results.push(result);
    }

    /// Keeps the latest content of each file.
    pub fn put_file(&mut self, file: crate::InlineFile) {
        self.files.retain(|f| f.key != file.key);
        self.files.push(file);
    }

    /// Takes `other`'s records in front of these (they were recorded earlier).
    pub fn put_back(&mut self, other: RunRecords) {
        let later = std::mem::replace(self, other);
        for r in later.results {
            self.put_result(r);
        }
        self.errors.extend(later.errors);
        for f in later.files {
            self.put_file(f);
        }
    }

    /// Adds the statements that write these records to `batch`.
    pub(crate) fn push_onto(&self, batch: &mut ferry_sql::Batch) {
        for r in &self.results {
            crate::messages::put_entity_result(batch, r);
        }
        crate::messages::add_errors(batch, &self.errors);
        for file in &self.files {
            crate::inline_files::put(batch, file);
        }
    }
}
