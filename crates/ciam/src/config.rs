//! Configuration: defaults, then an optional TOML file, then `CIAM_*`
//! environment variables (each wins over the one before).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ciam_core::mobile::{Region, parse_region};
use ciam_core::password::HashingConfig;
use ciam_core::policy::parse_net;
use ipnet::IpNet;
use serde::Deserialize;

/// Everything an operator can set. Field names are the TOML keys; the
/// environment variable is `CIAM_` + the name in upper case.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Database URL: `sqlite://…` or `postgres://…`. Default: a SQLite file
    /// in `data_dir`.
    pub database_url: Option<String>,
    /// Directory of the default SQLite database.
    pub data_dir: PathBuf,
    /// A fixed admin token. Unset: one is generated on first start.
    pub admin_token: Option<String>,
    /// `iss` of id_tokens. Default: `http://` + the listening address.
    pub issuer: Option<String>,
    /// argon2id memory cost, KiB.
    pub argon2_m_kib: u32,
    /// argon2id passes.
    pub argon2_t: u32,
    /// argon2id lanes.
    pub argon2_p: u32,
    /// Region for numbers written without a country code (ISO 3166 alpha-2).
    pub default_region: String,
    /// Password hashes computed at once (default: the number of cores).
    pub hash_workers: Option<usize>,
    /// Calls that may wait for a hashing worker.
    pub hash_queue: usize,
    /// Longest wait for a hashing worker, milliseconds.
    pub hash_max_wait_ms: u64,
    /// state_token lifetime, seconds.
    pub state_token_ttl: i64,
    /// Database connections per instance.
    pub db_max_connections: Option<u32>,
    /// Longest wait for a database connection or statement, milliseconds.
    pub db_timeout_ms: u64,
    /// Log filter (`tracing` syntax), e.g. `info` or `ciam=debug`.
    pub log: String,
    /// Proxies in front of the server whose `X-Forwarded-For` names the
    /// client: comma-separated addresses or CIDR networks.
    pub trusted_proxies: String,
    /// SDK calls one client address may have in progress at once; more wait
    /// their turn.
    pub calls_per_address: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a request's head may take to arrive, milliseconds.
    pub header_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open, milliseconds.
    pub idle_timeout_ms: u64,
    /// Days audit events are kept.
    pub audit_retention_days: u32,
    /// 32 bytes, base64, that seal the private signing keys at rest.
    pub key_encryption_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let hashing = HashingConfig::default();
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("data"),
            admin_token: None,
            issuer: None,
            argon2_m_kib: hashing.m_kib,
            argon2_t: hashing.t,
            argon2_p: hashing.p,
            default_region: "CN".into(),
            hash_workers: None,
            hash_queue: hashing.queue,
            hash_max_wait_ms: hashing.max_wait.as_millis() as u64,
            state_token_ttl: 600,
            db_max_connections: None,
            db_timeout_ms: 3000,
            log: "info".into(),
            trusted_proxies: String::new(),
            calls_per_address: 64,
            max_connections: 10_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            audit_retention_days: 90,
            key_encryption_key: None,
        }
    }
}

/// The largest request head (request line and headers): 32 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The shortest admin token accepted (CONTRACT §8).
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// Refuses an admin token that is short or of few distinct characters
/// (`aaaa…`, `1234…`): a guessable token guards the whole admin API.
fn check_admin_token(token: &str) -> Result<(), ConfigError> {
    let length = token.chars().count();
    if length < MIN_ADMIN_TOKEN_LEN {
        return Err(ConfigError(format!(
            "admin_token must be at least {MIN_ADMIN_TOKEN_LEN} characters, not {length} \
             (e.g. the output of `openssl rand -hex 24`)"
        )));
    }
    let mut distinct: Vec<char> = token.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 {
        return Err(ConfigError(
            "admin_token has fewer than 8 distinct characters; use a random one (e.g. `openssl rand -hex 24`)".into(),
        ));
    }
    Ok(())
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn env_var(name: &str) -> Option<String> {
    std::env::var(format!("CIAM_{}", name.to_ascii_uppercase())).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &str, slot: &mut T) -> Result<(), ConfigError> {
    if let Some(v) = env_var(name) {
        *slot = v
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("CIAM_{} = {v:?} is not valid", name.to_ascii_uppercase())))?;
    }
    Ok(())
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        parse_env("listen", &mut self.listen)?;
        if let Some(v) = env_var("database_url") {
            self.database_url = Some(v);
        }
        parse_env("data_dir", &mut self.data_dir)?;
        if let Some(v) = env_var("admin_token") {
            self.admin_token = Some(v);
        }
        if let Some(v) = env_var("issuer") {
            self.issuer = Some(v);
        }
        parse_env("argon2_m_kib", &mut self.argon2_m_kib)?;
        parse_env("argon2_t", &mut self.argon2_t)?;
        parse_env("argon2_p", &mut self.argon2_p)?;
        parse_env("default_region", &mut self.default_region)?;
        if let Some(v) = env_var("hash_workers") {
            self.hash_workers =
                Some(v.trim().parse().map_err(|_| ConfigError(format!("CIAM_HASH_WORKERS = {v:?} is not valid")))?);
        }
        parse_env("hash_queue", &mut self.hash_queue)?;
        parse_env("hash_max_wait_ms", &mut self.hash_max_wait_ms)?;
        parse_env("state_token_ttl", &mut self.state_token_ttl)?;
        if let Some(v) = env_var("db_max_connections") {
            let n =
                v.trim().parse().map_err(|_| ConfigError(format!("CIAM_DB_MAX_CONNECTIONS = {v:?} is not valid")))?;
            self.db_max_connections = Some(n);
        }
        parse_env("db_timeout_ms", &mut self.db_timeout_ms)?;
        parse_env("log", &mut self.log)?;
        parse_env("trusted_proxies", &mut self.trusted_proxies)?;
        parse_env("calls_per_address", &mut self.calls_per_address)?;
        parse_env("max_connections", &mut self.max_connections)?;
        parse_env("header_timeout_ms", &mut self.header_timeout_ms)?;
        parse_env("idle_timeout_ms", &mut self.idle_timeout_ms)?;
        parse_env("audit_retention_days", &mut self.audit_retention_days)?;
        if let Some(v) = env_var("key_encryption_key") {
            self.key_encryption_key = Some(v);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.region()?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| {
            ConfigError(format!("log {:?} is not a log filter (e.g. info, or ciam=debug): {e}", self.log))
        })?;
        self.key_encryption_key()?;
        self.trusted_proxies()?;
        if self.state_token_ttl <= 0 {
            return Err(ConfigError("state_token_ttl must be positive".into()));
        }
        if self.max_connections == 0 || self.header_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return Err(ConfigError("max_connections, header_timeout_ms and idle_timeout_ms must be positive".into()));
        }
        if self.audit_retention_days == 0 {
            return Err(ConfigError("audit_retention_days must be at least 1".into()));
        }
        if self.calls_per_address == 0 {
            return Err(ConfigError("calls_per_address must be positive".into()));
        }
        if self.db_max_connections == Some(0) {
            return Err(ConfigError("db_max_connections must be positive".into()));
        }
        if let Some(token) = &self.admin_token {
            check_admin_token(token)?;
        }
        argon2::Params::new(self.argon2_m_kib, self.argon2_t, self.argon2_p, None)
            .map_err(|e| ConfigError(format!("argon2 parameters: {e}")))?;
        Ok(())
    }

    /// The default region.
    pub fn region(&self) -> Result<Region, ConfigError> {
        parse_region(&self.default_region)
            .ok_or_else(|| ConfigError(format!("default_region {:?} is not a region code", self.default_region)))
    }

    /// The key that seals private signing keys, decoded.
    pub fn key_encryption_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        use base64::Engine;
        let Some(text) = &self.key_encryption_key else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| {
            ConfigError("key_encryption_key must be base64 (e.g. the output of `openssl rand -base64 32`)".into())
        })?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Some)
            .map_err(|_| ConfigError(format!("key_encryption_key must be 32 bytes, not {}", bytes.len())))
    }

    /// The trusted proxies' networks.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_proxies
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| {
                parse_net(entry).map_err(|_| {
                    ConfigError(format!("trusted_proxies: {:?} is not an IP address or CIDR network", entry.trim()))
                })
            })
            .collect()
    }

    /// How the HTTP layer is set up.
    pub fn http(&self) -> Result<ciam_http::HttpOptions, ConfigError> {
        Ok(ciam_http::HttpOptions { trusted_proxies: self.trusted_proxies()? })
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("ciam.db").display()),
        }
    }

    /// The hashing parameters and pool bounds.
    pub fn hashing(&self) -> HashingConfig {
        let default = HashingConfig::default();
        HashingConfig {
            m_kib: self.argon2_m_kib,
            t: self.argon2_t,
            p: self.argon2_p,
            workers: self.hash_workers.unwrap_or(default.workers).max(1),
            queue: self.hash_queue,
            max_wait: Duration::from_millis(self.hash_max_wait_ms),
        }
    }

    /// The bounds on connections (CONTRACT §8).
    pub fn connection_limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_header_bytes: MAX_HEADER_BYTES,
            max_connections: self.max_connections,
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Database pool options (a SQLite file that is not there is made).
    pub fn db_options(&self) -> ciam_store::DbOptions {
        ciam_store::DbOptions {
            max_connections: self.db_max_connections,
            timeout: Duration::from_millis(self.db_timeout_ms),
            create: true,
        }
    }
}
