-- Verification codes by SMS (docs/sms.md). Apps may open sign-up: the
-- register call, and a login code that creates an unregistered user.
ALTER TABLE apps ADD COLUMN self_registration BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE apps ADD COLUMN sms_auto_register BOOLEAN NOT NULL DEFAULT FALSE;

-- One live code per number and purpose, kept only as a keyed digest; a new
-- send replaces it. `checks` counts comparisons, however many arrive at once.
CREATE TABLE sms_codes (
    mobile     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    checks     BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (mobile, kind)
);
CREATE INDEX sms_codes_expiry ON sms_codes (expires_at);

-- The SMS limits, one row per counted thing (a number's resend interval and
-- day, an address's hour, the hour of all sends, a number's wrong entries):
-- how many in the window that ends at `ends_at`.
CREATE TABLE sms_windows (
    key     TEXT PRIMARY KEY,
    ends_at BIGINT NOT NULL,
    count   BIGINT NOT NULL
);
CREATE INDEX sms_windows_end ON sms_windows (ends_at);
