//! Storage for replication: profiles (their definition is versioned JSON, `persisted.rs`; their
//! connection string is encrypted by the caller), the per-entity status the engine reports, the
//! retry set and failure log, leases, and settings.

use crate::error::StoreResult;
use crate::literals::{Literal, LiteralColumn};
use crate::persisted;
use chrono::{DateTime, Utc};
use ferry_domain::{EntitySync, FailureLogEntry, Profile, ReplicationFailure};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt};
use uuid::Uuid;

/// A profile as stored: the profile and its encrypted target connection string.
#[derive(Clone, PartialEq)]
pub struct StoredProfile {
    pub profile: Profile,
    /// The target connection string (or `env:VAR` reference), encrypted with the master key.
    pub connection_encrypted: String,
}

impl std::fmt::Debug for StoredProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredProfile").field("profile", &self.profile).finish_non_exhaustive()
    }
}

const PROFILE_COLUMNS: &str = "id, name, definition, connection_encrypted, state, created_at, updated_at";
const PROFILE_TYPES: [ColType; 7] =
    [ColType::Text, ColType::Text, ColType::Text, ColType::Text, ColType::Text, ColType::DateTime, ColType::DateTime];

fn decode_profile(r: &[Value]) -> StoreResult<StoredProfile> {
    Ok(StoredProfile {
        profile: Profile {
            id: r.text(0)?,
            definition: persisted::profile_from_json(&r.text(2)?)?,
            state: r.literal(4)?,
            created_at: r.datetime(5)?,
            updated_at: r.datetime(6)?,
        },
        connection_encrypted: r.text(3)?,
    })
}

pub(crate) async fn upsert_profile(conn: &mut Conn, stored: &StoredProfile) -> StoreResult<()> {
    let p = &stored.profile;
    let sql = format!(
        "INSERT INTO ferry_profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, definition = excluded.definition, \
         connection_encrypted = excluded.connection_encrypted, state = excluded.state, updated_at = excluded.updated_at"
    );
    let args = vec![
        Value::String(p.id.clone()),
        Value::String(p.definition.name.clone()),
        Value::String(persisted::profile_json(&p.definition)),
        Value::String(stored.connection_encrypted.clone()),
        p.state.value(),
        Value::DateTime(p.created_at),
        Value::DateTime(p.updated_at),
    ];
    conn.execute(&sql, args).await?;
    Ok(())
}

pub(crate) async fn get_profile(conn: &mut Conn, id: &str) -> StoreResult<Option<StoredProfile>> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM ferry_profiles WHERE id = $1");
    let rows = conn.fetch(&sql, vec![Value::String(id.into())], &PROFILE_TYPES).await?;
    rows.first().map(|r| decode_profile(r)).transpose()
}

pub(crate) async fn list_profiles(conn: &mut Conn) -> StoreResult<Vec<StoredProfile>> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM ferry_profiles ORDER BY name");
    let rows = conn.fetch(&sql, (), &PROFILE_TYPES).await?;
    rows.iter().map(|r| decode_profile(r)).collect()
}

/// Deletes a profile with its status, retry set and failure log.
pub(crate) async fn delete_profile(conn: &mut Conn, id: &str) -> StoreResult<bool> {
    for table in ["ferry_replication_status", "ferry_replication_failures", "ferry_replication_failure_log"] {
        conn.execute(&format!("DELETE FROM {table} WHERE profile_id = $1"), vec![Value::String(id.into())]).await?;
    }
    let n = conn.execute("DELETE FROM ferry_profiles WHERE id = $1", vec![Value::String(id.into())]).await?;
    Ok(n > 0)
}

pub(crate) async fn put_status(conn: &mut Conn, s: &EntitySync) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_replication_status (profile_id, entity, phase, state, reason, rows_copied, rows_total, \
         last_version, lag_versions, lag_seconds, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (profile_id, entity) DO UPDATE SET phase = excluded.phase, state = excluded.state, \
         reason = excluded.reason, rows_copied = excluded.rows_copied, rows_total = excluded.rows_total, \
         last_version = excluded.last_version, lag_versions = excluded.lag_versions, \
         lag_seconds = excluded.lag_seconds, updated_at = excluded.updated_at",
        vec![
            Value::String(s.profile_id.clone()),
            Value::String(s.entity.clone()),
            s.phase.value(),
            s.state.value(),
            s.reason.clone().map_or(Value::Null, Value::String),
            Value::Int(s.rows_copied),
            Value::Int(s.rows_total),
            Value::Int(s.last_version),
            Value::Int(s.lag_versions),
            Value::Real(s.lag_seconds),
            Value::DateTime(s.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn list_status(conn: &mut Conn, profile_id: &str) -> StoreResult<Vec<EntitySync>> {
    let types = [
        ColType::Text,
        ColType::Text,
        ColType::Text,
        ColType::Text,
        ColType::Text,
        ColType::Int64,
        ColType::Int64,
        ColType::Int64,
        ColType::Int64,
        ColType::Real,
        ColType::DateTime,
    ];
    let rows = conn
        .fetch(
            "SELECT profile_id, entity, phase, state, reason, rows_copied, rows_total, last_version, lag_versions, \
             lag_seconds, updated_at FROM ferry_replication_status WHERE profile_id = $1 ORDER BY entity",
            vec![Value::String(profile_id.into())],
            &types,
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EntitySync {
                profile_id: r.text(0)?,
                entity: r.text(1)?,
                phase: r.literal(2)?,
                state: r.literal(3)?,
                reason: r.opt_text(4)?,
                rows_copied: r.int(5)?,
                rows_total: r.int(6)?,
                last_version: r.int(7)?,
                lag_versions: r.int(8)?,
                lag_seconds: r.real(9).unwrap_or(0.0),
                updated_at: r.datetime(10)?,
            })
        })
        .collect()
}

/// Puts a record into the retry set (or counts another failed attempt) and appends a line to
/// the failure log.
pub(crate) async fn record_failure(
    conn: &mut Conn,
    failure: &ReplicationFailure,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_replication_failures (profile_id, entity, record_id, change_type, reason, attempts, \
         first_failed_at, next_attempt_at, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) \
         ON CONFLICT (profile_id, entity, record_id) DO UPDATE SET change_type = excluded.change_type, \
         reason = excluded.reason, attempts = ferry_replication_failures.attempts + excluded.attempts, \
         next_attempt_at = excluded.next_attempt_at, resolved_at = NULL",
        vec![
            Value::String(failure.profile_id.clone()),
            Value::String(failure.entity.clone()),
            Value::Guid(failure.record_id),
            failure.change.value(),
            Value::String(failure.reason.clone()),
            Value::Int(failure.attempts),
            Value::DateTime(failure.first_failed_at),
            Value::DateTime(failure.next_attempt_at),
        ],
    )
    .await?;
    conn.execute(
        "INSERT INTO ferry_replication_failure_log (profile_id, entity, record_id, notified_at, change_type, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Value::String(failure.profile_id.clone()),
            Value::String(failure.entity.clone()),
            Value::String(failure.record_id.to_string()),
            Value::DateTime(now),
            failure.change.value(),
            Value::String(failure.reason.clone()),
        ],
    )
    .await?;
    Ok(())
}

const FAILURE_TYPES: [ColType; 9] = [
    ColType::Text,
    ColType::Text,
    ColType::Guid,
    ColType::Text,
    ColType::Text,
    ColType::Int64,
    ColType::DateTime,
    ColType::DateTime,
    ColType::DateTime,
];

fn decode_failure(r: &[Value]) -> StoreResult<ReplicationFailure> {
    Ok(ReplicationFailure {
        profile_id: r.text(0)?,
        entity: r.text(1)?,
        record_id: r.guid(2)?,
        change: r.literal(3)?,
        reason: r.text(4)?,
        attempts: r.int(5)?,
        first_failed_at: r.datetime(6)?,
        next_attempt_at: r.datetime(7)?,
        resolved_at: r.opt_datetime(8)?,
    })
}

/// Unresolved failures of a profile; only those due by `due_by` when it is given.
pub(crate) async fn pending_failures(
    conn: &mut Conn,
    profile_id: &str,
    due_by: Option<DateTime<Utc>>,
    limit: u64,
) -> StoreResult<Vec<ReplicationFailure>> {
    let mut args = vec![Value::String(profile_id.into())];
    let due = match due_by {
        Some(t) => {
            args.push(Value::DateTime(t));
            " AND next_attempt_at <= $2"
        }
        None => "",
    };
    let sql = format!(
        "SELECT profile_id, entity, record_id, change_type, reason, attempts, first_failed_at, next_attempt_at, \
         resolved_at FROM ferry_replication_failures WHERE profile_id = $1 AND resolved_at IS NULL{due} \
         ORDER BY next_attempt_at LIMIT {limit}"
    );
    let rows = conn.fetch(&sql, args, &FAILURE_TYPES).await?;
    rows.iter().map(|r| decode_failure(r)).collect()
}

pub(crate) async fn resolve_failure(
    conn: &mut Conn,
    profile_id: &str,
    entity: &str,
    record_id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE ferry_replication_failures SET resolved_at = $4 WHERE profile_id = $1 AND entity = $2 AND record_id = $3",
        vec![Value::String(profile_id.into()), Value::String(entity.into()), Value::Guid(record_id), Value::DateTime(at)],
    )
    .await?;
    Ok(())
}

/// Makes every unresolved failure of a profile due now (resync on demand).
pub(crate) async fn retry_failures_now(conn: &mut Conn, profile_id: &str, now: DateTime<Utc>) -> StoreResult<u64> {
    conn.execute(
        "UPDATE ferry_replication_failures SET next_attempt_at = $2 WHERE profile_id = $1 AND resolved_at IS NULL",
        vec![Value::String(profile_id.into()), Value::DateTime(now)],
    )
    .await
    .map_err(Into::into)
}

pub(crate) async fn failure_log(conn: &mut Conn, profile_id: &str, limit: u64) -> StoreResult<Vec<FailureLogEntry>> {
    let sql = format!(
        "SELECT entity, record_id, notified_at, change_type, reason FROM ferry_replication_failure_log \
         WHERE profile_id = $1 ORDER BY id DESC LIMIT {limit}"
    );
    let types = [ColType::Text, ColType::Text, ColType::DateTime, ColType::Text, ColType::Text];
    let rows = conn.fetch(&sql, vec![Value::String(profile_id.into())], &types).await?;
    rows.iter()
        .map(|r| {
            Ok(FailureLogEntry {
                entity: r.text(0)?,
                record_id: r.text(1)?,
                notified_at: r.datetime(2)?,
                change: r.literal(3)?,
                reason: r.text(4)?,
            })
        })
        .collect()
}

/// Takes or renews the lease `name` for `holder` until `expires_at`; answers whether `holder`
/// holds it now. A lease held by another holder is taken only once it has expired.
pub(crate) async fn acquire_lease(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<bool> {
    let rows = conn
        .fetch(
            "INSERT INTO ferry_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE ferry_leases.holder = excluded.holder OR ferry_leases.expires_at < $4 \
             RETURNING holder",
            vec![
                Value::String(name.into()),
                Value::String(holder.into()),
                Value::DateTime(expires_at),
                Value::DateTime(now),
            ],
            &[ColType::Text],
        )
        .await?;
    Ok(rows.first().and_then(|r| r.text(0).ok()).is_some_and(|h| h == holder))
}

pub(crate) async fn release_lease(conn: &mut Conn, name: &str, holder: &str) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM ferry_leases WHERE name = $1 AND holder = $2",
        vec![Value::String(name.into()), Value::String(holder.into())],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_setting(conn: &mut Conn, name: &str) -> StoreResult<Option<String>> {
    let rows = conn
        .fetch("SELECT value FROM ferry_settings WHERE name = $1", vec![Value::String(name.into())], &[ColType::Text])
        .await?;
    Ok(rows.first().map(|r| r.text(0)).transpose()?)
}

pub(crate) async fn put_setting(conn: &mut Conn, name: &str, value: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        vec![Value::String(name.into()), Value::String(value.into())],
    )
    .await?;
    Ok(())
}
