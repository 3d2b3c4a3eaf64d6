CREATE INDEX calls_redial ON calls (account_id, phone_e164, last_dialed_at) WHERE last_dialed_at IS NOT NULL;
DROP INDEX calls_account_phone;
