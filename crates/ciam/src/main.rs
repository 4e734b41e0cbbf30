//! `ciam`: parse the command line, load the configuration, run.

use std::io::IsTerminal;

use ciam::cli::{Cli, Command};
use ciam::config::LogFormat;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let overrides = match &cli.command {
        Command::Serve(args) => args.settings.clone(),
        _ => Vec::new(),
    };
    let config = match ciam::Config::load(cli.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ciam: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Checked when the configuration was loaded.
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    match ciam::cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ciam: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
