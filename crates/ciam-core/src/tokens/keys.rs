//! The signing keys (RS256 and EdDSA, docs/oidc.md §12), the JWKS, and
//! id_tokens.
//!
//! Keys live in the store so every instance signs with the same keys and
//! publishes the same set. Each instance keeps a copy in memory
//! ([`KeyRing`]) and reloads it every [`KEY_REFRESH_SECONDS`], so a rotation
//! made anywhere is in every JWKS within that bound.

use std::sync::{Arc, RwLock};

use jsonwebtoken::Header;
use serde::Serialize;

pub use super::claims::{IdTokenBase, IdTokenClaims, OidcClaims, at_hash};
pub use super::jwk::{Jwk, Jwks, generate_key};
use super::jwk::{LoadedKey, jws, load};
use super::provider;
use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::{SigningAlg, SigningKeyRecord};
use crate::sealing::{Sealer, is_sealed};
use crate::store::Store;

/// How often each instance reloads the key set from the store.
pub const KEY_REFRESH_SECONDS: u64 = 2;
/// The longest id_token lifetime an app may set.
pub const MAX_ID_TOKEN_TTL: i64 = 86_400;
/// How long after the last token a retired key signed could expire it stays
/// in the JWKS, for clients that cache the JWKS.
pub const JWKS_CACHE_MARGIN: i64 = 3_600;

/// A logout's `id_token_hint` is still taken this long after its key was
/// retired (docs/oidc.md §8).
pub const HINT_KEY_SECONDS: i64 = 30 * 86_400;

#[derive(Debug)]
struct KeySet {
    /// The current key of each algorithm, in [`SigningAlg::ALL`] order.
    signing: Vec<(SigningAlg, Arc<LoadedKey>)>,
    jwks: Arc<Jwks>,
    /// Keys no longer published but retired at most [`HINT_KEY_SECONDS`]
    /// ago: they still verify a logout's `id_token_hint`.
    hints: Vec<Jwk>,
}

impl KeySet {
    /// The set before the first load: it signs nothing.
    fn empty() -> Self {
        let none = Arc::new(LoadedKey::none());
        KeySet {
            signing: SigningAlg::ALL.iter().map(|alg| (*alg, Arc::clone(&none))).collect(),
            jwks: Arc::new(Jwks { keys: Vec::new() }),
            hints: Vec::new(),
        }
    }

    fn signer(&self, alg: SigningAlg) -> Result<&LoadedKey, CiamError> {
        let key = self.signing.iter().find(|(a, _)| *a == alg).map(|(_, key)| key.as_ref());
        key.ok_or_else(|| CiamError::Internal(format!("no current {} signing key", alg.as_str())))
    }
}

/// The keys a rotation made current.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rotated {
    /// The new RS256 key's id.
    pub kid: String,
    /// The new EdDSA key's id.
    pub eddsa_kid: String,
}

/// The in-memory copy of the store's keys.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Seals private keys at rest, when configured.
    sealer: Option<Arc<Sealer>>,
}

/// Whether `record` is a current (not retired) key of `alg`.
fn is_current(record: &SigningKeyRecord, alg: SigningAlg) -> bool {
    record.alg == alg && record.retired_at.is_none()
}

/// The records to publish at `now`: the current key of each algorithm
/// first, in [`SigningAlg::ALL`] order, then the others still published.
/// The current key of an algorithm is its newest one not retired; every
/// instance picks the same one, even if two instances created a first key
/// at the same moment.
fn layout(records: &[SigningKeyRecord], now: UnixTime) -> Result<Vec<&SigningKeyRecord>, CiamError> {
    let mut sorted: Vec<&SigningKeyRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    let mut published = Vec::with_capacity(sorted.len());
    for alg in SigningAlg::ALL {
        let current = sorted.iter().find(|r| is_current(r, alg));
        published.push(*current.ok_or_else(|| CiamError::Internal(format!("no current {} key", alg.as_str())))?);
    }
    let current: Vec<&str> = published.iter().map(|r| r.kid.as_str()).collect();
    published.extend(sorted.into_iter().filter(|r| {
        !current.contains(&r.kid.as_str())
            && (r.retired_at.is_none() || r.publish_until.is_some_and(|until| until > now))
    }));
    Ok(published)
}

/// The records no longer published whose keys still verify hints at `now`.
fn hint_records<'a>(
    records: &'a [SigningKeyRecord],
    published: &[&SigningKeyRecord],
    now: UnixTime,
) -> Vec<&'a SigningKeyRecord> {
    let recent = |r: &&SigningKeyRecord| r.retired_at.is_some_and(|at| now - at <= HINT_KEY_SECONDS);
    records.iter().filter(recent).filter(|r| published.iter().all(|p| p.kid != r.kid)).collect()
}

fn build(records: &[SigningKeyRecord], now: UnixTime, sealer: Option<&Sealer>) -> Result<KeySet, CiamError> {
    provider::install();
    let published = layout(records, now)?;
    let mut signing = Vec::with_capacity(SigningAlg::ALL.len());
    let mut keys = Vec::with_capacity(published.len());
    for (i, record) in published.iter().enumerate() {
        let (key, jwk) = load(record, sealer)?;
        if i < SigningAlg::ALL.len() {
            signing.push((record.alg, Arc::new(key)));
        }
        keys.push(jwk);
    }
    let hints = hint_records(records, &published, now).into_iter().map(|r| load(r, sealer).map(|(_, jwk)| jwk));
    let hints = hints.collect::<Result<Vec<_>, _>>()?;
    Ok(KeySet { signing, jwks: Arc::new(Jwks { keys }), hints })
}

impl KeyRing {
    /// Loads the keys, creating a key of each algorithm the store has no
    /// current key of. With
    /// a `sealer`, keys stored in clear are sealed in the store first; without
    /// one, sealed keys refuse to load.
    pub async fn open(store: &dyn Store, now: UnixTime, sealer: Option<Sealer>) -> Result<Self, CiamError> {
        let sealer = sealer.map(Arc::new);
        let ring = Self { current: Arc::new(RwLock::new(Arc::new(KeySet::empty()))), sealer };
        let mut records = store.list_signing_keys().await?;
        if let Some(sealer) = &ring.sealer {
            for record in records.iter().filter(|r| !is_sealed(&r.private_pkcs8)) {
                store.replace_private_key(&record.kid, &sealer.seal(&record.kid, &record.private_pkcs8)?).await?;
            }
            records = store.list_signing_keys().await?;
        }
        let records = ring.with_current_keys(store, records, now).await?;
        let set = build(&records, now, ring.sealer.as_deref())?;
        *ring.current.write().map_err(|_| CiamError::Internal("key ring lock poisoned".into()))? = Arc::new(set);
        Ok(ring)
    }

    /// `records`, the stored keys, after a key is made for each algorithm
    /// that has no current one: none yet, or every one retired (as a
    /// rotation by a version without that algorithm leaves it). Instances
    /// that do this at the same moment each make one; one is stored, and
    /// every instance signs with that one.
    async fn with_current_keys(
        &self,
        store: &dyn Store,
        records: Vec<SigningKeyRecord>,
        now: UnixTime,
    ) -> Result<Vec<SigningKeyRecord>, CiamError> {
        let current = |alg: SigningAlg| records.iter().any(|r| is_current(r, alg));
        let missing: Vec<SigningAlg> = SigningAlg::ALL.into_iter().filter(|alg| !current(*alg)).collect();
        if missing.is_empty() {
            return Ok(records);
        }
        for alg in missing {
            store.insert_first_signing_key(&self.new_key(alg, now).await?).await?;
        }
        Ok(store.list_signing_keys().await?)
    }

    /// A fresh key record, sealed when the ring seals.
    async fn new_key(&self, alg: SigningAlg, now: UnixTime) -> Result<SigningKeyRecord, CiamError> {
        let mut key = tokio::task::spawn_blocking(move || generate_key(alg, now))
            .await
            .map_err(|e| CiamError::Internal(format!("key generation task: {e}")))??;
        if let Some(sealer) = &self.sealer {
            key.private_pkcs8 = sealer.seal(&key.kid, &key.private_pkcs8)?;
        }
        Ok(key)
    }

    /// A ring with fresh keys held only in memory (benchmarks, tools).
    pub fn ephemeral(now: UnixTime) -> Result<Self, CiamError> {
        let keys = SigningAlg::ALL.into_iter().map(|alg| generate_key(alg, now)).collect::<Result<Vec<_>, _>>()?;
        let set = build(&keys, now, None)?;
        Ok(Self { current: Arc::new(RwLock::new(Arc::new(set))), sealer: None })
    }

    /// Re-reads the keys from the store.
    pub async fn refresh(&self, store: &dyn Store, now: UnixTime) -> Result<(), CiamError> {
        let records = self.with_current_keys(store, store.list_signing_keys().await?, now).await?;
        // Parsing RSA keys is not free: rebuild only when what is published,
        // or kept for hints, changes.
        let published = layout(&records, now)?;
        let hints = hint_records(&records, &published, now);
        let set = self.snapshot()?;
        let same = |keys: &[Jwk], records: &[&SigningKeyRecord]| {
            keys.iter().map(|k| &k.kid).eq(records.iter().map(|r| &r.kid))
        };
        let unchanged = same(&set.jwks.keys, &published) && same(&set.hints, &hints);
        if unchanged {
            return Ok(());
        }
        let set = build(&records, now, self.sealer.as_deref())?;
        if let Ok(mut guard) = self.current.write() {
            *guard = Arc::new(set);
        }
        Ok(())
    }

    /// Makes a new key of each algorithm current and retires the old ones,
    /// in one transaction, then reloads.
    pub async fn rotate(&self, store: &dyn Store, now: UnixTime) -> Result<Rotated, CiamError> {
        let (rsa, ed) = (self.new_key(SigningAlg::RS256, now).await?, self.new_key(SigningAlg::EdDSA, now).await?);
        let rotated = Rotated { kid: rsa.kid.clone(), eddsa_kid: ed.kid.clone() };
        store.rotate_signing_keys(&[rsa, ed], now, now + MAX_ID_TOKEN_TTL + JWKS_CACHE_MARGIN).await?;
        self.refresh(store, now).await?;
        Ok(rotated)
    }

    fn snapshot(&self) -> Result<Arc<KeySet>, CiamError> {
        self.current.read().map(|g| Arc::clone(&g)).map_err(|_| CiamError::Internal("key ring lock poisoned".into()))
    }

    /// The published keys.
    pub fn jwks(&self) -> Result<Arc<Jwks>, CiamError> {
        Ok(Arc::clone(&self.snapshot()?.jwks))
    }

    /// Signs an id_token as the SDK calls return it, with the algorithm
    /// `base` names.
    pub fn sign_id_token(&self, base: IdTokenBase<'_>) -> Result<String, CiamError> {
        self.sign(base.alg, &IdTokenClaims::new(base))
    }

    /// Signs an OpenID Connect id_token (docs/oidc.md): the claims of
    /// [`sign_id_token`](KeyRing::sign_id_token) without `api` (scopes
    /// decide what a relying party learns), with `auth_time`, and `nonce`
    /// and `at_hash` when given.
    pub fn sign_oidc_id_token(&self, base: IdTokenBase<'_>, extra: OidcClaims) -> Result<String, CiamError> {
        let mut claims = IdTokenClaims::new(base);
        claims.api = None;
        claims.oidc = Some(extra);
        self.sign(base.alg, &claims)
    }

    fn sign(&self, alg: SigningAlg, claims: &IdTokenClaims) -> Result<String, CiamError> {
        let set = self.snapshot()?;
        let key = set.signer(alg)?;
        let mut header = Header::new(jws(alg));
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| CiamError::Internal(format!("id_token signing: {e}")))
    }

    /// The claims of an id_token this deployment signed, its expiry not
    /// checked (a logout's `id_token_hint`: relying parties send expired
    /// ones), with a published key or one retired at most
    /// [`HINT_KEY_SECONDS`] ago; `None` for any other text.
    pub fn verify_hint(&self, token: &str, issuer: &str) -> Option<serde_json::Value> {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let set = self.snapshot().ok()?;
        let jwk = set.jwks.keys.iter().chain(&set.hints).find(|k| k.kid == kid)?;
        let (key, alg) = jwk.decoding()?;
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).ok().map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientId, User, UserId};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{DecodingKey, Validation};

    fn user() -> User {
        User {
            id: UserId::new("u1"),
            mobile: crate::mobile::Mobile::from_stored("+8615200000000".into()),
            user_name: Some("alice".into()),
            name: None,
            email: None,
            disabled: false,
            password_hash: String::new(),
            password_changed_at: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn base<'a>(client_id: &'a ClientId, user: &'a User, now: UnixTime, alg: SigningAlg) -> IdTokenBase<'a> {
        IdTokenBase { issuer: "https://issuer.test", client_id, user, now, ttl: 300, alg }
    }

    fn ring(set: KeySet) -> KeyRing {
        KeyRing { current: Arc::new(RwLock::new(Arc::new(set))), sealer: None }
    }

    /// A current key of each algorithm, made at `now`.
    fn fresh(now: UnixTime) -> Vec<SigningKeyRecord> {
        SigningAlg::ALL.into_iter().map(|alg| generate_key(alg, now).expect("key")).collect()
    }

    #[test]
    fn id_tokens_verify_with_the_published_key_of_their_algorithm() {
        let records = fresh(1000);
        let ring = ring(build(&records, 1000, None).expect("set"));
        let jwks = ring.jwks().expect("jwks");
        assert_eq!(jwks.keys.iter().map(|k| (k.kty, k.alg)).collect::<Vec<_>>(), [("RSA", "RS256"), ("OKP", "EdDSA")]);
        let okp = serde_json::to_value(&jwks.keys[1]).expect("json");
        assert_eq!(okp["crv"], "Ed25519");
        assert_eq!(URL_SAFE_NO_PAD.decode(okp["x"].as_str().expect("x")).expect("base64url").len(), 32);
        assert!(okp.get("n").is_none() && serde_json::to_value(&jwks.keys[0]).expect("json").get("x").is_none());
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let client = ClientId::new("client-1");
        for (record, jwk) in records.iter().zip(&jwks.keys) {
            let token = ring.sign_id_token(base(&client, &user(), now, record.alg)).expect("sign");
            let header = jsonwebtoken::decode_header(&token).expect("header");
            assert_eq!(header.kid.as_deref(), Some(record.kid.as_str()));
            assert_eq!(header.alg, jws(record.alg));
            let key = match record.alg {
                SigningAlg::RS256 => {
                    DecodingKey::from_rsa_components(jwk.n.as_deref().expect("n"), jwk.e.as_deref().expect("e"))
                }
                SigningAlg::EdDSA => DecodingKey::from_ed_components(jwk.x.as_deref().expect("x")),
            };
            let mut validation = Validation::new(jws(record.alg));
            validation.set_audience(&["client-1"]);
            validation.set_issuer(&["https://issuer.test"]);
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&token, &key.expect("key"), &validation).expect("valid");
            assert_eq!(data.claims["sub"], "u1");
            assert_eq!(data.claims["exp"].as_i64(), Some(now + 300));
            let api: serde_json::Value =
                serde_json::from_str(data.claims["api"].as_str().expect("string")).expect("json");
            assert_eq!(api["userName"], "alice");
            assert_eq!(api["mobile"], "+8615200000000");
            assert!(api.get("email").is_some());
            // Neither key verifies the other algorithm's tokens.
            let other = &jwks.keys[usize::from(record.alg == SigningAlg::RS256)];
            let (other_key, other_alg) = other.decoding().expect("key");
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&token, &other_key, &Validation::new(other_alg)).is_err()
            );
        }
    }

    #[test]
    fn a_hint_is_verified_by_its_keys_algorithm_only() {
        let ring = ring(build(&fresh(1000), 1000, None).expect("set"));
        let client = ClientId::new("c1");
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let eddsa = ring.sign_id_token(base(&client, &user(), now, SigningAlg::EdDSA)).expect("sign");
        assert!(ring.verify_hint(&eddsa, "https://issuer.test").is_some());
        let jwks = ring.jwks().expect("jwks");
        let rsa_kid = jwks.keys[0].kid.clone();
        // The EdDSA token's header naming the RSA key.
        let (_, rest) = eddsa.split_once('.').expect("a JWT");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(rsa_kid.clone());
        let relabelled = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json")));
        assert!(ring.verify_hint(&relabelled, "https://issuer.test").is_none());
        // HS256 keyed with the RSA key's public modulus, naming that key.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(rsa_kid);
        let claims = serde_json::json!({"iss": "https://issuer.test", "sub": "u1", "exp": now + 300});
        let secret = jsonwebtoken::EncodingKey::from_secret(jwks.keys[0].n.as_deref().expect("n").as_bytes());
        let forged = jsonwebtoken::encode(&header, &claims, &secret).expect("encode");
        assert!(ring.verify_hint(&forged, "https://issuer.test").is_none());
    }

    #[test]
    fn a_retired_key_verifies_hints_for_30_days() {
        let old = fresh(1000);
        let signer = ring(build(&old, 1000, None).expect("set"));
        let client = ClientId::new("c1");
        let hints = SigningAlg::ALL.map(|alg| signer.sign_id_token(base(&client, &user(), 1000, alg)).expect("sign"));
        let retire =
            |r: &SigningKeyRecord| SigningKeyRecord { retired_at: Some(2000), publish_until: Some(3000), ..r.clone() };
        let mut records: Vec<SigningKeyRecord> = old.iter().map(retire).collect();
        records.extend(fresh(2000));
        let day = 86_400;
        let later = ring(build(&records, 2000 + 10 * day, None).expect("set"));
        assert_eq!(later.jwks().expect("jwks").keys.len(), 2, "only the current keys are published");
        for hint in &hints {
            let claims = later.verify_hint(hint, "https://issuer.test").expect("still a hint");
            assert_eq!(claims["sub"], "u1");
            assert!(later.verify_hint(hint, "https://other.test").is_none(), "another issuer's");
        }
        let gone = ring(build(&records, 2001 + 30 * day, None).expect("set"));
        assert!(hints.iter().all(|hint| gone.verify_hint(hint, "https://issuer.test").is_none()), "past 30 days");
    }

    #[test]
    fn retired_keys_stay_published_until_their_time() {
        let old: Vec<SigningKeyRecord> = fresh(50)
            .into_iter()
            .map(|r| SigningKeyRecord { retired_at: Some(100), publish_until: Some(200), ..r })
            .collect();
        let new = fresh(100);
        let all: Vec<SigningKeyRecord> = old.iter().chain(&new).cloned().collect();
        let both = build(&all, 150, None).expect("set");
        let signers: Vec<&str> = both.signing.iter().map(|(_, key)| key.kid.as_str()).collect();
        assert_eq!(signers, [new[0].kid.as_str(), new[1].kid.as_str()], "the new key of each algorithm signs");
        assert_eq!(both.jwks.keys.len(), 4);
        let later = build(&all, 200, None).expect("set");
        let published: Vec<&str> = later.jwks.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(published, [new[0].kid.as_str(), new[1].kid.as_str()]);
    }

    #[test]
    fn a_set_without_a_current_key_of_each_algorithm_is_refused() {
        let rsa_only = [generate_key(SigningAlg::RS256, 10).expect("key")];
        let refused = build(&rsa_only, 10, None).expect_err("no EdDSA key");
        assert!(refused.to_string().contains("EdDSA"), "{refused}");
    }
}
