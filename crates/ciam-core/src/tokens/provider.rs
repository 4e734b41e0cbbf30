//! The signing side of jsonwebtoken's process-wide `CryptoProvider`.
//!
//! Its stock aws-lc provider parses and validates the private key on every
//! signature: for RSA that costs about twice the signature itself, for
//! Ed25519 about as much as the signature. This provider keeps the parsed
//! keys (a handful at most) and delegates everything else (verification,
//! JWK helpers, other algorithms) to the stock one.

use std::sync::{Arc, Mutex, Once};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
use jsonwebtoken::signature::{Error, Signer};
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey};

/// A parsed private key.
#[derive(Clone)]
enum Parsed {
    Rsa(Arc<RsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
}

/// Parsed keys, by the DER jsonwebtoken holds (PKCS#1 for RSA, PKCS#8 for
/// Ed25519); newest last.
static PARSED: Mutex<Vec<(Vec<u8>, Parsed)>> = Mutex::new(Vec::new());
/// Two algorithms, a current and a retiring key each, and room to spare.
const KEEP: usize = 8;

struct Cached(Parsed);

impl Signer<Vec<u8>> for Cached {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.0 {
            Parsed::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut signature).map_err(Error::from_source)?;
                Ok(signature)
            }
            Parsed::Ed(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for Cached {
    fn algorithm(&self) -> Algorithm {
        match self.0 {
            Parsed::Rsa(_) => Algorithm::RS256,
            Parsed::Ed(_) => Algorithm::EdDSA,
        }
    }
}

fn parsed(alg: Algorithm, der: &[u8]) -> Option<Parsed> {
    let mut cache = PARSED.lock().ok()?;
    if let Some((_, key)) = cache.iter().find(|(k, _)| k.as_slice() == der) {
        return Some(key.clone());
    }
    let key = match alg {
        Algorithm::RS256 => Parsed::Rsa(Arc::new(RsaKeyPair::from_der(der).ok()?)),
        Algorithm::EdDSA => Parsed::Ed(Arc::new(Ed25519KeyPair::from_pkcs8(der).ok()?)),
        _ => return None,
    };
    if cache.len() == KEEP {
        cache.remove(0);
    }
    cache.push((der.to_vec(), key.clone()));
    Some(key)
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let ours = matches!(
        (alg, key.family()),
        (Algorithm::RS256, AlgorithmFamily::Rsa) | (Algorithm::EdDSA, AlgorithmFamily::Ed)
    );
    if ours && let Some(key) = parsed(*alg, key.inner()) {
        return Ok(Box::new(Cached(key)));
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
