//! Codes by SMS: how many sends and code logins the server answers a
//! second, and what an SMS-pumping attack (one address asking codes for
//! 10,000 numbers through an app that registers new numbers by code) gets
//! delivered, and costs the server per refused send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Run;
use crate::USERS;
use crate::cpu::CpuMeter;
use crate::driver::rate_phase;
use crate::gateway::Gateway;
use crate::report::{Report, percentile, round1, round3};
use crate::server::{Api, client_from, status_of, user_mobile};

/// Numbers the pumping attack asks codes for.
const PUMPED: usize = 10_000;

/// One send; `ok` for `{}`, else the error code.
async fn send(api: &Api, client: &reqwest::Client, client_id: &str, mobile: &str) -> String {
    let body = json!({"mobile": mobile, "type": "LOGIN_SMS"});
    let sent = api.sdk_for(client, "/sms/send", client_id).json(&body).send().await;
    match sent {
        Ok(resp) => match resp.json::<Value>().await {
            Ok(body) if body == json!({}) => "ok".to_owned(),
            Ok(body) => body["error_code"].as_str().unwrap_or("?").to_owned(),
            Err(_) => "unreadable".to_owned(),
        },
        Err(_) => "transport".to_owned(),
    }
}

/// A code to `mobile`, then a login with it; the login's status.
async fn code_login(api: &Api, client: &reqwest::Client, gateway: &Gateway, mobile: &str) -> String {
    // The code this send delivers, not one from before.
    gateway.take_code(mobile);
    let sent = send(api, client, &api.client_id, mobile).await;
    if sent != "ok" {
        return sent;
    }
    let waited = Instant::now();
    let code = loop {
        if let Some(code) = gateway.take_code(mobile) {
            break code;
        }
        if waited.elapsed() > Duration::from_secs(5) {
            return "undelivered".to_owned();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let body = json!({"mobile": mobile, "verify_code": code});
    status_of(api.sdk(client, "/login/mobile-verify-code").json(&body).send().await).await
}

/// The send and code-login rates, with the limits out of the way.
async fn rates(run: &Run<'_>, gateway: &Gateway, report: &mut Report) -> Result<(), String> {
    let open = json!({"resend_seconds": 0, "mobile_daily_max": 1000, "ip_hourly_max": 1_000_000,
                      "global_hourly_max": 100_000_000, "mobile_daily_max_checks": 1000});
    run.api.admin(reqwest::Method::PUT, "/policies/sms", open).await?;
    let span = run.plan.window * u32::try_from(run.plan.rounds).unwrap_or(1);
    let (api, client) = (Arc::clone(run.api), run.client.clone());
    let meter = CpuMeter::start(run.pid);
    // Half to users (delivered), half to numbers with no account (withheld).
    let sends = rate_phase(
        run.plan.concurrency,
        span,
        "ok",
        Arc::new(move |i: usize| {
            let (api, client) = (Arc::clone(&api), client.clone());
            let mobile = if i.is_multiple_of(2) { user_mobile(i / 2 % USERS) } else { format!("+86139{:08}", i) };
            async move { send(&api, &client, &api.client_id, &mobile).await }
        }),
    )
    .await;
    let used = meter.used();
    let mut latencies = sends.latencies;
    latencies.sort_by(f64::total_cmp);
    let per_s = sends.ok as f64 / sends.secs;
    eprintln!(
        "sms: {per_s:.0} sends/s, {:.3} ms server CPU each, {} other",
        used.server / sends.ok.max(1) as f64,
        sends.other
    );
    report.put("sms_sends_per_s", round1(per_s));
    report.put("sms_send_server_ms", round3(used.server / sends.ok.max(1) as f64));
    report.put("sms_send_p99_ms", percentile(&latencies, 0.99));

    gateway.settle().await;
    // One task per user, so that no two codes of one number cross.
    let (api, client, gateway) = (Arc::clone(run.api), run.client.clone(), gateway.clone());
    let logins = rate_phase(
        USERS,
        span,
        "SUCCESS",
        Arc::new(move |i: usize| {
            let (api, client, gateway) = (Arc::clone(&api), client.clone(), gateway.clone());
            async move { code_login(&api, &client, &gateway, &user_mobile(i % USERS)).await }
        }),
    )
    .await;
    let per_s = logins.ok as f64 / logins.secs;
    eprintln!("  {per_s:.0} code logins/s (a send, the SMS, the login), {} other", logins.other);
    report.put("sms_code_logins_per_s", round1(per_s));
    Ok(())
}

/// The pumping attack, under the default SMS policy.
async fn pumping(run: &Run<'_>, gateway: &Gateway, report: &mut Report) -> Result<(), String> {
    // The default limits per number and address; the hour of all sends,
    // which the rate phases filled, out of the way, so that the address's
    // hour is what holds the attack.
    let defaults = json!({"resend_seconds": 60, "mobile_daily_max": 10, "ip_hourly_max": 20,
                          "global_hourly_max": 100_000_000, "mobile_daily_max_checks": 10});
    let policy = run.api.admin(reqwest::Method::PUT, "/policies/sms", defaults).await?;
    let app =
        run.api.admin(reqwest::Method::POST, "/apps", json!({"name": "signup", "sms_auto_register": true})).await?;
    let client_id = app["client_id"].as_str().ok_or("client_id")?.to_owned();
    let attacker = client_from([127, 0, 0, 3], 8)?;
    gateway.settle().await;
    let delivered_before = gateway.count();
    let meter = CpuMeter::start(run.pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (api, attacker, client_id) = (Arc::clone(run.api), attacker.clone(), client_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = std::collections::HashMap::<String, u64>::new();
            for n in (t..PUMPED).step_by(8) {
                *answers.entry(send(&api, &attacker, &client_id, &format!("+86137{n:08}")).await).or_default() += 1;
            }
            answers
        }));
    }
    let mut answers = std::collections::HashMap::<String, u64>::new();
    for task in tasks {
        for (answer, n) in task.await.map_err(|e| e.to_string())? {
            *answers.entry(answer).or_default() += n;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let used = meter.used();
    gateway.settle().await;
    let delivered = gateway.count() - delivered_before;
    let accepted = answers.get("ok").copied().unwrap_or(0);
    let refused = PUMPED as u64 - accepted;
    let per_refusal = used.server / refused.max(1) as f64;
    eprintln!(
        "pumping: {PUMPED} numbers from one address in {secs:.1} s: {delivered} delivered (ip_hourly_max {}), \
         {per_refusal:.3} ms server CPU per refused send; answers {answers:?}",
        policy["ip_hourly_max"]
    );
    report.put("pumping_delivered", delivered);
    report.put("pumping_ip_hourly_max", policy["ip_hourly_max"].clone());
    report.put("pumping_refused_server_ms", round3(per_refusal));
    report.put("pumping_answers", json!(answers));
    Ok(())
}

/// The SMS phase, reported.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    rates(run, run.gateway, report).await?;
    pumping(run, run.gateway, report).await
}
