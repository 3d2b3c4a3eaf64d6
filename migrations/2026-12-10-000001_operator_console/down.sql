DROP INDEX batches_completed;
DROP INDEX callback_deliveries_attempted;
DROP INDEX call_attempts_ended;
DROP INDEX call_attempts_originated;
DROP TABLE audit_log;
DROP TABLE operator_sessions;
DROP TABLE operators;
