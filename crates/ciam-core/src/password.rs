//! Passwords: a secret type that never prints, and the argon2id hasher.
//!
//! [`PasswordHasher`] hashes on the hashing pool ([`crate::hashpool`]):
//! `workers` threads, each keeping one argon2 working buffer of `m` KiB for
//! its whole life, so hashing memory is exactly `workers × m` KiB however
//! hard the server is pushed.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::CiamError;
use crate::hashpool::{Owner, Pool};
use crate::token::fill_random;

/// A password as typed by a user. Its `Debug` never shows it and its memory is
/// wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: String) -> Self {
        Password(secret)
    }

    /// The password, for hashing and policy checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the password is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The argon2id cost parameters and the bounds of the hashing pool.
#[derive(Debug, Clone)]
pub struct HashingConfig {
    /// Memory cost in KiB (OWASP: 19456).
    pub m_kib: u32,
    /// Time cost, in passes (OWASP: 2).
    pub t: u32,
    /// Parallelism (OWASP: 1).
    pub p: u32,
    /// Hashes computed at the same time; defaults to the number of cores.
    pub workers: usize,
    /// Calls allowed to wait for a worker before new ones are refused.
    pub queue: usize,
    /// The longest a call waits for a worker before it is refused.
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            m_kib: 19_456,
            t: 2,
            p: 1,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            queue: 256,
            max_wait: Duration::from_secs(3),
        }
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is right. `needs_rehash` is set when the stored hash is
    /// not argon2id with the current parameters and should be replaced.
    Match {
        /// Whether the stored hash should be upgraded.
        needs_rehash: bool,
    },
    /// The password is wrong (or there is no account and a dummy was checked).
    Mismatch,
}

/// Hashes and verifies passwords with argon2id on the hashing pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    params: Params,
    pool: Arc<Pool>,
    dummy_hash: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.pool.stop();
    }
}

thread_local! {
    /// Argon2 working memory, kept per hashing thread so a verification does
    /// not fault in `m` KiB of fresh pages every time.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Why a stored hash could not be used.
#[derive(Debug, thiserror::Error)]
#[error("unsupported or malformed password hash: {0}")]
pub struct BadHash(String);

impl PasswordHasher {
    /// Builds the hasher; computes the dummy hash used for unknown accounts,
    /// so call it at start-up, not on the runtime.
    pub fn new(config: &HashingConfig) -> Result<Self, CiamError> {
        let params = Params::new(config.m_kib, config.t, config.p, None)
            .map_err(|e| CiamError::Internal(format!("argon2 parameters: {e}")))?;
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let mut pepper = [0u8; 24];
        fill_random(&mut pepper)?;
        let dummy_hash = hash_blocking(&params, &pepper, &salt)?;
        let pool = Pool::start(config.workers, config.queue, config.max_wait)?;
        Ok(Self { inner: Arc::new(Inner { params, pool, dummy_hash }) })
    }

    /// Hashes `password` into a PHC string with the current parameters, as
    /// `owner`'s work.
    pub async fn hash(&self, password: &Password, owner: Owner) -> Result<String, CiamError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let params = self.inner.params.clone();
        let password = password.clone();
        self.inner.pool.run(owner, move || hash_blocking(&params, password.expose().as_bytes(), &salt)).await?
    }

    /// Checks `password` against `stored` (a PHC string), as `owner`'s work.
    /// With `None` (no such account) a dummy hash with the current
    /// parameters is checked, so the answer takes as long and always says
    /// [`Verified::Mismatch`].
    pub async fn verify(&self, password: &Password, stored: Option<&str>, owner: Owner) -> Result<Verified, CiamError> {
        let (phc, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let params = self.inner.params.clone();
        let password = password.clone();
        let outcome =
            self.inner.pool.run(owner, move || verify_blocking(&params, password.expose().as_bytes(), &phc)).await?;
        match outcome {
            Ok(Verified::Match { needs_rehash }) if real => Ok(Verified::Match { needs_rehash }),
            Ok(_) => Ok(Verified::Mismatch),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash cannot be verified");
                Ok(Verified::Mismatch)
            }
        }
    }

    /// Hashes running and hashes queued.
    pub fn load(&self) -> (usize, usize) {
        self.inner.pool.load()
    }

    /// Whether the pool would take a hash of `owner`'s now (see
    /// [`Pool::check`]).
    pub fn check(&self, owner: &Owner) -> Result<(), CiamError> {
        self.inner.pool.check(owner)
    }

    /// Checks that `phc` is a hash this server can verify (for imports).
    pub fn check_importable(phc: &str) -> Result<(), BadHash> {
        let hash = PasswordHash::new(phc).map_err(|e| BadHash(e.to_string()))?;
        Algorithm::try_from(hash.algorithm).map_err(|e| BadHash(e.to_string()))?;
        Params::try_from(&hash).map_err(|e| BadHash(e.to_string()))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err(BadHash("salt and hash output are required".into()));
        }
        Ok(())
    }

    /// Hashes `password` synchronously (CLI use, off any runtime).
    pub fn hash_now(&self, password: &Password) -> Result<String, CiamError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        hash_blocking(&self.inner.params, password.expose().as_bytes(), &salt)
    }

    /// Verifies synchronously with the pool's code path but without its
    /// bounds; used by the benchmark to measure the raw hash rate.
    pub fn verify_now(&self, password: &Password, phc: &str) -> bool {
        matches!(verify_blocking(&self.inner.params, password.expose().as_bytes(), phc), Ok(Verified::Match { .. }))
    }
}

fn hash_blocking(params: &Params, password: &[u8], salt: &[u8]) -> Result<String, CiamError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CiamError::Internal(format!("salt: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| CiamError::Internal(format!("salt: {e}")))?;
    let mut out = [0u8; 32];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|e| CiamError::Internal(format!("argon2: {e}")))?;
    let output = argon2::password_hash::Output::new(&out).map_err(|e| CiamError::Internal(format!("argon2: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(params)
            .map_err(|e| CiamError::Internal(format!("argon2: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_blocking(current: &Params, password: &[u8], phc: &str) -> Result<Verified, BadHash> {
    let hash = PasswordHash::new(phc).map_err(|e| BadHash(e.to_string()))?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| BadHash(e.to_string()))?;
    let version =
        hash.version.map(Version::try_from).transpose().map_err(|e| BadHash(e.to_string()))?.unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|e| BadHash(e.to_string()))?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(BadHash("salt and hash output are required".into()));
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| BadHash(e.to_string()))?;
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|e| BadHash(e.to_string()))?;
    let matches: bool = out.as_slice().ct_eq(expected.as_bytes()).into();
    out.zeroize();
    if !matches {
        return Ok(Verified::Mismatch);
    }
    let needs_rehash = algorithm != Algorithm::Argon2id
        || version != Version::V0x13
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost();
    Ok(Verified::Match { needs_rehash })
}

/// Lends this thread's argon2 working memory, grown to `count` blocks.
fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    BLOCKS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < count {
                blocks.resize(count, Block::default());
            }
            f(&mut blocks[..count])
        }
        // Not reentrant in practice; fall back to a fresh buffer if it were.
        Err(_) => f(&mut vec![Block::default(); count]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    fn small() -> HashingConfig {
        HashingConfig { m_kib: 1024, t: 1, p: 1, workers: 1, queue: 0, max_wait: Duration::from_millis(10) }
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2-secret".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn hash_then_verify_and_interoperate_with_the_argon2_crate() {
        let hasher = PasswordHasher::new(&HashingConfig::default()).expect("hasher");
        let pw = Password::new("Passw0rd!".into());
        let phc = hasher.hash(&pw, None).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify(&pw, Some(&phc), None).await.expect("verify"),
            Verified::Match { needs_rehash: false }
        );
        let wrong = Password::new("Passw0rd?".into());
        assert_eq!(hasher.verify(&wrong, Some(&phc), None).await.expect("verify"), Verified::Mismatch);
        // The reference implementation accepts what we wrote.
        let parsed = PasswordHash::new(&phc).expect("phc");
        assert!(Argon2::default().verify_password(b"Passw0rd!", &parsed).is_ok());
        // An unknown account never matches, whatever the password.
        assert_eq!(hasher.verify(&pw, None, None).await.expect("verify"), Verified::Mismatch);
    }

    #[tokio::test]
    async fn weaker_hashes_verify_and_ask_for_an_upgrade() {
        let weak = PasswordHasher::new(&small()).expect("hasher");
        let strong = PasswordHasher::new(&HashingConfig::default()).expect("hasher");
        let pw = Password::new("Passw0rd!".into());
        let phc = weak.hash(&pw, None).await.expect("hash");
        assert_eq!(strong.verify(&pw, Some(&phc), None).await.expect("verify"), Verified::Match { needs_rehash: true });
        assert!(PasswordHasher::check_importable(&phc).is_ok());
        assert!(PasswordHasher::check_importable("$2b$12$abc").is_err());
        assert!(PasswordHasher::check_importable("plaintext").is_err());
    }
}
