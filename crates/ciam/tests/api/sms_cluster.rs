//! Three instances on one PostgreSQL database keep the SMS limits exact
//! under sends and guesses that arrive at once (docs/sms.md §3).

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error};
use crate::sms_helpers::{MOBILE, assert_wrong, code_login, other_than, send, sms_policy, spawn_sms};

/// Another instance on `a`'s database, sending to the same gateway.
async fn another(a: &TestApp) -> Arc<TestApp> {
    let mut config = a.config.clone();
    config.listen = "127.0.0.1:0".into();
    Arc::new(TestApp::start(config, Arc::clone(&a.db)).await)
}

/// Sends `n` codes at once, spread over `instances`, to the numbers
/// `number(i)`; answers how many were taken and the codes of the refusals.
async fn burst(
    instances: &[Arc<TestApp>],
    client_id: &str,
    n: usize,
    number: fn(usize) -> String,
) -> (usize, Vec<String>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (app, client_id) = (Arc::clone(&instances[i % instances.len()]), client_id.to_owned());
            tokio::spawn(async move { send(&app, &client_id, &number(i), "LOGIN_SMS").await })
        })
        .collect();
    let mut taken = 0;
    let mut refused = Vec::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("task");
        match status {
            StatusCode::OK => taken += 1,
            _ => refused.push(body["error_code"].as_str().unwrap_or("?").to_owned()),
        }
    }
    (taken, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_keep_the_sms_limits_exact() {
    let (a, gateway) = spawn_sms(Backend::Postgres).await;
    let a = Arc::new(a);
    let (b, c) = (another(&a).await, another(&a).await);
    let instances = [Arc::clone(&a), b, c];
    let client_id = a.default_app().await;
    a.create_user(MOBILE, PASSWORD).await;
    let limits = json!({"resend_seconds": 0, "mobile_daily_max": 5, "ip_hourly_max": 1000, "global_hourly_max": 100_000,
                        "max_checks": 4, "mobile_daily_max_checks": 1000});
    sms_policy(&a, limits).await;
    // Each instance reads the policy anew within a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (taken, refused) = burst(&instances, &client_id, 30, |_| MOBILE.to_owned()).await;
    assert_eq!(taken, 5, "one number's day across three instances");
    assert!(refused.iter().all(|code| code == "IDAAS.SDK.SMS.0002"), "{refused:?}");
    assert_eq!(gateway.wait_for(5).await.len(), 5);
    assert_eq!(gateway.delivered().await, 5, "no more than the day's codes delivered");

    // Twelve wrong guesses at once on three instances use up the code's four.
    let code = gateway.code(5).await;
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let (app, client_id, wrong) = (Arc::clone(&instances[i % 3]), client_id.clone(), other_than(&code));
            tokio::spawn(async move { code_login(&app, &client_id, MOBILE, &wrong).await })
        })
        .collect();
    for guess in guesses {
        assert_error(&guess.await.expect("task"), 400, "IDAAS.SDK.CAPTCHA.0007", None);
    }
    assert_wrong(&instances[1], &client_id, &code).await;

    // The hour of all sends, across instances and numbers.
    sms_policy(&a, json!({"global_hourly_max": 45})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (taken, refused) = burst(&instances, &client_id, 60, |i| format!("1390000{i:04}")).await;
    assert_eq!(taken, 40, "45 in the hour, 5 of them sent before");
    assert!(refused.iter().all(|code| code == "IDAAS.SDK.SMS.0007"), "{refused:?}");
}
