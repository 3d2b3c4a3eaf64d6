DROP INDEX IF EXISTS calls_due;
DROP INDEX IF EXISTS call_attempts_live_server;
DROP INDEX IF EXISTS call_attempts_live_account;
ALTER TABLE call_attempts DROP COLUMN IF EXISTS dispatcher_id;
ALTER TABLE call_attempts DROP COLUMN IF EXISTS account_id;
DROP TABLE IF EXISTS pacing;
DROP TABLE IF EXISTS server_leases;
DROP TABLE IF EXISTS dispatchers;
