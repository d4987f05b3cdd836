-- ferry system tables (PostgreSQL). Entity tables are created from the catalog at start-up.

-- One sequence of change versions across all entities. A writing transaction bumps it with
-- UPDATE … RETURNING and so holds this row until it commits: versions become visible in order.
CREATE TABLE ferry_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO ferry_clock (id, version) VALUES (1, 0);

CREATE TABLE ferry_tombstones (
    entity TEXT NOT NULL,
    id UUID NOT NULL,
    company TEXT COLLATE "C",
    key_json TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_ferry_tombstones_entity_version ON ferry_tombstones (entity, version);

CREATE TABLE ferry_apps (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    default_company TEXT,
    enabled BOOLEAN NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('config', 'cli')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ferry_signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);
