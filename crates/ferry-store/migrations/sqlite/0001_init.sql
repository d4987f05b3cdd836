-- ferry system tables (SQLite). Entity tables are created from the catalog at start-up.
-- Timestamps are text in one sortable UTC form (2024-01-31T12:00:00.000000Z); ids are text.

-- One sequence of change versions across all entities (SQLite has a single writer, so
-- versions are allocated and committed in order).
CREATE TABLE ferry_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO ferry_clock (id, version) VALUES (1, 0);

CREATE TABLE ferry_tombstones (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    company TEXT,
    key_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted_at TEXT NOT NULL
);
CREATE INDEX ix_ferry_tombstones_entity_version ON ferry_tombstones (entity, version);

CREATE TABLE ferry_apps (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    default_company TEXT,
    enabled INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('config', 'cli')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE ferry_signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
