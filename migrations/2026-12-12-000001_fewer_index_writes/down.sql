ALTER TABLE call_events
    ADD CONSTRAINT call_events_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT call_events_batch_pk_fkey FOREIGN KEY (batch_pk)
        REFERENCES batches (id) ON DELETE CASCADE,
    DROP CONSTRAINT call_events_batch_account_fkey;
CREATE INDEX call_events_delivery ON call_events (account_id, delivery_status);
ALTER TABLE call_attempts RESET (fillfactor);
ALTER TABLE calls RESET (fillfactor);
DROP INDEX call_attempts_live_account;
DROP INDEX call_attempts_live_server;
CREATE INDEX call_attempts_live_account ON call_attempts (account_id) WHERE state <> 'ended';
CREATE INDEX call_attempts_live_server ON call_attempts (server_id) WHERE state <> 'ended';
CREATE INDEX calls_account_status ON calls (account_id, status);
DROP INDEX calls_account_unfinished;
DROP INDEX calls_batch_unfinished;
CREATE INDEX calls_batch_unfinished ON calls (batch_pk, status)
    WHERE status IN ('queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait');
ALTER TABLE calls DROP CONSTRAINT calls_finished_when_final;
