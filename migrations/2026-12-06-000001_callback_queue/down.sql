DROP TRIGGER IF EXISTS call_events_follow_status ON call_events;
DROP TRIGGER IF EXISTS call_events_enqueue ON call_events;
DROP TRIGGER IF EXISTS call_events_skip_undeliverable ON call_events;
DROP FUNCTION IF EXISTS call_events_follow_status();
DROP FUNCTION IF EXISTS call_events_enqueue();
DROP FUNCTION IF EXISTS call_events_skip_undeliverable();
-- Deferrals and leases held in the queue carry over to the column the old claim reads.
UPDATE call_events e SET next_attempt_at = q.due_at
FROM callback_queue q WHERE q.event_pk = e.id AND e.next_attempt_at <> q.due_at;
DROP TABLE IF EXISTS callback_queue;
CREATE INDEX call_events_due ON call_events (next_attempt_at, id) WHERE delivery_status = 'pending';
CREATE INDEX call_events_account_due ON call_events (account_id, next_attempt_at) WHERE delivery_status = 'pending';
