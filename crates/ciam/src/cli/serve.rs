//! `ciam serve`: a flag for each setting (generated from
//! [`crate::config::SETTINGS`]), and the server's start.

use clap::Args;

use crate::config::{Config, SETTINGS};
use crate::startup::{self, Server};

use super::CliError;

/// `ciam serve`: a flag for each setting, shown with its environment
/// variable and default.
#[derive(Clone, Default)]
pub struct ServeArgs {
    /// The settings given on the command line, by name.
    pub settings: Vec<(&'static str, String)>,
}

/// The names of the settings given, never their values (an admin token
/// may be one).
impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.settings.iter().map(|(name, _)| name)).finish()
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        // Environment variables are read with the configuration file, in
        // their order; only what was typed is taken from here.
        for setting in SETTINGS {
            if matches.value_source(setting.name) == Some(clap::parser::ValueSource::CommandLine)
                && let Some(value) = matches.get_one::<String>(setting.name)
            {
                self.settings.push((setting.name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let defaults = Config::defaults();
        command.args(SETTINGS.iter().zip(defaults).map(|(setting, (_, default))| {
            let shown = match (default.as_str(), setting.unset) {
                ("", "") => "none",
                ("", unset) => unset,
                (default, _) => default,
            };
            clap::Arg::new(setting.name)
                .long(setting.flag())
                .env(setting.env())
                .hide_env_values(setting.secret)
                .value_name("VALUE")
                .help(format!("{} [default: {shown}]", setting.help))
        }))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

pub(super) async fn run(config: &Config) -> Result<(), CliError> {
    // Every listener is bound before anything is made or printed: a start
    // that fails on a taken port leaves nothing behind (no admin token
    // shown for a server that never ran).
    let metrics = match config.metrics_listen.as_str() {
        "" => None,
        listen => Some(startup::bind("metrics_listen", listen).await?),
    };
    let mut server = Server::build(config).await?;
    if let Some(listener) = metrics {
        let addr = crate::metrics::start(listener, server.ciam(), server.limits()).await?;
        tracing::info!(addr = %addr, "metrics at /metrics");
    }
    if let Some(token) = server.take_first_admin_token() {
        // Generated on first start, printed once, stored as a digest.
        println!("ciam: generated the admin token (shown only now; keep it safe):\n{}", token.expose());
    }
    tracing::info!(
        version = crate::VERSION,
        addr = %server.local_addr(),
        database = %redact(&config.database_url()),
        "ciam listening"
    );
    server.run(startup::shutdown_signal()).await?;
    Ok(())
}

/// A database URL without its password, for logs.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_logged() {
        assert_eq!(redact("postgres://ciam:s3cret@db:5432/ciam"), "postgres://ciam:***@db:5432/ciam");
        assert_eq!(redact("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(redact("sqlite://data/ciam.db"), "sqlite://data/ciam.db");
    }
}
