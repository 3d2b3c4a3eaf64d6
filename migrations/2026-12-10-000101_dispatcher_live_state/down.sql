ALTER TABLE server_status DROP COLUMN calls_per_second;
ALTER TABLE dispatchers DROP COLUMN status_at;
ALTER TABLE dispatchers DROP COLUMN account_rates;
ALTER TABLE dispatchers DROP COLUMN global_cps;
