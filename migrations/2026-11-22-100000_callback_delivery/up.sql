-- The callback worker claims due events in `next_attempt_at` order; a claimed event's
-- `next_attempt_at` is pushed to the end of its lease, so a crashed worker's events come due
-- again by themselves. Only pending rows are ever scanned.
CREATE INDEX call_events_due ON call_events (next_attempt_at, id) WHERE delivery_status = 'pending';
-- Deferring the due events of an endpoint whose circuit is open.
CREATE INDEX call_events_account_due ON call_events (account_id, next_attempt_at) WHERE delivery_status = 'pending';
-- Listing an account's deliveries by status, newest first.
CREATE INDEX call_events_account_listing ON call_events (account_id, delivery_status, id);

-- A replayed event runs the retry schedule again from its start, while its attempt numbers
-- keep growing (callback_deliveries keeps every attempt): the schedule position is
-- delivery_attempts - attempts_before.
CREATE TABLE callback_replays (
    event_pk        BIGINT PRIMARY KEY REFERENCES call_events (id) ON DELETE CASCADE,
    attempts_before INTEGER NOT NULL CHECK (attempts_before >= 0),
    replays         INTEGER NOT NULL DEFAULT 1 CHECK (replays >= 1),
    replayed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
