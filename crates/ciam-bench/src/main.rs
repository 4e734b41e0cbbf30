//! `ciam-bench`: measures, in one run on one machine, what the server does
//! against what the machine can do.
//!
//! A real `ciam serve` process on a fresh database (embedded SQLite, or
//! PostgreSQL with `--postgres`), set up through the admin API, is driven
//! over HTTP: successful, wrong-password and unknown-mobile logins, id_token
//! refreshes, OpenID Connect code flows and code exchanges, and a flood of
//! 1,000 connections. Right before and right
//! after each phase, with the server idle, the same machine's limit is
//! measured in-process on all cores: argon2id verifications per second with
//! the server's parameters and code, or raw RS256 signatures per second. Each
//! ratio divides a phase's rate by the mean of the two limits beside it, so a
//! virtual machine whose speed drifts during the run is still judged fairly.
//! The floor phase measures the cheapest exchange the server has, so that
//! each ratio can be set beside its bound: the best this machine allows any
//! server that must make the same HTTP exchange and the same hash or
//! signature on the same cores.
//! The last line printed is one JSON object with every figure. All traffic
//! goes to 127.0.0.1; every phase is bounded in time.

mod cpu;
mod driver;
mod gateway;
mod limits;
mod phases;
mod report;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use ciam_core::password::HashingConfig;
use clap::Parser;
use serde_json::json;

use crate::driver::{Plan, drive};
use crate::limits::Limits;
use crate::server::Server;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789-abcdefghij";
const PASSWORD: &str = "Passw0rd!";
const USERS: usize = 16;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "ciam-bench", about = "ciam login throughput against the argon2id limit")]
struct Args {
    /// Short phases (the whole run in under a minute).
    #[arg(long)]
    quick: bool,
    /// Run the server on a fresh PostgreSQL database (created and dropped).
    #[arg(long)]
    postgres: bool,
    /// The PostgreSQL server for --postgres.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    /// The `ciam` binary (default: the one beside this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Requests in flight in the login phases (default: 4 × cores).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Requests in flight in the refresh phase (default: 32 × cores): a
    /// refresh is short, so saturating the server takes more of them.
    #[arg(long)]
    refresh_concurrency: Option<usize>,
    /// Connections in the flood.
    #[arg(long, default_value_t = 1000)]
    flood_connections: usize,
    /// Run only these phases (comma-separated: login, wrong, unknown, refresh, refresh_eddsa, codes,
    /// sms, floor, attack, stuffing, flood).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "login,wrong,unknown,refresh,refresh_eddsa,codes,sms,floor,attack,stuffing,flood"
    )]
    phases: Vec<String>,
    /// A setting for the server, NAME=VALUE (repeatable), over the
    /// bench's defaults: the server runs as an operator would run it (log at
    /// info, its lines written to a file; metrics on).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    server_env: Vec<String>,
    /// Import this many more users first, through `ciam user import` with a
    /// pre-computed hash, and log in as users spread across them.
    #[arg(long, default_value_t = 0)]
    users: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    // Each rate phase: `rounds` windows of `window`, each between two windows
    // of the limit.
    let (rounds, window) = if args.quick { (3, Duration::from_secs(1)) } else { (5, Duration::from_secs(2)) };
    let flood = Duration::from_secs(if args.quick { 5 } else { 10 });
    let concurrency = args.concurrency.unwrap_or(4 * cores).max(2 * cores);
    let hashing = HashingConfig::default();
    let limits = Limits::new(&hashing, cores, window)?;

    // The load driver runs on this one thread: it needs little CPU, and one
    // thread wakes less often than a pool would, on the cores the server
    // shares. The limit windows block it too, when no request is in flight.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let gateway = runtime.block_on(gateway::Gateway::start())?;
    let server = runtime.block_on(Server::start(&args, &gateway.url))?;
    let plan = Plan {
        concurrency,
        refresh_concurrency: args.refresh_concurrency.unwrap_or(32 * cores).max(1),
        rounds,
        window,
        flood,
        flood_connections: args.flood_connections,
        phases: args.phases.clone(),
        imported: args.users,
    };
    let result = runtime.block_on(drive(&server, &limits, &plan, &gateway));
    let peak = server.peak_rss_mib();
    runtime.block_on(server.stop(&args));
    let mut figures = result?;

    let obj = figures.as_object_mut().ok_or("figures")?;
    obj.insert("backend".into(), json!(if args.postgres { "postgres" } else { "sqlite" }));
    obj.insert("cores".into(), json!(cores));
    obj.insert("argon2".into(), json!(format!("m={},t={},p={}", hashing.m_kib, hashing.t, hashing.p)));
    obj.insert("concurrency".into(), json!(concurrency));
    obj.insert("flood_peak_rss_mib".into(), json!(peak));
    obj.insert("quick".into(), json!(args.quick));
    println!("{}", serde_json::to_string(&figures).map_err(|e| e.to_string())?);
    Ok(())
}
