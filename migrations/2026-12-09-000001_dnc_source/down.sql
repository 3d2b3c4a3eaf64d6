DROP INDEX dnc_numbers_account_id;
ALTER TABLE dnc_numbers DROP COLUMN source;
