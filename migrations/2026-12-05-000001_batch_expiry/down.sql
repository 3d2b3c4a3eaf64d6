DROP INDEX batches_expiring;
