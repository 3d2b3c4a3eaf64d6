-- Batches the expiry sweep looks at: an expiry set and calls possibly left to end.
CREATE INDEX batches_expiring ON batches (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('pending', 'dispatching', 'paused');
