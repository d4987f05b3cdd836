-- Writers taking one version no longer wait for each other at the gate.
--
-- ferry_take_versions (migration 0005) took the session-level gate lock (1717924466, 1)
-- exclusively around its few statements. Under 16 concurrent one-row writers that wait was most
-- of the function's cost: pgbench running the function alone made 25k calls/s with the gate
-- exclusive and 50k with it shared, and a one-row INSERT that takes its version 11k/s against
-- 14–15k/s.
--
-- The gate only has to keep two things apart:
-- * a reader (ferry_visible_version, still exclusive) from a writer between its nextval and the
--   advisory lock on the version it got, and
-- * a writer taking several versions (nextval, then setval past them) from any other writer,
--   which would otherwise get a version inside that range.
-- A writer taking one version calls nextval only, so two of them cannot interleave: they take
-- the gate shared. A writer taking several still takes it exclusively.

CREATE OR REPLACE FUNCTION ferry_take_versions(n BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    first_version BIGINT;
BEGIN
    IF n < 1 THEN
        RAISE EXCEPTION 'ferry_take_versions: n must be at least 1, not %', n;
    END IF;
    IF n = 1 THEN
        PERFORM pg_advisory_lock_shared(1717924466, 1);
    ELSE
        PERFORM pg_advisory_lock(1717924466, 1);
    END IF;
    BEGIN
        first_version := nextval('ferry_versions');
        IF n > 1 THEN
            PERFORM setval('ferry_versions', first_version + n - 1);
        END IF;
        PERFORM pg_advisory_xact_lock_shared(first_version);
    EXCEPTION WHEN OTHERS THEN
        IF n = 1 THEN
            PERFORM pg_advisory_unlock_shared(1717924466, 1);
        ELSE
            PERFORM pg_advisory_unlock(1717924466, 1);
        END IF;
        RAISE;
    END;
    IF n = 1 THEN
        PERFORM pg_advisory_unlock_shared(1717924466, 1);
    ELSE
        PERFORM pg_advisory_unlock(1717924466, 1);
    END IF;
    RETURN first_version;
END
$$;
