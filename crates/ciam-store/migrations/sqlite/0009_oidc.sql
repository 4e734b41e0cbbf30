-- OpenID Connect (docs/oidc.md). Apps become OpenID clients: public or
-- confidential (a secret kept as its SHA-256), with the redirect targets they
-- registered, as JSON arrays of absolute URIs.
ALTER TABLE apps ADD COLUMN client_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE apps ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN initiate_login_uri TEXT;
ALTER TABLE apps ADD COLUMN secret_digest TEXT;

-- What the code flow keeps between its steps, each under the SHA-256 of the
-- secret that names it: stored authorization requests, codes, access and
-- refresh tokens, browser sessions and SSO tickets. `uses` counts
-- redemptions (a code or a refresh token is spent by the first, and a second
-- revokes its `family`: every token issued from the same code).
CREATE TABLE oauth_grants (
    digest     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    client_id  TEXT REFERENCES apps (client_id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    family     TEXT,
    body       TEXT NOT NULL,
    uses       BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);
CREATE INDEX oauth_grants_family ON oauth_grants (family);
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);
