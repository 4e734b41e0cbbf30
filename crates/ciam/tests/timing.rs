//! Timing, in a test binary of its own so that no other test's hashing
//! shares the cores while it measures: a failed attempt on an imported
//! hash, however cheap, answers as slowly as one on an unknown number
//! (docs/api.md §10); and a code sent to an unregistered number answers as
//! fast as one sent to a user (docs/sms.md §4).

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

#[path = "api/helpers.rs"]
#[expect(dead_code, reason = "the helpers serve the API suite; this test uses a few")]
mod helpers;
#[path = "api/sms_helpers.rs"]
#[expect(dead_code, reason = "the helpers serve the API suite; this test uses a few")]
mod sms_helpers;

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use serde_json::json;

use helpers::{Backend, PASSWORD, TestApp, assert_error};

fn salt() -> SaltString {
    SaltString::encode_b64(b"0123456789abcdef").expect("salt")
}

fn cheap_argon2(password: &str) -> String {
    let params = argon2::Params::new(256, 1, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon.hash_password(password.as_bytes(), &salt()).expect("argon2").to_string()
}

fn cheap_bcrypt(password: &str) -> String {
    bcrypt::hash_with_salt(password, 4, *b"0123456789abcdef").expect("bcrypt").format_for_version(bcrypt::Version::TwoB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_on_a_cheap_hash_takes_as_long_as_one_on_an_unknown_number() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client_id = app.default_app().await;
    app.set_lockout(1000, 1800).await;
    let (status, _) =
        app.admin(reqwest::Method::PUT, "/policies/throttle", Some(json!({"ip_max_failures": 100_000}))).await;
    assert_eq!(status, reqwest::StatusCode::OK, "the address throttle opened for the measurement");
    // A hash a hundred times cheaper than the server's.
    app.create_user_with(json!({"mobile": "15200000001", "password_hash": cheap_argon2(PASSWORD)})).await;
    app.create_user_with(json!({"mobile": "15200000002", "password_hash": cheap_bcrypt(PASSWORD)})).await;
    // The server learns what its own hash costs as it verifies: a few
    // attempts first, so that it has seen this machine's load.
    for _ in 0..5 {
        app.login(&client_id, "15299999998", "Wrong-pass1").await;
    }
    // A machine busy with something else can swing one round; a real tell
    // (a cheap hash answering early) shows in every round.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let round = measure(&app, &client_id).await;
        if round.iter().all(|(_, ratio, _)| (0.9..1.1).contains(ratio)) {
            return;
        }
        rounds.push(round);
    }
    panic!("a failed attempt on a cheap hash answers at another speed than one on an unknown number: {rounds:#?}");
}

/// One round: 30 failed attempts on each of an unknown number and the two
/// cheap hashes, taken in turn so that the machine's load weighs on each
/// alike. For each cheap hash, its median against the unknown number's.
async fn measure(app: &TestApp, client_id: &str) -> Vec<(&'static str, f64, String)> {
    let median = |mut took: Vec<Duration>| {
        took.sort_unstable();
        took[took.len() / 2]
    };
    let mobiles = ["15299999999", "15200000001", "15200000002"];
    let mut took: [Vec<Duration>; 3] = Default::default();
    for _ in 0..30 {
        for (mobile, took) in mobiles.iter().zip(took.iter_mut()) {
            let started = Instant::now();
            let refused = app.login(client_id, mobile, "Wrong-pass1").await;
            took.push(started.elapsed());
            assert_error(&refused, 400, "IDAAS.SDK.LOGIN.0002", None);
        }
    }
    let [unknown, argon2_cheap, bcrypt_cheap] = took.map(median);
    [("argon2 m=256,t=1", argon2_cheap), ("bcrypt cost 4", bcrypt_cheap)]
        .into_iter()
        .map(|(what, cheap)| {
            let ratio = cheap.as_secs_f64() / unknown.as_secs_f64();
            (what, ratio, format!("median {cheap:?} against {unknown:?} for an unknown number"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_nobody_answers_as_fast_as_a_code_for_a_user() {
    let (app, gateway) = sms_helpers::spawn_sms(Backend::Sqlite).await;
    let client_id = app.default_app().await;
    let open = json!({"resend_seconds": 0, "mobile_daily_max": 1000, "ip_hourly_max": 1_000_000,
                      "global_hourly_max": 1_000_000});
    sms_helpers::sms_policy(&app, open).await;
    let registered: Vec<String> = (0..40).map(|i| format!("1520000{i:04}")).collect();
    for mobile in &registered {
        app.create_user(mobile, PASSWORD).await;
    }
    // Each round sends a code to every user and to as many numbers with no
    // account, in turn; a busy machine can swing one round, a real tell (a
    // send for nobody answering early) shows in every one.
    let mut rounds = Vec::new();
    for round in 0..5 {
        let mut took: [Vec<Duration>; 2] = Default::default();
        for (i, user) in registered.iter().enumerate() {
            let nobody = format!("1390000{i:04}");
            for (mobile, took) in [user.as_str(), nobody.as_str()].into_iter().zip(took.iter_mut()) {
                let started = Instant::now();
                let (status, body, _) = sms_helpers::send(&app, &client_id, mobile, "LOGIN_SMS").await;
                took.push(started.elapsed());
                assert_eq!((status, body), (reqwest::StatusCode::OK, json!({})));
            }
        }
        let [user, nobody] = took.map(|mut t| {
            t.sort_unstable();
            t[t.len() / 2]
        });
        let ratio = nobody.as_secs_f64() / user.as_secs_f64();
        if (0.9..1.1).contains(&ratio) {
            let sent = registered.len() * (round + 1);
            gateway.wait_for(sent).await;
            assert_eq!(gateway.delivered().await, sent, "only users were sent codes");
            return;
        }
        rounds.push(format!("median {nobody:?} for nobody against {user:?} for a user"));
    }
    panic!("a code for nobody answers at another speed than one for a user: {rounds:#?}");
}
