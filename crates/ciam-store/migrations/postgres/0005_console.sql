-- The admin console: its sign-in sessions, kept in the database so that every
-- instance knows them and signing out ends one everywhere, each with the
-- stored digest of the admin token it was opened with (a new admin token ends
-- it); and the audit log by time, for the login chart and the audit page's
-- time range.
CREATE TABLE console_sessions (
    token_digest TEXT PRIMARY KEY,
    admin_digest TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
