-- ciam schema, SQLite dialect. Times are Unix seconds.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE apps (
    client_id             TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    enabled               BOOLEAN NOT NULL,
    password_expiry_check BOOLEAN NOT NULL,
    access                TEXT NOT NULL,
    session_ttl           BIGINT NOT NULL,
    id_token_ttl          BIGINT NOT NULL,
    created_at            BIGINT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    mobile              TEXT NOT NULL UNIQUE,
    user_name           TEXT,
    name                TEXT,
    email               TEXT,
    disabled            BOOLEAN NOT NULL,
    password_hash       TEXT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE app_members (
    client_id TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, user_id)
);
CREATE INDEX app_members_user ON app_members (user_id);

CREATE TABLE password_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    replaced_at   BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, id);

CREATE TABLE login_failures (
    lock_key     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE sessions (
    token_digest TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_client ON sessions (client_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE state_grants (
    token_digest TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL REFERENCES apps (client_id) ON DELETE CASCADE,
    flow         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX state_grants_user ON state_grants (user_id);
CREATE INDEX state_grants_client ON state_grants (client_id);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pkcs8 BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    publish_until BIGINT
);

-- No foreign keys: the audit log outlives the users and apps it names.
CREATE TABLE audit_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 BIGINT NOT NULL,
    action             TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    mobile             TEXT,
    user_id            TEXT,
    client_id          TEXT,
    os_version         TEXT,
    device_fingerprint TEXT,
    device_ip          TEXT,
    agent              TEXT,
    peer_ip            TEXT
);
CREATE INDEX audit_events_mobile ON audit_events (mobile, id);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
