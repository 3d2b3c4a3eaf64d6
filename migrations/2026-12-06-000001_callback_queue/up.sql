-- The callback delivery queue: the scheduling of pending events only, apart from `call_events`.
--
-- Before, the worker claimed from a partial index of `call_events` (`delivery_status =
-- 'pending'`). Every event was inserted pending and updated away, and every claim rewrote the
-- indexed `next_attempt_at`: each left a dead entry at the left of that index, walked again by
-- every claim until vacuum reached the big table, so a claim's cost grew with the history and
-- as the rate fell. Here a row lives in `callback_queue` exactly while its event is pending and
-- is deleted when the event is delivered, failed or skipped; leases and retries rewrite this
-- small table only, which the worker vacuums every second or so (`callback-worker/src/vacuum.rs`),
-- with aggressive autovacuum settings as a backup. `call_events.next_attempt_at` stays as the
-- time the next try is due (written on retries and replays, not by leases).
CREATE TABLE callback_queue (
    event_pk   BIGINT PRIMARY KEY REFERENCES call_events (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    -- NULL for batch events (never held back by another event).
    call_pk    BIGINT,
    sequence   INTEGER,
    -- When the event may be claimed; while claimed, the end of the lease (the claim's token).
    due_at     TIMESTAMPTZ NOT NULL
) WITH (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
-- Claims and deferrals, in due order.
CREATE INDEX callback_queue_due ON callback_queue (due_at, event_pk);
-- Order per call: an event waits while an earlier one of its call is queued.
CREATE INDEX callback_queue_call ON callback_queue (call_pk, sequence);

INSERT INTO callback_queue (event_pk, account_id, call_pk, sequence, due_at)
SELECT id, account_id, call_pk, sequence, next_attempt_at FROM call_events
WHERE delivery_status = 'pending';

DROP INDEX call_events_due;
DROP INDEX call_events_account_due;

-- The one rule every writer of events goes through (the dispatcher, the core's lifecycle,
-- tests, benchmarks, an operator's SQL): an event no one will deliver is stored `skipped`,
-- with the reason the worker records for it, and never enters the queue. A trigger rather than
-- a Rust function because the writers are six SQL statements of three crates, several of them
-- set-based (INSERT ... SELECT), and one forgotten path would fill the queue again. The
-- account's settings are read in the writing transaction: a URL set later does not send the
-- event (a replay does). Nothing needs prompting for it, so it counts as handed off (`published_at`)
-- and never sits in the event outbox.
CREATE FUNCTION call_events_skip_undeliverable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    url TEXT;
    batch_events BOOLEAN;
BEGIN
    IF NEW.delivery_status <> 'pending' THEN
        RETURN NEW;
    END IF;
    SELECT a.callback_url, a.callback_batch_events INTO url, batch_events
    FROM accounts a WHERE a.id = NEW.account_id;
    IF NOT FOUND THEN
        RETURN NEW; -- the foreign key refuses the row
    END IF;
    -- The same reasons, in the same order, as callback-worker/src/engine.rs skip_reason.
    IF NEW.event_type = 'batch_completed' AND NOT batch_events THEN
        NEW.last_error := 'the account does not subscribe to batch events';
    ELSIF url IS NULL THEN
        NEW.last_error := 'the account has no callback URL';
    ELSE
        RETURN NEW;
    END IF;
    NEW.delivery_status := 'skipped';
    NEW.published_at := COALESCE(NEW.published_at, now());
    RETURN NEW;
END
$$;
CREATE TRIGGER call_events_skip_undeliverable BEFORE INSERT ON call_events
    FOR EACH ROW EXECUTE FUNCTION call_events_skip_undeliverable();

-- Pending events enter the queue, once per statement (the dispatcher writes many at once).
CREATE FUNCTION call_events_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO callback_queue (event_pk, account_id, call_pk, sequence, due_at)
    SELECT n.id, n.account_id, n.call_pk, n.sequence, n.next_attempt_at
    FROM written n WHERE n.delivery_status = 'pending';
    RETURN NULL;
END
$$;
CREATE TRIGGER call_events_enqueue AFTER INSERT ON call_events
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION call_events_enqueue();

-- A change of delivery state keeps the queue in step: back to pending (a replay) enqueues, due
-- at `next_attempt_at`; pending to anything else dequeues. The worker dequeues by itself in the
-- statement that records outcomes (with its claim token), so there this finds nothing to do;
-- it is what keeps every other writer (replays, tests, an operator's SQL) right.
CREATE FUNCTION call_events_follow_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.delivery_status = 'pending' THEN
        INSERT INTO callback_queue (event_pk, account_id, call_pk, sequence, due_at)
        VALUES (NEW.id, NEW.account_id, NEW.call_pk, NEW.sequence, NEW.next_attempt_at)
        ON CONFLICT (event_pk) DO NOTHING;
    ELSIF OLD.delivery_status = 'pending' THEN
        DELETE FROM callback_queue WHERE event_pk = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER call_events_follow_status AFTER UPDATE OF delivery_status ON call_events
    FOR EACH ROW WHEN (OLD.delivery_status IS DISTINCT FROM NEW.delivery_status)
    EXECUTE FUNCTION call_events_follow_status();
