//! Stuffing: one address tries many numbers under the default throttle;
//! and bodies that do not parse. What refusals cost the server, and the
//! audit rows they add.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Run;
use super::flood::OPEN_THROTTLE;
use crate::cpu::CpuMeter;
use crate::report::{Report, round3};
use crate::server::{Api, client_from};

/// Numbers the stuffing phase tries.
pub(crate) const STUFFING: usize = 10_000;

/// What the stuffing phase measured.
pub(crate) struct Stuffing {
    pub(crate) hashed: u64,
    pub(crate) throttled: u64,
    pub(crate) other: u64,
    pub(crate) throttled_cpu_ms: f64,
    /// Audit rows the throttled attempts added, and the refusals they count
    /// (one row per address and outcome a minute).
    pub(crate) throttled_rows: u64,
    pub(crate) throttled_counted: u64,
    /// The same for [`JUNK`] bodies that do not parse.
    pub(crate) junk_cpu_ms: f64,
    pub(crate) junk_rows: u64,
    pub(crate) junk_counted: u64,
}

/// Bodies that do not parse, sent by one address in the stuffing phase.
pub(crate) const JUNK: usize = 5_000;

/// The audit events from `ip` with `outcome`: how many rows, and how many
/// calls they count.
pub(crate) async fn audit_rows(api: &Api, ip: &str, outcome: &str) -> Result<(u64, u64), String> {
    let events = api.admin(reqwest::Method::GET, &format!("/audit-events?ip={ip}&limit=1000"), json!({})).await?;
    let rows: Vec<&Value> =
        events.as_array().map(|e| e.iter().filter(|e| e["outcome"] == outcome).collect()).unwrap_or_default();
    Ok((rows.len() as u64, rows.iter().filter_map(|e| e["count"].as_u64()).sum()))
}

/// Sends `numbers` logins from `client`, `batch` at a time; tallies the
/// answers, and returns how many were throttled.
async fn attempts(
    api: &Arc<Api>,
    client: &reqwest::Client,
    numbers: std::ops::Range<usize>,
    batch: usize,
    answers: &mut HashMap<String, u64>,
) -> Result<u64, String> {
    let mut throttled = 0;
    for chunk in numbers.collect::<Vec<_>>().chunks(batch) {
        let sent: Vec<_> = chunk
            .iter()
            .map(|n| {
                let (api, client) = (Arc::clone(api), client.clone());
                let mobile = format!("+86137{n:08}");
                tokio::spawn(async move { api.login(&client, &mobile, "Wrong-pass1").await })
            })
            .collect();
        for s in sent {
            let answer = s.await.map_err(|e| e.to_string())?;
            throttled += u64::from(answer == "IDAAS.SDK.REQ.0007");
            *answers.entry(answer).or_insert(0) += 1;
        }
    }
    Ok(throttled)
}

/// [`JUNK`] bodies that do not parse, from one address: refused before any
/// read of the database, counted in one event a minute. Returns the
/// server's CPU per refusal, ms.
async fn junk(api: &Arc<Api>, pid: u32) -> Result<f64, String> {
    let junk = client_from([127, 0, 0, 4], 64)?;
    let meter = CpuMeter::start(pid);
    for chunk in (0..JUNK).collect::<Vec<_>>().chunks(64) {
        let sent: Vec<_> = chunk
            .iter()
            .map(|_| {
                let req = api.sdk(&junk, "/login/mobile-pwd").header("Content-Type", "application/json");
                tokio::spawn(req.body("{not json").send())
            })
            .collect();
        for s in sent {
            s.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
    }
    Ok(round3(meter.used().server / JUNK as f64))
}

/// One address tries [`STUFFING`] distinct numbers once each under the
/// default throttle (100 failures an hour): only the first 100 may be
/// hashed. The server's CPU is metered over the attempts after the window
/// has closed. Then the [`junk`] bodies.
pub(crate) async fn stuffing_phase(api: &Arc<Api>, pid: u32) -> Result<Stuffing, String> {
    api.admin(reqwest::Method::PUT, "/policies/throttle", json!({"ip_max_failures": 100, "ip_window_seconds": 3600}))
        .await?;
    let client = client_from([127, 0, 0, 3], 64)?;
    // The first attempts close the window; the rest are all refused.
    let mut answers: HashMap<String, u64> = HashMap::new();
    let closing = 200;
    attempts(api, &client, 0..closing, 32, &mut answers).await?;
    let meter = CpuMeter::start(pid);
    let refused_after = attempts(api, &client, closing..STUFFING, 64, &mut answers).await?;
    let cpu = meter.used();
    api.admin(reqwest::Method::PUT, "/policies/throttle", OPEN_THROTTLE.clone()).await?;
    let (throttled_rows, throttled_counted) = audit_rows(api, "127.0.0.3", "IDAAS.SDK.REQ.0007").await?;
    let junk_cpu_ms = junk(api, pid).await?;
    let (junk_rows, junk_counted) = audit_rows(api, "127.0.0.4", "IDAAS.SDK.REQ.0002").await?;
    let mut take = |answer: &str| answers.remove(answer).unwrap_or(0);
    let (hashed, throttled) = (take("IDAAS.SDK.LOGIN.0002"), take("IDAAS.SDK.REQ.0007"));
    Ok(Stuffing {
        hashed,
        throttled,
        other: answers.values().sum(),
        throttled_cpu_ms: round3(cpu.server / refused_after.max(1) as f64),
        throttled_rows,
        throttled_counted,
        junk_cpu_ms,
        junk_rows,
        junk_counted,
    })
}

/// The stuffing phase, reported.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    eprintln!("stuffing: one address tries {STUFFING} numbers once each, under the default throttle");
    let s = stuffing_phase(run.api, run.pid).await?;
    eprintln!(
        "  hashed {}, throttled {}, other {}; server cpu per throttled attempt {} ms, {} audit rows for {}",
        s.hashed, s.throttled, s.other, s.throttled_cpu_ms, s.throttled_rows, s.throttled_counted
    );
    eprintln!(
        "  {JUNK} unparsable bodies: server cpu {} ms each, {} audit rows for {}",
        s.junk_cpu_ms, s.junk_rows, s.junk_counted
    );
    report.put("stuffing_hashed", s.hashed);
    report.put("stuffing_throttled", s.throttled);
    report.put("stuffing_other", s.other);
    report.put("stuffing_throttled_cpu_ms", s.throttled_cpu_ms);
    report.put("stuffing_throttled_audit_rows", s.throttled_rows);
    report.put("stuffing_throttled_audit_counted", s.throttled_counted);
    report.put("junk_cpu_ms", s.junk_cpu_ms);
    report.put("junk_audit_rows", s.junk_rows);
    report.put("junk_audit_counted", s.junk_counted);
    Ok(())
}
