-- Call events are no longer an outbox of RabbitMQ messages. A pending event is in the delivery
-- queue (`callback_queue`) from its insert, and the callback worker claims from that queue by
-- itself on every poll; the RabbitMQ prompt that follows a commit only spares the wait, and a
-- lost one costs one poll interval, never an event. So an event is handed off when it is
-- written: `published_at` is its insert time, and no statement marks it afterwards (that
-- marking rewrote every event row once more, a tenth of PostgreSQL's time per call at low
-- rates). Events left unmarked by the old code are queued already; they count as handed off.
ALTER TABLE call_events ALTER COLUMN published_at SET DEFAULT now();
UPDATE call_events SET published_at = occurred_at WHERE published_at IS NULL;
DROP INDEX call_events_unpublished;
COMMENT ON COLUMN call_events.published_at IS
    'when the event was handed to the callback worker: written (and queued when deliverable)';
