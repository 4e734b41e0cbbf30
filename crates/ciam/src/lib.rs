//! The `ciam` binary as a library: configuration, start-up and the command
//! line, so the tests start exactly what `ciam serve` starts.

pub mod cli;
pub mod config;
pub mod metrics;
pub mod serve;
pub mod startup;

pub use config::Config;
pub use startup::Server;
