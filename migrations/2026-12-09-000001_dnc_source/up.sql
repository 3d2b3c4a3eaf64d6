-- Who made a do-not-call entry (issue 16): clients manage their own entries through the API, but
-- an entry made by the callee's opt-out keypress may be removed only by an operator, and the
-- global list stays the operators'. Until now only the free-text reason told them apart.
ALTER TABLE dnc_numbers ADD COLUMN source TEXT NOT NULL DEFAULT 'operator'
    CHECK (source IN ('operator', 'client', 'opt_out'));
UPDATE dnc_numbers SET source = 'opt_out' WHERE reason = 'opted out during a call';
-- The account's list, newest first, paginated by id.
CREATE INDEX dnc_numbers_account_id ON dnc_numbers (account_id, id) WHERE account_id IS NOT NULL;
