//! `ciam keys rotate`.

use ciam_core::Ciam;
use clap::Subcommand;
use serde_json::json;

use super::{CliError, print_json};

/// `ciam keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; the old one stays in the JWKS.
    Rotate,
}

pub(super) async fn run(ciam: &Ciam, command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Rotate => print_json(&json!({ "kid": ciam.rotate_keys().await? })),
    }
}
