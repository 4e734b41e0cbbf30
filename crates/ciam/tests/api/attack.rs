//! Under attack (docs/api.md §7): the client's address, the address throttle,
//! the per-address lockout scope, and fair hashing. Loopback gives each
//! test as many client addresses as it needs (`127.0.0.x`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, client_at, read};

crate::on_both_backends!(
    thirty_concurrent_failures_from_one_address_get_exactly_the_limit,
    throttled_addresses_are_refused_before_the_hash_and_count_toward_no_account,
    allowlisted_addresses_are_never_throttled,
    a_trusted_proxy_names_the_client_and_a_spoofed_header_does_not,
    an_account_ip_lock_leaves_other_addresses_in,
    the_account_wide_limit_locks_for_everyone,
    a_flooding_address_gives_way_to_honest_ones,
);

async fn set_throttle(app: &TestApp, body: Value) {
    let (status, policy) = app.admin(Method::PUT, "/policies/throttle", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
}

async fn set_lockout_scope(app: &TestApp, body: Value) {
    let (status, policy) = app.admin(Method::PUT, "/policies/lockout", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
}

/// Counts answers by error code (or `status`).
fn tally(answers: &[(StatusCode, Value)]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, body) in answers {
        let key = body["error_code"].as_str().or(body["status"].as_str()).unwrap_or("?").to_owned();
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Thirty concurrent wrong attempts from one address, spread over the
/// given instances (one database), with `ip_max_failures` 10: exactly ten
/// are hashed and answered, twenty refused.
pub async fn ten_of_thirty_pass_the_throttle(instances: &[&TestApp], client: &str) {
    set_throttle(instances[0], json!({"ip_max_failures": 10})).await;
    tokio::time::sleep(ciam_core::service::POLICY_CACHE).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = instances[i % instances.len()];
        let req = app
            .sdk_from(&client_at(50), Method::POST, "/login/mobile-pwd", client)
            .json(&json!({"mobile": format!("1390000{i:04}"), "password": "Wrong-pass1"}));
        tasks.push(tokio::spawn(async move { read(req.send().await.expect("request")).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let counts = tally(&answers);
    assert_eq!(counts.get("IDAAS.SDK.LOGIN.0002"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("IDAAS.SDK.REQ.0007"), Some(&20), "{counts:?}");
}

async fn thirty_concurrent_failures_from_one_address_get_exactly_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    ten_of_thirty_pass_the_throttle(&[&app], &client).await;
}

async fn throttled_addresses_are_refused_before_the_hash_and_count_toward_no_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    set_throttle(&app, json!({"ip_max_failures": 3, "ip_window_seconds": 600})).await;
    let attacker = client_at(2);
    for i in 0..3 {
        let got = app.login_from(&attacker, &client, &format!("1390000000{i}"), "Wrong-pass1").await;
        assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 9"));
    }
    // The window is closed: right passwords too, with Retry-After.
    let req = app
        .sdk_from(&attacker, Method::POST, "/login/mobile-pwd", &client)
        .json(&json!({"mobile": "15200000000", "password": PASSWORD}));
    let resp = req.send().await.expect("request");
    let retry: i64 = resp.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((590..=600).contains(&retry), "{retry}");
    let got = read(resp).await;
    assert_error(&got, 429, "IDAAS.SDK.REQ.0007", Some("Too many attempts from your network, please try again later"));
    let zh = app.sdk_from(&attacker, Method::POST, "/login/mobile-pwd", &client).header("X-L", "zh");
    let got = read(zh.json(&json!({"mobile": "15200000000", "password": "x"})).send().await.expect("request")).await;
    assert_error(&got, 429, "IDAAS.SDK.REQ.0007", Some("您所在网络的尝试次数过多,请稍后再试"));
    // Refused attempts counted toward no account: the next failure elsewhere is the account's first.
    let honest = client_at(3);
    let got = app.login_from(&honest, &client, "15200000000", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 9"));
    app.login_from(&honest, &client, "15200000000", PASSWORD).await;
    // The operator sees who is throttled.
    let (_, events) = app.admin(Method::GET, "/audit-events?ip=127.0.0.2", None).await;
    let outcomes: Vec<&str> = events.as_array().expect("list").iter().filter_map(|e| e["outcome"].as_str()).collect();
    // The two refusals cost no hash: one event of the minute, counting both.
    assert_eq!(
        outcomes,
        ["IDAAS.SDK.REQ.0007", "IDAAS.SDK.LOGIN.0002", "IDAAS.SDK.LOGIN.0002", "IDAAS.SDK.LOGIN.0002"]
    );
    assert_eq!(events[0]["count"], 2, "{events}");
    assert!(events.as_array().expect("list").iter().all(|e| e["ip"] == "127.0.0.2"));
    // The window ends.
    app.clock.advance(600);
    let got = app.login_from(&attacker, &client, "13900000009", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", None);
}

async fn allowlisted_addresses_are_never_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    set_throttle(&app, json!({"ip_max_failures": 2, "ip_allowlist": ["127.0.0.4/31"]})).await;
    let (_, policy) = app.admin(Method::GET, "/policies/throttle", None).await;
    assert_eq!(policy, json!({"ip_max_failures": 2, "ip_window_seconds": 3600, "ip_allowlist": ["127.0.0.4/31"]}));
    for last in [4, 5] {
        let listed = client_at(last);
        for i in 0..4 {
            let got = app.login_from(&listed, &client, &format!("1390000001{i}"), "Wrong-pass1").await;
            assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", None);
        }
    }
    let other = client_at(6);
    for i in 0..2 {
        assert_error(
            &app.login_from(&other, &client, &format!("1390000002{i}"), "x").await,
            400,
            "IDAAS.SDK.LOGIN.0002",
            None,
        );
    }
    assert_error(&app.login_from(&other, &client, "13900000029", "x").await, 429, "IDAAS.SDK.REQ.0007", None);
    let bad = app.admin(Method::PUT, "/policies/throttle", Some(json!({"ip_allowlist": ["10.0.0.0/33"]}))).await;
    assert_error(&bad, 422, "IDAAS.ADMIN.PARAM.0001", None);
    let too_many: Vec<String> = (0..101).map(|i| format!("10.0.{i}.0/24")).collect();
    let bad = app.admin(Method::PUT, "/policies/throttle", Some(json!({"ip_allowlist": too_many}))).await;
    assert_error(&bad, 422, "IDAAS.ADMIN.PARAM.0001", None);
}

async fn a_trusted_proxy_names_the_client_and_a_spoofed_header_does_not(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.trusted_proxies = "127.0.0.7/32, 127.0.0.8".into()).await;
    let client = app.default_app().await;
    set_throttle(&app, json!({"ip_max_failures": 1})).await;
    let proxy = client_at(7);
    let via = |forwarded: &'static str| {
        app.sdk_from(&proxy, Method::POST, "/login/mobile-pwd", &client)
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"mobile": "13900000000", "password": "x"}))
    };
    // Each forwarded client has its own window; the proxies in the chain are skipped.
    let got = read(via("203.0.113.1, 198.51.100.5, 127.0.0.8").send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", None);
    let got = read(via("198.51.100.5").send().await.expect("request")).await;
    assert_error(&got, 429, "IDAAS.SDK.REQ.0007", None);
    let got = read(via("198.51.100.6").send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", None);
    // An untrusted peer's header is ignored: its own address is counted.
    let spoofer = client_at(9);
    let spoofed = app
        .sdk_from(&spoofer, Method::POST, "/login/mobile-pwd", &client)
        .header("X-Forwarded-For", "198.51.100.77")
        .json(&json!({"mobile": "13900000000", "password": "x"}));
    assert_error(&read(spoofed.send().await.expect("request")).await, 400, "IDAAS.SDK.LOGIN.0002", None);
    let (_, events) = app.admin(Method::GET, "/audit-events", None).await;
    let ips: Vec<&str> = events.as_array().expect("list").iter().rev().filter_map(|e| e["ip"].as_str()).collect();
    assert_eq!(ips, ["198.51.100.5", "198.51.100.5", "198.51.100.6", "127.0.0.9"]);
    assert!(events.to_string().contains("\"device_ip\":\"192.168.1.2\""), "the app's claim is still recorded");
}

async fn an_account_ip_lock_leaves_other_addresses_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    set_lockout_scope(&app, json!({"scope": "account_ip", "max_failures": 3})).await;
    let (_, policy) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!(policy["scope"], "account_ip");
    assert_eq!(policy["account_max_failures"], 100);
    let guesser = client_at(10);
    for left in [2, 1] {
        let got = app.login_from(&guesser, &client, "15200000000", "Wrong-pass1").await;
        let message = format!("Invalid account or password. Remaining times: {left}");
        assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some(&message));
    }
    assert_error(
        &app.login_from(&guesser, &client, "15200000000", "Wrong-pass1").await,
        400,
        "IDAAS.SDK.LOGIN.0001",
        None,
    );
    assert_error(&app.login_from(&guesser, &client, "15200000000", PASSWORD).await, 400, "IDAAS.SDK.LOGIN.0001", None);
    // The owner, elsewhere, is not locked out.
    let owner = client_at(11);
    let (status, body) = app.login_from(&owner, &client, "15200000000", PASSWORD).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("SUCCESS")), "{body}");
    // An operator's unlock clears the address's lock too.
    let (_, users) = app.admin(Method::GET, "/users?mobile=15200000000", None).await;
    let id = users[0]["id"].as_str().expect("id");
    app.admin(Method::POST, &format!("/users/{id}/unlock"), None).await;
    let (status, _) = app.login_from(&guesser, &client, "15200000000", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

async fn the_account_wide_limit_locks_for_everyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    set_lockout_scope(&app, json!({"scope": "account_ip", "max_failures": 5, "account_max_failures": 4})).await;
    for (i, last) in [20u8, 21, 22].into_iter().enumerate() {
        let got = app.login_from(&client_at(last), &client, "15200000000", "Wrong-pass1").await;
        let message = format!("Invalid account or password. Remaining times: {}", 3 - i);
        assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some(&message));
    }
    let fourth = app.login_from(&client_at(23), &client, "15200000000", "Wrong-pass1").await;
    assert_error(&fourth, 400, "IDAAS.SDK.LOGIN.0001", None);
    let anyone = app.login_from(&client_at(24), &client, "15200000000", PASSWORD).await;
    assert_error(&anyone, 400, "IDAAS.SDK.LOGIN.0001", None);
    // Back to the default scope: the account's own count decides, as before.
    set_lockout_scope(&app, json!({"scope": "account"})).await;
    let (_, policy) = app.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!(policy["scope"], "account");
    assert_error(&app.login(&client, "15200000000", PASSWORD).await, 400, "IDAAS.SDK.LOGIN.0001", None);
}

async fn a_flooding_address_gives_way_to_honest_ones(backend: Backend) {
    // One slow hashing thread and a short queue: a flood fills it at once.
    let app = TestApp::spawn_with(backend, |c| {
        c.hash_workers = Some(1);
        c.hash_queue = 4;
        c.argon2_t = 8;
    })
    .await;
    let app = Arc::new(app);
    let client = app.default_app().await;
    for i in 0..3 {
        app.create_user(&format!("1520000000{i}"), PASSWORD).await;
    }
    set_throttle(&app, json!({"ip_max_failures": 1_000_000})).await;
    let flooding = Arc::new(AtomicBool::new(true));
    let mut flood = Vec::new();
    for n in 0..12 {
        let (app, client, flooding) = (Arc::clone(&app), client.clone(), Arc::clone(&flooding));
        flood.push(tokio::spawn(async move {
            let attacker = client_at(30);
            let mut answers = Vec::new();
            // A new number each time, so no account lock cuts the flood short.
            for k in 0.. {
                if !flooding.load(Ordering::SeqCst) {
                    break;
                }
                let mobile = format!("139{:08}", n * 100_000 + k);
                answers.push(app.login_from(&attacker, &client, &mobile, "Wrong-pass1").await);
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut honest = Vec::new();
    for i in 0..3u8 {
        let (app, client) = (Arc::clone(&app), client.clone());
        honest.push(tokio::spawn(async move {
            let started = Instant::now();
            let got = app.login_from(&client_at(40 + i), &client, &format!("1520000000{i}"), PASSWORD).await;
            (got, started.elapsed())
        }));
    }
    let mut honest_answers = Vec::new();
    for task in honest {
        let ((status, body), took) = task.await.expect("task");
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("SUCCESS")), "{body}");
        honest_answers.push(took);
    }
    flooding.store(false, Ordering::SeqCst);
    let mut attacker_answers = Vec::new();
    for task in flood {
        attacker_answers.extend(task.await.expect("task"));
    }
    let counts = tally(&attacker_answers);
    assert!(
        counts.get("IDAAS.SDK.REQ.0007").copied().unwrap_or(0) > 0,
        "the flooder is refused for fairness: {counts:?}"
    );
    let allowed = ["IDAAS.SDK.REQ.0007", "IDAAS.SDK.LOGIN.0002", "IDAAS.SDK.COM.0002"];
    assert!(counts.keys().all(|k| allowed.contains(&k.as_str())), "{counts:?}");
    assert!(honest_answers.iter().all(|took| *took < Duration::from_secs(3)), "{honest_answers:?}");
}
