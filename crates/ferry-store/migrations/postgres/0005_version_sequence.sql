-- Change versions without a lock held through every writing transaction.
--
-- Until now a writer bumped the single row of ferry_clock and held it until it committed, so
-- every writing transaction of every node ran one after the other. Versions now come from a
-- sequence, and what readers may see is computed instead of serialised:
--
-- * ferry_take_versions(n) hands out n consecutive versions and takes a transaction-level
--   advisory lock keyed by the first of them (the bigint form: objsubid = 1 in pg_locks). The lock
--   lives until the transaction commits or rolls back, and PostgreSQL releases it only after the
--   commit is visible to new snapshots.
-- * ferry_visible_version() answers the largest V such that every version <= V belongs to a
--   transaction that has ended: the sequence's last value, or one below the oldest version still
--   locked by a running transaction, whichever is smaller.
--
-- Both take the session-level advisory "gate" lock (1717924466, 1) (the two-int form:
-- objsubid = 2) around their few statements, so a reader never sees a version handed out
-- whose lock is not taken yet, and consecutive versions are never interleaved. The gate is held
-- for microseconds, never across a statement of the caller.
--
-- Every node of a cluster must run this code at once (stop all, upgrade, start): a node of the
-- previous release would still take versions from ferry_clock.

CREATE SEQUENCE ferry_versions AS BIGINT MINVALUE 1 CACHE 1;
SELECT setval('ferry_versions', (SELECT version FROM ferry_clock WHERE id = 1) + 1, false);

CREATE FUNCTION ferry_take_versions(n BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    first_version BIGINT;
BEGIN
    IF n < 1 THEN
        RAISE EXCEPTION 'ferry_take_versions: n must be at least 1, not %', n;
    END IF;
    PERFORM pg_advisory_lock(1717924466, 1);
    BEGIN
        first_version := nextval('ferry_versions');
        IF n > 1 THEN
            PERFORM setval('ferry_versions', first_version + n - 1);
        END IF;
        PERFORM pg_advisory_xact_lock_shared(first_version);
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(1717924466, 1);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(1717924466, 1);
    RETURN first_version;
END
$$;

CREATE FUNCTION ferry_visible_version() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    last_taken BIGINT;
    taken BOOLEAN;
    oldest_running BIGINT;
BEGIN
    PERFORM pg_advisory_lock(1717924466, 1);
    BEGIN
        SELECT last_value, is_called INTO last_taken, taken FROM ferry_versions;
        SELECT min((l.classid::bigint << 32) | l.objid::bigint) INTO oldest_running
          FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(1717924466, 1);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(1717924466, 1);
    IF NOT taken THEN
        last_taken := last_taken - 1;
    END IF;
    IF oldest_running IS NOT NULL AND oldest_running - 1 < last_taken THEN
        RETURN oldest_running - 1;
    END IF;
    RETURN last_taken;
END
$$;
