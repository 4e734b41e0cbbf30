-- CONTRACT §7 and §8: the client's address in every audit event, windows of
-- failed password attempts per address, and failure counts forgotten after
-- `failure_reset_seconds`.
ALTER TABLE audit_events RENAME COLUMN peer_ip TO ip;
CREATE INDEX audit_events_ip ON audit_events (ip, id);

CREATE TABLE ip_throttle (
    ip           TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL
);

ALTER TABLE login_failures ADD COLUMN last_failure_at BIGINT;
