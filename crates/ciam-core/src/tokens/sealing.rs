//! Private signing keys sealed at rest (docs/api.md §8): with
//! `CIAM_KEY_ENCRYPTION_KEY` set, each key's PKCS#8 is stored encrypted with
//! AES-256-GCM, bound to its `kid`, so a copy of the database alone cannot
//! sign id_tokens.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::CiamError;
use crate::token::fill_random;

/// What a sealed key starts with (PKCS#8 DER starts with `0x30`).
const SEALED: &[u8] = b"ciam-aes256gcm:";

/// The key that seals and opens private signing keys.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

/// Whether a stored private key is sealed.
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED)
}

impl Sealer {
    /// A sealer from 32 bytes of key.
    pub fn new(key: &[u8]) -> Result<Self, CiamError> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| CiamError::Internal("the key encryption key must be 32 bytes".into()))?;
        Ok(Self { key: LessSafeKey::new(key) })
    }

    /// `plain` sealed, bound to `kid`: the marker, a random nonce, then the
    /// ciphertext and its tag.
    pub fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, CiamError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| CiamError::Internal(format!("signing key {kid} could not be sealed")))?;
        Ok([SEALED, &nonce, &sealed].concat())
    }

    /// The plain key of a sealed one.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, CiamError> {
        let wrong = || {
            CiamError::Internal(format!(
                "signing key {kid} cannot be decrypted: CIAM_KEY_ENCRYPTION_KEY is not the key it was sealed with"
            ))
        };
        let rest = stored.strip_prefix(SEALED).ok_or_else(wrong)?;
        if rest.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buffer = sealed.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer).map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_key_and_kid_only() {
        let sealer = Sealer::new(&[7; 32]).expect("sealer");
        let sealed = sealer.seal("k1", b"\x30private").expect("seal");
        assert!(is_sealed(&sealed) && !is_sealed(b"\x30private"));
        assert!(!sealed.windows(8).any(|w| w == b"\x30private"), "the key is not in clear");
        assert_eq!(sealer.open("k1", &sealed).expect("open"), b"\x30private");
        assert!(sealer.open("k2", &sealed).is_err(), "bound to its kid");
        assert!(Sealer::new(&[8; 32]).expect("sealer").open("k1", &sealed).is_err(), "another key fails");
        assert!(Sealer::new(&[7; 16]).is_err());
        assert_ne!(sealer.seal("k1", b"x").expect("seal"), sealer.seal("k1", b"x").expect("seal"), "fresh nonces");
    }
}
