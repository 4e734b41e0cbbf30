//! The rate phases: successful, wrong-password and unknown-mobile logins
//! against the hash limit, and id_token refreshes against the signing
//! limit.

use std::sync::Arc;

use serde_json::Value;

use super::Run;
use crate::PASSWORD;
use crate::driver::{LoginInput, Measured, interleaved};
use crate::report::{Report, percentile, ratio, round1, round2};
use crate::server::answered;

/// The login phases: each answer expected, and how each request logs in.
const LOGINS: [(&str, &str, LoginInput); 3] = [
    ("login", "SUCCESS", |plan, i| (plan.login_mobile(i), PASSWORD)),
    ("wrong", "IDAAS.SDK.LOGIN.0002", |plan, i| (plan.login_mobile(i), "Wrong-pass1")),
    ("unknown", "IDAAS.SDK.LOGIN.0002", |_, i| (format!("+86139{:08}", i % 100_000_000), PASSWORD)),
];

/// The login phases the plan asks for, each against the hash limit.
pub(crate) async fn logins(run: &Run<'_>, report: &mut Report) {
    let mut hash_limits = Vec::new();
    for (name, expect, input) in LOGINS {
        if !run.plan.runs(name) {
            continue;
        }
        let (a, c, p) = (Arc::clone(run.api), run.client.clone(), Arc::new(run.plan.clone()));
        let measured = interleaved(
            run.plan.rounds,
            run.plan.window,
            run.plan.concurrency,
            run.pid,
            expect,
            || run.limits.hash(),
            move |i| {
                let (a, c) = (Arc::clone(&a), c.clone());
                let (mobile, password) = input(&p, i);
                async move { a.login(&c, &mobile, password).await }
            },
        )
        .await;
        hash_limits.push(measured.limit);
        report_login(name, measured, report);
    }
    if !hash_limits.is_empty() {
        report.put("hash_limit_per_s", round1(hash_limits.iter().sum::<f64>() / hash_limits.len() as f64));
    }
}

fn report_login(name: &str, measured: Measured, report: &mut Report) {
    let Measured { rate, limit, mut latencies, other, server_ms, hashing_ms, driver_ms } = measured;
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "  {name}: {rate:.1}/s against {limit:.1}/s (others {other}); cpu per request: server {server_ms} ms (hashing threads {hashing_ms} ms), driver {driver_ms} ms"
    );
    report.put(format!("{name}_per_s"), round1(rate));
    report.put(format!("{name}_hash_limit_per_s"), round1(limit));
    report.put(format!("{name}_ratio"), ratio(rate, limit));
    report.put(format!("{name}_server_cpu_ms"), server_ms);
    report.put(format!("{name}_hashing_cpu_ms"), hashing_ms);
    // What the server spends per request beside the hash itself.
    report.put(format!("{name}_beside_hash_cpu_ms"), round2(server_ms - hashing_ms));
    if name == "login" {
        report.put("login_p50_ms", percentile(&latencies, 0.5));
        report.put("login_p99_ms", percentile(&latencies, 0.99));
        report.put("login_driver_cpu_ms", driver_ms);
    }
}

/// id_token refreshes on sessions of the bench's users, against the
/// signing limit.
pub(crate) async fn refresh(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    let mut sessions = Vec::new();
    for i in 0..crate::USERS {
        let body = serde_json::json!({"mobile": run.plan.login_mobile(i), "password": PASSWORD});
        let sent = run.api.sdk(run.client, "/login/mobile-pwd").json(&body).send().await;
        let body: Value = sent.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        sessions.push(body["session_token"].as_str().ok_or("session_token")?.to_owned());
    }
    let sessions = Arc::new(sessions);
    let (a, c) = (Arc::clone(run.api), run.client.clone());
    let Measured { rate: refresh, limit, other, server_ms, driver_ms, .. } = interleaved(
        run.plan.rounds,
        run.plan.window,
        run.plan.refresh_concurrency,
        run.pid,
        "ok",
        || run.limits.sign(),
        move |i| {
            let (a, c, s) = (Arc::clone(&a), c.clone(), Arc::clone(&sessions));
            async move {
                let token = &s[i % s.len()];
                answered(a.sdk(&c, "/sso/session-token/id-token").header("session-token", token).send().await).await
            }
        },
    )
    .await;
    eprintln!(
        "  refresh: {refresh:.1}/s against {limit:.1}/s raw RS256 (others {other}); cpu per refresh: server {server_ms} ms, driver {driver_ms} ms"
    );
    report.put("refresh_per_s", round1(refresh));
    report.put("refresh_concurrency", run.plan.refresh_concurrency);
    report.put("sign_limit_per_s", round1(limit));
    report.put("refresh_ratio", ratio(refresh, limit));
    report.put("refresh_server_cpu_ms", server_ms);
    report.put("refresh_driver_cpu_ms", driver_ms);
    report.put("id_token_sign_per_s", round1(run.limits.id_tokens()));
    Ok(())
}
