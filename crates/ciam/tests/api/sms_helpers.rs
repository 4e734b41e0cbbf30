//! What the SMS tests share: a gateway on loopback standing in for the
//! operator's webhook (it checks every signature and can fail on purpose)
//! and a captcha verify URL; a server sending codes to it; the calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, read};

pub const WEBHOOK_SECRET: &str = "whsec-0123456789abcdef0123456789abcdef";
pub const MOBILE: &str = "15200000000";
pub const E164: &str = "+8615200000000";

/// What the gateway saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every delivered message (a 2xx answer), in order.
    pub messages: Vec<Value>,
    /// Posts whose signature did not verify.
    pub bad_signatures: usize,
    /// Every post, answered or failed.
    pub posts: usize,
    /// Posts still to answer with a 500.
    pub fail_next: usize,
}

/// An SMS gateway and captcha service on loopback.
#[derive(Clone)]
pub struct Gateway {
    pub base: String,
    pub seen: Arc<Mutex<Seen>>,
}

/// Whether `header` signs `body` with [`WEBHOOK_SECRET`]: `t=…,v1=hex
/// HMAC-SHA256(secret, "t.body")`, computed here as a receiver would.
fn signed(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, WEBHOOK_SECRET.as_bytes());
    let Ok(expected) =
        (0..v1.len() / 2).map(|i| u8::from_str_radix(&v1[i * 2..i * 2 + 2], 16)).collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    aws_lc_rs::hmac::verify(&key, &message, &expected).is_ok()
}

async fn sms(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let mut seen = seen.lock().expect("gateway");
    seen.posts += 1;
    let signature = headers.get("x-ciam-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !signed(signature, &body) {
        seen.bad_signatures += 1;
        return AxumStatus::UNAUTHORIZED;
    }
    if seen.fail_next > 0 {
        seen.fail_next -= 1;
        return AxumStatus::INTERNAL_SERVER_ERROR;
    }
    seen.messages.push(serde_json::from_slice(&body).expect("JSON"));
    AxumStatus::OK
}

/// A siteverify: `success` when the response is `human` and the secret right.
async fn siteverify(body: Bytes) -> axum::Json<Value> {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).expect("form");
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let success =
        get("secret") == Some("captcha-secret") && get("response") == Some("human") && get("remoteip").is_some();
    axum::Json(json!({"success": success}))
}

impl Gateway {
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let router =
            Router::new().route("/sms", post(sms)).route("/siteverify", post(siteverify)).with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("gateway") });
        Gateway { base, seen }
    }

    /// The messages delivered once `n` have been, waiting up to 10 s.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let messages = self.seen.lock().expect("gateway").messages.clone();
            if messages.len() >= n || started.elapsed() > Duration::from_secs(10) {
                assert!(messages.len() >= n, "{} of {n} messages delivered", messages.len());
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The code of the last message delivered, once `n` have been.
    pub async fn code(&self, n: usize) -> String {
        let messages = self.wait_for(n).await;
        messages[n - 1]["code"].as_str().expect("code").to_owned()
    }

    /// How many were delivered (after a moment for late ones).
    pub async fn delivered(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.seen.lock().expect("gateway").messages.len()
    }
}

/// A server that sends codes to a new gateway, with the SMS policy's
/// limits out of the way unless a test sets them.
pub async fn spawn_sms(backend: Backend) -> (TestApp, Gateway) {
    let gateway = Gateway::start().await;
    let url = format!("{}/sms", gateway.base);
    let app = TestApp::spawn_with(backend, |c| {
        c.sms_provider = Some("webhook".into());
        c.sms_webhook_url = Some(url);
        c.sms_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    (app, gateway)
}

/// Sets the SMS policy's fields in `body`.
pub async fn sms_policy(app: &TestApp, body: Value) -> Value {
    let (status, policy) = app.admin(Method::PUT, "/policies/sms", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    policy
}

/// `POST /sms/send`; the answer and its `Retry-After`.
pub async fn send(app: &TestApp, client_id: &str, mobile: &str, kind: &str) -> (StatusCode, Value, Option<i64>) {
    send_from(app, &app.client, client_id, json!({"mobile": mobile, "type": kind})).await
}

/// `POST /sms/send` of `body` by `client`.
pub async fn send_from(
    app: &TestApp,
    client: &reqwest::Client,
    client_id: &str,
    body: Value,
) -> (StatusCode, Value, Option<i64>) {
    let resp = app.sdk_from(client, Method::POST, "/sms/send", client_id).json(&body).send().await.expect("send");
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (status, body) = read(resp).await;
    (status, body, retry)
}

/// A call that takes a code: `path` with `body`.
pub async fn with_code(app: &TestApp, client_id: &str, path: &str, body: Value) -> (StatusCode, Value) {
    read(app.sdk(Method::POST, path, client_id).json(&body).send().await.expect("request")).await
}

/// `POST /login/mobile-verify-code`.
pub async fn code_login(app: &TestApp, client_id: &str, mobile: &str, code: &str) -> (StatusCode, Value) {
    with_code(app, client_id, "/login/mobile-verify-code", json!({"mobile": mobile, "verify_code": code})).await
}

/// A code that is not `code`.
pub fn other_than(code: &str) -> String {
    if code == "000000" { "000001".into() } else { "000000".into() }
}

/// A login with `code` refused as a wrong code.
pub async fn assert_wrong(app: &TestApp, client_id: &str, code: &str) {
    let answer = code_login(app, client_id, MOBILE, code).await;
    crate::helpers::assert_error(&answer, 400, "IDAAS.SDK.CAPTCHA.0007", Some("Incorrect verification code"));
}
