//! The `ciam` binary as a library: configuration, start-up and the command
//! line, so the tests start exactly what `ciam serve` starts.

pub mod cli;
pub mod config;
pub mod metrics;
pub mod outbound;
pub mod serve;
pub mod startup;

pub use config::Config;

/// The version and the commit it was built from: `0.1.0 (1e56f9c0a2b3)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CIAM_COMMIT"), ")");
pub use startup::Server;
