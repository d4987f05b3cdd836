-- Partial indexes on ferry_messages. An import message has no delivery state, rarely an external
-- id, and no finish time until it ends; it is written three times (enqueue, claim, end), and
-- since `state` is indexed none of those updates is HOT: each wrote an entry into every index,
-- these three included. Every query of these indexes names its column with a strict comparison
-- (`external_id = $n`, `delivery_state IN (…)`, `finished_at < $n`), which implies the
-- predicate, so the planner uses them as before.
DROP INDEX ix_ferry_messages_dedupe;
CREATE INDEX ix_ferry_messages_dedupe ON ferry_messages (activity_id, external_id, content_hash)
    WHERE external_id IS NOT NULL;
DROP INDEX ix_ferry_messages_delivery;
CREATE INDEX ix_ferry_messages_delivery ON ferry_messages (activity_id, delivery_state, seq)
    WHERE delivery_state IS NOT NULL;
DROP INDEX ix_ferry_messages_finished;
CREATE INDEX ix_ferry_messages_finished ON ferry_messages (finished_at) WHERE finished_at IS NOT NULL;
