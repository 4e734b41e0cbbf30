//! Configuration: defaults, then an optional TOML file, then `CIAM_*`
//! environment variables (each wins over the one before).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ciam_core::mobile::{Region, parse_region};
use ciam_core::password::HashingConfig;
use ciam_core::policy::parse_net;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Everything an operator can set. Field names are the TOML keys; the
/// environment variable is `CIAM_` + the name in upper case.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The most memory an imported hash may need, KiB (default 4 ×
    /// `argon2_m_kib`).
    pub import_max_memory_kib: Option<u32>,
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
    /// Log lines as `text` or `json`.
    pub log_format: LogFormat,
    /// Where `GET /metrics` is served (Prometheus); empty turns it off.
    pub metrics_listen: String,
    /// Proxies in front of the server whose `X-Forwarded-For` names the
    /// client: comma-separated addresses or CIDR networks.
    pub trusted_proxies: String,
    /// SDK calls one client address may have in progress at once; more wait
    /// their turn.
    pub calls_per_address: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one peer address (trusted proxies are
    /// not held to it).
    pub max_connections_per_address: usize,
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
            import_max_memory_kib: None,
            default_region: "CN".into(),
            hash_workers: None,
            hash_queue: hashing.queue,
            hash_max_wait_ms: hashing.max_wait.as_millis() as u64,
            state_token_ttl: 600,
            db_max_connections: None,
            db_timeout_ms: 3000,
            log: "info".into(),
            log_format: LogFormat::Text,
            metrics_listen: "127.0.0.1:9464".into(),
            trusted_proxies: String::new(),
            calls_per_address: 64,
            max_connections: 10_000,
            max_connections_per_address: 256,
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event (without colour codes unless standard
    /// error is a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// One setting: its name (the TOML key; `CIAM_` + upper case is its
/// environment variable, `--` + kebab case its `ciam serve` flag), what it
/// does, and what applies when it is not set and has no default value.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The TOML key.
    pub name: &'static str,
    /// What it sets.
    pub help: &'static str,
    /// What applies when it is unset (settings without a default value).
    pub unset: &'static str,
    /// Its value is a secret: never shown.
    pub secret: bool,
}

impl Setting {
    /// The environment variable.
    pub fn env(&self) -> String {
        format!("CIAM_{}", self.name.to_ascii_uppercase())
    }

    /// The `ciam serve` flag, without its dashes.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }
}

const fn setting(name: &'static str, help: &'static str) -> Setting {
    Setting { name, help, unset: "", secret: false }
}

/// Every setting, in the order `ciam serve --help` lists them.
pub const SETTINGS: &[Setting] = &[
    setting("listen", "Address to listen on"),
    Setting {
        unset: "a SQLite file in data_dir",
        ..setting("database_url", "Database URL: sqlite://PATH or postgres://USER@HOST/DB")
    },
    setting("data_dir", "Folder of the default SQLite database (made with mode 0700)"),
    Setting {
        unset: "generated on first start and printed once",
        secret: true,
        ..setting("admin_token", "The admin API token (at least 32 characters)")
    },
    Setting { unset: "http:// + the listening address", ..setting("issuer", "The iss of id_tokens") },
    setting("argon2_m_kib", "argon2id memory cost, KiB"),
    setting("argon2_t", "argon2id passes"),
    setting("argon2_p", "argon2id lanes"),
    Setting {
        unset: "4 × argon2_m_kib",
        ..setting("import_max_memory_kib", "The most memory an imported password hash may need, KiB")
    },
    setting("default_region", "Region of numbers written without a country code (ISO 3166 alpha-2)"),
    Setting { unset: "the number of cores", ..setting("hash_workers", "Password hashes computed at once") },
    setting("hash_queue", "Password attempts that may wait for a hashing worker"),
    setting("hash_max_wait_ms", "Longest wait for a hashing worker, ms"),
    setting("state_token_ttl", "state_token lifetime, seconds"),
    Setting { unset: "SQLite 2, PostgreSQL 10", ..setting("db_max_connections", "Database connections per instance") },
    setting("db_timeout_ms", "Longest wait for a database connection or statement, ms"),
    setting("log", "Log filter, e.g. info or ciam=debug"),
    setting("log_format", "Log lines as text or json"),
    setting("metrics_listen", "Where GET /metrics is served (Prometheus); empty turns it off"),
    setting("trusted_proxies", "Proxies whose X-Forwarded-For names the client: addresses or CIDR, comma-separated"),
    setting("calls_per_address", "SDK calls one client address may have in progress; more wait their turn"),
    setting("max_connections", "Connections open at once"),
    setting("max_connections_per_address", "Connections open at once from one peer (proxies exempt)"),
    setting("header_timeout_ms", "Longest wait for a request's head, ms"),
    setting("idle_timeout_ms", "How long an idle keep-alive connection stays open, ms"),
    setting("audit_retention_days", "Days audit events are kept"),
    Setting {
        unset: "keys stored unsealed (mode 0600)",
        secret: true,
        ..setting("key_encryption_key", "32 bytes, base64, that seal the signing keys at rest")
    },
];

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError(format!("{name} = {value:?} is not valid")))
}

/// `value`, or `None` when blank.
fn present(value: &str) -> Option<String> {
    (!value.trim().is_empty()).then(|| value.trim().to_owned())
}

impl Config {
    /// Defaults, then `file` (if given), then the environment, then
    /// `overrides` (`ciam serve` flags, by setting name).
    pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        for setting in SETTINGS {
            if let Ok(value) = std::env::var(setting.env()) {
                config.set(setting.name, &value).map_err(|e| ConfigError(format!("{}: {}", setting.env(), e.0)))?;
            }
        }
        for (name, value) in overrides {
            config.set(name, value).map_err(|e| ConfigError(format!("--{}: {}", name.replace('_', "-"), e.0)))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets the setting `name` from its text; a blank value leaves an
    /// optional setting unset and any other as it was, except
    /// `metrics_listen` and `trusted_proxies`, where empty means none.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let Some(text) = present(value) else {
            match name {
                "metrics_listen" => self.metrics_listen.clear(),
                "trusted_proxies" => self.trusted_proxies.clear(),
                _ => {}
            }
            return Ok(());
        };
        match name {
            "listen" => self.listen = text,
            "database_url" => self.database_url = Some(text),
            "data_dir" => self.data_dir = PathBuf::from(text),
            "admin_token" => self.admin_token = Some(text),
            "issuer" => self.issuer = Some(text),
            "argon2_m_kib" => self.argon2_m_kib = parse(name, &text)?,
            "argon2_t" => self.argon2_t = parse(name, &text)?,
            "argon2_p" => self.argon2_p = parse(name, &text)?,
            "import_max_memory_kib" => self.import_max_memory_kib = Some(parse(name, &text)?),
            "default_region" => self.default_region = text,
            "hash_workers" => self.hash_workers = Some(parse(name, &text)?),
            "hash_queue" => self.hash_queue = parse(name, &text)?,
            "hash_max_wait_ms" => self.hash_max_wait_ms = parse(name, &text)?,
            "state_token_ttl" => self.state_token_ttl = parse(name, &text)?,
            "db_max_connections" => self.db_max_connections = Some(parse(name, &text)?),
            "db_timeout_ms" => self.db_timeout_ms = parse(name, &text)?,
            "log" => self.log = text,
            "log_format" => {
                self.log_format = text.parse().map_err(|()| ConfigError(format!("{text:?} is not text or json")))?;
            }
            "metrics_listen" => self.metrics_listen = text,
            "trusted_proxies" => self.trusted_proxies = text,
            "calls_per_address" => self.calls_per_address = parse(name, &text)?,
            "max_connections" => self.max_connections = parse(name, &text)?,
            "max_connections_per_address" => self.max_connections_per_address = parse(name, &text)?,
            "header_timeout_ms" => self.header_timeout_ms = parse(name, &text)?,
            "idle_timeout_ms" => self.idle_timeout_ms = parse(name, &text)?,
            "audit_retention_days" => self.audit_retention_days = parse(name, &text)?,
            "key_encryption_key" => self.key_encryption_key = Some(text),
            _ => return Err(ConfigError(format!("no setting is called {name}"))),
        }
        Ok(())
    }

    /// The default of every setting, as text (empty for the unset ones).
    pub fn defaults() -> Vec<(&'static str, String)> {
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        SETTINGS
            .iter()
            .map(|s| {
                let text = match &defaults[s.name] {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (s.name, text)
            })
            .collect()
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
        if self.max_connections == 0
            || self.max_connections_per_address == 0
            || self.header_timeout_ms == 0
            || self.idle_timeout_ms == 0
        {
            return Err(ConfigError(
                "max_connections, max_connections_per_address, header_timeout_ms and idle_timeout_ms must be positive"
                    .into(),
            ));
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
            import_max_memory_kib: self.import_max_memory_kib.unwrap_or(self.argon2_m_kib.saturating_mul(4)),
        }
    }

    /// The bounds on connections (CONTRACT §8).
    pub fn connection_limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_header_bytes: MAX_HEADER_BYTES,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            exempt: self.trusted_proxies().unwrap_or_default().into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_a_setting_and_every_setting_reads_back_its_default() {
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        let mut fields: Vec<&str> =
            defaults.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        fields.sort_unstable();
        names.sort_unstable();
        assert_eq!(fields, names, "SETTINGS must list every Config field once");

        let mut config = Config::default();
        for (name, text) in Config::defaults() {
            config.set(name, &text).unwrap_or_else(|e| panic!("{name} = {text:?}: {e}"));
        }
        assert_eq!(serde_json::to_value(&config).unwrap_or_default(), defaults);
    }

    #[test]
    fn settings_are_parsed_and_bad_values_named() {
        let mut config = Config::default();
        config.set("hash_workers", " 3 ").unwrap_or_else(|e| panic!("{e}"));
        config.set("log_format", "JSON").unwrap_or_else(|e| panic!("{e}"));
        config.set("metrics_listen", "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((config.hash_workers, config.log_format), (Some(3), LogFormat::Json));
        assert!(config.metrics_listen.is_empty(), "empty turns metrics off");
        assert!(config.set("hash_queue", "many").is_err_and(|e| e.0.contains("hash_queue")));
        assert!(config.set("log_format", "xml").is_err());
        assert!(config.set("no_such_setting", "1").is_err());
        let flags = Config::load(None, &[("listen", "127.0.0.1:9999".into())]).map(|c| c.listen);
        assert_eq!(flags.ok().as_deref(), Some("127.0.0.1:9999"));
    }
}
