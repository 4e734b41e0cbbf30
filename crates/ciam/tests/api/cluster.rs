//! Several instances on one PostgreSQL database behave as one server; a
//! database outage answers COM.0002 in bounded time and heals by itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, TestDatabase, assert_error, read};

/// A `ciam serve` process, killed on drop.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn spawn_process(database_url: &str) -> Process {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ciam"))
        .arg("serve")
        .env("CIAM_LISTEN", format!("127.0.0.1:{port}"))
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CIAM_LOG", "warn")
        .env("CIAM_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn ciam");
    Process { child, base: format!("http://127.0.0.1:{port}") }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = client.get(format!("{base}/readyz")).send().await.map(|r| r.status());
        if ready.ok() == Some(StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

fn device(req: reqwest::RequestBuilder, client_id: &str) -> reqwest::RequestBuilder {
    req.header("X-operating-sys-version", "ios17")
        .header("X-device-fingerprint", "fp-1")
        .header("X-agent", "test")
        .header("X-client-id", client_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_started_together_share_one_lockout() {
    let db = TestDatabase::create(Backend::Postgres).await;
    // Started at the same moment: they race on migrations and first keys.
    let processes: Vec<Process> = (0..3).map(|_| spawn_process(&db.url)).collect();
    let http = reqwest::Client::new();
    for p in &processes {
        wait_ready(&http, &p.base).await;
    }
    let client_id = crate::helpers::shop_with_a_user(&http, &processes[1].base).await;

    let mut tasks = Vec::new();
    for i in 0..30 {
        let url = format!("{}/api/v2/sdk/login/mobile-pwd", processes[i % 3].base);
        let req =
            device(http.post(url), &client_id).json(&json!({"mobile": "+86 152 0000 0000", "password": "Wrong-pass1"}));
        tasks.push(tokio::spawn(async move { read(req.send().await.expect("request")).await }));
    }
    let (remaining, _) = crate::helpers::tally_failures(tasks).await;
    let distinct: HashSet<u32> = remaining.iter().copied().collect();
    assert_eq!(distinct.len(), remaining.len(), "a count was given twice across instances: {remaining:?}");
    assert!(remaining.len() <= 9, "{remaining:?}");
    for p in &processes {
        let url = format!("{}/api/v2/sdk/login/mobile-pwd", p.base);
        let got = read(
            device(http.post(url), &client_id)
                .json(&json!({"mobile": "15200000000", "password": PASSWORD}))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_error(&got, 400, "IDAAS.SDK.LOGIN.0001", None);
    }
    // Every instance publishes the same keys (one of each algorithm) and
    // signs with them, at once: the first keys of instances started
    // together are made once.
    let mut sets = HashSet::new();
    for p in &processes {
        let jwks: Value =
            http.get(format!("{}/api/v1/oauth2/keys", p.base)).send().await.expect("jwks").json().await.expect("json");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2), "{jwks}");
        sets.insert(jwks.to_string());
    }
    assert_eq!(sets.len(), 1, "{sets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_logout_and_rotation_are_seen_by_every_instance() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    let c = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    let client = a.default_app().await;
    b.create_user("15200000000", PASSWORD).await;

    let login = a.login_ok(&client, "15200000000", PASSWORD).await;
    let session = login["session_token"].as_str().expect("session_token");
    let (status, refreshed) = b.refresh(&client, session).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let out = b.sdk(Method::POST, "/logout", &client).header("session-token", session).send().await.expect("request");
    assert_eq!(out.status(), StatusCode::OK);
    assert_error(&c.refresh(&client, session).await, 400, "IDAAS.SDK.PARAM.0023", None);
    assert_error(&a.refresh(&client, session).await, 400, "IDAAS.SDK.PARAM.0023", None);

    // A rotation on A is in C's JWKS, and signs C's tokens, within 5 seconds.
    let (_, rotated) = a.admin(Method::POST, "/keys/rotate", None).await;
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    let started = Instant::now();
    loop {
        // As a client would: the token first, then the JWKS that verifies it.
        let token = c.login_ok(&client, "15200000000", PASSWORD).await;
        let jwks = c.jwks().await;
        let (header, _) =
            crate::helpers::verify_with_jwks(token["id_token"].as_str().expect("id_token"), &jwks).expect("verifies");
        if jwks["keys"][0]["kid"] == kid.as_str() && header["kid"] == kid.as_str() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "rotation not seen by C within 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Policies are shared too.
    a.set_lockout(3, 60).await;
    tokio::time::sleep(ciam_core::service::POLICY_CACHE).await;
    let got = c.login(&client, "15200000000", "Wrong-pass1").await;
    assert_error(&got, 400, "IDAAS.SDK.LOGIN.0002", Some("Invalid account or password. Remaining times: 2"));
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_throttle_is_exact_across_three_instances() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    let c = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    let client = a.default_app().await;
    crate::attack::ten_of_thirty_pass_the_throttle(&[&a, &b, &c], &client).await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_are_counted_across_three_instances() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    let c = TestApp::start(a.config.clone(), Arc::clone(&a.db)).await;
    crate::admin::operators_are_throttled_across(&[&a, &b, &c]).await;
    b.stop().await;
    c.stop().await;
}

/// A TCP proxy in front of PostgreSQL that the test can cut and restore.
struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (cut, watch) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = watch.clone();
                if *cut.borrow() {
                    continue; // refused: dropped at once
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_com_0002_in_bounded_time_and_heals() {
    let db = Arc::new(TestDatabase::create(Backend::Postgres).await);
    let upstream = db
        .url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('@').nth(1))
        .and_then(|h| h.split('/').next())
        .expect("host")
        .to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let via_proxy = db.url.replace(&upstream, &format!("127.0.0.1:{}", proxy.port));
    let config = ciam::Config {
        listen: "127.0.0.1:0".into(),
        database_url: Some(via_proxy),
        admin_token: Some(ADMIN_TOKEN.into()),
        issuer: Some("https://ciam.test".into()),
        db_timeout_ms: 2000,
        ..ciam::Config::default()
    };
    let app = TestApp::start(config, Arc::clone(&db)).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    app.login_ok(&client, "15200000000", PASSWORD).await;

    proxy.set_cut(true);
    for _ in 0..3 {
        let started = Instant::now();
        let got = app.login(&client, "15200000000", PASSWORD).await;
        assert_error(&got, 500, "IDAAS.SDK.COM.0002", Some("System busy, please try again later"));
        assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
    }
    let ready = app.client.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health = app.client.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(health.status(), StatusCode::OK);

    proxy.set_cut(false);
    let started = Instant::now();
    loop {
        let (status, body) = app.login(&client, "15200000000", PASSWORD).await;
        if status == StatusCode::OK {
            assert_eq!(body["status"], "SUCCESS");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not recover: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Readiness is checked at most every 2 s: it follows within that.
    let started = Instant::now();
    while app.client.get(app.url("/readyz")).send().await.expect("request").status() != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(3), "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing written before the outage was lost.
    let (_, events) = app.admin(Method::GET, "/audit-events?mobile=15200000000", None).await;
    assert!(events.as_array().is_some_and(|e| e.iter().filter(|e| e["outcome"] == "SUCCESS").count() >= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_a_sqlite_deployment_to_postgres() {
    let source = TestApp::spawn(Backend::Sqlite).await;
    let open = source.default_app().await;
    let staff = source.create_app(json!({"name": "Staff", "access": "assigned"})).await;
    let alice =
        source.create_user_with(json!({"mobile": "15200000000", "password": PASSWORD, "user_name": "alice"})).await;
    source.create_user("15200000001", "B0b-password").await;
    source.admin(Method::PUT, &format!("/apps/{staff}/users/{alice}"), None).await;
    source.admin(Method::PUT, "/policies/lockout", Some(json!({"max_failures": 5, "lock_seconds": 60}))).await;
    let early = source.login_ok(&open, "15200000000", PASSWORD).await;
    source.admin(Method::POST, "/keys/rotate", None).await;
    let late = source.login_ok(&staff, "15200000000", PASSWORD).await;
    let _ = source.login(&open, "15200000001", "Wrong-pass1").await;
    let (_, audit_before) = source.admin(Method::GET, "/audit-events?limit=1000", None).await;
    let source_db = Arc::clone(&source.db);
    source.stop().await;

    let target = TestDatabase::create(Backend::Postgres).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["copy", "--from", &source_db.url, "--to", &target.url])
        .env("CIAM_LOG", "warn")
        .output()
        .expect("run ciam copy");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["users"], 2);
    assert_eq!(report["apps"], 2);
    assert_eq!(report["members"], 1);
    assert_eq!(report["signing_keys"], 4, "an RSA and an Ed25519 key, before and after the rotation");
    assert_eq!(report["sessions"], 2);

    // Copying again into the now-filled database is refused.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["copy", "--from", &source_db.url, "--to", &target.url])
        .output()
        .expect("run ciam copy");
    assert!(!again.status.success());

    let config = ciam::Config {
        listen: "127.0.0.1:0".into(),
        database_url: Some(target.url.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        issuer: Some("https://ciam.test".into()),
        ..ciam::Config::default()
    };
    let moved = TestApp::start(config, Arc::new(target)).await;
    let jwks = moved.jwks().await;
    for token in [&early, &late] {
        crate::helpers::verify_with_jwks(token["id_token"].as_str().expect("id_token"), &jwks)
            .expect("id_tokens from before the move verify");
    }
    let (status, _) = moved.refresh(&open, early["session_token"].as_str().expect("session")).await;
    assert_eq!(status, StatusCode::OK, "sessions survive the move");
    moved.login_ok(&staff, "+86 152 0000 0000", PASSWORD).await;
    moved.login_ok(&open, "15200000001", "B0b-password").await;
    let (_, lockout) = moved.admin(Method::GET, "/policies/lockout", None).await;
    assert_eq!((&lockout["max_failures"], &lockout["lock_seconds"]), (&json!(5), &json!(60)), "{lockout}");
    let (_, audit_after) = moved.admin(Method::GET, "/audit-events?limit=1000", None).await;
    let strip = |v: &Value| -> Vec<(Value, Value, Value)> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|e| (e["at"].clone(), e["outcome"].clone(), e["mobile"].clone()))
            .collect()
    };
    let after = strip(&audit_after);
    assert_eq!(
        after[after.len() - strip(&audit_before).len()..],
        strip(&audit_before)[..],
        "the audit log moved in order"
    );
}
