CREATE INDEX callback_queue_due ON callback_queue (due_at, event_pk);
DROP INDEX callback_queue_account_due;
