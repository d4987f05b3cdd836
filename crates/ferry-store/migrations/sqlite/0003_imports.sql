-- Recurring import: data projects and recurring jobs (definitions are JSON owned by ferry-import),
-- the message queue with its lanes, per-entity results and per-row errors.

CREATE TABLE ferry_projects (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    origin TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE ferry_jobs (
    activity_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    definition TEXT NOT NULL,
    origin TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One row; every enqueue bumps it first, so message sequence numbers follow commit order.
CREATE TABLE ferry_queue_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO ferry_queue_clock (id, seq) VALUES (1, 0);

CREATE TABLE ferry_messages (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    execution_id TEXT NOT NULL UNIQUE,
    activity_id TEXT NOT NULL,
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    entity TEXT,
    company TEXT,
    external_id TEXT,
    content_hash TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    enqueued_by TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL,
    lease_holder TEXT,
    lease_until TEXT,
    not_before TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    heartbeat_at TEXT,
    rows_read INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    rows_inserted INTEGER NOT NULL,
    rows_updated INTEGER NOT NULL,
    rows_unchanged INTEGER NOT NULL,
    warnings TEXT
);
CREATE INDEX ix_ferry_messages_state ON ferry_messages (state, seq);
CREATE INDEX ix_ferry_messages_dedupe ON ferry_messages (activity_id, external_id, content_hash);

-- The lanes a waiting or running message holds; removed when it reaches a final state. The
-- head of a lane is its smallest seq; a message runs only when it heads every lane it holds.
CREATE TABLE ferry_message_lanes (
    lane TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (lane, seq)
);
CREATE INDEX ix_ferry_message_lanes_message ON ferry_message_lanes (message_id);

CREATE TABLE ferry_message_entities (
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    entity TEXT NOT NULL,
    company TEXT,
    staging_status TEXT NOT NULL,
    target_status TEXT NOT NULL,
    rows_read INTEGER NOT NULL,
    rows_staged INTEGER NOT NULL,
    staging_errors INTEGER NOT NULL,
    rows_inserted INTEGER NOT NULL,
    rows_updated INTEGER NOT NULL,
    rows_unchanged INTEGER NOT NULL,
    target_errors INTEGER NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (message_id, position)
);

CREATE TABLE ferry_import_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    stage TEXT NOT NULL,
    row_number INTEGER,
    record_key TEXT,
    field TEXT,
    code TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX ix_ferry_import_errors_message ON ferry_import_errors (message_id, id);
