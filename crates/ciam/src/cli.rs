//! The `ciam` command line: `serve`, and operator subcommands that act on
//! the same database as the server (no HTTP needed).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use ciam_core::admin::{AppInput, UserInput};
use ciam_core::clock::to_rfc3339;
use ciam_core::model::AppAccess;
use ciam_core::policy::{LockScope, LockoutPolicyPatch, ThrottlePolicyPatch};
use ciam_core::{Lang, Password, SystemClock};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::config::{Config, SETTINGS};
use crate::startup::{self, Server, StartError};

/// ciam: a customer-identity login server (mobile number + password).
#[derive(Debug, Parser)]
#[command(name = "ciam", version, about)]
pub struct Cli {
    /// A TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "CIAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server. Each setting is read from the configuration file,
    /// then its CIAM_* environment variable, then its flag (each wins over
    /// the one before).
    Serve(ServeArgs),
    /// Create the database (and the data folder of the embedded one) with
    /// its first signing key and admin token, without serving: to bring
    /// users in with `user import` before the first start. Run again, it
    /// changes nothing.
    Init,
    /// Manage client applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the admin API token.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Manage id_token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show or change a policy (prints it as JSON after any change).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write a consistent copy of the live SQLite database to a new file,
    /// while the server keeps serving (on PostgreSQL, use pg_dump).
    Backup {
        /// The new file; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Copy a whole deployment into a fresh database, e.g. from the embedded
    /// SQLite file to PostgreSQL. Stop the servers first.
    Copy {
        /// Source database URL (sqlite://… or postgres://…).
        #[arg(long)]
        from: String,
        /// Target database URL; it must not hold apps, users or keys yet.
        #[arg(long)]
        to: String,
    },
}

/// `ciam serve`: a flag for each setting, shown with its environment
/// variable and default.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// The settings given on the command line, by name.
    pub settings: Vec<(&'static str, String)>,
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        // Environment variables are read with the configuration file, in
        // their order; only what was typed is taken from here.
        for setting in SETTINGS {
            if matches.value_source(setting.name) == Some(clap::parser::ValueSource::CommandLine)
                && let Some(value) = matches.get_one::<String>(setting.name)
            {
                self.settings.push((setting.name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let defaults = Config::defaults();
        command.args(SETTINGS.iter().zip(defaults).map(|(setting, (_, default))| {
            let shown = match (default.as_str(), setting.unset) {
                ("", "") => "none",
                ("", unset) => unset,
                (default, _) => default,
            };
            clap::Arg::new(setting.name)
                .long(setting.flag())
                .env(setting.env())
                .hide_env_values(setting.secret)
                .value_name("VALUE")
                .help(format!("{} [default: {shown}]", setting.help))
        }))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// `ciam app …`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app and print it (with its client id) as JSON.
    Create(AppCreate),
    /// List apps as JSON.
    List,
}

/// Who may log in through an app.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Access {
    /// Every user.
    All,
    /// Only users assigned to the app.
    Assigned,
}

/// `ciam app create`
#[derive(Debug, Args)]
pub struct AppCreate {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Who may log in.
    #[arg(long, value_enum, default_value = "all")]
    pub access: Access,
    /// Check password age at login (PASSWORD_WARN / PASSWORD_EXPIRED).
    #[arg(long)]
    pub password_expiry_check: bool,
    /// session_token lifetime, seconds (default 432000).
    #[arg(long)]
    pub session_ttl: Option<i64>,
    /// id_token lifetime, seconds (default 300).
    #[arg(long)]
    pub id_token_ttl: Option<i64>,
}

/// `ciam user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line),
    /// or a hash from another system is imported with --password-hash.
    Create(UserCreate),
    /// Import users with their password hashes from a file: JSON Lines of
    /// user objects, a Keycloak realm export or an Auth0 export. Users
    /// already there are skipped, so it can be run again after an
    /// interruption; rejected lines are reported by number.
    Import(crate::transfer::ImportArgs),
    /// Export every user with its password hash as JSON Lines.
    Export(crate::transfer::ExportArgs),
    /// Lift a lockout on a user's mobile number.
    Unlock {
        /// The mobile number, in any spelling.
        #[arg(long)]
        mobile: String,
        /// Clear the counts of a number no user has (unknown numbers count
        /// down and lock too); without it such a number is refused.
        #[arg(long)]
        unregistered: bool,
    },
}

/// `ciam user create`
#[derive(Debug, Args)]
pub struct UserCreate {
    /// The mobile number, in any spelling.
    #[arg(long)]
    pub mobile: String,
    /// Import this hash (argon2, bcrypt, PBKDF2, scrypt) instead of reading a password.
    #[arg(long)]
    pub password_hash: Option<String>,
    /// Login name.
    #[arg(long)]
    pub user_name: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// E-mail.
    #[arg(long)]
    pub email: Option<String>,
}

/// `ciam policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The lockout policy (CONTRACT §2, §7).
    Lockout(LockoutArgs),
    /// The address throttle (CONTRACT §7).
    Throttle(ThrottleArgs),
}

/// What a lock counts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scope {
    /// One count per account.
    Account,
    /// One count per account and address, and one per account with --account-max-failures.
    #[value(name = "account_ip", alias = "account-ip")]
    AccountIp,
}

/// `ciam policy lockout`
#[derive(Debug, Args)]
pub struct LockoutArgs {
    /// Consecutive failures that lock.
    #[arg(long)]
    pub max_failures: Option<u32>,
    /// How long a lock lasts, seconds.
    #[arg(long)]
    pub lock_seconds: Option<i64>,
    /// What a lock counts.
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
    /// With --scope account_ip: failures from all addresses that lock the account for everyone.
    #[arg(long)]
    pub account_max_failures: Option<u32>,
    /// Seconds after its last failure at which a count below the limit is forgotten.
    #[arg(long)]
    pub failure_reset_seconds: Option<i64>,
}

/// `ciam policy throttle`
#[derive(Debug, Args)]
pub struct ThrottleArgs {
    /// Failed password attempts one address may make in a window.
    #[arg(long)]
    pub ip_max_failures: Option<u32>,
    /// The window, seconds.
    #[arg(long)]
    pub ip_window_seconds: Option<i64>,
    /// Addresses or CIDR networks never throttled, comma-separated (an empty value clears the list).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub ip_allowlist: Option<Vec<String>>,
}

/// `ciam admin-token …`
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Replace the admin token with a new one and print it once.
    Reset,
}

/// `ciam keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; the old one stays in the JWKS.
    Rotate,
}

/// A failure of a subcommand, printed to standard error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Start-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The domain refused or failed; at the operator's terminal a failure
    /// says its cause.
    #[error("{}", domain_message(.0))]
    Domain(#[from] ciam_core::CiamError),
    /// What the operator typed cannot be used.
    #[error("{0}")]
    Input(String),
    /// Reading or writing the terminal failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

fn domain_message(e: &ciam_core::CiamError) -> String {
    match e {
        ciam_core::CiamError::Internal(cause) => cause.clone(),
        refused => refused.message(Lang::En),
    }
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

fn app_json(app: &ciam_core::model::App) -> serde_json::Value {
    json!({
        "client_id": app.client_id,
        "name": app.name,
        "enabled": app.enabled,
        "password_expiry_check": app.password_expiry_check,
        "access": app.access,
        "session_ttl": app.session_ttl,
        "id_token_ttl": app.id_token_ttl,
        "created_at": to_rfc3339(app.created_at),
    })
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match &cli.command {
        Command::Serve(_) => return serve(&config).await,
        Command::Copy { from, to } => return copy(from, to, &config).await,
        Command::Backup { to } => return backup(to, &config).await,
        Command::Init => return init(&config).await,
        _ => {}
    }
    let issuer = config.issuer.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let opened = startup::open(&config, Arc::new(SystemClock), issuer, startup::Opener::Command).await?;
    let ciam = &opened.ciam;
    let result = match cli.command {
        Command::Serve(_) | Command::Copy { .. } | Command::Backup { .. } | Command::Init => Ok(()),
        Command::App(AppCommand::Create(a)) => {
            let input = AppInput {
                name: Some(a.name),
                enabled: Some(true),
                password_expiry_check: Some(a.password_expiry_check),
                access: Some(match a.access {
                    Access::All => AppAccess::All,
                    Access::Assigned => AppAccess::Assigned,
                }),
                session_ttl: a.session_ttl,
                id_token_ttl: a.id_token_ttl,
            };
            let app = ciam.create_app(input).await?;
            print_json(&app_json(&app))
        }
        Command::App(AppCommand::List) => {
            let apps = ciam.apps().await?;
            print_json(&serde_json::Value::Array(apps.iter().map(app_json).collect()))
        }
        Command::User(UserCommand::Create(u)) => {
            let password = match &u.password_hash {
                Some(_) => None,
                None => Some(read_password()?),
            };
            let input = UserInput {
                mobile: Some(u.mobile),
                password,
                password_hash: u.password_hash,
                user_name: Some(u.user_name),
                name: Some(u.name),
                email: Some(u.email),
                ..Default::default()
            };
            let user = ciam.create_user(input).await?;
            print_json(&json!({ "id": user.id, "mobile": user.mobile.as_str() }))
        }
        Command::User(UserCommand::Import(args)) => crate::transfer::import(ciam, &args).await,
        Command::User(UserCommand::Export(args)) => crate::transfer::export(ciam, &args).await,
        Command::User(UserCommand::Unlock { mobile, unregistered }) => {
            let (unlocked, user) = ciam.unlock_mobile(&mobile, unregistered).await.map_err(|e| match e.code() {
                ciam_core::ErrorCode::AdminNotFound => CliError::Input(format!(
                    "no user has mobile {mobile:?}; --unregistered clears the counts of a number nobody has"
                )),
                _ => e.into(),
            })?;
            print_json(&json!({ "unlocked": unlocked.as_str(), "user_id": user }))
        }
        Command::AdminToken(AdminTokenCommand::Reset) => {
            let token = ciam.reset_admin_token().await?;
            // Shown once, by the operator's request; only its digest is stored.
            println!("{}", token.expose());
            Ok(())
        }
        Command::Policy(PolicyCommand::Lockout(a)) => {
            let patch = LockoutPolicyPatch {
                max_failures: a.max_failures,
                lock_seconds: a.lock_seconds,
                scope: a.scope.map(|scope| match scope {
                    Scope::Account => LockScope::Account,
                    Scope::AccountIp => LockScope::AccountIp,
                }),
                account_max_failures: a.account_max_failures,
                failure_reset_seconds: a.failure_reset_seconds,
            };
            let policy = ciam.update_lockout_policy(patch).await?;
            print_json(&serde_json::to_value(policy).map_err(std::io::Error::other)?)
        }
        Command::Policy(PolicyCommand::Throttle(a)) => {
            let allowlist = a.ip_allowlist.map(|list| list.into_iter().filter(|e| !e.trim().is_empty()).collect());
            let patch = ThrottlePolicyPatch {
                ip_max_failures: a.ip_max_failures,
                ip_window_seconds: a.ip_window_seconds,
                ip_allowlist: allowlist,
            };
            let policy = ciam.update_throttle_policy(patch).await?;
            print_json(&serde_json::to_value(policy).map_err(std::io::Error::other)?)
        }
        Command::Keys(KeysCommand::Rotate) => {
            let kid = ciam.rotate_keys().await?;
            print_json(&json!({ "kid": kid }))
        }
    };
    opened.store.close().await;
    result
}

/// The new user's password: asked for twice without echo at a terminal,
/// else the first line of standard input.
fn read_password() -> Result<Password, CliError> {
    if std::io::stdin().is_terminal() {
        let first = Password::new(rpassword::prompt_password("Password: ")?);
        let again = Password::new(rpassword::prompt_password("Password again: ")?);
        if first != again {
            return Err(CliError::Input("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n']).to_owned()))
}

async fn copy(from: &str, to: &str, config: &Config) -> Result<(), CliError> {
    // The source must be there: a typo must not copy an empty new database.
    let existing = ciam_store::DbOptions { create: false, ..config.db_options() };
    let source = ciam_store::open(from, &existing).await.map_err(StartError::from)?;
    let target = ciam_store::open(to, &config.db_options()).await.map_err(StartError::from)?;
    let now = ciam_core::Clock::now(&SystemClock);
    let report = ciam_core::copy::copy_store(source.shared().as_ref(), target.shared().as_ref(), now).await;
    source.close().await;
    target.close().await;
    print_json(&serde_json::to_value(report?).map_err(std::io::Error::other)?)
}

async fn backup(to: &std::path::Path, config: &Config) -> Result<(), CliError> {
    // Its own words: "backup: FILE already exists; name a new file", not
    // a database error.
    let bytes = ciam_store::backup(&config.database_url(), to, &config.db_options())
        .await
        .map_err(|e| CliError::Input(format!("backup --to: {e}")))?;
    let shown = std::path::absolute(to).unwrap_or_else(|_| to.to_path_buf());
    print_json(&json!({ "backup": shown.display().to_string(), "bytes": bytes }))
}

async fn init(config: &Config) -> Result<(), CliError> {
    let url = config.database_url();
    let existed = ciam_store::sqlite_path(&url).map(|path| path.exists());
    if config.database_url.is_none() {
        startup::owner_only_dir(&config.data_dir)
            .map_err(|e| crate::config::ConfigError(format!("data_dir {}: {e}", config.data_dir.display())))
            .map_err(StartError::from)?;
    }
    let issuer = config.issuer.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let opened = startup::open(config, Arc::new(SystemClock), issuer, startup::Opener::Server).await?;
    let token = opened.ciam.ensure_admin_token(config.admin_token.as_ref().map(crate::config::Secret::expose)).await;
    opened.store.close().await;
    if let Some(token) = token? {
        println!("ciam: generated the admin token (shown only now; keep it safe):\n{}", token.expose());
    }
    let created = existed.map(|existed| !existed);
    print_json(&json!({ "database": redact(&url), "created": created }))
}

async fn serve(config: &Config) -> Result<(), CliError> {
    // Every listener is bound before anything is made or printed: a start
    // that fails on a taken port leaves nothing behind (no admin token
    // shown for a server that never ran).
    let metrics = match config.metrics_listen.as_str() {
        "" => None,
        listen => Some(startup::bind("CIAM_METRICS_LISTEN", listen).await?),
    };
    let mut server = Server::build(config).await?;
    if let Some(listener) = metrics {
        let addr = crate::metrics::start(listener, server.ciam(), server.limits()).await?;
        tracing::info!(addr = %addr, "metrics at /metrics");
    }
    if let Some(token) = server.take_first_admin_token() {
        // Generated on first start, printed once, stored as a digest.
        println!("ciam: generated the admin token (shown only now; keep it safe):\n{}", token.expose());
    }
    tracing::info!(addr = %server.local_addr(), database = %redact(&config.database_url()), "ciam listening");
    server.run(startup::shutdown_signal()).await?;
    Ok(())
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_logged() {
        assert_eq!(redact("postgres://ciam:s3cret@db:5432/ciam"), "postgres://ciam:***@db:5432/ciam");
        assert_eq!(redact("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(redact("sqlite://data/ciam.db"), "sqlite://data/ciam.db");
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["ciam", "app", "create", "--name", "Shop", "--access", "assigned"]).expect("parse");
        assert!(matches!(cli.command, Command::App(AppCommand::Create(AppCreate { access: Access::Assigned, .. }))));
    }
}
