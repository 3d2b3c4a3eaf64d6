-- The operator console (issue 16): operators sign in with a token of their own (never a
-- client's API key), get a session, and every action that changes state is written to the audit
-- log the console shows.

-- Operators. Like API keys, a token carries 256 random bits and is stored as its SHA-256 only
-- (dialer-api/src/ops/operators.rs). A revoked operator keeps its row, so a new one may take the
-- name again and the audit log's names stay meaningful.
CREATE TABLE operators (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
    token_hash      BYTEA NOT NULL UNIQUE,
    -- The token's first characters, to tell tokens apart in `dialerctl operator list`.
    token_prefix    TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ,
    last_sign_in_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX operators_active_name ON operators (name) WHERE revoked_at IS NULL;

-- Console sessions: the cookie holds a random id, stored here as its SHA-256, so a copy of this
-- table signs no one in. A session ends when it expires, when its operator signs out, or when
-- the operator is revoked.
CREATE TABLE operator_sessions (
    id             BIGSERIAL PRIMARY KEY,
    operator_id    BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    session_hash   BYTEA NOT NULL UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ,
    client_address TEXT
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id) WHERE ended_at IS NULL;

-- Who did what to what, when, and how it went: console actions, sign-ins and sign-outs, and
-- dialerctl's operator commands. Rows are only ever inserted.
CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    operator       TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL DEFAULT '',
    result         TEXT NOT NULL CHECK (result IN ('ok', 'refused', 'error')),
    detail         TEXT NOT NULL DEFAULT '',
    client_address TEXT
);

-- The console's live view reads recent rows of large tables every few seconds: attempts started
-- and ended lately (calls per second, outcomes per minute), delivery tries of the last minutes
-- (callback latency), and batches open or finished lately. Without these each read would scan
-- the whole table. An attempt's `originated_at` never changes and its `ended_at` is set once, in
-- the update that ends it (already not a HOT update: it changes `state`, which the partial
-- indexes of live attempts read); a try is never updated; a batch's `completed_at` changes once
-- or twice in its life.
CREATE INDEX call_attempts_originated ON call_attempts (originated_at);
CREATE INDEX call_attempts_ended ON call_attempts (ended_at);
CREATE INDEX callback_deliveries_attempted ON callback_deliveries (attempted_at);
-- NULL for open batches (and cancelled ones still ending their calls), set when they finish.
CREATE INDEX batches_completed ON batches (completed_at);
