//! Opaque tokens: drawn from the OS CSPRNG, handed to the client once, and
//! stored only as their SHA-256.

use std::fmt;

use crate::error::CiamError;
use crate::model::TokenDigest;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of a session_token (the seed's: 32 characters `[A-Za-z0-9]`).
pub const SESSION_TOKEN_LEN: usize = 32;
/// Length of a state_token.
pub const STATE_TOKEN_LEN: usize = 40;
/// Length of a generated admin token.
pub const ADMIN_TOKEN_LEN: usize = 48;

/// Fills `buf` from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CiamError> {
    getrandom::fill(buf).map_err(|e| CiamError::Internal(format!("getrandom: {e}")))
}

/// A secret token as handed to a client. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    /// Draws `len` characters of `[A-Za-z0-9]` uniformly from the OS CSPRNG.
    pub fn generate(len: usize) -> Result<Self, CiamError> {
        let mut out = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while out.len() < len {
            fill_random(&mut buf)?;
            // 248 = 4 × 62: rejecting bytes above it keeps the draw uniform.
            for b in buf.iter().filter(|b| **b < 248) {
                if out.len() == len {
                    break;
                }
                out.push(ALPHANUMERIC[(*b % 62) as usize] as char);
            }
        }
        Ok(OpaqueToken(out))
    }

    /// Wraps a token received from a client.
    pub fn from_client(token: &str) -> Self {
        OpaqueToken(token.trim().to_owned())
    }

    /// The token text, to send to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 under which the token is stored.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::new(sha256_hex(self.0.as_bytes()))
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex HMAC-SHA256 of `data` under `key`.
pub fn keyed_digest(key: &[u8], data: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets (or their digests) in constant time.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A fresh random identifier (users, token ids).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new user's id: a UUIDv7, ordered by time, so that new users are
/// added at the end of the id index rather than all over it (a bulk import
/// of a million users stays fast); 74 of its bits are random.
pub fn new_user_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn session_tokens_have_the_seed_shape_and_do_not_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let t = OpaqueToken::generate(SESSION_TOKEN_LEN).expect("token");
            assert_eq!(t.expose().len(), 32);
            assert!(t.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(seen.insert(t.expose().to_owned()));
        }
    }

    #[test]
    fn all_62_characters_appear() {
        let t = OpaqueToken::generate(20_000).expect("token");
        let distinct: HashSet<u8> = t.expose().bytes().collect();
        assert_eq!(distinct.len(), 62);
    }

    #[test]
    fn digest_is_sha256_and_debug_hides_the_token() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let t = OpaqueToken::from_client(" secret123 ");
        assert_eq!(t.expose(), "secret123");
        assert!(!format!("{t:?}").contains("secret"));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
