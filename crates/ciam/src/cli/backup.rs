//! `ciam backup --to FILE`: a consistent copy of the live SQLite database.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{CliError, print_json};
use crate::config::Config;

/// `ciam backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file; it must not exist.
    #[arg(long)]
    pub to: PathBuf,
}

pub(super) async fn run(config: &Config, args: BackupArgs) -> Result<(), CliError> {
    let to = args.to;
    // Its own words: "backup --to: FILE already exists; name a new file",
    // not a database error.
    let bytes = ciam_store::backup(&config.database_url(), &to, &config.db_options())
        .await
        .map_err(|e| CliError::Input(format!("backup --to: {e}")))?;
    let shown = std::path::absolute(&to).unwrap_or_else(|_| to.clone());
    print_json(&json!({ "backup": shown.display().to_string(), "bytes": bytes }))
}
