//! The floor: the cheapest exchange the server has, and from it the best
//! ratio this machine allows each phase.

use std::sync::Arc;

use super::Run;
use crate::cpu::CpuMeter;
use crate::driver::rate_phase;
use crate::report::{Report, ratio, round1, round3};
use crate::server::answered;

/// What the floor phase measured.
pub(crate) struct Floor {
    /// Exchanges per second.
    pub(crate) rate: f64,
    /// Server and driver CPU per exchange, ms.
    pub(crate) cpu_ms: f64,
}

/// The cheapest exchange the server has, `GET /healthz` (no database, no
/// hash, no signature), `tasks` at a time: what one HTTP request and answer
/// cost the two processes on this machine at the least.
pub(crate) async fn floor_phase(run: &Run<'_>, tasks: usize) -> Floor {
    let (api, client, plan, pid) = (run.api, run.client, run.plan, run.pid);
    let url = Arc::new(format!("{}/healthz", api.base));
    let (mut ok, mut secs, mut cpu) = (0, 0.0, 0.0);
    for _ in 0..plan.rounds {
        let (c, u) = (client.clone(), Arc::clone(&url));
        let op = Arc::new(move |_: usize| {
            let (c, u) = (c.clone(), Arc::clone(&u));
            async move { answered(c.get(u.as_str()).send().await).await }
        });
        let meter = CpuMeter::start(pid);
        let w = rate_phase(tasks, plan.window, "ok", op).await;
        let used = meter.used();
        cpu += used.server + used.driver;
        ok += w.ok;
        secs += w.secs;
    }
    Floor { rate: ok as f64 / f64::max(secs, f64::EPSILON), cpu_ms: if ok > 0 { round3(cpu / ok as f64) } else { 0.0 } }
}

/// The best ratios this machine allows, whatever the server: each request
/// is at least its HTTP exchange (the floor, server and driver together)
/// plus the work the API (docs/api.md) requires of it, an argon2id
/// verification for every login attempt and a signature (RS256, or EdDSA
/// for an app that asks) for every id_token, all on the same cores as the
/// limits they are judged against.
pub(crate) struct Bounds {
    /// CPU of one verification, ms (all cores busy).
    pub(crate) hash_ms: f64,
    /// CPU of one RS256 signature, ms.
    pub(crate) sign_ms: f64,
    /// CPU of one Ed25519 signature, ms.
    pub(crate) sign_eddsa_ms: f64,
    /// CPU of the cheapest exchange at the login phases' concurrency, ms.
    pub(crate) floor_ms: f64,
    /// The same at the refresh phase's concurrency, ms.
    pub(crate) floor_refresh_ms: f64,
}

impl Bounds {
    /// The bounds of a machine whose limits are `hash`, `sign` and
    /// `sign_eddsa` operations per second on all `cores`, and whose
    /// cheapest exchanges cost `floor_ms` and `floor_refresh_ms`.
    pub(crate) fn new(cores: usize, limits: [f64; 3], floor_ms: f64, floor_refresh_ms: f64) -> Self {
        let per_op = |limit: f64| if limit > 0.0 { cores as f64 * 1000.0 / limit } else { 0.0 };
        let [hash, sign, sign_eddsa] = limits.map(per_op);
        Self { hash_ms: hash, sign_ms: sign, sign_eddsa_ms: sign_eddsa, floor_ms, floor_refresh_ms }
    }

    /// `(phase, bound)`: a login signs an id_token, a refused attempt does
    /// not, a refresh hashes nothing.
    pub(crate) fn named(&self) -> [(&'static str, f64); 6] {
        let share = |core: f64, rest: f64| if core + rest > 0.0 { ratio(core, core + rest) } else { 0.0 };
        let attempt = share(self.hash_ms, self.floor_ms);
        [
            ("login", share(self.hash_ms, self.sign_ms + self.floor_ms)),
            ("login_eddsa", share(self.hash_ms, self.sign_eddsa_ms + self.floor_ms)),
            ("wrong", attempt),
            ("unknown", attempt),
            ("refresh", share(self.sign_ms, self.floor_refresh_ms)),
            ("refresh_eddsa", share(self.sign_eddsa_ms, self.floor_refresh_ms)),
        ]
    }
}

/// The floor at each phase's concurrency (with more requests in flight,
/// one wake-up serves several of them), and the bounds it sets.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) {
    let attempt = floor_phase(run, run.plan.concurrency).await;
    let refresh = floor_phase(run, run.plan.refresh_concurrency).await;
    for (name, floor) in [("floor", &attempt), ("floor_refresh", &refresh)] {
        eprintln!("  {name}: {:.1} exchanges/s, cpu per exchange {} ms (server and driver)", floor.rate, floor.cpu_ms);
        report.put(format!("{name}_per_s"), round1(floor.rate));
        report.put(format!("{name}_cpu_ms"), floor.cpu_ms);
    }
    let limits = run.limits;
    let sign_limit = report.number("sign_limit_per_s").unwrap_or_else(|| limits.sign());
    let sign_eddsa_limit = report.number("sign_eddsa_limit_per_s").unwrap_or_else(|| limits.sign_eddsa());
    let hash_limit = report.number("hash_limit_per_s").unwrap_or_else(|| limits.hash());
    let bounds = Bounds::new(limits.cores, [hash_limit, sign_limit, sign_eddsa_limit], attempt.cpu_ms, refresh.cpu_ms);
    for (name, bound) in bounds.named() {
        report.put(format!("{name}_bound"), bound);
    }
}
