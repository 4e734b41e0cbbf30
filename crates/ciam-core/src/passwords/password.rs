//! Passwords: a secret type that never prints, and the argon2id hasher.
//!
//! [`PasswordHasher`] hashes on the hashing pool ([`crate::hashpool`]):
//! `workers` threads, each keeping one argon2 working buffer of `m` KiB for
//! its whole life, so hashing memory is `workers × m` KiB however hard the
//! server is pushed. An imported hash that needs more (at most
//! [`HashingConfig::import_max_memory_kib`]) borrows it for its
//! verification only.
//!
//! Imported hashes of other kinds ([`crate::hashes`]) verify on the same
//! pool. A failed attempt against a hash cheaper than the server's own
//! answers no sooner than one against the server's argon2id would: the
//! difference is waited out, off the pool, so that the cost of a stored
//! hash does not tell which accounts were imported.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::CiamError;
use crate::hashes::{self, Limits, Refused, Scheme};
use crate::hashpool::{Owner, Pool};
use crate::telemetry;
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
    /// The most memory an imported hash may take to verify, KiB (default
    /// 4 × `m_kib`).
    pub import_max_memory_kib: u32,
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
            import_max_memory_kib: 4 * 19_456,
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
    limits: Limits,
    /// How long a verification with the server's own parameters takes on a
    /// hashing thread (nanoseconds, a running median): what a failed attempt
    /// against a cheaper hash is made to last.
    own_cost: AtomicU64,
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
    /// Whether this thread keeps [`BLOCKS`] between hashes: the hashing
    /// pool's threads do (and a benchmark's, measuring them). Any other
    /// thread (start-up, the CLI) borrows the memory for one hash, so that
    /// `m` KiB are not held for the life of a thread that hashes once.
    static KEEPS: Cell<bool> = const { Cell::new(false) };
}

/// Makes this thread keep its argon2 working memory between hashes, as the
/// hashing pool's threads do.
pub fn keep_working_memory() {
    KEEPS.with(|keeps| keeps.set(true));
}

/// Runs `f` twice with this thread's working memory in place: the first
/// run's result, and how long the second took (the first faults the memory
/// in, as a hashing thread's first hash does once in its life).
fn warm_timed<T, E>(mut f: impl FnMut() -> Result<T, E>) -> Result<(T, Duration), E> {
    keeping_working_memory(|| {
        let first = f()?;
        let started = Instant::now();
        f()?;
        Ok((first, started.elapsed()))
    })
}

/// Runs `f` with this thread keeping its working memory, then gives the
/// memory back unless the thread kept it already.
fn keeping_working_memory<T>(f: impl FnOnce() -> T) -> T {
    let kept = KEEPS.with(|keeps| keeps.replace(true));
    let result = f();
    if !kept {
        KEEPS.with(|keeps| keeps.set(false));
        BLOCKS.with(|cell| cell.take());
    }
    result
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
        let (dummy_hash, took) = warm_timed(|| hash_blocking(&params, &pepper, &salt))?;
        let own_cost = AtomicU64::new(nanos(took));
        let pool = Pool::start(config.workers, config.queue, config.max_wait)?;
        // The server's own parameters always pass, however dear.
        let limits = Limits {
            max_memory_kib: config.import_max_memory_kib.max(config.m_kib),
            max_argon2_work: hashes::ARGON2_MAX_WORK.max(u64::from(config.m_kib) * u64::from(config.t)),
        };
        Ok(Self { inner: Arc::new(Inner { params, pool, dummy_hash, limits, own_cost }) })
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

    /// Checks `password` against `stored` (a PHC string, or bcrypt's
    /// format), as `owner`'s work. With `None` (no such account) a dummy
    /// hash with the current parameters is checked, so the answer takes as
    /// long and always says [`Verified::Mismatch`]. A mismatch against a
    /// cheaper hash lasts as long as one against the server's own.
    pub async fn verify(&self, password: &Password, stored: Option<&str>, owner: Owner) -> Result<Verified, CiamError> {
        let (phc, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.inner.dummy_hash.clone(), false),
        };
        let inner = Arc::clone(&self.inner);
        let password = password.clone();
        let (outcome, took, own) = self
            .inner
            .pool
            .run(owner, move || {
                let started = Instant::now();
                telemetry::password_verified();
                let outcome = verify_blocking(&inner.params, inner.limits, password.expose().as_bytes(), &phc);
                let took = started.elapsed();
                let own = matches!(outcome, Ok((_, Cost::Own)));
                if own {
                    inner.learn_own_cost(took);
                }
                (outcome.map(|(verified, _)| verified), took, own)
            })
            .await?;
        let verified = match outcome {
            Ok(Verified::Match { needs_rehash }) if real => Verified::Match { needs_rehash },
            Ok(_) => Verified::Mismatch,
            Err(e) => {
                tracing::error!(error = %e, "stored password hash cannot be verified");
                Verified::Mismatch
            }
        };
        if verified == Verified::Mismatch && !own {
            // Less the timer's granularity: a sleep ends on the millisecond
            // after its deadline.
            let due = Duration::from_nanos(self.inner.own_cost.load(Ordering::Relaxed));
            tokio::time::sleep(due.saturating_sub(took).saturating_sub(Duration::from_micros(500))).await;
        }
        Ok(verified)
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

    /// Checks that `stored` is a hash this server verifies, within the
    /// bounds on its cost (for imports); refuses naming the parameter.
    pub fn check_importable(&self, stored: &str) -> Result<Scheme, Refused> {
        let scheme = Scheme::of(stored)?;
        scheme.check(self.inner.limits)?;
        Ok(scheme)
    }

    /// Hashes `password` synchronously (CLI use, off any runtime).
    pub fn hash_now(&self, password: &Password) -> Result<String, CiamError> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        hash_blocking(&self.inner.params, password.expose().as_bytes(), &salt)
    }

    /// How long one verification of `phc` with a wrong password takes, its
    /// working memory in place as on a hashing thread (the second of two
    /// runs is timed).
    pub fn time_verification(&self, phc: &str) -> Duration {
        let wrong = Password::new(String::from("\u{0}not the password"));
        let Ok((_, took)) = warm_timed(|| Ok::<_, std::convert::Infallible>(self.verify_now(&wrong, phc)));
        took
    }

    /// Verifies synchronously with the pool's code path but without its
    /// bounds; used by the benchmark to measure the raw hash rate.
    pub fn verify_now(&self, password: &Password, phc: &str) -> bool {
        let verified = verify_blocking(&self.inner.params, self.inner.limits, password.expose().as_bytes(), phc);
        matches!(verified, Ok((Verified::Match { .. }, _)))
    }
}

impl Inner {
    /// Moves the estimate of a verification with the server's own
    /// parameters toward `took`, by 1/16 of itself: it settles on the
    /// median, which a slow outlier (a cold buffer, a busy core) does not
    /// drag up the way it would an average.
    fn learn_own_cost(&self, took: Duration) {
        let took = nanos(took);
        let _ = self.own_cost.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some(if took > old { old + old / 16 } else { old - old / 16 })
        });
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether a verification cost what the server's own hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// argon2id with the server's parameters.
    Own,
    /// Anything else.
    Other,
}

fn hash_blocking(params: &Params, password: &[u8], salt: &[u8]) -> Result<String, CiamError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CiamError::Internal(format!("salt: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| CiamError::Internal(format!("salt: {e}")))?;
    let mut out = [0u8; 32];
    with_blocks(params.block_count(), params.block_count(), |blocks| {
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

fn verify_blocking(
    current: &Params,
    limits: Limits,
    password: &[u8],
    stored: &str,
) -> Result<(Verified, Cost), BadHash> {
    // Bounds are checked again: a hash stored before they existed must not
    // stall the pool or swell its memory.
    let scheme = Scheme::of(stored).and_then(|s| s.check(limits).map(|()| s)).map_err(|e| BadHash(e.to_string()))?;
    if !matches!(scheme, Scheme::Argon2 { .. }) {
        let matched = hashes::verify_other(password, stored).map_err(|e| BadHash(e.to_string()))?;
        let verified = if matched { Verified::Match { needs_rehash: true } } else { Verified::Mismatch };
        return Ok((verified, Cost::Other));
    }
    let hash = PasswordHash::new(stored).map_err(|e| BadHash(e.to_string()))?;
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
    with_blocks(params.block_count(), current.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|e| BadHash(e.to_string()))?;
    let matches: bool = out.as_slice().ct_eq(expected.as_bytes()).into();
    out.zeroize();
    let own = algorithm == Algorithm::Argon2id
        && version == Version::V0x13
        && params.m_cost() == current.m_cost()
        && params.t_cost() == current.t_cost()
        && params.p_cost() == current.p_cost();
    let cost = if own { Cost::Own } else { Cost::Other };
    if !matches {
        return Ok((Verified::Mismatch, cost));
    }
    Ok((Verified::Match { needs_rehash: !own }, cost))
}

/// Lends this thread's argon2 working memory, grown to `count` blocks; kept
/// at `keep` blocks (the server's own `m`) afterwards, so that a hash that
/// needs more borrows the difference for one verification only. A thread
/// that does not keep its memory ([`keep_working_memory`]) gets a fresh
/// buffer, freed after the hash.
fn with_blocks<T>(count: usize, keep: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if !KEEPS.with(Cell::get) {
        return f(&mut vec![Block::default(); count]);
    }
    BLOCKS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < count {
                blocks.resize(count, Block::default());
            }
            let result = f(&mut blocks[..count]);
            if blocks.len() > keep {
                blocks.truncate(keep);
                blocks.shrink_to_fit();
            }
            result
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
        HashingConfig {
            m_kib: 1024,
            t: 1,
            p: 1,
            workers: 1,
            queue: 0,
            max_wait: Duration::from_millis(10),
            import_max_memory_kib: 4096,
        }
    }

    #[test]
    fn a_hash_that_needs_more_memory_borrows_it_for_one_verification() {
        let keep = Params::new(1024, 1, 1, None).expect("params").block_count();
        let big = Params::new(8192, 1, 1, None).expect("params").block_count();
        keep_working_memory();
        with_blocks(big, keep, |blocks| assert_eq!(blocks.len(), big));
        BLOCKS.with(|cell| assert_eq!(cell.borrow().len(), keep, "back to the server's own m"));
        with_blocks(keep, keep, |blocks| assert_eq!(blocks.len(), keep));
        BLOCKS.with(|cell| assert_eq!(cell.borrow().len(), keep));
    }

    #[test]
    fn only_a_thread_that_keeps_its_memory_holds_it_after_a_hash() {
        std::thread::spawn(|| {
            let hasher = PasswordHasher::new(&small()).expect("hasher");
            let held = || BLOCKS.with(|cell| cell.borrow().len());
            assert_eq!(held(), 0, "start-up gave its working memory back");
            hasher.hash_now(&Password::new("Passw0rd!".into())).expect("hash");
            assert_eq!(held(), 0, "a thread that hashes once holds nothing");
            keep_working_memory();
            hasher.hash_now(&Password::new("Passw0rd!".into())).expect("hash");
            assert_eq!(held(), Params::new(1024, 1, 1, None).expect("params").block_count());
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2-secret".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_hashing_thread_keeps_its_memory_between_hashes() {
        let hasher = PasswordHasher::new(&HashingConfig { workers: 1, ..small() }).expect("hasher");
        hasher.hash(&Password::new("Passw0rd!".into()), None).await.expect("hash");
        let held = hasher.inner.pool.run(None, || BLOCKS.with(|cell| cell.borrow().len())).await.expect("job");
        assert_eq!(held, Params::new(1024, 1, 1, None).expect("params").block_count());
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
        assert!(strong.check_importable(&phc).is_ok());
        assert!(strong.check_importable("$2b$12$abc").is_err());
        assert!(strong.check_importable("plaintext").is_err());
    }
}
