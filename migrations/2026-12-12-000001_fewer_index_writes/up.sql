-- Fewer index entries for each row version a call's life writes (issue 13).
--
-- An update that changes no indexed column (nor a column of an index's predicate) and finds
-- room on its page is HOT: no index takes an entry. `calls` and `call_attempts` are rewritten
-- at each step of a call (scheduled, dialing, started, answered, ended) and the steps changed
-- `status` or `state`, which the indexes of unfinished calls and live attempts held: every step
-- wrote an entry in every index (nine on `calls`). Those indexes are now keyed by when the row
-- ended (`finished_at`, `ended_at`), which changes once, at the end; the steps between are HOT
-- when the page has room, which the tables now keep (fillfactor 70: a third more pages).

-- A call is finished exactly when its status is final: the database holds the two together, so
-- that `finished_at IS NULL` can stand for "not final" in the indexes and the queries using them.
UPDATE calls SET finished_at = updated_at
 WHERE finished_at IS NULL
   AND status NOT IN ('queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait');
UPDATE calls SET finished_at = NULL
 WHERE finished_at IS NOT NULL
   AND status IN ('queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait');
ALTER TABLE calls ADD CONSTRAINT calls_finished_when_final CHECK (
    (finished_at IS NULL)
    = (status IN ('queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait')));

-- The completion probe, the closing sweep, cancel and pause: a batch's calls still to finish.
DROP INDEX calls_batch_unfinished;
CREATE INDEX calls_batch_unfinished ON calls (batch_pk) WHERE finished_at IS NULL;

-- `calls_account_status (account_id, status)` held every call, final or not, for one reader by
-- status: the quota's count of an account's calls waiting or in progress.
CREATE INDEX calls_account_unfinished ON calls (account_id) WHERE finished_at IS NULL;
DROP INDEX calls_account_status;

-- Live attempts by account and by server (channel limits, recovery); `ended_at` is set exactly
-- when the state is `ended` (call_attempts_check).
DROP INDEX call_attempts_live_account;
DROP INDEX call_attempts_live_server;
CREATE INDEX call_attempts_live_account ON call_attempts (account_id) WHERE ended_at IS NULL;
CREATE INDEX call_attempts_live_server ON call_attempts (server_id) WHERE ended_at IS NULL;

ALTER TABLE calls SET (fillfactor = 70);
ALTER TABLE call_attempts SET (fillfactor = 70);

-- `call_events` rows are rewritten once each (delivered), changing `delivery_status`, which the
-- account's listing index holds: not HOT, so fewer indexes is what helps.
-- `call_events_delivery (account_id, delivery_status)` is a prefix of
-- `call_events_account_listing (account_id, delivery_status, id)`, which answers everything it
-- did (the console's failed counts, replays by status, listings by status).
DROP INDEX call_events_delivery;

-- An event's account and batch were checked by two foreign keys, one lookup each for every
-- event written; one key on the pair checks both in one lookup, and more: the batch is the
-- account's own (as `calls` already requires). Deleting a batch or an account still removes
-- its events (an account's batches go with it).
ALTER TABLE call_events
    ADD CONSTRAINT call_events_batch_account_fkey FOREIGN KEY (batch_pk, account_id)
        REFERENCES batches (id, account_id) ON DELETE CASCADE,
    DROP CONSTRAINT call_events_batch_pk_fkey,
    DROP CONSTRAINT call_events_account_id_fkey;
