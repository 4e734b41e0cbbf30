//! `ciam init`: the database, its first signing key and admin token,
//! without serving.

use std::sync::Arc;

use ciam_core::SystemClock;
use serde_json::json;

use super::serve::redact;
use super::{CliError, print_json};
use crate::config::Config;
use crate::startup::{self, StartError};

pub(super) async fn run(config: &Config) -> Result<(), CliError> {
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
