-- Password checks in flight count against a failure counter's remaining
-- attempts, so a burst cannot get more guesses than the lock allows: each
-- check holds a place (a row) on its counter until its failure is counted,
-- it is given back, or it lapses at `until` (a check whose instance died
-- mid-hash holds its place no longer than that). A check on two counters
-- (account and address, and account) holds one place on each, under one id.
CREATE TABLE login_checks (
    id       TEXT NOT NULL,
    lock_key TEXT NOT NULL,
    until    BIGINT NOT NULL,
    PRIMARY KEY (id, lock_key)
);
CREATE INDEX login_checks_live ON login_checks (lock_key, until);
