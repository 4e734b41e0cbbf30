//! The attack: one address floods while honest addresses log in.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Run;
use super::flood::{flood_from, tally};
use crate::report::{Report, percentile, round1, round3};
use crate::server::{Api, client_from, user_mobile};
use crate::{PASSWORD, USERS};

/// Honest addresses in the attack phase.
pub(crate) const HONEST: usize = 16;

/// What the attack phase measured.
pub(crate) struct Attack {
    pub(crate) honest_sent: u64,
    pub(crate) honest_ok: u64,
    honest_p50_ms: f64,
    honest_p99_ms: f64,
    pub(crate) attacker_hashes_per_s: f64,
    pub(crate) attacker: HashMap<String, u64>,
}

/// One address floods logins (unknown mobiles and wrong passwords, on
/// `connections` connections) while [`HONEST`] other addresses each log in
/// once a second with the right password. The throttle stays open, so fair
/// hashing alone keeps the honest users in.
pub(crate) async fn attack_phase(api: &Arc<Api>, connections: usize, span: Duration) -> Result<Attack, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = Instant::now();
    let flood = flood_from(api, [127, 0, 0, 2], connections, &stop, |i, n| match n % 2 {
        0 => (format!("+86138{:08}", (i * 100_000 + n) % 100_000_000), "Wrong-pass1"),
        _ => (user_mobile((i + n) % USERS), "Wrong-pass1"),
    })?;
    // Let the flood fill the pool before the honest users arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut honest = Vec::new();
    for h in 0..HONEST {
        let api = Arc::clone(api);
        let client = client_from([127, 0, 1, u8::try_from(h + 1).unwrap_or(1)], 1)?;
        honest.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut next = Instant::now();
            while started.elapsed() < span {
                let sent = Instant::now();
                let answer = api.login(&client, &user_mobile(h), PASSWORD).await;
                results.push((answer == "SUCCESS", sent.elapsed().as_secs_f64() * 1000.0));
                next += Duration::from_secs(1);
                tokio::time::sleep_until(next.into()).await;
            }
            results
        }));
    }
    let mut results = Vec::new();
    for h in honest {
        results.extend(h.await.map_err(|e| e.to_string())?);
    }
    stop.store(true, Ordering::Relaxed);
    let attacker = tally(flood).await;
    // Over the whole flood, its first half second included.
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Attack {
        honest_sent: results.len() as u64,
        honest_ok: results.iter().filter(|(ok, _)| *ok).count() as u64,
        honest_p50_ms: percentile(&latencies, 0.5),
        honest_p99_ms: percentile(&latencies, 0.99),
        attacker_hashes_per_s: attacker.get("IDAAS.SDK.LOGIN.0002").copied().unwrap_or(0) as f64 / flood_secs,
        attacker,
    })
}

/// The attack phase, reported.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    let plan = run.plan;
    eprintln!(
        "attack: {} connections from one address for {:?}, {HONEST} others once a second",
        plan.flood_connections, plan.flood
    );
    let attack = attack_phase(run.api, plan.flood_connections, plan.flood).await?;
    eprintln!(
        "  honest {}/{} ok, p99 {} ms; attacker hashed {:.1}/s, answers {:?}",
        attack.honest_ok, attack.honest_sent, attack.honest_p99_ms, attack.attacker_hashes_per_s, attack.attacker
    );
    report.put("honest_ok_ratio", round3(attack.honest_ok as f64 / attack.honest_sent.max(1) as f64));
    report.put("honest_p50_ms", attack.honest_p50_ms);
    report.put("honest_p99_ms", attack.honest_p99_ms);
    report.put("attacker_hashes_per_s", round1(attack.attacker_hashes_per_s));
    report.put("attacker_answers", json!(attack.attacker));
    Ok(())
}
