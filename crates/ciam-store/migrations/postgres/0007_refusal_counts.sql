-- Refusals that cost no hash (a body that does not parse, a throttled
-- address) are kept as one event per address and outcome a minute: the
-- first such refusal's event, with the number of them in `count`. Client
-- ids ship inside apps, so such refusals prove nothing and must not grow
-- the database with every request. `aggregate_key` ("<minute>|<address>|
-- <outcome>") is set only on those events; other events leave it NULL,
-- which the unique index does not compare.
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN aggregate_key TEXT;
CREATE UNIQUE INDEX audit_events_aggregate ON audit_events (aggregate_key);
