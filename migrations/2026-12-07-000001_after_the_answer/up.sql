-- After the answer (contract, "After the answer"): what a batch does once a call is answered,
-- what the PBX learnt (who answered, the keys pressed, an opt-out), and the prompts it plays.

-- The flow settings of a batch, resolved when the batch is created (the client's value, else
-- the account's default), so a running campaign never changes under its calls.
ALTER TABLE batches
    ADD COLUMN amd TEXT NOT NULL DEFAULT 'off'
        CHECK (amd IN ('off', 'detect', 'hangup_machine', 'voicemail')),
    ADD COLUMN message_prompt TEXT,
    ADD COLUMN voicemail_prompt TEXT,
    ADD COLUMN gather JSONB,
    ADD COLUMN record BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT batches_voicemail_prompt CHECK (amd <> 'voicemail' OR voicemail_prompt IS NOT NULL);

-- The account's defaults for those settings and its recordings' retention. A table of its own:
-- `accounts` is at the 32 columns the schema's tables are built for.
CREATE TABLE account_call_flow (
    account_id       BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    amd              TEXT NOT NULL DEFAULT 'off'
                     CHECK (amd IN ('off', 'detect', 'hangup_machine', 'voicemail')),
    message_prompt   TEXT,
    voicemail_prompt TEXT,
    gather           JSONB,
    record           BOOLEAN NOT NULL DEFAULT false,
    recording_retention_days INTEGER NOT NULL DEFAULT 90 CHECK (recording_retention_days BETWEEN 1 AND 3650),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (amd <> 'voicemail' OR voicemail_prompt IS NOT NULL)
);

-- What the PBX reported about an attempt once answered; an event body carries them.
ALTER TABLE call_attempts
    ADD COLUMN answered_by TEXT CHECK (answered_by IN ('human', 'machine', 'unknown')),
    ADD COLUMN amd_cause TEXT,
    ADD COLUMN digits TEXT,
    ADD COLUMN opted_out BOOLEAN;

-- The same for the call (its latest answered attempt), for the batch's counts.
ALTER TABLE calls
    ADD COLUMN answered_by TEXT CHECK (answered_by IN ('human', 'machine', 'unknown')),
    ADD COLUMN opted_out BOOLEAN NOT NULL DEFAULT false;

ALTER TABLE call_events DROP CONSTRAINT call_events_event_type_check;
ALTER TABLE call_events ADD CONSTRAINT call_events_event_type_check CHECK (event_type IN (
    'call_started', 'call_answered', 'call_completed', 'call_busy', 'call_no_answer',
    'call_failed', 'call_timeout', 'call_cancelled', 'call_skipped', 'call_expired',
    'call_amd_result', 'call_input', 'call_recording_ready', 'batch_completed'));

-- An account's audio prompts, as the PBX plays them: 8 or 16 kHz mono 16-bit PCM WAV. Kept in
-- the database: a prompt is at most 10 MB, an account has a handful, and a prompt stored with
-- its row is stored whole or not at all.
CREATE TABLE prompts (
    id           BIGSERIAL PRIMARY KEY,
    prompt_id    TEXT NOT NULL UNIQUE CHECK (prompt_id LIKE 'prm\_%'),
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source       TEXT NOT NULL CHECK (source IN ('wav', 'text')),
    text         TEXT,
    language     TEXT,
    sample_rate  INTEGER NOT NULL CHECK (sample_rate IN (8000, 16000)),
    duration_ms  INTEGER NOT NULL CHECK (duration_ms >= 0),
    audio        BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX prompts_account ON prompts (account_id, id);

-- The key that signs the media URLs given to the PBXs (prompts to play, recording uploads):
-- one row, made by the first process that needs it.
CREATE TABLE media_key (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    key       BYTEA NOT NULL CHECK (length(key) >= 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Recordings, one per attempt at most: the row is written with the file stored (an upload URL
-- works once: a second upload finds the row). Kept until `expires_at` (the account's
-- retention when it was stored); the file lives in the recordings store (`object_key`).
CREATE TABLE recordings (
    id               BIGSERIAL PRIMARY KEY,
    call_pk          BIGINT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL CHECK (attempt >= 1),
    account_id       BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    object_key       TEXT NOT NULL,
    bytes            BIGINT NOT NULL CHECK (bytes >= 0),
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds >= 0),
    stored_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (call_pk, attempt)
);
CREATE INDEX recordings_expiry ON recordings (expires_at);
