//! `ciam keys rotate`.

use ciam_core::Ciam;
use clap::Subcommand;

use super::{CliError, print_json};

/// `ciam keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key of each algorithm current; the old ones stay
    /// in the JWKS.
    Rotate,
}

pub(super) async fn run(ciam: &Ciam, command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Rotate => {
            print_json(&serde_json::to_value(ciam.rotate_keys().await?).map_err(std::io::Error::other)?)
        }
    }
}
