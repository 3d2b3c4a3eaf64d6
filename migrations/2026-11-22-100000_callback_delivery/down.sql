DROP TABLE IF EXISTS callback_replays;
DROP INDEX IF EXISTS call_events_account_listing;
DROP INDEX IF EXISTS call_events_account_due;
DROP INDEX IF EXISTS call_events_due;
