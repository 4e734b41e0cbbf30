//! Bad input gets a clear 4xx, never a 5xx; the binary starts with no
//! configuration at all.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, read};

crate::on_both_backends!(malformed_requests_get_documented_4xx, unknown_routes_and_methods_answer_json);

async fn malformed_requests_get_documented_4xx(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let huge = format!(r#"{{"mobile":"15200000000","password":"{}"}}"#, "x".repeat(100_000));
    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        ("no content type", None, br#"{"mobile":"15200000000","password":"x"}"#.to_vec(), "IDAAS.SDK.REQ.0001"),
        ("text/plain", Some("text/plain"), br#"{"mobile":"1","password":"x"}"#.to_vec(), "IDAAS.SDK.REQ.0001"),
        ("form", Some("application/x-www-form-urlencoded"), b"mobile=1&password=x".to_vec(), "IDAAS.SDK.REQ.0001"),
        ("empty body", Some("application/json"), Vec::new(), "IDAAS.SDK.REQ.0002"),
        ("truncated", Some("application/json"), br#"{"mobile":"152"#.to_vec(), "IDAAS.SDK.REQ.0002"),
        ("not json", Some("application/json"), b"mobile=1".to_vec(), "IDAAS.SDK.REQ.0002"),
        (
            "invalid utf-8",
            Some("application/json"),
            b"{\"mobile\":\"\xff\xfe\",\"password\":\"x\"}".to_vec(),
            "IDAAS.SDK.REQ.0002",
        ),
        (
            "trailing garbage",
            Some("application/json"),
            br#"{"mobile":"1","password":"x"} {}"#.to_vec(),
            "IDAAS.SDK.REQ.0002",
        ),
        ("array", Some("application/json"), b"[]".to_vec(), "IDAAS.SDK.REQ.0003"),
        ("string", Some("application/json"), br#""hello""#.to_vec(), "IDAAS.SDK.REQ.0003"),
        ("null", Some("application/json"), b"null".to_vec(), "IDAAS.SDK.REQ.0003"),
        (
            "number mobile",
            Some("application/json"),
            br#"{"mobile":15200000000,"password":"x"}"#.to_vec(),
            "IDAAS.SDK.REQ.0003",
        ),
        (
            "object password",
            Some("application/json"),
            br#"{"mobile":"1","password":{"a":1}}"#.to_vec(),
            "IDAAS.SDK.REQ.0003",
        ),
        (
            "bool password",
            Some("application/json"),
            br#"{"mobile":"1","password":true}"#.to_vec(),
            "IDAAS.SDK.REQ.0003",
        ),
        ("huge body", Some("application/json"), huge.into_bytes(), "IDAAS.SDK.REQ.0004"),
        (
            "charset",
            Some("application/json; charset=utf-8"),
            br#"{"mobile":"15200000000","password":"x"}"#.to_vec(),
            "IDAAS.SDK.LOGIN.0002",
        ),
        (
            "emoji mobile",
            Some("application/json"),
            r#"{"mobile":"😀📱☎️","password":"x"}"#.as_bytes().to_vec(),
            "IDAAS.SDK.LOGIN.0002",
        ),
        (
            "raw control character",
            Some("application/json"),
            "{\"mobile\":\"1\",\"password\":\"\u{0}\"}".as_bytes().to_vec(),
            "IDAAS.SDK.REQ.0002",
        ),
        (
            "rtl and escaped nul",
            Some("application/json"),
            br#"{"mobile":"\u202e152\u0000","password":"\u0000"}"#.to_vec(),
            "IDAAS.SDK.LOGIN.0002",
        ),
        (
            "long mobile",
            Some("application/json"),
            format!(r#"{{"mobile":"{}","password":"x"}}"#, "1".repeat(5000)).into_bytes(),
            "IDAAS.SDK.LOGIN.0002",
        ),
        (
            "unicode digits",
            Some("application/json"),
            r#"{"mobile":"١٥٢٠٠٠٠٠٠٠٠","password":"x"}"#.as_bytes().to_vec(),
            "IDAAS.SDK.LOGIN.0002",
        ),
        (
            "extra fields",
            Some("application/json"),
            br#"{"mobile":"15200000000","password":"x","admin":true}"#.to_vec(),
            "IDAAS.SDK.LOGIN.0002",
        ),
    ];
    for (name, content_type, body, code) in cases {
        let mut req = app.sdk(Method::POST, "/login/mobile-pwd", &client).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let got = read(req.send().await.expect(name)).await;
        assert!(got.0.is_client_error(), "{name}: {} {}", got.0, got.1);
        assert_eq!(got.1["error_code"], code, "{name}: {}", got.1);
        assert!(got.1["error_msg"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
        assert!(!got.1["error_msg"].as_str().unwrap_or_default().contains("line"), "{name}: parser details leak");
    }
    // Non-UTF-8 header values are handled, not crashed on.
    let odd = app
        .sdk(Method::POST, "/login/mobile-pwd", &client)
        .header("X-agent", reqwest::header::HeaderValue::from_bytes(b"caf\xe9 agent").expect("header"))
        .json(&json!({"mobile": "15200000000", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(odd.status(), StatusCode::OK);
    // The server is still healthy.
    app.login_ok(&client, "15200000000", PASSWORD).await;
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let missing = read(app.client.get(app.url("/api/v2/sdk/nope")).send().await.expect("request")).await;
    assert_error(&missing, 404, "IDAAS.SDK.REQ.0005", Some("The requested API does not exist"));
    let wrong = read(
        app.client.get(app.url("/api/v2/sdk/login/mobile-pwd")).header("X-L", "zh").send().await.expect("request"),
    )
    .await;
    assert_error(&wrong, 405, "IDAAS.SDK.REQ.0006", Some("该接口不支持此请求方法"));
    let ready = app.client.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
}

/// `ciam serve` in an empty directory with no configuration file and no
/// database URL: it creates its SQLite file, prints an admin token once,
/// and answers `/healthz`.
#[tokio::test]
async fn serve_starts_in_an_empty_directory_with_no_configuration() {
    let dir = std::env::temp_dir().join(format!("ciam-empty-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ciam"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("CIAM_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ciam");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(resp) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
            healthy = resp.status() == StatusCode::OK && resp.text().await.unwrap_or_default().contains("ok");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ready = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.map(|r| r.status());
    #[cfg(unix)]
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    assert!(healthy, "/healthz did not answer");
    assert_eq!(ready.ok(), Some(StatusCode::OK));
    assert!(status.success(), "SIGTERM shuts down cleanly: {status}");
    assert!(dir.join("data/ciam.db").exists(), "the embedded database lives in ./data");
    let token = out.lines().last().unwrap_or_default();
    assert!(out.contains("admin token") && token.len() == 48, "the admin token is printed once: {out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A shutdown answers every request a client had sent before it: those on
/// connections still in the accept queue, and those whose head had not
/// been read yet. A connection idle after its answer is closed at once,
/// with nothing lost.
#[tokio::test]
async fn shutdown_answers_every_request_already_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: ciam.test\r\n\r\n";
    // One keep-alive connection that has had its answer and is idle.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(request).await.expect("write");
    let mut first = [0u8; 1024];
    let n = idle.read(&mut first).await.expect("read");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&first[..n]));
    // Twenty requests sent, none of them read by the server yet (the test's
    // runtime has one thread: the server runs only when this task waits).
    let mut sent = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        sent.push(stream);
    }
    let stopping = tokio::spawn(app.stop());
    for (i, mut stream) in sent.into_iter().enumerate() {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(matches!(read, Ok(Ok(_))), "request {i}: {read:?}");
        assert!(answer.starts_with("http/1.1 200"), "request {i}: {answer:?}");
        assert!(answer.ends_with(r#"{"status":"ok"}"#), "request {i}: {answer:?}");
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), idle.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "the idle connection is closed: {closed:?}");
    stopping.await.expect("stopped");
}

/// With a shutdown delay, an instance told to stop answers `/readyz` 503
/// first (a balancer stops sending it calls) while it still serves them,
/// then stops.
#[tokio::test]
async fn shutdown_turns_readyz_503_first_and_keeps_serving() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.shutdown_delay_ms = 1500).await;
    let (client, base) = (app.client.clone(), app.base.clone());
    let ready = client.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let asked = std::time::Instant::now();
    let stopping = tokio::spawn(app.stop());
    let mut unready = None;
    while unready.is_none() && asked.elapsed() < std::time::Duration::from_secs(1) {
        let ready = client.get(format!("{base}/readyz")).send().await.expect("readyz while draining");
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            unready = Some(ready.json::<serde_json::Value>().await.expect("json"));
        }
    }
    assert_eq!(unready, Some(json!({"status": "unavailable"})), "/readyz turns 503 at once");
    let keys = client.get(format!("{base}/api/v1/oauth2/keys")).send().await.expect("still served");
    assert_eq!(keys.status(), StatusCode::OK, "calls are still served during the delay");
    stopping.await.expect("stopped");
    assert!(asked.elapsed() >= std::time::Duration::from_millis(1500), "the listener waited for the delay");
    assert!(client.get(format!("{base}/healthz")).send().await.is_err(), "then the listener is gone");
}
