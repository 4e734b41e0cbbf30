//! Safe to leave running (docs/api.md §8), seen from the wire: connection
//! bounds (header and idle timeouts, connection cap, head size), requests
//! that stop or break mid-way, errors that stay JSON, the headers of every
//! `/api/` answer, and logout bound to its app.
//!
//! Some inputs (a silent socket, a half-sent head, broken chunked framing,
//! a body shorter than its `Content-Length`) cannot be made with reqwest:
//! those tests write the bytes by hand on a raw TCP connection and read the
//! raw HTTP answer, always under a timeout so that no test can hang.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, assert_error, read};

crate::on_both_backends!(
    logout_takes_only_the_calling_apps_session,
    one_address_cannot_take_every_connection,
    a_json_body_with_a_key_named_twice_is_refused,
);

// --- raw HTTP/1.1 ---

/// The seed's device headers, as raw header lines.
const DEVICE_HEADERS: &str = "X-operating-sys-version: windows10.1.1\r\n\
     X-device-fingerprint: 156aysdna213sc50\r\n\
     X-device-ip: 192.168.1.2\r\n\
     X-agent: Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X)\r\n";

/// `host:port` of the server.
fn address(app: &TestApp) -> String {
    app.base.strip_prefix("http://").expect("http base").to_owned()
}

async fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(address(app)).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A response as it came off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Decodes a chunked body; `None` while it is incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The response in `buf`, if it is complete (`eof`: nothing more will come).
fn parse_response(buf: &[u8], eof: bool) -> Option<Raw> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &buf[head_end + 4..];
    let find = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = if let Some(length) = find("content-length") {
        let length: usize = length.parse().ok()?;
        if rest.len() < length {
            return None;
        }
        rest[..length].to_vec()
    } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Raw { status, headers, body })
}

/// Reads one complete response (status line, headers, body), within `within`.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Raw {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(raw) = parse_response(&buf, false) {
            return raw;
        }
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => panic!("no complete response within {within:?}; got {:?}", String::from_utf8_lossy(&buf)),
            Ok(Ok(n)) => n,
            // A reset after the answer counts as the end of it.
            Ok(Err(e)) if !buf.is_empty() => {
                eprintln!("read after {} bytes: {e}", buf.len());
                0
            }
            Ok(Err(e)) => panic!("read failed before any answer: {e}"),
        };
        if n == 0 {
            return parse_response(&buf, true).unwrap_or_else(|| {
                panic!("connection closed before a complete response: {:?}", String::from_utf8_lossy(&buf))
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits for the server to close the connection: returns how long after
/// `since` it did, and what it sent before. Fails if it is still open after
/// `within`.
async fn closed_after(stream: &mut TcpStream, since: Instant, within: Duration) -> (Duration, Vec<u8>) {
    let deadline = since + within;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => panic!("connection still open {within:?} later; got {:?}", String::from_utf8_lossy(&got)),
            Ok(Ok(0)) | Ok(Err(_)) => return (since.elapsed(), got),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

fn healthz_request() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nHost: ciam.test\r\n\r\n"
}

/// A login request head with the device headers and `X-client-id`, plus
/// `extra` header lines; the body is written separately.
fn login_head(client_id: &str, extra: &str) -> String {
    format!(
        "POST /api/v2/sdk/login/mobile-pwd HTTP/1.1\r\nHost: ciam.test\r\n{DEVICE_HEADERS}X-client-id: {client_id}\r\n\
         Content-Type: application/json\r\n{extra}\r\n"
    )
}

async fn sqlite_with(tweak: impl FnOnce(&mut ciam::Config)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, tweak).await
}

// --- connections ---

/// A connection that sends nothing, or half a head and then nothing, is
/// closed by the server at about `header_timeout` from its opening; a head
/// dribbled a byte at a time does not push the deadline back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_does_not_arrive_in_time_is_cut_off() {
    let app = sqlite_with(|c| {
        c.header_timeout_ms = 300;
        c.idle_timeout_ms = 1200;
    })
    .await;
    let bounds = Duration::from_millis(240)..=Duration::from_millis(900);

    let opened = Instant::now();
    let mut silent = connect(&app).await;
    let (after, sent) = closed_after(&mut silent, opened, Duration::from_secs(3)).await;
    assert!(bounds.contains(&after), "silent connection closed after {after:?}");
    assert!(sent.is_empty(), "nothing to answer, yet: {:?}", String::from_utf8_lossy(&sent));

    let opened = Instant::now();
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: ciam.test\r\nX-Partial: ye").await.expect("write");
    let (after, sent) = closed_after(&mut half, opened, Duration::from_secs(3)).await;
    assert!(bounds.contains(&after), "half-sent head closed after {after:?}");
    assert!(!String::from_utf8_lossy(&sent).contains(" 200 "), "an incomplete head was served");

    // Slowloris: a byte every 50 ms keeps the socket busy but the head never
    // ends; the deadline counts from the opening, not from the last byte.
    let opened = Instant::now();
    let mut slow = connect(&app).await;
    let head = b"GET /healthz HTTP/1.1\r\nHost: ciam.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed_at = None;
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            closed_at = Some(opened.elapsed());
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(50), slow.read(&mut probe)).await {
            closed_at = Some(opened.elapsed());
            break;
        }
    }
    let after = closed_at.expect("a dribbled head is cut off before it ends");
    assert!(bounds.contains(&after), "dribbled head closed after {after:?}");

    // The server itself is fine.
    let ok = app.client.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(ok.status(), StatusCode::OK);
}

/// An idle keep-alive connection has its own, longer bound: it outlives
/// the header timeout between two requests, then closes after the idle
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_has_its_own_timeout() {
    let app = sqlite_with(|c| {
        c.header_timeout_ms = 300;
        c.idle_timeout_ms = 1200;
    })
    .await;
    let mut conn = connect(&app).await;
    conn.write_all(healthz_request()).await.expect("write");
    let first = read_response(&mut conn, Duration::from_secs(2)).await;
    assert_eq!(first.status, 200, "{first:?}");

    // Twice the header timeout, well within the idle timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    conn.write_all(healthz_request()).await.expect("the connection is still open");
    let second = read_response(&mut conn, Duration::from_secs(2)).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json(), json!({"status": "ok"}));
    let answered = Instant::now();

    let (after, sent) = closed_after(&mut conn, answered, Duration::from_millis(2400)).await;
    assert!(sent.is_empty(), "{:?}", String::from_utf8_lossy(&sent));
    assert!(after >= Duration::from_millis(960), "idle connection closed after {after:?}, before the idle timeout");
}

/// With every connection slot taken by silent sockets, a new client waits
/// (in the backlog) until the header timeout frees a slot, then is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let app = sqlite_with(|c| {
        c.max_connections = 2;
        c.header_timeout_ms = 700;
    })
    .await;
    let opened = Instant::now();
    let mut a = connect(&app).await;
    let mut b = connect(&app).await;
    // Let the server take both before the third arrives.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let start = Instant::now();
    let client = reqwest::Client::new();
    let resp = tokio::time::timeout(Duration::from_secs(4), client.get(app.url("/healthz")).send())
        .await
        .expect("served once a slot frees")
        .expect("request");
    let waited = start.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(waited >= Duration::from_millis(500), "served after {waited:?}: the cap of 2 was not enforced");
    assert!(waited < Duration::from_millis(2500), "served after {waited:?}");

    for silent in [&mut a, &mut b] {
        let (after, _) = closed_after(silent, opened, Duration::from_secs(3)).await;
        assert!(after >= Duration::from_millis(560), "closed after {after:?}");
    }
}

/// A connection from `127.0.0.<last>` that has been served once and stays
/// open (keep-alive).
async fn served_from(app: &TestApp, last: u8) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0))).expect("bind");
    let mut stream = socket.connect(address(app).parse().expect("address")).await.expect("connect");
    stream.write_all(healthz_request()).await.expect("write");
    assert_eq!(read_response(&mut stream, Duration::from_secs(3)).await.status, 200);
    stream
}

/// At most `max_connections_per_address` connections from one peer: the
/// next one from it is closed at once, while another address is served at
/// once; a trusted proxy is not held to it.
async fn one_address_cannot_take_every_connection(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.max_connections_per_address = 20;
        c.trusted_proxies = "127.0.0.82".into();
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(served_from(&app, 80).await);
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 80], 0))).expect("bind");
    let mut over = socket.connect(address(&app).parse().expect("address")).await.expect("connect");
    let _ = over.write_all(healthz_request()).await;
    let (_, answered) = closed_after(&mut over, Instant::now(), Duration::from_secs(2)).await;
    assert!(answered.is_empty(), "the 21st connection was answered: {:?}", String::from_utf8_lossy(&answered));
    // Another address is served at once.
    let started = Instant::now();
    let _newcomer = served_from(&app, 81).await;
    assert!(started.elapsed() < Duration::from_millis(500), "a newcomer waited {:?}", started.elapsed());
    // One closes: the address may open one more.
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.push(served_from(&app, 80).await);
    // The proxy is every client's peer: it is not held to the cap.
    for _ in 0..25 {
        held.push(served_from(&app, 82).await);
    }
}

/// A head over 32 KiB is answered 431; one of 30 KiB is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_32_kib_gets_431() {
    let app = sqlite_with(|_| {}).await;

    let mut big = connect(&app).await;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: ciam.test\r\nX-Big: {}\r\n\r\n", "a".repeat(33 * 1024));
    // The server may stop reading once it has seen enough.
    let _ = big.write_all(head.as_bytes()).await;
    let got = read_response(&mut big, Duration::from_secs(3)).await;
    assert_eq!(got.status, 431, "{got:?}");

    let mut fits = connect(&app).await;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: ciam.test\r\nX-Big: {}\r\n\r\n", "a".repeat(30 * 1024));
    fits.write_all(head.as_bytes()).await.expect("write");
    let got = read_response(&mut fits, Duration::from_secs(3)).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.json(), json!({"status": "ok"}));

    // The same through an ordinary client.
    let resp = app.client.get(app.url("/healthz")).header("X-Big", "b".repeat(30 * 1024)).send().await;
    assert_eq!(resp.expect("request").status(), StatusCode::OK);
}

// --- bodies that break or stop ---

/// A chunked body whose chunk-size line is garbage: 400 `REQ.0009` in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunked_framing_answers_req_0009() {
    let app = sqlite_with(|_| {}).await;
    let client_id = app.default_app().await;
    let mut conn = connect(&app).await;
    let head = login_head(&client_id, "Transfer-Encoding: chunked\r\n");
    conn.write_all(head.as_bytes()).await.expect("write head");
    let _ = conn.write_all(b"zz\r\n{\"mobile\":\"15200000000\"}\r\n0\r\n\r\n").await;
    let got = read_response(&mut conn, Duration::from_secs(4)).await;
    assert_eq!(got.status, 400, "{got:?}");
    assert!(got.header("content-type").is_some_and(|ct| ct.starts_with("application/json")), "{got:?}");
    let body = got.json();
    assert_eq!(body["error_code"], "IDAAS.SDK.REQ.0009", "{body}");
    assert_eq!(body["error_msg"], "The request could not be read", "{body}");
}

/// A console form that stops short of its `Content-Length`: a 408 page
/// after the body timeout, not the request deadline's 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_console_form_gets_a_408_page() {
    let app = sqlite_with(|_| {}).await;
    let mut conn = connect(&app).await;
    let head = "POST /console/sign-in HTTP/1.1\r\nHost: ciam.test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=";
    conn.write_all(head.as_bytes()).await.expect("write");
    let sent = Instant::now();
    let got = read_response(&mut conn, Duration::from_secs(6)).await;
    assert_eq!(got.status, 408, "{got:?}");
    assert!(sent.elapsed() < Duration::from_millis(4400), "answered after {:?}", sent.elapsed());
    assert!(got.header("content-type").is_some_and(|ct| ct.starts_with("text/html")), "{got:?}");
    assert!(String::from_utf8_lossy(&got.body).contains("The form did not arrive in time"), "{got:?}");
}

/// Pages have an icon, so a browser logs no 404 for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_an_icon() {
    let app = sqlite_with(|_| {}).await;
    let page = app.client.get(app.url("/console/sign-in")).send().await.expect("page").text().await.expect("html");
    assert!(page.contains(r#"<link rel="icon" type="image/svg+xml" href="/console/assets/favicon.svg">"#), "{page}");
    for path in ["/console/assets/favicon.svg", "/favicon.ico"] {
        let icon = app.client.get(app.url(path)).send().await.expect("icon");
        assert_eq!(icon.status(), StatusCode::OK, "{path}");
        assert_eq!(icon.headers()["content-type"], "image/svg+xml");
        assert!(icon.text().await.expect("svg").starts_with("<svg"));
    }
}

/// A JSON body that names a key twice is refused like a malformed one: a
/// proxy that reads the first `password` must see what ciam would check.
async fn a_json_body_with_a_key_named_twice_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client_id = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let body = format!(r#"{{"mobile": "15200000000", "password": "Wrong-pass1", "password": "{PASSWORD}"}}"#);
    let req = app.sdk(Method::POST, "/login/mobile-pwd", &client_id).header("Content-Type", "application/json");
    let got = read(req.body(body).send().await.expect("request")).await;
    assert_error(&got, 400, "IDAAS.SDK.REQ.0002", None);
    let nested = r#"{"name": "x", "tip": {"en": "a", "en": "b"}}"#;
    let req = app.client.put(app.url("/api/v2/admin/policies/password")).bearer_auth(ADMIN_TOKEN);
    let got = read(req.header("Content-Type", "application/json").body(nested).send().await.expect("admin")).await;
    assert_error(&got, 400, "IDAAS.ADMIN.REQ.0001", None);
    // Nothing was counted: the right password logs in with all attempts left.
    app.login_ok(&client_id, "15200000000", PASSWORD).await;
}

/// A body that stops short of its `Content-Length`: 408 `REQ.0008` after the
/// body timeout (3 s), not the request deadline's 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sdk_body_gets_408() {
    let app = sqlite_with(|_| {}).await;
    let client_id = app.default_app().await;
    let mut conn = connect(&app).await;
    let head = login_head(&client_id, "Content-Length: 100\r\n");
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(b"{\"mobile\":").await.expect("write 10 bytes");
    let sent = Instant::now();
    let got = read_response(&mut conn, Duration::from_secs(6)).await;
    let after = sent.elapsed();
    assert_eq!(got.status, 408, "{got:?}");
    assert_eq!(got.json()["error_code"], "IDAAS.SDK.REQ.0008", "{got:?}");
    assert!((Duration::from_millis(2500)..=Duration::from_millis(4500)).contains(&after), "answered after {after:?}");
}

/// The same on an admin call: 408 `IDAAS.ADMIN.REQ.0004`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_admin_body_gets_408() {
    let app = sqlite_with(|_| {}).await;
    let mut conn = connect(&app).await;
    let head = format!(
        "POST /api/v2/admin/apps HTTP/1.1\r\nHost: ciam.test\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(b"{\"name\":\"x").await.expect("write 10 bytes");
    let sent = Instant::now();
    let got = read_response(&mut conn, Duration::from_secs(6)).await;
    let after = sent.elapsed();
    assert_eq!(got.status, 408, "{got:?}");
    assert_eq!(got.json()["error_code"], "IDAAS.ADMIN.REQ.0004", "{got:?}");
    assert!((Duration::from_millis(2500)..=Duration::from_millis(4500)).contains(&after), "answered after {after:?}");
    // Nothing was created.
    let (status, apps) = app.admin(Method::GET, "/apps", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!apps.to_string().contains("\"x\""), "{apps}");
}

// --- errors stay JSON ---

fn is_json(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// Sends `req` and checks the answer is JSON; returns status and body.
async fn json_answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request");
    assert!(is_json(&resp), "{} answered {:?}", resp.url(), resp.headers().get("content-type"));
    read(resp).await
}

/// Admin refusals use the admin API's own codes, in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_refusals_answer_admin_codes_in_json() {
    let app = sqlite_with(|_| {}).await;
    let admin = |method: Method, path: &str| {
        app.client.request(method, app.url(&format!("/api/v2/admin{path}"))).bearer_auth(ADMIN_TOKEN)
    };

    // A path that is not UTF-8.
    let got = json_answer(admin(Method::GET, "/users/%ff")).await;
    assert_error(&got, 400, "IDAAS.ADMIN.REQ.0005", None);

    // No token: 401 with a Bearer challenge.
    let resp = app.client.get(app.url("/api/v2/admin/users/%ff")).send().await.expect("request");
    let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(challenge.as_deref().is_some_and(|c| c.starts_with("Bearer")), "{challenge:?}");
    assert!(is_json(&resp));
    assert_error(&read(resp).await, 401, "IDAAS.ADMIN.AUTH.0001", None);

    let got = json_answer(admin(Method::GET, "/nope")).await;
    assert_error(&got, 404, "IDAAS.ADMIN.REQ.0006", None);
    let got = json_answer(admin(Method::DELETE, "/apps")).await;
    assert_error(&got, 405, "IDAAS.ADMIN.REQ.0007", None);
    let got = json_answer(admin(Method::PUT, "/users")).await;
    assert_error(&got, 405, "IDAAS.ADMIN.REQ.0007", None);

    let huge = json!({"name": "x".repeat(70 * 1024)});
    let got = json_answer(admin(Method::POST, "/apps").json(&huge)).await;
    assert_error(&got, 413, "IDAAS.ADMIN.REQ.0003", None);

    // The SDK keeps its own code.
    let got = json_answer(app.client.get(app.url("/api/v2/sdk/nope"))).await;
    assert_error(&got, 404, "IDAAS.SDK.REQ.0005", Some("The requested API does not exist"));
}

// --- headers ---

#[track_caller]
fn assert_api_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(value("cache-control").as_deref(), Some("no-store"), "{what}: {headers:?}");
    assert_eq!(value("x-content-type-options").as_deref(), Some("nosniff"), "{what}: {headers:?}");
}

/// Every answer under `/api/` carries `Cache-Control: no-store` and
/// `X-Content-Type-Options: nosniff`; `bearer` in lower case is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_carry_no_store_and_nosniff() {
    let app = sqlite_with(|_| {}).await;
    let client_id = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;

    let login = app
        .sdk(Method::POST, "/login/mobile-pwd", &client_id)
        .json(&json!({"mobile": "15200000000", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(login.status(), StatusCode::OK);
    assert_api_headers("login success", login.headers());

    let wrong = app
        .sdk(Method::POST, "/login/mobile-pwd", &client_id)
        .json(&json!({"mobile": "15200000000", "password": "wrong"}))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_api_headers("login failure", wrong.headers());

    let missing = app.client.get(app.url("/api/v2/sdk/nope")).send().await.expect("request");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_api_headers("unknown SDK route", missing.headers());

    let apps = app.client.get(app.url("/api/v2/admin/apps")).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(apps.status(), StatusCode::OK);
    assert_api_headers("admin GET", apps.headers());

    let denied = app.client.get(app.url("/api/v2/admin/apps")).send().await.expect("request");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_api_headers("admin 401", denied.headers());

    let keys = app.client.get(app.url("/api/v1/oauth2/keys")).send().await.expect("request");
    assert_eq!(keys.status(), StatusCode::OK);
    assert_api_headers("JWKS", keys.headers());

    // The scheme is case-insensitive (RFC 7235).
    let lower = app
        .client
        .get(app.url("/api/v2/admin/apps"))
        .header("Authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .expect("request");
    let (status, body) = read(lower).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains(&client_id), "{body}");
    let shouting = app
        .client
        .get(app.url("/api/v2/admin/apps"))
        .header("Authorization", format!("BEARER {ADMIN_TOKEN}"))
        .send()
        .await
        .expect("request");
    assert_eq!(shouting.status(), StatusCode::OK);
    // The token itself is not case-insensitive.
    let wrong_token = app
        .client
        .get(app.url("/api/v2/admin/apps"))
        .header("Authorization", format!("bearer {}", ADMIN_TOKEN.to_uppercase()))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_token.status(), StatusCode::UNAUTHORIZED);
}

// --- logout ---

async fn logout(app: &TestApp, method: Method, client_id: &str, session: &str) -> (StatusCode, Value) {
    read(app.sdk(method, "/logout", client_id).header("session-token", session).send().await.expect("request")).await
}

/// Logout takes the calling app's session only; another app's live session
/// is refused with `PARAM.0023` and stays usable by its own app.
async fn logout_takes_only_the_calling_apps_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let own = app.default_app().await;
    let other = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;
    let login = app.login_ok(&own, "15200000000", PASSWORD).await;
    let session = login["session_token"].as_str().expect("session_token");

    for method in [Method::POST, Method::GET] {
        assert_error(&logout(&app, method.clone(), &other, session).await, 400, "IDAAS.SDK.PARAM.0023", None);
    }
    let (status, refreshed) = app.refresh(&own, session).await;
    assert_eq!(status, StatusCode::OK, "another app's logout ended the session: {refreshed}");
    assert_eq!(refreshed["session_token"], session);

    // A token nobody has: nothing to end, and no way to tell.
    let unknown = logout(&app, Method::POST, &other, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(unknown, (StatusCode::OK, json!({"status": "SUCCESS"})));

    let out = logout(&app, Method::POST, &own, session).await;
    assert_eq!(out, (StatusCode::OK, json!({"status": "SUCCESS"})));
    assert_error(&app.refresh(&own, session).await, 400, "IDAAS.SDK.PARAM.0023", None);
}
