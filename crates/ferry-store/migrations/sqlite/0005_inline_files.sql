-- Small files (an enqueued body, a staging file of at most 64 KiB) kept in the database instead
-- of the blob store: written in the transaction that enqueues or ends their message, so a small
-- message creates no file at all. `content` is base64; `key` is the blob key the file would have.

CREATE TABLE ferry_inline_files (
    key TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX ix_ferry_inline_files_message ON ferry_inline_files (message_id);
