-- The platform's calls per second as a calendar of slots (issue 15). Before, an account's slots
-- and the platform's were reserved apart and a call left at the later of the two: a call held
-- back by one limit left its slot of the other unused, and the next call of another account or
-- dispatcher left on time right behind it, so a sliding second could hold more calls than either
-- limit (measured: 11 in one second under a platform limit of 8, 7 under an account limit of 4,
-- two dispatchers). Now each call's departure is decided once, under both limits:
--   * the account's slots stay a frontier (one account's calls are in order anyway), and each
--     call leaves at least one account interval after the previous one, whatever delayed it;
--   * the platform's slots are a calendar: slot k is the instant k / rate, taken by at most one
--     call, so accounts interleave in the platform's free slots instead of queueing behind each
--     other, and any second holds at most `rate` departures.
CREATE TABLE pacing_slots (
    scope TEXT NOT NULL,
    slot  BIGINT NOT NULL,
    PRIMARY KEY (scope, slot)
);

-- Departures of `n` calls of one account: the account's frontier (`pacing`, locked for the
-- statement's transaction), each at least `account_interval` after the previous, and, when
-- `platform_scope` is given, each in a free slot of the platform's calendar of width
-- `platform_interval`. One statement per claimed group.
CREATE FUNCTION pacing_departures(
    account_scope TEXT,
    account_interval DOUBLE PRECISION,
    platform_scope TEXT,
    platform_interval DOUBLE PRECISION,
    n INTEGER,
    now_ts TIMESTAMPTZ
) RETURNS TIMESTAMPTZ[] LANGUAGE plpgsql AS $$
DECLARE
    t TIMESTAMPTZ;
    k BIGINT;
    departures TIMESTAMPTZ[] := '{}';
BEGIN
    INSERT INTO pacing (scope, tat) VALUES (account_scope, now_ts)
    ON CONFLICT (scope) DO UPDATE SET tat = GREATEST(pacing.tat, now_ts)
    RETURNING tat INTO t;
    IF platform_scope IS NOT NULL THEN
        -- Slots more than a minute old are of no use to anyone.
        DELETE FROM pacing_slots
        WHERE scope = platform_scope
          AND slot < floor((extract(epoch FROM now_ts) - 60) / platform_interval);
    END IF;
    FOR i IN 1..n LOOP
        IF platform_scope IS NOT NULL THEN
            k := ceil(extract(epoch FROM t) / platform_interval);
            LOOP
                -- The first free slot at or after k: k itself, or the end of the run of taken
                -- slots that starts at k.
                IF EXISTS (SELECT 1 FROM pacing_slots WHERE scope = platform_scope AND slot = k) THEN
                    SELECT s.slot + 1 INTO k FROM pacing_slots s
                    WHERE s.scope = platform_scope AND s.slot >= k
                      AND NOT EXISTS (SELECT 1 FROM pacing_slots f
                                      WHERE f.scope = platform_scope AND f.slot = s.slot + 1)
                    ORDER BY s.slot LIMIT 1;
                END IF;
                -- Another dispatcher may take it first: then look again.
                INSERT INTO pacing_slots (scope, slot) VALUES (platform_scope, k)
                ON CONFLICT DO NOTHING;
                EXIT WHEN FOUND;
            END LOOP;
            t := GREATEST(t, to_timestamp(k * platform_interval));
        END IF;
        departures := departures || t;
        t := t + make_interval(secs => account_interval);
    END LOOP;
    UPDATE pacing SET tat = t WHERE scope = account_scope;
    RETURN departures;
END;
$$;
