DROP TABLE recordings;
DROP TABLE media_key;
DROP TABLE prompts;
ALTER TABLE call_events DROP CONSTRAINT call_events_event_type_check;
ALTER TABLE call_events ADD CONSTRAINT call_events_event_type_check CHECK (event_type IN (
    'call_started', 'call_answered', 'call_completed', 'call_busy', 'call_no_answer',
    'call_failed', 'call_timeout', 'call_cancelled', 'call_skipped', 'call_expired',
    'batch_completed'));
ALTER TABLE calls DROP COLUMN answered_by, DROP COLUMN opted_out;
ALTER TABLE call_attempts DROP COLUMN answered_by, DROP COLUMN amd_cause, DROP COLUMN digits,
    DROP COLUMN opted_out;
DROP TABLE account_call_flow;
ALTER TABLE batches DROP CONSTRAINT batches_voicemail_prompt, DROP COLUMN amd,
    DROP COLUMN message_prompt, DROP COLUMN voicemail_prompt, DROP COLUMN gather, DROP COLUMN record;
