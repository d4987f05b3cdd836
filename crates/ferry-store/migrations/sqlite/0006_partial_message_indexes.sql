-- Partial indexes on ferry_messages (as postgres/0008): an import message has no delivery state,
-- rarely an external id, and no finish time until it ends, so its writes keep no entries in
-- these. Every query of them names the column with a comparison, which implies the predicate.
DROP INDEX ix_ferry_messages_dedupe;
CREATE INDEX ix_ferry_messages_dedupe ON ferry_messages (activity_id, external_id, content_hash)
    WHERE external_id IS NOT NULL;
DROP INDEX ix_ferry_messages_delivery;
CREATE INDEX ix_ferry_messages_delivery ON ferry_messages (activity_id, delivery_state, seq)
    WHERE delivery_state IS NOT NULL;
DROP INDEX ix_ferry_messages_finished;
CREATE INDEX ix_ferry_messages_finished ON ferry_messages (finished_at) WHERE finished_at IS NOT NULL;
