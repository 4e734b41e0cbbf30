//! `ciam admin-token reset`.

use ciam_core::Ciam;
use clap::Subcommand;

use super::CliError;

/// `ciam admin-token …`
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Replace the admin token with a new one and print it once.
    Reset,
}

pub(super) async fn run(ciam: &Ciam, command: AdminTokenCommand) -> Result<(), CliError> {
    match command {
        AdminTokenCommand::Reset => {
            let token = ciam.reset_admin_token().await?;
            // Shown once, by the operator's request; only its digest is stored.
            println!("{}", token.expose());
            Ok(())
        }
    }
}
