//! The test harness: a real server on a free port with a fresh database,
//! and an HTTP client that speaks to it as a client app would.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam::{Config, Server};
use ciam_core::OffsetClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use ciam_testdb::{Backend, TestDatabase};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789-abcdefghij";
pub const PASSWORD: &str = "Passw0rd!";

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<OffsetClock>,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub db: Arc<TestDatabase>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = Arc::new(TestDatabase::create(backend).await);
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            database_url: Some(db.url.clone()),
            admin_token: Some(ADMIN_TOKEN.into()),
            issuer: Some("https://ciam.test".into()),
            ..Config::default()
        };
        tweak(&mut config);
        Self::start(config, db).await
    }

    /// Another instance on the same database (and the same clock offset).
    pub async fn start(config: Config, db: Arc<TestDatabase>) -> Self {
        let clock = Arc::new(OffsetClock::default());
        let server = Server::build_with_clock(&config, clock.clone()).await.expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = server
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { base, client: reqwest::Client::new(), clock, config, stop: Some(stop), server: Some(handle), db }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    // --- admin API ---

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(&format!("/api/v2/admin{path}"))).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        read(resp).await
    }

    pub async fn create_app(&self, body: Value) -> String {
        let (status, app) = self.admin(Method::POST, "/apps", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        app["client_id"].as_str().expect("client_id").to_owned()
    }

    pub async fn default_app(&self) -> String {
        self.create_app(json!({"name": "Demo"})).await
    }

    pub async fn create_user(&self, mobile: &str, password: &str) -> String {
        self.create_user_with(json!({"mobile": mobile, "password": password})).await
    }

    pub async fn create_user_with(&self, body: Value) -> String {
        let (status, user) = self.admin(Method::POST, "/users", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user["id"].as_str().expect("id").to_owned()
    }

    pub async fn set_lockout(&self, max_failures: u32, lock_seconds: i64) {
        let body = json!({"max_failures": max_failures, "lock_seconds": lock_seconds});
        let (status, _) = self.admin(Method::PUT, "/policies/lockout", Some(body)).await;
        assert_eq!(status, StatusCode::OK);
    }

    // --- SDK ---

    /// A request with the seed's device headers and `X-client-id`.
    pub fn sdk(&self, method: Method, path: &str, client_id: &str) -> reqwest::RequestBuilder {
        self.sdk_from(&self.client, method, path, client_id)
    }

    /// A request as [`TestApp::sdk`] makes it, sent by `client`.
    pub fn sdk_from(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        client_id: &str,
    ) -> reqwest::RequestBuilder {
        sdk_at(client, &self.base, method, path, client_id)
    }

    pub async fn login(&self, client_id: &str, mobile: &str, password: &str) -> (StatusCode, Value) {
        self.login_lang(client_id, mobile, password, None).await
    }

    pub async fn login_lang(
        &self,
        client_id: &str,
        mobile: &str,
        password: &str,
        lang: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .sdk(Method::POST, "/login/mobile-pwd", client_id)
            .json(&json!({"mobile": mobile, "password": password}));
        if let Some(lang) = lang {
            req = req.header("X-L", lang);
        }
        read(req.send().await.expect("request")).await
    }

    /// A login sent by `client` (e.g. one bound to another loopback address).
    pub async fn login_from(
        &self,
        client: &reqwest::Client,
        client_id: &str,
        mobile: &str,
        password: &str,
    ) -> (StatusCode, Value) {
        let req = self
            .sdk_from(client, Method::POST, "/login/mobile-pwd", client_id)
            .json(&json!({"mobile": mobile, "password": password}));
        read(req.send().await.expect("request")).await
    }

    /// Logs in and returns the SUCCESS body.
    pub async fn login_ok(&self, client_id: &str, mobile: &str, password: &str) -> Value {
        let (status, body) = self.login(client_id, mobile, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "SUCCESS", "{body}");
        body
    }

    pub async fn refresh(&self, client_id: &str, session_token: &str) -> (StatusCode, Value) {
        let req =
            self.sdk(Method::POST, "/sso/session-token/id-token", client_id).header("session-token", session_token);
        read(req.send().await.expect("request")).await
    }

    pub async fn jwks(&self) -> Value {
        let resp = self.client.get(self.url("/api/v1/oauth2/keys")).send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Status and JSON body (`null` when the body is empty).
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts an error answer: status, code and (when given) message.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, message: Option<&str>) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error_code"], code, "{}", got.1);
    if let Some(message) = message {
        assert_eq!(got.1["error_msg"], message, "{}", got.1);
    }
}

/// An independent JWT check (not jsonwebtoken): split, decode, find the key
/// by `kid` in the JWKS, verify the signature with the raw key: PKCS#1 v1.5
/// SHA-256 with the modulus and exponent for RS256, Ed25519 with `x` for
/// EdDSA. Returns (header, claims).
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Result<(Value, Value), String> {
    use aws_lc_rs::signature::{ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, sig_b64] = parts.as_slice() else {
        return Err("not three parts".into());
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header_b64)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(claims_b64)?).map_err(|e| e.to_string())?;
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = jwks["keys"].as_array().ok_or("no keys")?.iter().find(|k| k["kid"] == kid).ok_or("kid not in JWKS")?;
    if key["alg"] != header["alg"] {
        return Err(format!("alg {} signed with a {} key", header["alg"], key["alg"]));
    }
    let message = format!("{header_b64}.{claims_b64}");
    let signature = decode(sig_b64)?;
    let verified = match (header["alg"].as_str(), key["kty"].as_str(), key["crv"].as_str()) {
        (Some("RS256"), Some("RSA"), None) => {
            let n = decode(key["n"].as_str().ok_or("no n")?)?;
            let e = decode(key["e"].as_str().ok_or("no e")?)?;
            RsaPublicKeyComponents { n: &n, e: &e }.verify(&RSA_PKCS1_2048_8192_SHA256, message.as_bytes(), &signature)
        }
        (Some("EdDSA"), Some("OKP"), Some("Ed25519")) => {
            let x = decode(key["x"].as_str().ok_or("no x")?)?;
            UnparsedPublicKey::new(&ED25519, &x).verify(message.as_bytes(), &signature)
        }
        _ => return Err(format!("alg {} with key {key}", header["alg"])),
    };
    verified.map_err(|_| "bad signature".to_string())?;
    Ok((header, claims))
}

/// Collects concurrent failed logins: the "Remaining times" each
/// `LOGIN.0002` gave, and how many answered `LOGIN.0001`. Any other answer
/// fails the test.
pub async fn tally_failures(tasks: Vec<tokio::task::JoinHandle<(StatusCode, Value)>>) -> (Vec<u32>, usize) {
    let (mut remaining, mut locked) = (Vec::new(), 0);
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        match body["error_code"].as_str() {
            Some("IDAAS.SDK.LOGIN.0002") => {
                let msg = body["error_msg"].as_str().expect("msg");
                remaining.push(msg.rsplit(' ').next().expect("count").parse::<u32>().expect("number"));
            }
            Some("IDAAS.SDK.LOGIN.0001") => locked += 1,
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    (remaining, locked)
}

/// A client whose connections come from `127.0.0.<last>`: loopback gives
/// a test as many client addresses as it needs.
pub fn client_at(last: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().expect("client")
}

/// A `ciam serve` process whose standard error is collected, killed on
/// drop.
pub struct Serving {
    pub child: Child,
    pub base: String,
    pub metrics: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Stops the process and returns what it wrote to standard error.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log).expect("read the log");
        }
        log
    }
}

/// An SDK request to the server at `base`, with the seed's device headers
/// and `X-client-id`.
pub fn sdk_at(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    client_id: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{base}/api/v2/sdk{path}"))
        .header("X-operating-sys-version", "windows10.1.1")
        .header("X-device-fingerprint", "156aysdna213sc50")
        .header("X-device-ip", "192.168.1.2")
        .header("X-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X)")
        .header("X-client-id", client_id)
}

/// An admin call to the server at `base` that must succeed; its body.
pub async fn admin_at(client: &reqwest::Client, base: &str, method: Method, path: &str, body: Value) -> Value {
    let resp = client.request(method, format!("{base}/api/v2/admin{path}")).bearer_auth(ADMIN_TOKEN).json(&body);
    let (status, body) = read(resp.send().await.expect("admin call")).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts `ciam serve` on `database_url` with `env`, and waits until it
/// is ready. The listening address is given as a flag, over an environment
/// variable that names a port nobody can bind: the flag wins.
pub async fn serve(database_url: &str, env: &[(&str, &str)]) -> Serving {
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_ciam"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CIAM_LISTEN", "127.0.0.1:1")
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CIAM_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let serving = Serving {
        child: command.spawn().expect("spawn ciam"),
        base: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{}/readyz", serving.base)).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return serving;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ciam serve did not become ready: {}", serving.stop());
}

/// The samples of a Prometheus text page, by series (`name{labels}`).
pub fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Through the admin API at `base`: an app "Shop" and the user
/// 15200000000 with [`PASSWORD`]; returns the app's client id.
pub async fn shop_with_a_user(http: &reqwest::Client, base: &str) -> String {
    let admin = |method: Method, path: &str, body: Value| {
        http.request(method, format!("{base}/api/v2/admin{path}")).bearer_auth(ADMIN_TOKEN).json(&body).send()
    };
    let app: Value =
        admin(Method::POST, "/apps", json!({"name": "Shop"})).await.expect("app").json().await.expect("json");
    let created =
        admin(Method::POST, "/users", json!({"mobile": "15200000000", "password": PASSWORD})).await.expect("user");
    assert_eq!(created.status(), StatusCode::CREATED);
    app["client_id"].as_str().expect("client_id").to_owned()
}
