-- Recurring export and the package API: a message is an import or an export run; an export's
-- produced file is delivered through dequeue / download / ack; incremental exports keep a
-- watermark per scope and entity; recurring export jobs keep their next run time; a message may
-- be a re-run of another and may stop after staging (package API, execute = false).

ALTER TABLE ferry_messages ADD COLUMN operation TEXT NOT NULL DEFAULT 'import';
ALTER TABLE ferry_messages ADD COLUMN execute BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE ferry_messages ADD COLUMN rerun_of TEXT;
ALTER TABLE ferry_messages ADD COLUMN delivery_state TEXT;
ALTER TABLE ferry_messages ADD COLUMN pop_receipt TEXT;
ALTER TABLE ferry_messages ADD COLUMN visible_at TIMESTAMPTZ;
ALTER TABLE ferry_messages ADD COLUMN last_dequeued_at TIMESTAMPTZ;
ALTER TABLE ferry_messages ADD COLUMN dequeue_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ferry_messages ADD COLUMN downloaded_at TIMESTAMPTZ;
ALTER TABLE ferry_messages ADD COLUMN acked_at TIMESTAMPTZ;
ALTER TABLE ferry_messages ADD COLUMN acked_by TEXT;
CREATE INDEX ix_ferry_messages_delivery ON ferry_messages (activity_id, delivery_state, seq);
CREATE INDEX ix_ferry_messages_finished ON ferry_messages (finished_at);

CREATE TABLE ferry_export_watermarks (
    scope TEXT NOT NULL,
    entity TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, entity)
);

CREATE TABLE ferry_export_schedule (
    activity_id TEXT PRIMARY KEY,
    next_run_at TIMESTAMPTZ NOT NULL
);

-- What a package-API execution asked for (preview rows, delta, entities): versioned JSON.
ALTER TABLE ferry_messages ADD COLUMN parameters TEXT;
