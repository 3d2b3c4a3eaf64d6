-- Calls found by number within an account (issue 16: call search, erasure). Replaces the partial
-- index of the re-dial window check (calls already dialed), which this one serves as well: a
-- search or an erasure must find calls never dialed too.
CREATE INDEX calls_account_phone ON calls (account_id, phone_e164, last_dialed_at);
DROP INDEX calls_redial;
