-- At most one current signing key. Instances that start together on an
-- empty database each make a first key; the index lets one of them store
-- it, and the others load the one stored. A database where the race was
-- already lost keeps its newest current key; the others are retired and
-- stay in the JWKS for a day, the longest an id_token signed by them lives.
UPDATE signing_keys SET retired_at = created_at, publish_until = CAST(strftime('%s', 'now') AS BIGINT) + 86400
WHERE retired_at IS NULL AND kid <> (
    SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
