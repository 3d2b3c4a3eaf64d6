-- Test mode (issue 16). An account's test-mode data lives in its test twin: an account row of
-- its own, listed here with the live account it belongs to, made when the first test-mode key
-- is created. Test batches, calls, do-not-call entries and callback settings thereby never mix
-- with live ones, and every query scoped to an account is scoped to a mode for free. A twin's
-- calls go only to servers marked `simulated` (a PBX simulator such as ami-sim), and a live
-- account's never do. (A table rather than a column: `accounts` has diesel's 32 columns.)
CREATE TABLE test_twins (
    account_id      BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    live_account_id BIGINT NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE CASCADE
);
-- The twin's code is the live code with `-test` after it (which may pass 64 characters).
ALTER TABLE accounts DROP CONSTRAINT accounts_accountcode_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_accountcode_check
    CHECK (accountcode ~ '^[A-Za-z0-9_-]{1,64}(-test)?$');
ALTER TABLE asterisk_servers ADD COLUMN simulated BOOLEAN NOT NULL DEFAULT false;
