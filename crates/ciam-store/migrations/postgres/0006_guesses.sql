-- Password checks in flight count against a counter's remaining attempts,
-- so a burst cannot get more guesses than the lock allows: `pending` checks
-- hold a place until they are counted as a failure or given back, and all
-- of them lapse at `pending_until` (a check whose instance died mid-hash
-- holds its place no longer than that). `reserved_by` names the attempt
-- that took the last place, so its statement can tell it got one.
ALTER TABLE login_failures ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN pending_until BIGINT;
ALTER TABLE login_failures ADD COLUMN reserved_by TEXT;
