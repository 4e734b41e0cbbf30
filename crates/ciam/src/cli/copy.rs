//! `ciam copy --from URL --to URL`: a whole deployment into a fresh
//! database.

use ciam_core::SystemClock;
use clap::Args;

use super::{CliError, print_serialized};
use crate::config::Config;
use crate::startup::StartError;

/// `ciam copy`
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source database URL (sqlite://… or postgres://…).
    #[arg(long)]
    pub from: String,
    /// Target database URL; it must not hold apps, users or keys yet.
    #[arg(long)]
    pub to: String,
}

pub(super) async fn run(config: &Config, args: CopyArgs) -> Result<(), CliError> {
    let CopyArgs { from, to } = args;
    // The source must be there: a typo must not copy an empty new database.
    let existing = ciam_store::DbOptions { create: false, ..config.db_options() };
    let source = ciam_store::open(&from, &existing).await.map_err(StartError::from)?;
    let target = ciam_store::open(&to, &config.db_options()).await.map_err(StartError::from)?;
    let now = ciam_core::Clock::now(&SystemClock);
    let report = ciam_core::copy::copy_store(source.shared().as_ref(), target.shared().as_ref(), now).await;
    source.close().await;
    target.close().await;
    print_serialized(report?)
}
