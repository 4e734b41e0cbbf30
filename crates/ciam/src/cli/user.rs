//! `ciam user create|import|export|unlock`.

use std::io::{BufRead, IsTerminal};

use ciam_core::admin::UserInput;
use ciam_core::{Ciam, ErrorCode, Password};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, print_json};

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
    Import(super::transfer::ImportArgs),
    /// Export every user with its password hash as JSON Lines.
    Export(super::transfer::ExportArgs),
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

pub(super) async fn run(ciam: &Ciam, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create(u) => create(ciam, u).await,
        UserCommand::Import(args) => super::transfer::import(ciam, &args).await,
        UserCommand::Export(args) => super::transfer::export(ciam, &args).await,
        UserCommand::Unlock { mobile, unregistered } => {
            let (unlocked, user) = ciam.unlock_mobile(&mobile, unregistered).await.map_err(|e| match e.code() {
                ErrorCode::AdminNotFound => CliError::Input(format!(
                    "no user has mobile {mobile:?}; --unregistered clears the counts of a number nobody has"
                )),
                _ => e.into(),
            })?;
            print_json(&json!({ "unlocked": unlocked.as_str(), "user_id": user }))
        }
    }
}

async fn create(ciam: &Ciam, u: UserCreate) -> Result<(), CliError> {
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
