-- Enqueues without one lock shared by all of them.
--
-- Until now every enqueue bumped the single row of ferry_queue_clock first and held it until it
-- committed, so all enqueues of all nodes ran one after the other. Order only matters within a
-- lane, so an enqueue now takes a transaction-level advisory lock per lane it holds (two-int form,
-- class 1717924467, in a fixed order) and only then its sequence number from ferry_queue_seq:
-- within a lane, sequence numbers follow commit order; across lanes they are one total order, so
-- the oldest waiting message still heads every lane it holds. ferry_queue_clock stays for SQLite
-- (one writer) and is no longer used here.
--
-- Every node of a cluster must run this code at once (stop all, upgrade, start).

CREATE SEQUENCE ferry_queue_seq AS BIGINT MINVALUE 1;
SELECT setval('ferry_queue_seq', (SELECT seq FROM ferry_queue_clock WHERE id = 1) + 1, false);
