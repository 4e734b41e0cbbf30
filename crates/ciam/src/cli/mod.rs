//! The `ciam` command line: `serve`, and operator commands that act on the
//! same database as the server (no HTTP needed). One module per command
//! group, each with its arguments and its `run` side by side; [`run`] is a
//! match of one line per command.

mod admin_token;
mod app;
mod backup;
mod copy;
mod health;
mod init;
mod keys;
mod policy;
mod serve;
pub mod transfer;
mod user;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use ciam_core::{Ciam, Lang, SystemClock};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::startup::{self, StartError};

pub use serve::ServeArgs;

/// ciam: a customer-identity login server (mobile number + password).
#[derive(Debug, Parser)]
#[command(name = "ciam", version = crate::VERSION, about)]
pub struct Cli {
    /// A TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "CIAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
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
    App(app::AppCommand),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage the admin API token.
    #[command(subcommand, name = "admin-token")]
    AdminToken(admin_token::AdminTokenCommand),
    /// Manage id_token signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Show or change a policy (prints it as JSON after any change).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Write a consistent copy of the live SQLite database to a new file,
    /// while the server keeps serving (on PostgreSQL, use pg_dump).
    Backup(backup::BackupArgs),
    /// Copy a whole deployment into a fresh database, e.g. from the embedded
    /// SQLite file to PostgreSQL. Stop the servers first.
    Copy(copy::CopyArgs),
    /// Ask the server at CIAM_LISTEN for /healthz: exit 0 when it answers
    /// 200 (a container's health check, where there is no curl).
    Health,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(_) => serve::run(&config).await,
        Command::Init => init::run(&config).await,
        Command::App(command) => with_ciam(&config, async |ciam| app::run(ciam, command).await).await,
        Command::User(command) => with_ciam(&config, async |ciam| user::run(ciam, command).await).await,
        Command::AdminToken(command) => with_ciam(&config, async |ciam| admin_token::run(ciam, command).await).await,
        Command::Keys(command) => with_ciam(&config, async |ciam| keys::run(ciam, command).await).await,
        Command::Policy(command) => with_ciam(&config, async |ciam| policy::run(ciam, command).await).await,
        Command::Backup(args) => backup::run(&config, args).await,
        Command::Copy(args) => copy::run(&config, args).await,
        Command::Health => health::run(&config),
    }
}

/// Runs `command` on the domain of an existing database, then closes it.
async fn with_ciam(config: &Config, command: impl AsyncFnOnce(&Ciam) -> Result<(), CliError>) -> Result<(), CliError> {
    let issuer = config.issuer.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let opened = startup::open(config, Arc::new(SystemClock), issuer, startup::Opener::Command).await?;
    let result = command(&opened.ciam).await;
    opened.store.close().await;
    result
}

/// A failure of a command, printed to standard error.
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

/// Prints `value` as indented JSON on standard output.
fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

/// Prints `value` (a policy, a report) as indented JSON.
fn print_serialized(value: impl serde::Serialize) -> Result<(), CliError> {
    print_json(&serde_json::to_value(value).map_err(std::io::Error::other)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["ciam", "app", "create", "--name", "Shop", "--access", "assigned"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::App(app::AppCommand::Create(app::AppCreate { access: app::Access::Assigned, .. }))
        ));
    }
}
