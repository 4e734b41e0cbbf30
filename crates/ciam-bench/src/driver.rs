//! The load driver: rate phases of concurrent requests, each judged
//! against the machine's limit measured beside it, and the run of the
//! phases a plan asks for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam_core::model::SigningAlg;
use serde_json::{Value, json};

use crate::cpu::{CpuMeter, CpuUse};
use crate::limits::Limits;
use crate::phases;
use crate::report::{Report, round2};
use crate::server::{Api, Server, import_users, user_mobile};
use crate::{PASSWORD, USERS};

/// Runs `tasks` concurrent loops of `op` for `span`; returns the rate of
/// answers equal to `expect`, the latencies of those (ms), and the others.
pub(crate) async fn rate_phase<F, Fut>(tasks: usize, span: Duration, expect: &'static str, op: Arc<F>) -> Window
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let op = Arc::clone(&op);
        handles.push(tokio::spawn(async move {
            let (mut ok, mut other, mut latencies) = (0u64, 0u64, Vec::new());
            let mut i = t;
            while started.elapsed() < span {
                let sent = Instant::now();
                if op(i).await == expect {
                    ok += 1;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    other += 1;
                }
                i += tasks;
            }
            (ok, other, latencies)
        }));
    }
    let (mut ok, mut other, mut latencies) = (0, 0, Vec::new());
    for h in handles {
        if let Ok((o, x, l)) = h.await {
            ok += o;
            other += x;
            latencies.extend(l);
        }
    }
    Window { ok, secs: started.elapsed().as_secs_f64(), latencies, other }
}

/// What one window of a phase answered.
pub(crate) struct Window {
    pub(crate) ok: u64,
    pub(crate) secs: f64,
    pub(crate) latencies: Vec<f64>,
    pub(crate) other: u64,
}

/// What a phase measured against the machine's limit.
pub(crate) struct Measured {
    /// Expected answers per second.
    pub(crate) rate: f64,
    /// The limit's mean rate over the windows beside the phase's.
    pub(crate) limit: f64,
    /// Latencies of the expected answers, ms.
    pub(crate) latencies: Vec<f64>,
    /// Unexpected answers.
    pub(crate) other: u64,
    /// Server CPU per expected answer, ms (phase windows only).
    pub(crate) server_ms: f64,
    /// The part of `server_ms` spent in the hashing threads.
    pub(crate) hashing_ms: f64,
    /// Load-driver CPU per expected answer, ms (phase windows only).
    pub(crate) driver_ms: f64,
}

/// A phase against the machine's limit: `rounds` windows of the phase, each
/// between two windows of the limit, with CPU metered in the phase windows.
pub(crate) async fn interleaved<F, Fut>(
    rounds: usize,
    window: Duration,
    tasks: usize,
    server_pid: u32,
    expect: &'static str,
    limit: impl Fn() -> f64,
    op: F,
) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let op = Arc::new(op);
    let mut limits = vec![limit()];
    let (mut ok, mut secs, mut latencies, mut other) = (0, 0.0, Vec::new(), 0);
    let mut cpu = CpuUse { server: 0.0, hashing: 0.0, driver: 0.0 };
    for round in 0..rounds {
        // Different requests each round: offset the request numbers.
        let shifted = {
            let op = Arc::clone(&op);
            let base = round * 1_000_000;
            Arc::new(move |i: usize| op(base + i))
        };
        let meter = CpuMeter::start(server_pid);
        let w = rate_phase(tasks, window, expect, shifted).await;
        let used = meter.used();
        cpu.server += used.server;
        cpu.hashing += used.hashing;
        cpu.driver += used.driver;
        ok += w.ok;
        secs += w.secs;
        other += w.other;
        latencies.extend(w.latencies);
        limits.push(limit());
    }
    let per_op = |cpu: f64| if ok > 0 { round2(cpu / ok as f64) } else { 0.0 };
    Measured {
        rate: ok as f64 / secs.max(f64::EPSILON),
        limit: limits.iter().sum::<f64>() / limits.len() as f64,
        latencies,
        other,
        server_ms: per_op(cpu.server),
        hashing_ms: per_op(cpu.hashing),
        driver_ms: per_op(cpu.driver),
    }
}

/// The mobile and password of the i-th request of a login phase.
pub(crate) type LoginInput = fn(&Plan, usize) -> (String, &'static str);

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) concurrency: usize,
    pub(crate) refresh_concurrency: usize,
    pub(crate) rounds: usize,
    pub(crate) window: Duration,
    pub(crate) flood: Duration,
    pub(crate) flood_connections: usize,
    pub(crate) phases: Vec<String>,
    /// Users imported beside the 16 made through the API.
    pub(crate) imported: usize,
}

impl Plan {
    /// The mobile of the `i`-th user the phases log in as: one of 16, spread
    /// over the imported users when there are any.
    pub(crate) fn login_mobile(&self, i: usize) -> String {
        match self.imported {
            0 => user_mobile(i % USERS),
            n => user_mobile(USERS + (i % USERS) * (n / USERS)),
        }
    }

    pub(crate) fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// Registers the bench's app and users, and opens the throttle the rate
/// phases run under.
async fn set_up(server: &Server, plan: &Plan) -> Result<(Arc<Api>, reqwest::Client), String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * plan.concurrency.max(plan.refresh_concurrency))
        .build()
        .map_err(|e| e.to_string())?;
    let mut api = Api { client: client.clone(), base: server.base.clone(), client_id: String::new() };
    let app = api.admin(reqwest::Method::POST, "/apps", json!({"name": "bench"})).await?;
    api.client_id = app["client_id"].as_str().ok_or("client_id")?.to_owned();
    // Wrong passwords are spread over the users; the cap keeps any from locking.
    api.admin(reqwest::Method::PUT, "/policies/lockout", json!({"max_failures": 1000, "lock_seconds": 60})).await?;
    // The rate phases send thousands of failures from one address: the
    // throttle still counts each attempt, but never closes.
    api.admin(reqwest::Method::PUT, "/policies/throttle", phases::flood::OPEN_THROTTLE.clone()).await?;
    for i in 0..USERS {
        api.admin(reqwest::Method::POST, "/users", json!({"mobile": user_mobile(i), "password": PASSWORD})).await?;
    }
    Ok((Arc::new(api), client))
}

/// Runs the phases of `plan` against `server`; returns every figure.
pub(crate) async fn drive(
    server: &Server,
    limits: &Limits,
    plan: &Plan,
    gateway: &crate::gateway::Gateway,
) -> Result<Value, String> {
    let (api, client) = set_up(server, plan).await?;
    let mut report = Report::default();
    if plan.imported > 0 {
        import_users(server, limits, plan.imported, &mut report).await?;
    }
    let pid = server.child.id();
    eprintln!(
        "{} requests in flight; each phase {} windows of {:?}, each between two windows of the limit",
        plan.concurrency, plan.rounds, plan.window
    );
    let run = phases::Run { api: &api, client: &client, limits, plan, pid, gateway };
    phases::rates::logins(&run, &mut report).await;
    if plan.runs("refresh") {
        phases::rates::refresh(&run, &mut report, SigningAlg::RS256).await?;
    }
    if plan.runs("refresh_eddsa") {
        phases::rates::refresh(&run, &mut report, SigningAlg::EdDSA).await?;
    }
    if plan.runs("codes") {
        phases::codes::run(&run, &mut report).await?;
    }
    if plan.runs("sms") {
        phases::sms::run(&run, &mut report).await?;
    }
    if plan.runs("floor") {
        phases::floor::run(&run, &mut report).await;
    }
    if plan.runs("attack") {
        phases::attack::run(&run, &mut report).await?;
    }
    if plan.runs("stuffing") {
        phases::stuffing::run(&run, &mut report).await?;
    }
    if plan.runs("flood") {
        phases::flood::run(&run, &mut report).await?;
    }
    Ok(report.into_value())
}
