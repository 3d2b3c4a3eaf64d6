-- What the dispatchers share: who is alive, who holds each Asterisk server, shared pacing.

-- One row per dispatcher process; a stale heartbeat means it is gone.
CREATE TABLE dispatchers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL DEFAULT '',
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each server's AMI connection and channel count live in exactly one dispatcher: the holder of
-- its unexpired lease. A dead holder's lease expires and another dispatcher takes the server.
CREATE TABLE server_leases (
    server_id   BIGINT PRIMARY KEY REFERENCES asterisk_servers (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Shared pacing (GCRA) for limits that span dispatchers (an account's or the platform's calls
-- per second): the theoretical time of the next allowed call, per scope.
CREATE TABLE pacing (
    scope TEXT PRIMARY KEY,
    tat   TIMESTAMPTZ NOT NULL
);

-- Live attempts by account (the channel limit, counted under the claim lock) and by server.
ALTER TABLE call_attempts ADD COLUMN account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE;
ALTER TABLE call_attempts ADD COLUMN dispatcher_id TEXT;
CREATE INDEX call_attempts_live_account ON call_attempts (account_id) WHERE state <> 'ended';
CREATE INDEX call_attempts_live_server ON call_attempts (server_id) WHERE state <> 'ended';
-- Calls parked in PostgreSQL (calling hours, retries) by due time.
CREATE INDEX calls_due ON calls (next_due_at) WHERE next_due_at IS NOT NULL;
