ALTER TABLE call_attempts DROP COLUMN sent_at;
