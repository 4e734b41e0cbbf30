//! The flood: 1,000 connections sending logins back to back; and the
//! connections the attack phase floods with.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::Run;
use crate::report::Report;
use crate::server::{Api, client_from, user_mobile};
use crate::{PASSWORD, USERS};

/// How long a client waits before it connects again after its connection
/// was refused (past the server's per-address cap): the driver shares the
/// machine's cores with the server, and a reconnect loop without a pause
/// would take them from the server, which a remote attacker's cannot.
const REFUSED_PAUSE: Duration = Duration::from_millis(100);

/// `connections` clients, each on its own connection from `address`,
/// sending logins until `stop` is set; returns how each was answered
/// (`transport` when the connection was refused).
pub(crate) fn flood_from(
    api: &Arc<Api>,
    address: [u8; 4],
    connections: usize,
    stop: &Arc<AtomicBool>,
    input: fn(usize, usize) -> (String, &'static str),
) -> Result<Vec<tokio::task::JoinHandle<HashMap<String, u64>>>, String> {
    let start = Arc::new(tokio::sync::Barrier::new(connections));
    let mut handles = Vec::new();
    for i in 0..connections {
        let (api, start, stop) = (Arc::clone(api), Arc::clone(&start), Arc::clone(stop));
        let client = client_from(address, 1)?;
        handles.push(tokio::spawn(async move {
            let mut answers = HashMap::new();
            start.wait().await;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (mobile, password) = input(i, n);
                let answer = api.login(&client, &mobile, password).await;
                if answer == "transport" {
                    tokio::time::sleep(REFUSED_PAUSE).await;
                }
                *answers.entry(answer).or_insert(0) += 1;
            }
            answers
        }));
    }
    Ok(handles)
}

pub(crate) async fn tally(handles: Vec<tokio::task::JoinHandle<HashMap<String, u64>>>) -> HashMap<String, u64> {
    let mut total = HashMap::new();
    for h in handles {
        if let Ok(answers) = h.await {
            for (answer, n) in answers {
                *total.entry(answer).or_insert(0) += n;
            }
        }
    }
    total
}

/// Where the flood comes from: four addresses, so that its connections stay
/// within the server's per-address cap (256 each) and it tests how the
/// server holds 1,000 connections; one address past the cap is the attack
/// phase's. Not 127.0.0.1, whose cap the driver's own idle connections
/// share.
const FLOOD_FROM: [[u8; 4]; 4] = [[127, 0, 0, 11], [127, 0, 0, 12], [127, 0, 0, 13], [127, 0, 0, 14]];

/// `connections` clients, each on its own connection, sending logins back
/// to back until `span` is over; returns the answers: success, busy,
/// throttled, and the others by answer.
pub(crate) async fn flood_phase(
    api: &Arc<Api>,
    connections: usize,
    span: Duration,
) -> Result<(u64, u64, u64, HashMap<String, u64>), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let per_address = connections.div_ceil(FLOOD_FROM.len());
    let mut handles = Vec::new();
    for address in FLOOD_FROM {
        handles.extend(flood_from(api, address, per_address, &stop, |i, _| (user_mobile(i % USERS), PASSWORD))?);
    }
    tokio::time::sleep(span).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = tally(handles).await;
    let mut take = |answer: &str| answers.remove(answer).unwrap_or(0);
    let (ok, busy, throttled) = (take("SUCCESS"), take("IDAAS.SDK.COM.0002"), take("IDAAS.SDK.REQ.0007"));
    Ok((ok, busy, throttled, answers))
}

/// The throttle the rate phases run under: every attempt counted, the
/// window never closed.
pub(crate) static OPEN_THROTTLE: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"ip_max_failures": 1_000_000, "ip_window_seconds": 60, "ip_allowlist": []}));

/// The flood, and whether an honest login works right after it.
pub(crate) async fn run(run: &Run<'_>, report: &mut Report) -> Result<(), String> {
    let plan = run.plan;
    eprintln!("flood: {} connections for {:?}", plan.flood_connections, plan.flood);
    let (ok, busy, throttled, others) = flood_phase(run.api, plan.flood_connections, plan.flood).await?;
    eprintln!("  success {ok}, busy {busy}, throttled {throttled}, other {others:?}");
    report.put("flood_other_answers", json!(others));
    let others: u64 = others.values().sum();
    report.put("flood_ok", ok);
    report.put("flood_busy", busy);
    report.put("flood_throttled", throttled);
    report.put("flood_other", others);
    let after = run.api.login(run.client, &user_mobile(0), PASSWORD).await;
    report.put("flood_recovered", after == "SUCCESS");
    Ok(())
}
