//! Passwords: a secret type that never prints, and the argon2id hasher.
//!
//! Hashing is CPU-bound (tens of milliseconds), so it never runs on the async
//! runtime's worker threads. [`PasswordHasher`] owns a fixed pool of
//! `workers` threads, each keeping one argon2 working buffer of `m` KiB for
//! its whole life, so hashing memory is exactly `workers × m` KiB however
//! hard the server is pushed. In front of the pool sits a bounded queue with
//! a maximum wait: past either bound a call fails at once with
//! [`CiamError::Overloaded`] instead of queueing without limit.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroize;

use crate::error::CiamError;
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

/// Hashes and verifies passwords with argon2id on a bounded pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

/// Jobs admitted to the pool per worker: the one running and one waiting
/// behind it, so a worker finds its next job ready instead of sleeping until
/// a caller is woken to hand it one. A waiting job holds no argon2 memory.
const JOBS_PER_WORKER: usize = 2;

/// A unit of work for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
struct Inner {
    params: Params,
    gate: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    max_wait: Duration,
    dummy_hash: String,
    /// Feeds the hashing threads; they end when it is dropped.
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Starts `count` hashing threads taking jobs from one channel.
fn start_workers(count: usize) -> Result<mpsc::Sender<Job>, CiamError> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..count {
        let receiver = Arc::clone(&receiver);
        std::thread::Builder::new()
            .name(format!("ciam-hash-{i}"))
            .spawn(move || {
                loop {
                    // Hold the lock only to take a job, not while running it.
                    let job = match receiver.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .map_err(|e| CiamError::Internal(format!("hashing thread: {e}")))?;
    }
    Ok(sender)
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
        let workers = config.workers.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                gate: Arc::new(Semaphore::new(workers * JOBS_PER_WORKER)),
                waiting: AtomicUsize::new(0),
                max_queue: config.queue,
                max_wait: config.max_wait,
                dummy_hash,
                jobs: Mutex::new(start_workers(workers)?),
            }),
        })
    }

    /// Hashes `password` into a PHC string with the current parameters.
    pub async fn hash(&self, password: &Password) -> Result<String, CiamError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        let params = self.inner.params.clone();
        let password = password.clone();
        self.run(move || hash_blocking(&params, password.expose().as_bytes(), &salt)).await?
    }

    /// Checks `password` against `stored` (a PHC string). With `None` (no
    /// such account) a dummy hash with the current parameters is checked, so
    /// the answer takes as long and always says [`Verified::Mismatch`].
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verified, CiamError> {
        let (phc, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let params = self.inner.params.clone();
        let password = password.clone();
        let outcome = self.run(move || verify_blocking(&params, password.expose().as_bytes(), &phc)).await?;
        match outcome {
            Ok(Verified::Match { needs_rehash }) if real => Ok(Verified::Match { needs_rehash }),
            Ok(_) => Ok(Verified::Mismatch),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash cannot be verified");
                Ok(Verified::Mismatch)
            }
        }
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

    /// Runs `job` on a hashing thread once one is free, or refuses.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, CiamError> {
        let inner = &self.inner;
        let permit = match inner.gate.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _slot = QueueSlot::enter(&inner.waiting, inner.max_queue).ok_or(CiamError::Overloaded)?;
                match tokio::time::timeout(inner.max_wait, inner.gate.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(CiamError::Overloaded),
                }
            }
        };
        // A permit is held for each job in the channel or running, so the
        // channel never holds more than `JOBS_PER_WORKER × workers` jobs.
        let (done, result) = tokio::sync::oneshot::channel();
        let work: Job = Box::new(move || {
            let _ = done.send(job());
            drop(permit);
        });
        inner
            .jobs
            .lock()
            .map_err(|_| CiamError::Internal("hashing pool lock poisoned".into()))?
            .send(work)
            .map_err(|_| CiamError::Internal("hashing pool stopped".into()))?;
        result.await.map_err(|_| CiamError::Internal("hashing job lost".into()))
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

/// A place in the wait queue, given back on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn enter(counter: &'a AtomicUsize, max: usize) -> Option<Self> {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        let slot = QueueSlot(counter);
        (before < max).then_some(slot)
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        let phc = hasher.hash(&pw).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(hasher.verify(&pw, Some(&phc)).await.expect("verify"), Verified::Match { needs_rehash: false });
        let wrong = Password::new("Passw0rd?".into());
        assert_eq!(hasher.verify(&wrong, Some(&phc)).await.expect("verify"), Verified::Mismatch);
        // The reference implementation accepts what we wrote.
        let parsed = PasswordHash::new(&phc).expect("phc");
        assert!(Argon2::default().verify_password(b"Passw0rd!", &parsed).is_ok());
        // An unknown account never matches, whatever the password.
        assert_eq!(hasher.verify(&pw, None).await.expect("verify"), Verified::Mismatch);
    }

    #[tokio::test]
    async fn weaker_hashes_verify_and_ask_for_an_upgrade() {
        let weak = PasswordHasher::new(&small()).expect("hasher");
        let strong = PasswordHasher::new(&HashingConfig::default()).expect("hasher");
        let pw = Password::new("Passw0rd!".into());
        let phc = weak.hash(&pw).await.expect("hash");
        assert_eq!(strong.verify(&pw, Some(&phc)).await.expect("verify"), Verified::Match { needs_rehash: true });
        assert!(PasswordHasher::check_importable(&phc).is_ok());
        assert!(PasswordHasher::check_importable("$2b$12$abc").is_err());
        assert!(PasswordHasher::check_importable("plaintext").is_err());
    }

    #[tokio::test]
    async fn a_full_pool_with_no_queue_refuses_at_once() {
        let hasher = PasswordHasher::new(&small()).expect("hasher");
        let held = hasher.inner.gate.clone().acquire_many_owned(JOBS_PER_WORKER as u32).await.expect("permits");
        let pw = Password::new("x".into());
        assert!(matches!(hasher.hash(&pw).await, Err(CiamError::Overloaded)));
        drop(held);
        assert!(hasher.hash(&pw).await.is_ok());
    }
}
