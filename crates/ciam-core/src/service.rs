//! [`Ciam`]: the one object the HTTP layer and the CLI talk to. It owns the
//! store, the password hasher, the key ring and the clock, and keeps short-
//! lived copies of the policies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, UnixTime};
use crate::error::CiamError;
use crate::inflight::InFlight;
use crate::keys::Jwks;
use crate::keys::KeyRing;
use crate::mobile::Region;
use crate::model::{AddressKey, App, ClientId};
use crate::password::{HashingConfig, PasswordHasher};
use crate::policy::{LockoutPolicy, PasswordPolicy, ThrottlePolicy};
use crate::sealing::Sealer;
use crate::store::Store;
use crate::token::{ADMIN_TOKEN_LEN, OpaqueToken, constant_time_eq, keyed_digest, sha256_hex};

/// Setting names in the store.
pub(crate) mod setting {
    pub const PASSWORD_POLICY: &str = "password_policy";
    pub const LOCKOUT_POLICY: &str = "lockout_policy";
    pub const THROTTLE_POLICY: &str = "throttle_policy";
    pub const LOCK_KEY_SECRET: &str = "lock_key_secret";
    pub const ADMIN_TOKEN_DIGEST: &str = "admin_token_digest";
}

/// How long an instance trusts its copy of a policy or an app before
/// re-reading it. A change made on this instance is seen at once; on others
/// within this.
pub const POLICY_CACHE: Duration = Duration::from_secs(1);

/// How often readiness is checked at most, and how long a check may take.
pub const READY_CHECK: Duration = Duration::from_secs(2);

/// At most this many apps are kept in memory per instance.
const APP_CACHE_SIZE: usize = 1024;

/// At most this many closed windows are remembered per instance.
const CLOSED_CACHE_SIZE: usize = 65_536;

/// Windows this instance saw closed (an address throttled, an SMS limit
/// reached), each with when it ends, trusted for [`POLICY_CACHE`]: a window
/// may reopen early, so the memory is short. Bounded: when full, what has
/// run out is dropped, and past that nothing more is remembered.
#[derive(Debug, Default)]
pub(crate) struct ClosedWindows(Mutex<HashMap<AddressKey, (Instant, UnixTime)>>);

impl ClosedWindows {
    /// Seconds until the window of `key` ends, if it was seen closed
    /// within [`POLICY_CACHE`].
    pub(crate) fn get(&self, key: &AddressKey, now: UnixTime) -> Option<i64> {
        let closed = self.0.lock().ok()?;
        let (seen, ends) = closed.get(key)?;
        (seen.elapsed() < POLICY_CACHE && *ends > now).then_some(ends - now)
    }

    /// Remembers that the window of `key` is closed until `ends`.
    pub(crate) fn put(&self, key: &AddressKey, ends: UnixTime) {
        if let Ok(mut closed) = self.0.lock() {
            if closed.len() >= CLOSED_CACHE_SIZE {
                closed.retain(|_, (seen, _)| seen.elapsed() < POLICY_CACHE);
            }
            if closed.len() < CLOSED_CACHE_SIZE {
                closed.insert(key.clone(), (Instant::now(), ends));
            }
        }
    }
}

/// Domain settings that come from the operator's configuration.
#[derive(Debug, Clone)]
pub struct CiamConfig {
    /// `iss` of id_tokens and the discovery document.
    pub issuer: String,
    /// Region for mobile numbers written without a country code.
    pub region: Region,
    /// state_token lifetime in seconds.
    pub state_token_ttl: i64,
    /// How long a browser session of the hosted login page lasts, seconds.
    pub sso_session_seconds: i64,
    /// argon2id parameters and pool bounds.
    pub hashing: HashingConfig,
    /// SDK calls one address may have in progress at once (see
    /// [`crate::inflight`]).
    pub calls_per_address: usize,
    /// Days audit events are kept (see [`crate::retention`]).
    pub audit_retention_days: u32,
    /// Seals private signing keys at rest (see [`crate::sealing`]).
    pub key_encryption_key: Option<[u8; 32]>,
    /// Where SMS codes go, and the captcha before them (docs/sms.md).
    pub sms: crate::sms::delivery::SmsConfig,
}

#[derive(Debug)]
pub(crate) struct Cached<T> {
    value: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> Cached<T> {
    pub(crate) fn new() -> Self {
        Self { value: Mutex::new(None) }
    }

    pub(crate) fn get(&self) -> Option<T> {
        let guard = self.value.lock().ok()?;
        guard.as_ref().filter(|(at, _)| at.elapsed() < POLICY_CACHE).map(|(_, v)| v.clone())
    }

    pub(crate) fn set(&self, value: T) {
        if let Ok(mut guard) = self.value.lock() {
            *guard = Some((Instant::now(), value));
        }
    }
}

/// A random secret shared by every instance on the store: made by the
/// first instance to start, read by the others.
pub(crate) async fn shared_secret(store: &dyn Store, name: &str) -> Result<Vec<u8>, CiamError> {
    let made = OpaqueToken::generate(ADMIN_TOKEN_LEN)?;
    store.put_setting_if_absent(name, made.expose()).await?;
    let kept = store.get_setting(name).await?.ok_or_else(|| CiamError::Internal(format!("setting {name} missing")))?;
    Ok(kept.into_bytes())
}

/// The login server's domain.
#[derive(Debug, Clone)]
pub struct Ciam {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    config: CiamConfig,
    password_policy: Cached<PasswordPolicy>,
    lockout_policy: Cached<LockoutPolicy>,
    throttle_policy: Cached<ThrottlePolicy>,
    apps: Mutex<HashMap<ClientId, (Instant, App)>>,
    /// Addresses seen throttled, with when their window ends.
    closed: ClosedWindows,
    /// SDK calls in progress per address.
    in_flight: Arc<InFlight>,
    /// Keys the lock keys of text that is no phone number.
    lock_key_secret: Vec<u8>,
    /// This instance, among those sharing the store.
    instance_id: String,
    /// The last readiness check and when it was made.
    ready: Mutex<Option<(Instant, bool)>>,
    /// Set once the instance is shutting down: never ready again.
    draining: AtomicBool,
    /// SMS codes: their policy, limits and delivery.
    sms: crate::sms::SmsState,
}

impl Ciam {
    /// Opens the domain on a migrated store: builds the hasher and loads (or
    /// makes) the signing keys.
    pub async fn open(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CiamConfig) -> Result<Self, CiamError> {
        let hashing = config.hashing.clone();
        let hasher = tokio::task::spawn_blocking(move || PasswordHasher::new(&hashing))
            .await
            .map_err(|e| CiamError::Internal(format!("hasher set-up: {e}")))??;
        let sealer = config.key_encryption_key.as_ref().map(|key| Sealer::new(key)).transpose()?;
        let keys = KeyRing::open(store.as_ref(), clock.now(), sealer).await?;
        let in_flight = InFlight::new(config.calls_per_address);
        let lock_key_secret = shared_secret(store.as_ref(), setting::LOCK_KEY_SECRET).await?;
        let sms = crate::sms::SmsState::open(&store, &config.sms, &clock, config.key_encryption_key.as_ref()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                hasher,
                keys,
                clock,
                config,
                password_policy: Cached::new(),
                lockout_policy: Cached::new(),
                throttle_policy: Cached::new(),
                apps: Mutex::new(HashMap::new()),
                closed: ClosedWindows::default(),
                in_flight,
                lock_key_secret,
                instance_id: crate::token::new_id(),
                ready: Mutex::new(None),
                draining: AtomicBool::new(false),
                sms,
            }),
        })
    }

    /// The store: only the domain reaches it.
    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// This instance's name among those sharing the store.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The deployment's key for lock keys of text that is no phone number.
    pub(crate) fn lock_key_secret(&self) -> &[u8] {
        &self.inner.lock_key_secret
    }

    /// SMS codes: their policy, limits and delivery.
    pub(crate) fn sms(&self) -> &crate::sms::SmsState {
        &self.inner.sms
    }

    /// SDK calls in progress per address.
    pub(crate) fn in_flight(&self) -> &Arc<InFlight> {
        &self.inner.in_flight
    }

    /// The password hasher.
    pub(crate) fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The signing keys.
    pub(crate) fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The published public keys (`GET /api/v1/oauth2/keys`).
    pub fn jwks(&self) -> Result<Arc<Jwks>, CiamError> {
        self.inner.keys.jwks()
    }

    /// From now on the instance answers not ready, so that a balancer
    /// stops sending it calls before it shuts down.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the database takes a write (unreachable, full and read-only
    /// databases do not), checked at most every [`READY_CHECK`]: a
    /// balancer's probes cost one small write every two seconds at most.
    /// An instance shutting down is not ready.
    pub async fn ready(&self) -> bool {
        if self.inner.draining.load(Ordering::Relaxed) {
            return false;
        }
        if let Ok(last) = self.inner.ready.lock()
            && let Some((at, ready)) = *last
            && at.elapsed() < READY_CHECK
        {
            return ready;
        }
        let probe = format!("{} {}", self.instance_id(), self.now());
        let ready = match tokio::time::timeout(READY_CHECK, self.store().probe_write(&probe)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready: the database takes no write");
                false
            }
            Err(_) => {
                tracing::warn!("not ready: the database did not take a write within {READY_CHECK:?}");
                false
            }
        };
        if let Ok(mut last) = self.inner.ready.lock() {
            *last = Some((Instant::now(), ready));
        }
        ready
    }

    /// The configuration.
    pub fn config(&self) -> &CiamConfig {
        &self.inner.config
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> UnixTime {
        self.inner.clock.now()
    }

    /// Re-reads the signing keys (called periodically by the server).
    pub async fn refresh_keys(&self) -> Result<(), CiamError> {
        self.inner.keys.refresh(self.store(), self.now()).await
    }

    /// Hashes running and hashes queued on the hashing pool.
    pub fn hashing_load(&self) -> (usize, usize) {
        self.hasher().load()
    }

    /// Rotates the signing keys; returns the new kids.
    pub async fn rotate_keys(&self) -> Result<crate::keys::Rotated, CiamError> {
        self.inner.keys.rotate(self.store(), self.now()).await
    }

    /// An enabled app by client id (every SDK call asks, so registered apps
    /// are kept for [`POLICY_CACHE`]).
    pub(crate) async fn enabled_app(&self, client_id: &str) -> Result<Option<App>, CiamError> {
        if client_id.len() > 128 || client_id.chars().any(char::is_control) {
            return Ok(None);
        }
        let client_id = ClientId::new(client_id);
        if let Ok(apps) = self.inner.apps.lock()
            && let Some((at, app)) = apps.get(&client_id)
            && at.elapsed() < POLICY_CACHE
        {
            return Ok(app.enabled.then(|| app.clone()));
        }
        let Some(app) = self.store().get_app(&client_id).await? else {
            return Ok(None);
        };
        if let Ok(mut apps) = self.inner.apps.lock() {
            if apps.len() >= APP_CACHE_SIZE {
                apps.retain(|_, (at, _)| at.elapsed() < POLICY_CACHE);
            }
            if apps.len() < APP_CACHE_SIZE {
                apps.insert(client_id, (Instant::now(), app.clone()));
            }
        }
        Ok(app.enabled.then_some(app))
    }

    /// Seconds until the window of `address` ends, if this instance saw it
    /// closed within [`POLICY_CACHE`]: a window may reopen early (an attempt
    /// in it turns out right), so the memory is short.
    pub(crate) fn recently_closed(&self, address: &AddressKey) -> Option<i64> {
        self.inner.closed.get(address, self.now())
    }

    /// Remembers that the window of `address` is closed until `ends`.
    pub(crate) fn remember_closed(&self, address: &AddressKey, ends: UnixTime) {
        self.inner.closed.put(address, ends);
    }

    /// Drops this instance's copy of an app after an operator changed it.
    pub(crate) fn forget_app(&self, client_id: &ClientId) {
        if let Ok(mut apps) = self.inner.apps.lock() {
            apps.remove(client_id);
        }
    }

    pub(crate) async fn setting<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, CiamError> {
        match self.store().get_setting(name).await? {
            Some(text) => serde_json::from_str(&text).map_err(|e| CiamError::Internal(format!("setting {name}: {e}"))),
            None => Ok(T::default()),
        }
    }

    pub(crate) async fn put_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), CiamError> {
        let text = serde_json::to_string(value).map_err(|e| CiamError::Internal(format!("setting {name}: {e}")))?;
        self.store().put_setting(name, &text).await?;
        Ok(())
    }

    /// The password policy (the seed's by default).
    pub async fn password_policy(&self) -> Result<PasswordPolicy, CiamError> {
        if let Some(p) = self.inner.password_policy.get() {
            return Ok(p);
        }
        let p: PasswordPolicy = self.setting(setting::PASSWORD_POLICY).await?;
        self.inner.password_policy.set(p.clone());
        Ok(p)
    }

    /// Replaces the password policy (validated by the caller).
    pub(crate) async fn set_password_policy(&self, policy: &PasswordPolicy) -> Result<(), CiamError> {
        self.put_setting(setting::PASSWORD_POLICY, policy).await?;
        self.inner.password_policy.set(policy.clone());
        Ok(())
    }

    /// The lockout policy (10 failures, 1800 s by default).
    pub async fn lockout_policy(&self) -> Result<LockoutPolicy, CiamError> {
        if let Some(p) = self.inner.lockout_policy.get() {
            return Ok(p);
        }
        let p: LockoutPolicy = self.setting(setting::LOCKOUT_POLICY).await?;
        self.inner.lockout_policy.set(p);
        Ok(p)
    }

    /// Replaces the lockout policy (validated by the caller).
    pub(crate) async fn set_lockout_policy(&self, policy: &LockoutPolicy) -> Result<(), CiamError> {
        self.put_setting(setting::LOCKOUT_POLICY, policy).await?;
        self.inner.lockout_policy.set(*policy);
        Ok(())
    }

    /// The address throttle (100 failures an hour by default).
    pub async fn throttle_policy(&self) -> Result<ThrottlePolicy, CiamError> {
        if let Some(p) = self.inner.throttle_policy.get() {
            return Ok(p);
        }
        let p: ThrottlePolicy = self.setting(setting::THROTTLE_POLICY).await?;
        self.inner.throttle_policy.set(p.clone());
        Ok(p)
    }

    /// Replaces the address throttle (validated by the caller).
    pub(crate) async fn set_throttle_policy(&self, policy: &ThrottlePolicy) -> Result<(), CiamError> {
        self.put_setting(setting::THROTTLE_POLICY, policy).await?;
        self.inner.throttle_policy.set(policy.clone());
        Ok(())
    }

    /// Makes sure an admin token exists. With `configured` set, that token
    /// is the admin token. Otherwise, on first start, a token is generated and
    /// returned (to be shown once); only its digest is stored.
    pub async fn ensure_admin_token(&self, configured: Option<&str>) -> Result<Option<OpaqueToken>, CiamError> {
        if let Some(token) = configured {
            // Written again only when it changed, or is stored the old way
            // (unsalted): a new digest ends the console's sessions.
            let stored = self.admin_token_digest().await?;
            if !stored.is_some_and(|d| d.starts_with("v2$") && admin_token_matches(token, &d)) {
                self.store().put_setting(setting::ADMIN_TOKEN_DIGEST, &admin_token_digest(token)?).await?;
            }
            return Ok(None);
        }
        let token = OpaqueToken::generate(ADMIN_TOKEN_LEN)?;
        let digest = admin_token_digest(token.expose())?;
        let written = self.store().put_setting_if_absent(setting::ADMIN_TOKEN_DIGEST, &digest).await?;
        Ok(written.then_some(token))
    }

    /// Replaces the admin token with a new one and returns it.
    pub async fn reset_admin_token(&self) -> Result<OpaqueToken, CiamError> {
        let token = OpaqueToken::generate(ADMIN_TOKEN_LEN)?;
        self.store().put_setting(setting::ADMIN_TOKEN_DIGEST, &admin_token_digest(token.expose())?).await?;
        Ok(token)
    }

    /// Whether `presented` is the admin token (compared in constant time).
    pub async fn is_admin_token(&self, presented: &str) -> Result<bool, CiamError> {
        Ok(self.admin_token_digest().await?.is_some_and(|stored| admin_token_matches(presented, &stored)))
    }

    /// The admin token's stored digest, once there is one.
    pub(crate) async fn admin_token_digest(&self) -> Result<Option<String>, CiamError> {
        Ok(self.store().get_setting(setting::ADMIN_TOKEN_DIGEST).await?)
    }
}

/// How the admin token is stored: `v2$<salt>$<HMAC-SHA256 of the token
/// under the salt>`, in hex, so equal tokens of two deployments are not
/// equal digests.
fn admin_token_digest(token: &str) -> Result<String, CiamError> {
    let mut salt = [0u8; 16];
    crate::token::fill_random(&mut salt)?;
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("v2${salt}${}", keyed_digest(salt.as_bytes(), token.as_bytes())))
}

/// Whether `presented` is the token `stored` was made from, in constant
/// time; also for digests stored before the salt (a plain SHA-256).
pub(crate) fn admin_token_matches(presented: &str, stored: &str) -> bool {
    match stored.strip_prefix("v2$").and_then(|rest| rest.split_once('$')) {
        Some((salt, digest)) => constant_time_eq(&keyed_digest(salt.as_bytes(), presented.as_bytes()), digest),
        None => constant_time_eq(&sha256_hex(presented.as_bytes()), stored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tokens_are_stored_salted_and_checked_in_both_forms() {
        let token = "Xq3-correct-horse-battery-staple-42";
        let (one, two) = (admin_token_digest(token).expect("digest"), admin_token_digest(token).expect("digest"));
        assert!(one.starts_with("v2$") && !one.contains(token));
        assert_ne!(one, two, "a fresh salt each time");
        assert!(admin_token_matches(token, &one) && admin_token_matches(token, &two));
        assert!(!admin_token_matches("Xq3-correct-horse-battery-staple-43", &one));
        let legacy = sha256_hex(token.as_bytes());
        assert!(admin_token_matches(token, &legacy), "digests stored before the salt still verify");
        assert!(!admin_token_matches("other", &legacy));
    }
}
