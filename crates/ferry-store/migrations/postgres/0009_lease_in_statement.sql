-- A message's end outside a transaction block.
--
-- A small message's end (its last batch's upsert, its records, its lanes freed, its final state)
-- is one statement of data-modifying WITH queries. Run on its own, without BEGIN and COMMIT, it
-- must still write nothing when the run lost its lease: the statement ends by asking this
-- function whether its guarded update found the message, and the function's error (SQLSTATE
-- FL001) aborts the whole statement.

CREATE FUNCTION ferry_require_lease(held BOOLEAN) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF NOT held THEN
        RAISE EXCEPTION 'the message''s lease was lost' USING ERRCODE = 'FL001';
    END IF;
    RETURN TRUE;
END
$$;
