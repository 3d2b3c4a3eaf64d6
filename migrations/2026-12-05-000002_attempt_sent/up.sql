-- When the dispatcher confirmed an attempt right before its Originate. An attempt claimed but
-- not confirmed (waiting for its pacing slot) is taken back by a pause or a cancel instead.
ALTER TABLE call_attempts ADD COLUMN sent_at TIMESTAMPTZ;
-- Attempts live at the upgrade were sent by the previous version.
UPDATE call_attempts SET sent_at = originated_at WHERE state <> 'ended';
