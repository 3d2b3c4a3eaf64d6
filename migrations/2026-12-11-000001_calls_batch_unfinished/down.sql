CREATE INDEX calls_batch_status ON calls (batch_pk, status);
DROP INDEX calls_batch_unfinished;
