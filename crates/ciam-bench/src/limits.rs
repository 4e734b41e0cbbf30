//! The machine's own limits, measured in-process on all cores with the
//! server idle: argon2id verifications with the server's parameters and
//! code, and raw RS256 and Ed25519 signatures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciam_core::keys::{IdTokenBase, KeyRing};
use ciam_core::mobile::Mobile;
use ciam_core::model::{ClientId, SigningAlg, User, UserId};
use ciam_core::password::{HashingConfig, PasswordHasher};
use ciam_core::{Clock, Password, SystemClock};

use crate::PASSWORD;

/// The machine's own limits, measured in-process with the server idle.
pub(crate) struct Limits {
    pub(crate) cores: usize,
    pub(crate) window: Duration,
    pub(crate) hasher: PasswordHasher,
    pub(crate) password: Password,
    pub(crate) phc: String,
    pub(crate) rsa: aws_lc_rs::signature::RsaKeyPair,
    pub(crate) ed25519: aws_lc_rs::signature::Ed25519KeyPair,
    pub(crate) ring: KeyRing,
    pub(crate) user: User,
    pub(crate) client: ClientId,
}

impl Limits {
    pub(crate) fn new(config: &HashingConfig, cores: usize, window: Duration) -> Result<Self, String> {
        use aws_lc_rs::encoding::AsDer;
        let hasher = PasswordHasher::new(config).map_err(|e| format!("{e}"))?;
        let password = Password::new(PASSWORD.into());
        let phc = hasher.hash_now(&password).map_err(|e| format!("{e}"))?;
        if !hasher.verify_now(&password, &phc) {
            return Err("argon2 self-check failed".into());
        }
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| e.to_string())?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|e| e.to_string())?;
        let rsa = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.as_ref()).map_err(|e| e.to_string())?;
        let ed25519 = aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(|e| e.to_string())?;
        let now = SystemClock.now();
        let ring = KeyRing::ephemeral(now).map_err(|e| format!("{e}"))?;
        let user = User {
            id: UserId::new("0123456789abcdef0123456789abcdef"),
            mobile: Mobile::from_stored("+8615200000000".into()),
            user_name: Some("bench".into()),
            name: None,
            email: None,
            disabled: false,
            password_hash: String::new(),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let client = ClientId::new("client");
        Ok(Self { cores, window, hasher, password, phc, rsa, ed25519, ring, user, client })
    }

    /// argon2id verifications per second with the server's own code and
    /// parameters, on every core.
    pub(crate) fn hash(&self) -> f64 {
        parallel(self.cores, self.window, || {
            // As the server's hashing threads do.
            ciam_core::password::keep_working_memory();
            self.hasher.verify_now(&self.password, &self.phc);
        })
    }

    /// Raw RS256 signatures per second (aws-lc, key parsed once), on every
    /// core, over a message of an id_token's size.
    pub(crate) fn sign(&self) -> f64 {
        use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256};
        let message = [b'x'; 600];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        parallel(self.cores, self.window, || {
            let mut sig = vec![0u8; self.rsa.public_key().modulus_len()];
            let _ = self.rsa.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig);
        })
    }

    /// Raw Ed25519 signatures per second (aws-lc, key parsed once), on
    /// every core, over a message of an id_token's size.
    pub(crate) fn sign_eddsa(&self) -> f64 {
        let message = [b'x'; 600];
        parallel(self.cores, self.window, || {
            let _ = self.ed25519.sign(&message);
        })
    }

    /// id_tokens per second through the server's own signing code, signed
    /// with `alg`.
    pub(crate) fn id_tokens(&self, alg: SigningAlg) -> f64 {
        let now = SystemClock.now();
        let base =
            IdTokenBase { issuer: "http://127.0.0.1", client_id: &self.client, user: &self.user, now, ttl: 300, alg };
        parallel(self.cores, self.window, || {
            let _ = self.ring.sign_id_token(base);
        })
    }
}

/// Runs `work` on `threads` threads for `span`; returns operations per second.
pub(crate) fn parallel(threads: usize, span: Duration, work: impl Fn() + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while started.elapsed() < span {
                    work();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
