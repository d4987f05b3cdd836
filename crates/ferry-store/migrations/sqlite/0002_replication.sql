-- Replication (data export): profiles, their per-entity status, the failure log and retry set,
-- and leases that keep each profile running on exactly one node.

CREATE TABLE ferry_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    connection_encrypted TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE ferry_replication_status (
    profile_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    rows_copied INTEGER NOT NULL,
    rows_total INTEGER NOT NULL,
    last_version INTEGER NOT NULL,
    lag_versions INTEGER NOT NULL,
    lag_seconds REAL NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (profile_id, entity)
);

-- The retry set: one row per record that failed to apply, until it succeeds.
CREATE TABLE ferry_replication_failures (
    profile_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    change_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failed_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    resolved_at TEXT,
    PRIMARY KEY (profile_id, entity, record_id)
);

-- The failure log: append-only lines, as the Data Export Service wrote them.
CREATE TABLE ferry_replication_failure_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    notified_at TEXT NOT NULL,
    change_type TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX ix_ferry_replication_failure_log_profile ON ferry_replication_failure_log (profile_id, id);

CREATE TABLE ferry_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE ferry_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
