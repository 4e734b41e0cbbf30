//! The lock bounds guesses, not answers: a burst of wrong passwords far
//! larger than the limit, with the right password sent while the burst is
//! still being hashed, gets at most `max_failures` passwords verified, on
//! one instance or three, and the right password is refused with the lock.
//! `ciam_password_verifications_total` counts the hashes from outside.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    ADMIN_TOKEN, Backend, PASSWORD, Serving, TestDatabase, assert_error, client_at, read, samples, serve,
};

/// Wrong passwords in the burst, from each of its addresses.
const PER_ADDRESS: usize = 40;
/// The burst's client addresses (`127.0.0.x`).
const ADDRESSES: [u8; 3] = [61, 62, 63];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_sqlite_gets_at_most_the_limit_of_guesses() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let one = serve(&db.url, &[]).await;
    burst_against(&[one]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_postgres_gets_at_most_the_limit_of_guesses() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let one = serve(&db.url, &[]).await;
    burst_against(&[one]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_three_instances_gets_at_most_the_limit_of_guesses() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let instances = vec![serve(&db.url, &[]).await, serve(&db.url, &[]).await, serve(&db.url, &[]).await];
    burst_against(&instances).await;
}

/// One sample of every instance's metrics, summed.
async fn metric(http: &reqwest::Client, instances: &[Serving], series: &str) -> f64 {
    let mut sum = 0.0;
    for instance in instances {
        let page = http.get(&instance.metrics).send().await.expect("scrape").text().await.expect("text");
        sum += samples(&page).get(series).copied().unwrap_or(0.0);
    }
    sum
}

fn login(base: &str, client: &reqwest::Client, client_id: &str, password: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/v2/sdk/login/mobile-pwd"))
        .header("X-operating-sys-version", "ios17")
        .header("X-device-fingerprint", "fp-1")
        .header("X-agent", "test")
        .header("X-client-id", client_id)
        .json(&json!({"mobile": "15200000000", "password": password}))
}

async fn burst_against(instances: &[Serving]) {
    let http = reqwest::Client::new();
    let client_id = crate::helpers::shop_with_a_user(&http, &instances[0].base).await;
    // The address throttle stays out of the way: only the lock is tested.
    let throttle = http
        .put(format!("{}/api/v2/admin/policies/throttle", instances[0].base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"ip_max_failures": 100_000}))
        .send()
        .await
        .expect("policy");
    assert_eq!(throttle.status(), StatusCode::OK);
    tokio::time::sleep(ciam_core::service::POLICY_CACHE).await;
    let before = metric(&http, instances, "ciam_password_verifications_total").await;

    let mut wrong = Vec::new();
    for (n, last) in ADDRESSES.iter().enumerate() {
        let client = client_at(*last);
        for i in 0..PER_ADDRESS {
            let base = instances[(n + i) % instances.len()].base.clone();
            let req = login(&base, &client, &client_id, "Wrong-pass1");
            wrong.push(tokio::spawn(async move { read(req.send().await.expect("request")).await }));
        }
    }
    // The right password goes in while the burst is still being hashed,
    // once every place is taken: ten hashes begun or waiting in the pool.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let begun = metric(&http, instances, "ciam_password_verifications_total").await - before;
        let waiting = metric(&http, instances, "ciam_hash_queue_depth").await;
        if begun + waiting >= 10.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the burst never filled the hashing pool ({begun} begun)");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let right =
        read(login(&instances[0].base, &client_at(64), &client_id, PASSWORD).send().await.expect("right")).await;

    let (mut remaining, locked) = crate::helpers::tally_failures(wrong).await;
    let verified = metric(&http, instances, "ciam_password_verifications_total").await - before;
    assert_eq!(verified, 10.0, "passwords verified for {} guesses", ADDRESSES.len() * PER_ADDRESS);
    remaining.sort_unstable();
    assert_eq!(remaining, (1..=9).collect::<Vec<u32>>(), "nine counted failures, then the lock");
    assert_eq!(locked, ADDRESSES.len() * PER_ADDRESS - 9, "the rest answer the lock without a hash");
    // The right password found no place: the lock's answer, never SUCCESS.
    assert_error(&right, 400, "IDAAS.SDK.LOGIN.0001", None);
    // And the account stays locked for everyone, on every instance.
    for instance in instances {
        let after =
            read(login(&instance.base, &client_at(65), &client_id, PASSWORD).send().await.expect("after")).await;
        assert_error(&after, 400, "IDAAS.SDK.LOGIN.0001", None);
    }
}
