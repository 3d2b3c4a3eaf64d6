-- Callback claims take turns between accounts (issue 15). The claim took the queue's oldest
-- due events, and skipped an excluded (saturated) account's events by filtering them out of the
-- due-order index scan: with one account's 1,000,000 events waiting behind its endpoint, every
-- claim walked them (685,247 rows removed by the filter, 600 ms a claim), and another account's
-- fresh callbacks waited 78 s and more. The claim now walks the accounts that have queued
-- events (a loose scan of this index, one probe per account) and, for each account not
-- excluded, that account's first due events (a range of this index).
CREATE INDEX callback_queue_account_due ON callback_queue (account_id, due_at, event_pk);
-- The due-order index served only the old claim (and the account deferral, which this one
-- serves better); each index is written at every enqueue, lease and settlement.
DROP INDEX callback_queue_due;
