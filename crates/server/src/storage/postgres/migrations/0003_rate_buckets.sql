-- Schema 3: rate budgets as token buckets shared by every instance (the fixed windows of
-- schema 1 were never used). A bucket's key names its budget and what it counts (an org, an
-- address, a credential hash); no tenant data, so outside the policies like used_proofs.
DROP TABLE rate_counters;
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_buckets_idle ON rate_buckets(updated_at);
