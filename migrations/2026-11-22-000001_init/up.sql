-- The dialer's data model. Names of states are the contract's (see dialer-core/src/domain).

CREATE TABLE accounts (
    id                         BIGSERIAL PRIMARY KEY,
    accountcode                TEXT NOT NULL UNIQUE CHECK (accountcode ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                       TEXT NOT NULL DEFAULT '',
    status                     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    default_country            TEXT NOT NULL DEFAULT 'IN' CHECK (default_country ~ '^[A-Z]{2}$'),
    timezone                   TEXT NOT NULL DEFAULT 'UTC',
    -- {"start": "09:00", "end": "21:00", "days": ["mon", ...]}; NULL: any time.
    calling_hours              JSONB CHECK (calling_hours IS NULL OR jsonb_typeof(calling_hours) = 'object'),
    caller_id                  TEXT,
    dial_context               TEXT NOT NULL DEFAULT 'dialer',
    dial_exten                 TEXT NOT NULL DEFAULT 's',
    ring_timeout_seconds       INTEGER NOT NULL DEFAULT 30 CHECK (ring_timeout_seconds BETWEEN 1 AND 600),
    max_attempts               INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 20),
    retry_delay_seconds        INTEGER NOT NULL DEFAULT 300 CHECK (retry_delay_seconds >= 0),
    retry_on                   TEXT[] NOT NULL DEFAULT '{busy,no_answer}',
    max_call_seconds           INTEGER NOT NULL DEFAULT 3600 CHECK (max_call_seconds > 0),
    -- Empty: every destination. Countries as ISO codes (`IN`), prefixes as E.164 (`+9198`).
    allowed_countries          TEXT[] NOT NULL DEFAULT '{}',
    allowed_prefixes           TEXT[] NOT NULL DEFAULT '{}',
    -- 0: off. Else a number called by this account in the last N hours is rejected.
    redial_window_hours        INTEGER NOT NULL DEFAULT 0 CHECK (redial_window_hours >= 0),
    max_rows_per_request       INTEGER NOT NULL DEFAULT 50000 CHECK (max_rows_per_request > 0),
    max_queued_calls           BIGINT NOT NULL DEFAULT 1000000 CHECK (max_queued_calls >= 0),
    max_calls_per_day          BIGINT NOT NULL DEFAULT 1000000 CHECK (max_calls_per_day >= 0),
    calls_per_second           INTEGER NOT NULL DEFAULT 10 CHECK (calls_per_second > 0),
    max_concurrent_calls       INTEGER NOT NULL DEFAULT 30 CHECK (max_concurrent_calls > 0),
    api_requests_per_second    INTEGER NOT NULL DEFAULT 20 CHECK (api_requests_per_second > 0),
    callback_url               TEXT,
    callback_secret            TEXT NOT NULL CHECK (callback_secret LIKE 'whsec\_%'),
    callback_secret_previous   TEXT CHECK (callback_secret_previous IS NULL OR callback_secret_previous LIKE 'whsec\_%'),
    -- End of the grace period during which the previous secret still signs.
    callback_secret_previous_until TIMESTAMPTZ,
    callback_batch_events      BOOLEAN NOT NULL DEFAULT FALSE,
    callback_ca_cert           TEXT,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- SHA-256 of the key; the key itself is never stored.
    key_hash     BYTEA NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    -- First characters of the key, to tell keys apart in listings.
    key_prefix   TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE asterisk_servers (
    id               BIGSERIAL PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    host             TEXT NOT NULL CHECK (host <> ''),
    port             INTEGER NOT NULL DEFAULT 5038 CHECK (port BETWEEN 1 AND 65535),
    username         TEXT NOT NULL,
    secret           TEXT NOT NULL,
    max_channels     INTEGER NOT NULL CHECK (max_channels > 0),
    max_cps          INTEGER NOT NULL CHECK (max_cps > 0),
    -- e.g. `PJSIP/{number}@trunk` or `Local/{number}@dialout`
    channel_template TEXT NOT NULL CHECK (position('{number}' in channel_template) > 0),
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE batches (
    id                  BIGSERIAL PRIMARY KEY,
    account_id          BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    batch_id            BIGINT NOT NULL CHECK (batch_id > 0),
    name                TEXT,
    -- Batch settings; NULL means "the account's setting", resolved when dialing.
    caller_id           TEXT,
    max_attempts        INTEGER CHECK (max_attempts BETWEEN 1 AND 20),
    retry_delay_seconds INTEGER CHECK (retry_delay_seconds >= 0),
    retry_on            TEXT[],
    calling_hours       JSONB CHECK (calling_hours IS NULL OR jsonb_typeof(calling_hours) = 'object'),
    priority            INTEGER NOT NULL DEFAULT 0,
    expires_at          TIMESTAMPTZ,
    auto_dispatch       BOOLEAN NOT NULL DEFAULT FALSE,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'dispatching', 'paused', 'completed', 'cancelled')),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    dispatched_at       TIMESTAMPTZ,
    paused_at           TIMESTAMPTZ,
    cancelled_at        TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    UNIQUE (account_id, batch_id),
    -- lets calls reference (batch, account) so a call can never sit in another account's batch
    UNIQUE (id, account_id)
);

CREATE TABLE calls (
    id             BIGSERIAL PRIMARY KEY,
    -- The public `call_id`.
    call_id        UUID NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    account_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    batch_pk       BIGINT NOT NULL,
    -- Exactly as submitted (clients match on it).
    phone_raw      TEXT NOT NULL,
    phone_e164     TEXT NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{5,14}$'),
    -- ISO region of the number, for calling hours in the callee's time.
    phone_region   TEXT,
    -- The exact JSON text submitted, echoed verbatim in callbacks.
    custom_data    TEXT,
    status         TEXT NOT NULL DEFAULT 'queued' CHECK (status IN (
                       'queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait',
                       'completed', 'busy', 'no_answer', 'failed', 'timeout', 'cancelled', 'skipped', 'expired')),
    disposition    TEXT CHECK (disposition IS NULL OR disposition IN (
                       'answered', 'busy', 'no_answer', 'rejected', 'congestion', 'invalid_number',
                       'unreachable', 'failed', 'unknown', 'do_not_call', 'destination_not_allowed')),
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the call may be dialed next (retries, calling hours); NULL: as soon as dispatched.
    next_due_at    TIMESTAMPTZ,
    -- Last sequence number given to an event of this call.
    event_seq      INTEGER NOT NULL DEFAULT 0 CHECK (event_seq >= 0),
    last_dialed_at TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    dispatched_at  TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    FOREIGN KEY (batch_pk, account_id) REFERENCES batches (id, account_id) ON DELETE CASCADE,
    -- One call per (account, batch, normalised number).
    UNIQUE (account_id, batch_pk, phone_e164)
);
CREATE INDEX calls_batch_status ON calls (batch_pk, status);
CREATE INDEX calls_batch_order ON calls (batch_pk, id);
CREATE INDEX calls_account_status ON calls (account_id, status);
CREATE INDEX calls_redial ON calls (account_id, phone_e164, last_dialed_at) WHERE last_dialed_at IS NOT NULL;
CREATE INDEX calls_account_created ON calls (account_id, created_at);

CREATE TABLE call_attempts (
    -- Also the AMI ChannelId of the attempt's channel (fixed length, never a prefix of another).
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    call_pk        BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL CHECK (attempt >= 1),
    server_id      BIGINT REFERENCES asterisk_servers (id),
    state          TEXT NOT NULL DEFAULT 'originating'
                   CHECK (state IN ('originating', 'started', 'answered', 'ended')),
    originated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at     TIMESTAMPTZ,
    answered_at    TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    disposition    TEXT CHECK (disposition IS NULL OR disposition IN (
                       'answered', 'busy', 'no_answer', 'rejected', 'congestion', 'invalid_number',
                       'unreachable', 'failed', 'unknown', 'do_not_call', 'destination_not_allowed')),
    hangup_cause   INTEGER,
    error_message  TEXT,
    UNIQUE (call_pk, attempt),
    CHECK ((state = 'ended') = (ended_at IS NOT NULL))
);

-- The callback outbox. One row per event; its body is fixed when written, so every delivery
-- attempt and replay sends the same bytes.
CREATE TABLE call_events (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE CHECK (event_id LIKE 'evt\_%'),
    account_id       BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    batch_pk         BIGINT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    -- NULL for batch events.
    call_pk          BIGINT REFERENCES calls (id) ON DELETE CASCADE,
    sequence         INTEGER CHECK (sequence >= 1),
    event_type       TEXT NOT NULL CHECK (event_type IN (
                         'call_started', 'call_answered', 'call_completed', 'call_busy', 'call_no_answer',
                         'call_failed', 'call_timeout', 'call_cancelled', 'call_skipped', 'call_expired',
                         'batch_completed')),
    body             TEXT NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivery_status  TEXT NOT NULL DEFAULT 'pending'
                     CHECK (delivery_status IN ('pending', 'delivered', 'failed', 'skipped')),
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    last_error       TEXT,
    -- Set once RabbitMQ confirmed the hand-off to the callback worker.
    published_at     TIMESTAMPTZ,
    UNIQUE (call_pk, sequence),
    CHECK ((call_pk IS NULL) = (event_type = 'batch_completed')),
    CHECK ((call_pk IS NULL) = (sequence IS NULL))
);
CREATE INDEX call_events_unpublished ON call_events (id) WHERE published_at IS NULL;
CREATE INDEX call_events_delivery ON call_events (account_id, delivery_status);

CREATE TABLE callback_deliveries (
    id            BIGSERIAL PRIMARY KEY,
    event_pk      BIGINT NOT NULL REFERENCES call_events (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    attempted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    url           TEXT NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    latency_ms    INTEGER,
    response_head TEXT,
    UNIQUE (event_pk, attempt)
);

CREATE TABLE dnc_numbers (
    id         BIGSERIAL PRIMARY KEY,
    -- NULL: on the global list.
    account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    phone_e164 TEXT NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{5,14}$'),
    reason     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dnc_global ON dnc_numbers (phone_e164) WHERE account_id IS NULL;
CREATE UNIQUE INDEX dnc_account ON dnc_numbers (account_id, phone_e164) WHERE account_id IS NOT NULL;

-- The dial outbox: a job per (call, attempt) to hand to RabbitMQ. Written in the transaction
-- that schedules the call; published with confirms afterwards; swept for rows never confirmed.
CREATE TABLE dial_jobs (
    id           BIGSERIAL PRIMARY KEY,
    call_pk      BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL CHECK (attempt >= 1),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    UNIQUE (call_pk, attempt)
);
CREATE INDEX dial_jobs_unpublished ON dial_jobs (id) WHERE published_at IS NULL;
