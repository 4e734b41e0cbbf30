//! Configuration: defaults, then an optional TOML file, then `CIAM_*`
//! environment variables (each wins over the one before).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ciam_core::mobile::{Region, parse_region};
use ciam_core::password::HashingConfig;
use ciam_core::policy::parse_net;
use ipnet::IpNet;
use serde::Deserialize;

mod sms;
mod values;

pub use values::{Secret, SettingValue};

/// Declares every setting once: its field, type, default, help text (the
/// field's doc and its `--help` line), what applies when it has no value
/// (`unset`), whether its value is a secret, and whether an empty value
/// means "none" rather than "the default". From that one table come
/// [`Config`], its `Default`, [`SETTINGS`] (the environment variable and
/// the `ciam serve` flag of each), [`Config::set`] (parsing) and
/// [`Config::defaults`] (the `--help` defaults), so they cannot disagree.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr,
            help $help:literal
            $(, unset $unset:literal)?
            $(, is $flag:ident)*;
    )*) => {
        /// Everything an operator can set. Field names are the TOML keys;
        /// the environment variable is `CIAM_` + the name in upper case, the
        /// `ciam serve` flag `--` + the name in kebab case.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            $(
                #[doc = $help]
                $(#[doc = $doc])*
                pub $name: $ty,
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($name: $default,)* }
            }
        }

        /// Every setting, in the order `ciam serve --help` lists them.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                name: stringify!($name),
                help: $help,
                unset: settings!(@unset $($unset)?),
                secret: settings!(@has secret $($flag)*),
                empty_is_none: settings!(@has empty_is_none $($flag)*),
            },
        )*];

        impl Config {
            /// Sets the setting `name` from its text. A blank value leaves
            /// the setting as it was, but for those where empty means none.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
                let setting = SETTINGS
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| ConfigError(format!("no setting is called {name}")))?;
                let text = value.trim();
                if text.is_empty() && !setting.empty_is_none {
                    return Ok(());
                }
                let bad = |why: String| ConfigError(format!("{name} = {value:?} is not valid: {why}"));
                match name {
                    $(stringify!($name) => self.$name = SettingValue::parse(text).map_err(bad)?,)*
                    _ => {}
                }
                Ok(())
            }

            /// The default of every setting, as text (empty for the unset
            /// ones; never a secret).
            pub fn defaults() -> Vec<(&'static str, String)> {
                let defaults = Config::default();
                vec![$((stringify!($name), SettingValue::show(&defaults.$name)),)*]
            }
        }
    };
    (@unset $unset:literal) => { $unset };
    (@unset) => { "" };
    (@has $want:ident $($flag:ident)*) => { false $(|| settings!(@is $want $flag))* };
    (@is secret secret) => { true };
    (@is empty_is_none empty_is_none) => { true };
    (@is $want:ident $other:ident) => { false };
}

settings! {
    listen: String = "127.0.0.1:8080".into(),
        help "Address to listen on";
    database_url: Option<String> = None,
        help "Database URL: sqlite://PATH or postgres://USER@HOST/DB", unset "a SQLite file in data_dir", is secret;
    data_dir: PathBuf = PathBuf::from("data"),
        help "Folder of the default SQLite database (made with mode 0700)";
    admin_token: Option<Secret> = None,
        help "The admin API token (at least 32 characters)", unset "generated on first start and printed once", is secret;
    issuer: Option<String> = None,
        help "The iss of id_tokens", unset "http:// + the listening address";
    argon2_m_kib: u32 = HashingConfig::default().m_kib,
        help "argon2id memory cost, KiB";
    argon2_t: u32 = HashingConfig::default().t,
        help "argon2id passes";
    argon2_p: u32 = HashingConfig::default().p,
        help "argon2id lanes";
    import_max_memory_kib: Option<u32> = None,
        help "The most memory an imported password hash may need, KiB", unset "4 × argon2_m_kib";
    default_region: String = "CN".into(),
        help "Region of numbers written without a country code (ISO 3166 alpha-2)";
    hash_workers: Option<usize> = None,
        help "Password hashes computed at once", unset "the number of cores";
    hash_queue: usize = HashingConfig::default().queue,
        help "Password attempts that may wait for a hashing worker";
    hash_max_wait_ms: u64 = HashingConfig::default().max_wait.as_millis() as u64,
        help "Longest wait for a hashing worker, ms";
    state_token_ttl: i64 = 600,
        help "state_token lifetime, seconds";
    sso_session_seconds: i64 = 28_800,
        help "How long a browser stays signed in after a login on the hosted page, seconds";
    db_max_connections: Option<u32> = None,
        help "Database connections per instance", unset "SQLite 2, PostgreSQL 10";
    db_timeout_ms: u64 = 3000,
        help "Longest wait for a database connection or statement, ms";
    log: String = "info".into(),
        help "Log filter, e.g. info or ciam=debug";
    log_format: LogFormat = LogFormat::Text,
        help "Log lines as text or json";
    metrics_listen: String = "127.0.0.1:9464".into(),
        help "Where GET /metrics is served (Prometheus); empty turns it off", is empty_is_none;
    trusted_proxies: String = String::new(),
        help "Proxies whose X-Forwarded-For names the client: addresses or CIDR, comma-separated", is empty_is_none;
    calls_per_address: usize = 64,
        help "SDK calls one client address may have in progress; more wait their turn";
    max_connections: usize = 10_000,
        help "Connections open at once";
    max_connections_per_address: usize = 256,
        help "Connections open at once from one peer (proxies exempt)";
    header_timeout_ms: u64 = 10_000,
        help "Longest wait for a request's head, ms";
    idle_timeout_ms: u64 = 60_000,
        help "How long an idle keep-alive connection stays open, ms";
    shutdown_delay_ms: u64 = 0,
        help "After SIGTERM, how long /readyz answers 503 while calls are still served, ms (for a balancer to stop sending)";
    drain_timeout_ms: u64 = 10_000,
        help "Longest a shutdown waits for the calls it holds, ms";
    audit_retention_days: u32 = 90,
        help "Days audit events are kept";
    key_encryption_key: Option<Secret> = None,
        help "32 bytes, base64, that seal the signing keys at rest", unset "keys stored unsealed (mode 0600)", is secret;
    sms_provider: Option<String> = None,
        help "Where SMS codes go: webhook, or log (development only, refused under an https issuer)", unset "none: sends answer IDAAS.SDK.CAPTCHA.0006";
    sms_webhook_url: Option<String> = None,
        help "The webhook SMS codes are posted to (http or https)";
    sms_webhook_secret: Option<Secret> = None,
        help "Signs each webhook post, X-Ciam-Signature (at least 32 characters)", is secret;
    captcha_verify_url: Option<String> = None,
        help "A siteverify-compatible captcha checked before each SMS send (Turnstile, hCaptcha, reCAPTCHA)", unset "no captcha";
    captcha_secret: Option<Secret> = None,
        help "The captcha service's secret", is secret;
}

/// The largest request head (request line and headers): 32 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The shortest admin token accepted (docs/api.md §8).
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

/// Why a configuration file does not parse, placed by line: the parser's
/// own text quotes the line, which may hold a secret (a misspelt
/// `admin-token = "…"`).
fn toml_why(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("line {}: {}", text[..span.start.min(text.len())].matches('\n').count() + 1, e.message()),
        None => e.message().to_owned(),
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
    /// An empty value means none (rather than the default).
    pub empty_is_none: bool,
}

impl Setting {
    /// The environment variable of the setting called `name`.
    pub fn env_of(name: &str) -> String {
        SETTINGS.iter().find(|s| s.name == name).map_or_else(|| name.to_ascii_uppercase(), Setting::env)
    }

    /// The environment variable.
    pub fn env(&self) -> String {
        format!("CIAM_{}", self.name.to_ascii_uppercase())
    }

    /// The `ciam serve` flag, without its dashes.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment, then
    /// `overrides` (`ciam serve` flags, by setting name).
    pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError(format!("{}: {}", path.display(), toml_why(&text, &e))))?
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

    fn validate(&self) -> Result<(), ConfigError> {
        self.region()?;
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| {
            ConfigError(format!("log {:?} is not a log filter (e.g. info, or ciam=debug): {e}", self.log))
        })?;
        self.key_encryption_key()?;
        self.trusted_proxies()?;
        self.check_issuer()?;
        self.sms_settings()?;
        if self.state_token_ttl <= 0 || self.sso_session_seconds <= 0 {
            return Err(ConfigError("state_token_ttl and sso_session_seconds must be positive".into()));
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
            check_admin_token(token.expose())?;
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
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.expose().trim()).map_err(|_| {
            ConfigError("key_encryption_key must be base64 (e.g. the output of `openssl rand -base64 32`)".into())
        })?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Some)
            .map_err(|_| ConfigError(format!("key_encryption_key must be 32 bytes, not {}", bytes.len())))
    }

    /// An issuer is an origin (docs/oidc.md §2): `http` or `https`, a host,
    /// a port if not the scheme's, and nothing after it, spelled as
    /// browsers send it in `Origin` (the login page's forms compare them).
    fn check_issuer(&self) -> Result<(), ConfigError> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        let origin = url::Url::parse(issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        match origin {
            Some(origin) if origin == *issuer => Ok(()),
            Some(origin) => Err(ConfigError(format!(
                "issuer {issuer:?} must be an origin with no path, as browsers send it: {origin:?}"
            ))),
            None => Err(ConfigError(format!(
                "issuer {issuer:?} must be an http or https origin, e.g. https://login.example.com"
            ))),
        }
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

    /// The bounds on connections (docs/api.md §8).
    pub fn connection_limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_header_bytes: MAX_HEADER_BYTES,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            exempt: self.trusted_proxies().unwrap_or_default().into(),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            shutdown_delay: Duration::from_millis(self.shutdown_delay_ms),
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
mod tests;
