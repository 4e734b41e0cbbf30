//! The rate phases: successful, wrong-password and unknown-mobile logins
//! against the hash limit, and id_token refreshes against the signing
//! limit.

use std::sync::Arc;

use ciam_core::model::SigningAlg;
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

/// id_token refreshes on sessions of the bench's users, against the raw
/// signing limit of `alg`: the bench's own app for RS256, an app of its own
/// for EdDSA (phase `refresh_eddsa`).
pub(crate) async fn refresh(run: &Run<'_>, report: &mut Report, alg: SigningAlg) -> Result<(), String> {
    let client_id = match alg {
        SigningAlg::RS256 => run.api.client_id.clone(),
        SigningAlg::EdDSA => {
            let body = serde_json::json!({"name": "bench EdDSA", "id_token_alg": "EdDSA"});
            let app = run.api.admin(reqwest::Method::POST, "/apps", body).await?;
            app["client_id"].as_str().ok_or("client_id")?.to_owned()
        }
    };
    let mut sessions = Vec::new();
    for i in 0..crate::USERS {
        let body = serde_json::json!({"mobile": run.plan.login_mobile(i), "password": PASSWORD});
        let sent = run.api.sdk_for(run.client, "/login/mobile-pwd", &client_id).json(&body).send().await;
        let body: Value = sent.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        sessions.push(body["session_token"].as_str().ok_or("session_token")?.to_owned());
    }
    let sessions = Arc::new(sessions);
    let (a, c, id) = (Arc::clone(run.api), run.client.clone(), Arc::new(client_id));
    let Measured { rate: refresh, limit, other, server_ms, driver_ms, .. } = interleaved(
        run.plan.rounds,
        run.plan.window,
        run.plan.refresh_concurrency,
        run.pid,
        "ok",
        || match alg {
            SigningAlg::RS256 => run.limits.sign(),
            SigningAlg::EdDSA => run.limits.sign_eddsa(),
        },
        move |i| {
            let (a, c, s, id) = (Arc::clone(&a), c.clone(), Arc::clone(&sessions), Arc::clone(&id));
            async move {
                let token = &s[i % s.len()];
                let request = a.sdk_for(&c, "/sso/session-token/id-token", &id).header("session-token", token);
                answered(request.send().await).await
            }
        },
    )
    .await;
    let (name, limit_name, signed) = match alg {
        SigningAlg::RS256 => ("refresh", "sign_limit_per_s", "id_token_sign_per_s"),
        SigningAlg::EdDSA => ("refresh_eddsa", "sign_eddsa_limit_per_s", "id_token_sign_eddsa_per_s"),
    };
    eprintln!(
        "  {name}: {refresh:.1}/s against {limit:.1}/s raw {} (others {other}); cpu per refresh: server {server_ms} ms, driver {driver_ms} ms",
        alg.as_str()
    );
    report.put(format!("{name}_per_s"), round1(refresh));
    report.put(format!("{name}_concurrency"), run.plan.refresh_concurrency);
    report.put(limit_name, round1(limit));
    report.put(format!("{name}_ratio"), ratio(refresh, limit));
    report.put(format!("{name}_server_cpu_ms"), server_ms);
    report.put(format!("{name}_driver_cpu_ms"), driver_ms);
    report.put(signed, round1(run.limits.id_tokens(alg)));
    if let (SigningAlg::EdDSA, Some(rs256)) = (alg, report.number("refresh_per_s")) {
        // The same refresh, the app's algorithm aside.
        report.put("refresh_eddsa_vs_rs256", ratio(refresh, rs256));
    }
    Ok(())
}
