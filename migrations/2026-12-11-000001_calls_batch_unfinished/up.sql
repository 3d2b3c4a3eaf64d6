-- A batch's calls still to finish, by batch (issue 13). The completion probe runs whenever a
-- group of call outcomes ends calls of a batch ("is any call of it left?"). A batch just
-- written is unknown to the planner's statistics (one row, it guesses), so the probe took any
-- index on `batch_pk`, often `calls_batch_order`, and read every call of the batch and its dead
-- row versions: 1,260 buffers a probe at 200 calls/s on a table with history. An index of the
-- unfinished calls only is the one whose predicate the probe implies, and the smallest.
--
-- It replaces `calls_batch_status` (batch_pk, status): every reader of that index by status
-- looks for unfinished calls (queued, scheduled, dialing: cancel, pause, the closing sweep,
-- waiting_reason); the batch's counts per status read `calls_batch_order`. A call's final
-- status no longer writes an index entry here.
CREATE INDEX calls_batch_unfinished ON calls (batch_pk, status)
    WHERE status IN ('queued', 'scheduled', 'dialing', 'started', 'answered', 'retry_wait');
DROP INDEX calls_batch_status;
