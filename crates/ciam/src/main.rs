//! `ciam`: parse the command line, load the configuration, run.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ciam::cli::Cli::parse();
    let config = match ciam::Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ciam: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Checked when the configuration was loaded.
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match ciam::cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ciam: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
