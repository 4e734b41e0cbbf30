-- CONTRACT §9: the audit event of a request carries its X-Request-Id.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
