ALTER TABLE asterisk_servers DROP COLUMN simulated;
DELETE FROM accounts WHERE id IN (SELECT account_id FROM test_twins);
DROP TABLE test_twins;
ALTER TABLE accounts DROP CONSTRAINT accounts_accountcode_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_accountcode_check CHECK (accountcode ~ '^[A-Za-z0-9_-]{1,64}$');
