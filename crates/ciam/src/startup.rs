//! Start-up, shared by `ciam serve` and the tests: open the store, build
//! the domain, bind (port 0 gives a free port), serve until told to stop.

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ciam_core::token::OpaqueToken;
use ciam_core::{Ciam, CiamConfig, Clock, SystemClock};
use ciam_store::AnyStore;
use tokio::net::TcpListener;

use crate::config::{Config, Setting};

/// How often the retention purge runs.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] ciam_core::StoreError),
    /// The domain could not be set up.
    #[error("{0}")]
    Domain(#[from] ciam_core::CiamError),
    /// The address of a setting (`CIAM_LISTEN`, `CIAM_METRICS_LISTEN`)
    /// could not be bound.
    #[error("{0}={1}: cannot listen there: {2}")]
    Bind(String, String, std::io::Error),
    /// The data is in use by another server.
    #[error("{0}")]
    Lock(String),
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
}

/// The store and domain opened from a configuration; used by the server
/// and by the CLI subcommands alike.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The database.
    pub store: AnyStore,
    /// The domain on it.
    pub ciam: Ciam,
}

/// Who opens the database: the server makes a missing default database;
/// an operator's command refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// `ciam serve`.
    Server,
    /// Any other command.
    Command,
}

/// Opens the database and the domain; the server makes a SQLite file that
/// is not there (see [`Server::build`] for its folder). `issuer` overrides
/// the configured one.
pub async fn open(
    config: &Config,
    clock: Arc<dyn Clock>,
    issuer: String,
    opener: Opener,
) -> Result<Opened, StartError> {
    let options = ciam_store::DbOptions { create: opener == Opener::Server, ..config.db_options() };
    let store = ciam_store::open(&config.database_url(), &options).await?;
    let domain = CiamConfig {
        issuer,
        region: config.region()?,
        state_token_ttl: config.state_token_ttl,
        sso_session_seconds: config.sso_session_seconds,
        hashing: config.hashing(),
        calls_per_address: config.calls_per_address,
        audit_retention_days: config.audit_retention_days,
        key_encryption_key: config.key_encryption_key()?,
        // Only a server sends codes: the CLI's commands start no delivery
        // and make no HTTP client.
        sms: if opener == Opener::Server { config.sms()? } else { Default::default() },
    };
    let ciam = Ciam::open(store.shared(), clock, domain).await?;
    Ok(Opened { store, ciam })
}

/// The data directory, made if missing, readable by its owner only
/// whatever the umask (docs/api.md §8).
pub(crate) fn owner_only_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// How many times, and how far apart, a held data lock is tried again
/// before the start is refused (a second of waiting in all).
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The lock a server holds on its SQLite file, so that a second `ciam
/// serve` on the same data is refused instead of sharing what one process
/// must own alone (its lockout counts, its purge). Released when the
/// process ends, however it ends.
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
}

impl DataLock {
    /// Takes the lock beside `database` (`<database>.lock`), writing this
    /// process's id into it; refuses naming the holder's.
    pub fn take(database: &Path) -> Result<Self, StartError> {
        let path = PathBuf::from(format!("{}.lock", database.display()));
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let failed = |e: std::io::Error| StartError::Lock(format!("{}: {e}", shown.display()));
        if let Some(folder) = shown.parent().filter(|folder| !folder.is_dir()) {
            return Err(StartError::Lock(format!("the SQLite folder {} does not exist", folder.display())));
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(failed)?;
        // Like every file of the data folder, whatever the umask (and for a
        // lock file an older version made with another mode).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        }
        // A child process this one is starting holds a copy of the lock's
        // file until it runs its program (the file closes on exec): a lock
        // held that briefly is waited for, a second server's is not let go.
        let mut tries = 0;
        let locked = loop {
            if file.try_lock().is_ok() {
                break true;
            }
            if tries == LOCK_TRIES {
                break false;
            }
            tries += 1;
            std::thread::sleep(LOCK_RETRY);
        };
        if !locked {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StartError::Lock(format!(
                "another ciam serve (pid {}) is using {}; stop it first",
                holder.trim(),
                shown.display()
            )));
        }
        file.set_len(0).map_err(failed)?;
        file.write_all(std::process::id().to_string().as_bytes()).map_err(failed)?;
        Ok(Self { _file: file })
    }
}

/// Binds the address `listen` of the setting called `setting`; the error
/// names its variable.
pub async fn bind(setting: &str, listen: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(listen).await.map_err(|e| StartError::Bind(Setting::env_of(setting), listen.to_owned(), e))
}

/// A bound, ready server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    opened: Opened,
    _lock: Option<DataLock>,
    http: ciam_http::HttpOptions,
    limits: crate::serve::Limits,
    first_admin_token: Option<OpaqueToken>,
}

impl Server {
    /// Opens everything and binds the listening socket.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Server::build`], with an injected clock (tests).
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let listener = bind("listen", &config.listen).await?;
        let addr =
            listener.local_addr().map_err(|e| StartError::Bind(Setting::env_of("listen"), config.listen.clone(), e))?;
        let issuer = config.issuer.clone().unwrap_or_else(|| format!("http://{addr}"));
        if config.database_url.is_none() {
            owner_only_dir(&config.data_dir)
                .map_err(|e| crate::config::ConfigError(format!("data_dir {}: {e}", config.data_dir.display())))?;
        }
        let lock = ciam_store::sqlite_path(&config.database_url()).map(|db| DataLock::take(&db)).transpose()?;
        let opened = open(config, clock, issuer, Opener::Server).await?;
        let first_admin_token =
            opened.ciam.ensure_admin_token(config.admin_token.as_ref().map(crate::config::Secret::expose)).await?;
        Ok(Self {
            listener,
            opened,
            _lock: lock,
            http: config.http()?,
            limits: config.connection_limits(),
            first_admin_token,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The domain this server serves.
    pub fn ciam(&self) -> Ciam {
        self.opened.ciam.clone()
    }

    /// The bounds on connections it applies.
    pub fn limits(&self) -> crate::serve::Limits {
        self.limits.clone()
    }

    /// The admin token generated on this first start, if one was.
    pub fn take_first_admin_token(&mut self) -> Option<OpaqueToken> {
        self.first_admin_token.take()
    }

    /// Serves until `shutdown` completes; then answers not ready for the
    /// shutdown delay, still serving, and drains.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Server { listener, opened, http, limits, .. } = self;
        let ciam = opened.ciam.clone();
        let background = tokio::spawn(housekeeping(ciam.clone()));
        let (delay, draining) = (limits.shutdown_delay, ciam.clone());
        let shutdown = async move {
            shutdown.await;
            // Not ready first, so that a balancer stops sending calls
            // before the listener goes.
            draining.drain();
            tokio::time::sleep(delay).await;
        };
        crate::serve::serve(listener, ciam_http::router(ciam, http), limits, shutdown).await;
        background.abort();
        opened.store.close().await;
        Ok(())
    }
}

/// Reloads signing keys (so rotations elsewhere show up) and deletes what
/// is no longer needed (see `ciam_core::retention`), once at start and
/// every [`PURGE_EVERY`] after.
async fn housekeeping(ciam: Ciam) {
    let mut keys = tokio::time::interval(Duration::from_secs(ciam_core::keys::KEY_REFRESH_SECONDS));
    keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let purging = tokio::spawn({
        let ciam = ciam.clone();
        async move {
            let mut purge = tokio::time::interval(PURGE_EVERY);
            purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                purge.tick().await;
                match ciam.purge().await {
                    Ok(Some(report)) if report.total() > 0 => tracing::info!(?report, "purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purge failed"),
                }
            }
        }
    });
    let _stops_with_this_task = AbortOnDrop(purging);
    loop {
        keys.tick().await;
        if let Err(e) = ciam.refresh_keys().await {
            tracing::warn!(error = %e, "signing keys not refreshed");
        }
    }
}

/// Ends a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
