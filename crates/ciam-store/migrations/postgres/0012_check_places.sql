-- A password check's places on its failure counters, and its attempt in
-- its address's window, taken in one call instead of one round trip per
-- statement (docs/api.md §7). The statements are those a check ran one by
-- one, in the same order: each counter's row lock, then its place, then the
-- address's attempt. In a function each statement takes a fresh snapshot,
-- so a place counts every place its counter's earlier holders committed.
-- Rows: part 2i is counter i's state, 2i + 1 its place taken, 2n the
-- address's window.
CREATE FUNCTION take_check_places(
    p_key0 TEXT, p_limit0 BIGINT, p_key1 TEXT, p_limit1 BIGINT,
    p_now BIGINT, p_reset BIGINT, p_until BIGINT, p_place TEXT,
    p_ip TEXT, p_window BIGINT
) RETURNS TABLE (o_part BIGINT, o_failures BIGINT, o_locked_until BIGINT, o_window_start BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_keys TEXT[] := array_remove(ARRAY[p_key0, p_key1], NULL);
    v_limits BIGINT[] := ARRAY[p_limit0, p_limit1];
    i INT;
BEGIN
    FOR i IN 1 .. cardinality(v_keys) LOOP
        INSERT INTO login_failures AS f (lock_key, failures, locked_until, last_failure_at)
        VALUES (v_keys[i], 0, NULL, NULL)
        ON CONFLICT (lock_key) DO UPDATE SET
            failures = CASE WHEN (f.locked_until IS NOT NULL AND f.locked_until <= p_now)
                OR (f.locked_until IS NULL AND f.last_failure_at IS NOT NULL AND f.last_failure_at + p_reset <= p_now)
                THEN 0 ELSE f.failures END,
            locked_until = CASE WHEN (f.locked_until IS NOT NULL AND f.locked_until <= p_now)
                OR (f.locked_until IS NULL AND f.last_failure_at IS NOT NULL AND f.last_failure_at + p_reset <= p_now)
                THEN NULL ELSE f.locked_until END
        RETURNING f.failures, f.locked_until INTO o_failures, o_locked_until;
        o_part := 2 * (i - 1);
        o_window_start := NULL;
        RETURN NEXT;
        INSERT INTO login_checks (id, lock_key, until) SELECT p_place, v_keys[i], p_until
        WHERE (SELECT COUNT(*) FROM login_checks WHERE lock_key = v_keys[i] AND until > p_now)
            + (SELECT failures FROM login_failures WHERE lock_key = v_keys[i]) < v_limits[i]
        AND NOT EXISTS (SELECT 1 FROM login_failures WHERE lock_key = v_keys[i] AND locked_until > p_now);
        IF FOUND THEN
            o_part := 2 * i - 1;
            o_failures := NULL;
            o_locked_until := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF p_ip IS NOT NULL THEN
        INSERT INTO ip_throttle AS t (ip, window_start, failures) SELECT p_ip, p_now, 1
        WHERE (SELECT COUNT(*) FROM login_checks WHERE id = p_place) = cardinality(v_keys)
        ON CONFLICT (ip) DO UPDATE SET
            window_start = CASE WHEN t.window_start + p_window <= p_now THEN p_now ELSE t.window_start END,
            failures = CASE WHEN t.window_start + p_window <= p_now THEN 1 ELSE t.failures + 1 END
        RETURNING t.window_start, t.failures INTO o_window_start, o_failures;
        IF FOUND THEN
            o_part := 2 * cardinality(v_keys);
            o_locked_until := NULL;
            RETURN NEXT;
        END IF;
    END IF;
END
$$;
