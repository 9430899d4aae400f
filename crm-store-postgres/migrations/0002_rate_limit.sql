-- Shared rate-limit state (crm_store_postgres::ratelimit): one GCRA "theoretical arrival
-- time" per (policy, key), leased out to instances in small batches of tokens.
--
-- UNLOGGED: no WAL for a row updated many times a second; after a crash the table is
-- empty, i.e. every key has its full quota once — the same as restarting every instance
-- with in-process limiters. Keys are SHA-256 digests (no emails or addresses stored).
CREATE UNLOGGED TABLE crm_rate_limit (
    policy smallint NOT NULL,
    key bytea NOT NULL,
    -- Microseconds since the Unix epoch, on the database's clock: the bucket is full
    -- when tat <= now.
    tat bigint NOT NULL,
    PRIMARY KEY (policy, key)
);

-- Leases up to p_want tokens of a key (after giving back p_return unused ones) in one
-- round trip, under the row's lock: every instance's lease comes out of one bucket, on one
-- clock (the database's). Answers the tokens granted, the tokens left in the bucket, the
-- microseconds until the next token (0 if one is left) and until the bucket is full.
CREATE FUNCTION crm_rate_lease(
    p_policy smallint,
    p_key bytea,
    p_interval bigint,
    p_burst integer,
    p_want integer,
    p_return integer
) RETURNS TABLE (o_granted integer, o_left integer, o_next_us bigint, o_full_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    v_tat bigint;
    v_base bigint;
    v_avail bigint;
    v_grant bigint;
BEGIN
    -- Losing the last few milliseconds of rate-limit state to a crash is harmless.
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO crm_rate_limit AS r (policy, key, tat) VALUES (p_policy, p_key, v_now)
    ON CONFLICT (policy, key) DO NOTHING;
    SELECT r.tat INTO v_tat FROM crm_rate_limit AS r
    WHERE r.policy = p_policy AND r.key = p_key FOR UPDATE;
    v_tat := v_tat - p_return::bigint * p_interval;
    v_base := GREATEST(v_tat, v_now);
    v_avail := LEAST(p_burst::bigint, (v_now + p_burst::bigint * p_interval - v_base) / p_interval);
    v_grant := GREATEST(0, LEAST(p_want::bigint, v_avail));
    v_base := v_base + v_grant * p_interval;
    UPDATE crm_rate_limit AS r SET tat = v_base WHERE r.policy = p_policy AND r.key = p_key;
    o_granted := v_grant::integer;
    o_left := GREATEST(0, v_avail - v_grant)::integer;
    o_next_us := GREATEST(0, v_base - (p_burst - 1)::bigint * p_interval - v_now);
    o_full_us := GREATEST(0, v_base - v_now);
    RETURN NEXT;
END
$$;

-- Shared failed-login counts (crm_store_postgres::PgLoginThrottle): one row per account or
-- client address in a delay or with recent failures, keyed by a SHA-256 digest. UNLOGGED
-- like the buckets: a crash forgets the counts, as restarting in-process throttles does.
CREATE UNLOGGED TABLE crm_login_failure (
    key bytea PRIMARY KEY,
    failures integer NOT NULL,
    -- Microseconds since the Unix epoch (the engine's clock of the instance that wrote it).
    last_failure bigint NOT NULL,
    blocked_until bigint NOT NULL
);
