-- CONTRACT §8: background work that only one instance may do at a time
-- (the retention purge) takes a lease.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
