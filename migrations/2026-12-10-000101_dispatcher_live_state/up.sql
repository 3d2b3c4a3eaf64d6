-- Each dispatcher's live state beside its servers' (issue 16's dry run and console): the
-- platform rate limit it applies (DIALER_GLOBAL_CPS lives in its environment, not in a table)
-- and the calls per second it originates per account and per server. Written every second in
-- the same statement as server_status.
ALTER TABLE dispatchers ADD COLUMN global_cps DOUBLE PRECISION;
ALTER TABLE dispatchers ADD COLUMN account_rates JSONB NOT NULL DEFAULT '{}';
ALTER TABLE dispatchers ADD COLUMN status_at TIMESTAMPTZ;

ALTER TABLE server_status ADD COLUMN calls_per_second DOUBLE PRECISION NOT NULL DEFAULT 0;
