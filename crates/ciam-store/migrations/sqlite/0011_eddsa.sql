-- Ed25519 signing keys beside the RSA ones (docs/oidc.md §12): one current
-- key per algorithm, and each app says which one signs its id_tokens.
-- Keys stored before this are RSA keys.
ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'RS256';
DROP INDEX signing_keys_one_current;
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (alg) WHERE retired_at IS NULL;
ALTER TABLE apps ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
