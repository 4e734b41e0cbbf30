//! RS256 signing keys, the JWKS, and id_tokens.
//!
//! Keys live in the store so every instance signs with the same key and
//! publishes the same set. Each instance keeps a copy in memory
//! ([`KeyRing`]) and reloads it every [`KEY_REFRESH_SECONDS`], so a rotation
//! made anywhere is in every JWKS within that bound.

use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

pub use super::claims::{IdTokenBase, IdTokenClaims, OidcClaims, at_hash};
use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::{ClientId, SigningKeyRecord, User};
use crate::sealing::{Sealer, is_sealed};
use crate::store::Store;
use crate::token::new_id;

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

/// jsonwebtoken signs through a process-wide `CryptoProvider`. Its stock
/// aws-lc provider parses and validates the RSA private key on every
/// signature, which costs about twice the signature itself. This provider
/// keeps the parsed keys (a handful at most) and delegates everything else
/// (verification, JWK helpers, other algorithms) to the stock one.
mod provider {
    use std::sync::{Arc, Mutex, Once};

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
    use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey};

    /// Parsed keys, by their PKCS#1 DER; newest last.
    static PARSED: Mutex<Vec<(Vec<u8>, Arc<RsaKeyPair>)>> = Mutex::new(Vec::new());
    const KEEP: usize = 8;

    struct Rs256(Arc<RsaKeyPair>);

    impl jsonwebtoken::signature::Signer<Vec<u8>> for Rs256 {
        fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, jsonwebtoken::signature::Error> {
            let mut signature = vec![0; self.0.public_modulus_len()];
            self.0
                .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut signature)
                .map_err(jsonwebtoken::signature::Error::from_source)?;
            Ok(signature)
        }
    }

    impl JwtSigner for Rs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::RS256
        }
    }

    fn parsed(der: &[u8]) -> Option<Arc<RsaKeyPair>> {
        let mut cache = PARSED.lock().ok()?;
        if let Some((_, pair)) = cache.iter().find(|(k, _)| k.as_slice() == der) {
            return Some(Arc::clone(pair));
        }
        let pair = Arc::new(RsaKeyPair::from_der(der).ok()?);
        if cache.len() == KEEP {
            cache.remove(0);
        }
        cache.push((der.to_vec(), Arc::clone(&pair)));
        Some(pair)
    }

    fn signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
        if *alg == Algorithm::RS256
            && key.family() == AlgorithmFamily::Rsa
            && let Some(pair) = parsed(key.inner())
        {
            return Ok(Box::new(Rs256(pair)));
        }
        (DEFAULT_PROVIDER.signer_factory)(alg, key)
    }

    /// Installs the provider once per process. Should another provider be
    /// installed already, that one is used: slower, equally correct.
    pub(super) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let provider: &'static CryptoProvider = Box::leak(Box::new(CryptoProvider {
                signer_factory: signer,
                verifier_factory: DEFAULT_PROVIDER.verifier_factory,
                jwk_utils: DEFAULT_PROVIDER.jwk_utils.clone(),
            }));
            let _ = provider.install_default();
        });
    }
}

/// One public key of the JWKS.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Always `RS256`.
    pub alg: &'static str,
    /// Key id, as in the id_token header.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

/// The JWKS document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Jwks {
    /// The published keys, the signing key first.
    pub keys: Vec<Jwk>,
}

/// A key ready to sign.
struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct KeySet {
    signing: Arc<LoadedKey>,
    jwks: Arc<Jwks>,
    /// Keys no longer published but retired at most [`HINT_KEY_SECONDS`]
    /// ago: they still verify a logout's `id_token_hint`.
    hints: Vec<Jwk>,
}

impl KeySet {
    /// The set before the first load: it signs nothing.
    fn empty() -> Self {
        let encoding = EncodingKey::from_secret(&[]);
        KeySet {
            signing: Arc::new(LoadedKey { kid: String::new(), encoding }),
            jwks: Arc::new(Jwks { keys: Vec::new() }),
            hints: Vec::new(),
        }
    }
}

/// The in-memory copy of the store's keys.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// Seals private keys at rest, when configured.
    sealer: Option<Arc<Sealer>>,
}

/// Generates a fresh RSA-2048 key record, its private key in clear.
pub fn generate_key(now: UnixTime) -> Result<SigningKeyRecord, CiamError> {
    let pair =
        KeyPair::generate(KeySize::Rsa2048).map_err(|_| CiamError::Internal("RSA key generation failed".into()))?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|_| CiamError::Internal("RSA key encoding failed".into()))?;
    Ok(SigningKeyRecord {
        kid: new_id(),
        private_pkcs8: der.as_ref().to_vec(),
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// The private key of a stored record, opened when it is sealed.
fn plain_key(record: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<Vec<u8>, CiamError> {
    match (is_sealed(&record.private_pkcs8), sealer) {
        (false, _) => Ok(record.private_pkcs8.clone()),
        (true, Some(sealer)) => sealer.open(&record.kid, &record.private_pkcs8),
        (true, None) => Err(CiamError::Internal(
            "the signing keys in the database are encrypted: set CIAM_KEY_ENCRYPTION_KEY to the key they were \
             encrypted with"
                .into(),
        )),
    }
}

fn load(record: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<(LoadedKey, Jwk), CiamError> {
    let private_pkcs8 = plain_key(record, sealer)?;
    let pair = KeyPair::from_pkcs8(&private_pkcs8)
        .map_err(|e| CiamError::Internal(format!("stored signing key {} unusable: {e}", record.kid)))?;
    let public = pair.public_key();
    let jwk = Jwk {
        kty: "RSA",
        use_: "sig",
        alg: "RS256",
        kid: record.kid.clone(),
        n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    };
    // jsonwebtoken's PEM reader unwraps PKCS#8 into the PKCS#1 form its
    // signer wants.
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&private_pkcs8));
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| CiamError::Internal(format!("stored signing key {} unusable: {e}", record.kid)))?;
    Ok((LoadedKey { kid: record.kid.clone(), encoding }, jwk))
}

/// The records to publish at `now`, the signing key first. The current key
/// is the newest one not retired; every instance picks the same one, even if
/// two instances created a first key at the same moment.
fn layout(records: &[SigningKeyRecord], now: UnixTime) -> Result<Vec<&SigningKeyRecord>, CiamError> {
    let mut sorted: Vec<&SigningKeyRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    let current = *sorted
        .iter()
        .find(|r| r.retired_at.is_none())
        .ok_or_else(|| CiamError::Internal("no current signing key".into()))?;
    let mut published = vec![current];
    published.extend(sorted.into_iter().filter(|r| {
        r.kid != current.kid && (r.retired_at.is_none() || r.publish_until.is_some_and(|until| until > now))
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
    let (signing, first) = load(published[0], sealer)?;
    let mut keys = vec![first];
    for record in &published[1..] {
        keys.push(load(record, sealer)?.1);
    }
    let hints = hint_records(records, &published, now).into_iter().map(|r| load(r, sealer).map(|(_, jwk)| jwk));
    let hints = hints.collect::<Result<Vec<_>, _>>()?;
    Ok(KeySet { signing: Arc::new(signing), jwks: Arc::new(Jwks { keys }), hints })
}

impl KeyRing {
    /// Loads the keys, creating the first one when the store has none. With
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
        if records.is_empty() {
            // Instances started together each make one; one is stored, and
            // every instance signs with that one.
            store.insert_first_signing_key(&ring.new_key(now).await?).await?;
            records = store.list_signing_keys().await?;
        }
        let set = build(&records, now, ring.sealer.as_deref())?;
        *ring.current.write().map_err(|_| CiamError::Internal("key ring lock poisoned".into()))? = Arc::new(set);
        Ok(ring)
    }

    /// A fresh key record, sealed when the ring seals.
    async fn new_key(&self, now: UnixTime) -> Result<SigningKeyRecord, CiamError> {
        let mut key = tokio::task::spawn_blocking(move || generate_key(now))
            .await
            .map_err(|e| CiamError::Internal(format!("key generation task: {e}")))??;
        if let Some(sealer) = &self.sealer {
            key.private_pkcs8 = sealer.seal(&key.kid, &key.private_pkcs8)?;
        }
        Ok(key)
    }

    /// A ring with one fresh key held only in memory (benchmarks, tools).
    pub fn ephemeral(now: UnixTime) -> Result<Self, CiamError> {
        let set = build(&[generate_key(now)?], now, None)?;
        Ok(Self { current: Arc::new(RwLock::new(Arc::new(set))), sealer: None })
    }

    /// Re-reads the keys from the store.
    pub async fn refresh(&self, store: &dyn Store, now: UnixTime) -> Result<(), CiamError> {
        let records = store.list_signing_keys().await?;
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

    /// Makes a new key current and retires the old ones, then reloads.
    pub async fn rotate(&self, store: &dyn Store, now: UnixTime) -> Result<String, CiamError> {
        let key = self.new_key(now).await?;
        let kid = key.kid.clone();
        store.rotate_signing_key(&key, now, now + MAX_ID_TOKEN_TTL + JWKS_CACHE_MARGIN).await?;
        self.refresh(store, now).await?;
        Ok(kid)
    }

    fn snapshot(&self) -> Result<Arc<KeySet>, CiamError> {
        self.current.read().map(|g| Arc::clone(&g)).map_err(|_| CiamError::Internal("key ring lock poisoned".into()))
    }

    /// The published keys.
    pub fn jwks(&self) -> Result<Arc<Jwks>, CiamError> {
        Ok(Arc::clone(&self.snapshot()?.jwks))
    }

    /// Signs an id_token for `user` and app `client_id`.
    pub fn sign_id_token(
        &self,
        issuer: &str,
        client_id: &ClientId,
        user: &User,
        now: UnixTime,
        ttl: i64,
    ) -> Result<String, CiamError> {
        self.sign(&IdTokenClaims::new(issuer, client_id, user, now, ttl))
    }

    /// Signs an OpenID Connect id_token (docs/oidc.md): the claims of
    /// [`Ciam::sign_id_token`](KeyRing::sign_id_token) without `api` (scopes
    /// decide what a relying party learns), with `auth_time`, and `nonce`
    /// and `at_hash` when given.
    pub fn sign_oidc_id_token(&self, base: IdTokenBase<'_>, extra: OidcClaims) -> Result<String, CiamError> {
        let mut claims = IdTokenClaims::new(base.issuer, base.client_id, base.user, base.now, base.ttl);
        claims.api = None;
        claims.oidc = Some(extra);
        self.sign(&claims)
    }

    fn sign(&self, claims: &IdTokenClaims) -> Result<String, CiamError> {
        let set = self.snapshot()?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(set.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &set.signing.encoding)
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
        let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
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
    use jsonwebtoken::{DecodingKey, Validation};

    fn user() -> User {
        User {
            id: crate::model::UserId::new("u1"),
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

    #[test]
    fn id_token_verifies_with_the_published_key() {
        let record = generate_key(1000).expect("key");
        let set = build(std::slice::from_ref(&record), 1000, None).expect("set");
        let ring = KeyRing { current: Arc::new(RwLock::new(Arc::new(set))), sealer: None };
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let token =
            ring.sign_id_token("https://issuer.test", &ClientId::new("client-1"), &user(), now, 300).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(record.kid.as_str()));
        let jwks = ring.jwks().expect("jwks");
        let jwk = &jwks.keys[0];
        let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["client-1"]);
        validation.set_issuer(&["https://issuer.test"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("valid");
        assert_eq!(data.claims["sub"], "u1");
        assert_eq!(data.claims["exp"].as_i64(), Some(now + 300));
        let api: serde_json::Value = serde_json::from_str(data.claims["api"].as_str().expect("string")).expect("json");
        assert_eq!(api["userName"], "alice");
        assert_eq!(api["mobile"], "+8615200000000");
        assert!(api.get("email").is_some());
    }

    #[test]
    fn a_retired_key_verifies_hints_for_30_days() {
        let old = generate_key(1000).expect("key");
        let ring = |set| KeyRing { current: Arc::new(RwLock::new(Arc::new(set))), sealer: None };
        let signer = ring(build(std::slice::from_ref(&old), 1000, None).expect("set"));
        let hint = signer.sign_id_token("https://issuer.test", &ClientId::new("c1"), &user(), 1000, 300).expect("sign");
        let retired = SigningKeyRecord { retired_at: Some(2000), publish_until: Some(3000), ..old };
        let records = [retired, generate_key(2000).expect("key")];
        let day = 86_400;
        let later = ring(build(&records, 2000 + 10 * day, None).expect("set"));
        assert_eq!(later.jwks().expect("jwks").keys.len(), 1, "no longer published");
        let claims = later.verify_hint(&hint, "https://issuer.test").expect("still a hint");
        assert_eq!(claims["sub"], "u1");
        assert!(later.verify_hint(&hint, "https://other.test").is_none(), "another issuer's");
        let gone = ring(build(&records, 2001 + 30 * day, None).expect("set"));
        assert!(gone.verify_hint(&hint, "https://issuer.test").is_none(), "past 30 days");
    }

    #[test]
    fn retired_keys_stay_published_until_their_time() {
        let old =
            SigningKeyRecord { retired_at: Some(100), publish_until: Some(200), ..generate_key(50).expect("key") };
        let new = generate_key(100).expect("key");
        let both = build(&[old.clone(), new.clone()], 150, None).expect("set");
        assert_eq!(both.signing.kid, new.kid);
        assert_eq!(both.jwks.keys.len(), 2);
        let later = build(&[old, new.clone()], 200, None).expect("set");
        assert_eq!(later.jwks.keys.len(), 1);
        assert_eq!(later.jwks.keys[0].kid, new.kid);
    }
}
