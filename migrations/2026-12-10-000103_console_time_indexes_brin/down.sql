DROP INDEX call_attempts_originated_brin;
DROP INDEX call_attempts_ended_brin;
DROP INDEX callback_deliveries_attempted_brin;
CREATE INDEX call_attempts_originated ON call_attempts (originated_at);
CREATE INDEX call_attempts_ended ON call_attempts (ended_at);
CREATE INDEX callback_deliveries_attempted ON callback_deliveries (attempted_at);
