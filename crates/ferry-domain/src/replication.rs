//! Replication progress and failures: the checkpoint of one entity of one profile and how it
//! moves (an initial copy in key order as of one version, then every change after it), the
//! status a profile task reports, and the records a target refused. Pure.

use crate::rows::{KeyText, StoredRow};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where an entity's replication stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Copying every row as of the snapshot version, in key order.
    Initial,
    /// Following every change after the last applied version.
    Delta,
}

/// Progress of one entity of one profile; kept in the target in the same transaction as the
/// data it describes, and only ever moved forward.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub profile_id: String,
    /// Entity logical name.
    pub entity: String,
    pub phase: Phase,
    /// The version the initial copy is a copy as of.
    pub snapshot_version: i64,
    /// The key of the last row copied (initial phase).
    pub after_key: Option<KeyText>,
    /// Every change up to this version is in the target.
    pub last_version: i64,
    pub rows_copied: i64,
}

impl Checkpoint {
    /// An entity not copied yet: the initial copy will be a copy as of `current_version`.
    pub fn start(profile_id: &str, entity: &str, current_version: i64) -> Checkpoint {
        Checkpoint {
            profile_id: profile_id.to_owned(),
            entity: entity.to_owned(),
            phase: Phase::Initial,
            snapshot_version: current_version,
            after_key: None,
            last_version: current_version,
            rows_copied: 0,
        }
    }

    /// After a chunk of the initial copy of `copied` rows, asked for `chunk_rows`, whose last
    /// row has key `last_key`. A short chunk ends the copy: the entity then follows the changes
    /// after the snapshot version.
    pub fn after_chunk(&self, copied: usize, chunk_rows: usize, last_key: Option<KeyText>) -> Checkpoint {
        let mut next = self.clone();
        next.rows_copied += copied as i64;
        if copied < chunk_rows || last_key.is_none() {
            next.phase = Phase::Delta;
            next.after_key = None;
            next.last_version = self.snapshot_version;
        } else {
            next.after_key = last_key;
        }
        next
    }

    /// After applying every change up to `through_version` (never backwards).
    pub fn after_changes(&self, through_version: i64) -> Checkpoint {
        Checkpoint { last_version: self.last_version.max(through_version), ..self.clone() }
    }
}

/// How a profile task is doing with one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    Running,
    /// Waiting to reconnect to a target that is down (the reason says why).
    Paused,
}

/// The status a profile task reports for one entity.
#[derive(Clone, Debug, PartialEq)]
pub struct EntitySync {
    pub profile_id: String,
    /// Entity logical name.
    pub entity: String,
    pub phase: Phase,
    pub state: SyncState,
    pub reason: Option<String>,
    pub rows_copied: i64,
    pub rows_total: i64,
    pub last_version: i64,
    pub lag_versions: i64,
    pub lag_seconds: f64,
    pub updated_at: DateTime<Utc>,
}

/// What a change to a record was (the Data Export Service's change types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// Copied by the initial copy.
    InitialExport,
    New,
    Update,
    Delete,
}

impl ChangeType {
    /// A row written after the initial copy: new if it was never changed since it was created.
    pub fn of(row: &StoredRow) -> ChangeType {
        if row.created_at == row.modified_at { ChangeType::New } else { ChangeType::Update }
    }
}

/// A record the target refused: kept in the retry set until it is applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationFailure {
    pub profile_id: String,
    /// Entity logical name.
    pub entity: String,
    pub record_id: Uuid,
    pub change: ChangeType,
    pub reason: String,
    pub attempts: i64,
    pub first_failed_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One line of a profile's append-only failure log.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureLogEntry {
    pub entity: String,
    pub record_id: String,
    pub notified_at: DateTime<Utc>,
    pub change: ChangeType,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> Option<KeyText> {
        Some(KeyText { company: Some("usmf".into()), values: vec![v.into()] })
    }

    #[test]
    fn an_initial_copy_moves_key_by_key_then_follows_changes() {
        let start = Checkpoint::start("p", "customerv3", 40);
        let full = start.after_chunk(100, 100, key("C100"));
        assert_eq!((full.phase, full.rows_copied, full.after_key.clone()), (Phase::Initial, 100, key("C100")));
        assert_eq!(full.last_version, 40);
        let last = full.after_chunk(7, 100, key("C107"));
        assert_eq!((last.phase, last.rows_copied, last.after_key.clone()), (Phase::Delta, 107, None));
        assert_eq!(last.last_version, 40, "changes after the snapshot version follow");
        let empty = start.after_chunk(0, 100, None);
        assert_eq!((empty.phase, empty.rows_copied), (Phase::Delta, 0));
    }

    #[test]
    fn checkpoints_never_move_backwards() {
        let delta = Checkpoint::start("p", "e", 10).after_chunk(0, 5, None);
        assert_eq!(delta.after_changes(25).last_version, 25);
        assert_eq!(delta.after_changes(25).after_changes(20).last_version, 25);
    }
}
