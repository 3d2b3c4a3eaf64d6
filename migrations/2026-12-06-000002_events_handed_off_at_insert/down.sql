COMMENT ON COLUMN call_events.published_at IS NULL;
CREATE INDEX call_events_unpublished ON call_events (id) WHERE published_at IS NULL;
ALTER TABLE call_events ALTER COLUMN published_at DROP DEFAULT;
