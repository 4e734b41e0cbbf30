//! Behind a real proxy (docs/api.md §7, README "Behind nginx"): Debian's
//! nginx terminates TLS with a certificate the test makes, in front of two
//! `ciam serve` processes on one PostgreSQL database, with the server block
//! the README gives. Through it: the SDK login, the console (its cookie
//! `Secure`), the hosted login page and a code flow; the client's address
//! is the one nginx saw, whatever `X-Forwarded-For` it sent; and each
//! instance is restarted in turn under a steady load of 8 clients without
//! one failed answer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestDatabase, free_port};
use crate::oidc_helpers::{hidden, query};
use crate::tls_client::Https;

const REDIRECT: &str = "https://app.example/cb";

/// The nginx server block of the README, for `port` in front of `a` and `b`.
pub fn server_block(port: u16, a: u16, b: u16, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "upstream ciam {{
    server 127.0.0.1:{a} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:{b} max_fails=1 fail_timeout=1s;
    keepalive 32;
}}
server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    client_max_body_size 1m;
    location / {{
        proxy_pass http://ciam;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto https;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_next_upstream_tries 2;
    }}
}}"
    )
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let done = Command::new(program).args(args).current_dir(dir).output().expect(program);
    assert!(done.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&done.stderr));
}

/// A CA and a certificate for 127.0.0.1 it signed, in `dir`.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = [
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ciam test CA"],
    ];
    run("openssl", &ca.concat(), dir);
    let leaf = [&["req"][..], &ec, &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]];
    run("openssl", &leaf.concat(), dir);
    let ext = "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("leaf.ext"), ext).expect("ext");
    let sign = ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"];
    run("openssl", &[&sign[..], &["-out", "cert.pem", "-days", "2", "-extfile", "leaf.ext"]].concat(), dir);
}

/// nginx in the foreground with `block`, its temporary files in `dir`.
fn nginx(dir: &Path, block: &str) -> Child {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n client_body_temp_path {d}/body;\n \
         proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n \
         scgi_temp_path {d}/scgi;\n{block}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let mut nginx = Command::new("nginx");
    nginx.args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf"), "-e", &format!("{d}/error.log")]);
    nginx.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nginx (apt-get install nginx)")
}

/// One `ciam serve` on `port`.
struct Instance {
    child: Child,
    port: u16,
}

impl Instance {
    async fn start(port: u16, database_url: &str, issuer: &str, dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_ciam"))
            .arg("serve")
            .env("CIAM_LISTEN", format!("127.0.0.1:{port}"))
            .env("CIAM_DATABASE_URL", database_url)
            .env("CIAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CIAM_METRICS_LISTEN", "")
            .env("CIAM_ISSUER", issuer)
            .env("CIAM_TRUSTED_PROXIES", "127.0.0.1")
            .env("CIAM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("ciam-{port}.log"))).expect("log"))
            .spawn()
            .expect("ciam serve");
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let started = Instant::now();
        while !reqwest::get(&ready).await.is_ok_and(|r| r.status().is_success()) {
            assert!(started.elapsed() < Duration::from_secs(30), "instance on {port} not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Instance { child, port }
    }

    /// SIGTERM; whether it then exits 0 within 20 s.
    async fn stop(mut self) -> bool {
        run("kill", &["-TERM", &self.child.id().to_string()], Path::new("/"));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK login through `https`; the status or error code, or why none.
async fn login(https: &Https, client_id: &str, extra: &[(&str, &str)], password: &str) -> String {
    let mut headers =
        vec![("X-operating-sys-version", "ios17"), ("X-device-fingerprint", "dev-1"), ("X-agent", "proxy-test")];
    headers.push(("X-client-id", client_id));
    headers.extend_from_slice(extra);
    let body = json!({"mobile": "15200000000", "password": password});
    match https.json("/api/v2/sdk/login/mobile-pwd", &headers, &body).await {
        Ok(answer) => {
            let json = answer.json();
            json["status"]
                .as_str()
                .or(json["error_code"].as_str())
                .map_or(format!("{} {}", answer.status, answer.body), str::to_owned)
        }
        Err(e) => e,
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ciam-proxy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn the_readme_gives_the_server_block_tested_here() {
    let readme = include_str!("../../../../README.md");
    let block = server_block(443, 8081, 8082, Path::new("/etc/ciam/tls"));
    let block = block.replace("listen 127.0.0.1:443 ssl;", "listen 443 ssl;");
    assert!(readme.contains(&block), "README's nginx block differs from:\n{block}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_tls_two_instances_serve_and_restart_without_a_failed_answer() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let dir = temp_dir();
    certificates(&dir);
    let (port, a, b) = (free_port(), free_port(), free_port());
    let issuer = format!("https://127.0.0.1:{port}");
    let mut instances =
        vec![Instance::start(a, &db.url, &issuer, &dir).await, Instance::start(b, &db.url, &issuer, &dir).await];
    let mut proxy = nginx(&dir, &server_block(port, a, b, &dir));
    let ca = std::fs::read(dir.join("ca.pem")).expect("ca.pem");
    let https = Https::new(&issuer, &ca, IpAddr::from([127, 0, 0, 1]));
    let started = Instant::now();
    while https.send("GET", "/readyz", &[], Vec::new()).await.map(|a| a.status) != Ok(200) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not answer: {:?}",
            std::fs::read_to_string(dir.join("error.log"))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client_id = set_up(&https).await;

    forwarded_addresses_are_the_clients_own(&issuer, &ca, &client_id).await;
    the_console_and_the_code_flow_go_through(&https, &client_id).await;

    // Rolling restart under load: 8 clients log in without pause.
    let (stop, ok, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::<Vec<String>>::default()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (https, client_id, stop, ok, failed) =
            (https.clone(), client_id.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match login(&https, &client_id, &[], PASSWORD).await.as_str() {
                    "SUCCESS" => drop(ok.fetch_add(1, Ordering::Relaxed)),
                    other => failed.lock().expect("failed").push(other.to_owned()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..2 {
        let instance = instances.remove(0);
        let port = instance.port;
        assert!(instance.stop().await, "the instance on {port} exits 0 after SIGTERM");
        instances.push(Instance::start(port, &db.url, &issuer, &dir).await);
        // nginx keeps a server it saw fail out of its rotation for
        // `fail_timeout` (1 s), then tries it with one request: the next
        // restart waits until it is back in the rotation, with room for a
        // machine busy with the rest of the test suite.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    let failed = failed.lock().expect("failed").clone();
    let ok = ok.load(Ordering::Relaxed);
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let nginx_said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[error]") || l.contains("[warn]"))
        .filter(|l| !l.contains("no live upstreams"))
        .take(16)
        .collect();
    let first: Vec<String> = failed.iter().take(3).map(|f| f.chars().take(80).collect()).collect();
    let total = ok + failed.len() as u64;
    assert!(failed.is_empty(), "{} of {total} logins failed: {first:?}; nginx: {nginx_said:#?}", failed.len());
    assert!(ok > 40, "only {ok} logins in the restarts");
    eprintln!("{ok} logins through nginx while each instance restarted, none failed");
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An app with a redirect URI and a user; the app's client id.
async fn set_up(https: &Https) -> String {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let app = https.json("/api/v2/admin/apps", &headers, &json!({"name": "Shop", "redirect_uris": [REDIRECT]})).await;
    let client_id = app.expect("app").json()["client_id"].as_str().expect("client_id").to_owned();
    let user =
        https.json("/api/v2/admin/users", &headers, &json!({"mobile": "15200000000", "password": PASSWORD})).await;
    assert_eq!(user.expect("user").status, 201);
    client_id
}

/// A client at 127.0.0.2 that sends its own `X-Forwarded-For`: the audit
/// log, like the throttle, has the address nginx saw.
async fn forwarded_addresses_are_the_clients_own(issuer: &str, ca: &[u8], client_id: &str) {
    let https = Https::new(issuer, ca, IpAddr::from([127, 0, 0, 2]));
    assert_eq!(
        login(&https, client_id, &[("X-Forwarded-For", "203.0.113.9")], "Wrong-pass1").await,
        "IDAAS.SDK.LOGIN.0002"
    );
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let events = https.send("GET", "/api/v2/admin/audit-events?limit=5", &[("authorization", &auth)], Vec::new()).await;
    let events: Value = events.expect("audit").json();
    let wrong =
        events.as_array().expect("events").iter().find(|e| e["outcome"] == "IDAAS.SDK.LOGIN.0002").expect("the event");
    assert_eq!(wrong["ip"], "127.0.0.2", "{wrong}");

    // The throttle counts that address, whatever it claims: with two
    // failures allowed, a second claimed address does not buy a third.
    let throttle = |max: u32| json!({"ip_max_failures": max, "ip_window_seconds": 600});
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let policy = "/api/v2/admin/policies/throttle";
    let set = https.send("PUT", policy, &headers, throttle(2).to_string().into_bytes()).await;
    assert_eq!(set.expect("policy").status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = login(&https, client_id, &[("X-Forwarded-For", "198.51.100.7")], "Wrong-pass1").await;
    assert_eq!(second, "IDAAS.SDK.LOGIN.0002");
    let third = login(&https, client_id, &[("X-Forwarded-For", "192.0.2.44")], "Wrong-pass1").await;
    assert_eq!(third, "IDAAS.SDK.REQ.0007", "the address nginx saw is throttled");
    let elsewhere = Https::new(issuer, ca, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(login(&elsewhere, client_id, &[], PASSWORD).await, "SUCCESS", "another address is not");
    let reset = https.send("PUT", policy, &headers, throttle(100).to_string().into_bytes()).await;
    assert_eq!(reset.expect("policy").status, 200);
    // Each instance trusts its copy of a policy for a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// The console's sign-in cookie is `Secure`; the hosted login page signs
/// in and the code is exchanged, all through nginx.
async fn the_console_and_the_code_flow_go_through(https: &Https, client_id: &str) {
    let signed_in = https.form("/console/sign-in", &[], &[("token", ADMIN_TOKEN)]).await.expect("sign in");
    assert_eq!(signed_in.status, 303);
    let cookie = signed_in.header("set-cookie").expect("cookie");
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");

    let verifier = "a-verifier-of-more-than-forty-three-characters-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = format!(
        "/api/v1/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid\
         &state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256"
    );
    let page = https.send("GET", &authorize, &[], Vec::new()).await.expect("authorize");
    assert_eq!(page.status, 200, "{}", page.body);
    let bind = page.header("set-cookie").expect("bind cookie");
    assert!(bind.starts_with("__Host-ciam_bind=") && bind.contains("; Secure"), "{bind}");
    let cookie = bind.split(';').next().expect("pair").to_owned();
    let (request, csrf) = (hidden(&page.body, "request").expect("request"), hidden(&page.body, "csrf").expect("csrf"));
    let fields = [("request", request.as_str()), ("csrf", &csrf), ("mobile", "15200000000"), ("password", PASSWORD)];
    let headers = [("cookie", cookie.as_str()), ("origin", https.base.as_str())];
    let posted = https.form("/api/v1/login", &headers, &fields).await.expect("login");
    assert_eq!(posted.status, 303, "{}", posted.body);
    let code = query(&posted.header("location").expect("location"))["code"].clone();
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", client_id),
    ];
    let tokens = https.form("/api/v1/oauth2/token", &[], &grant).await.expect("token");
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert!(tokens.json()["id_token"].is_string());
}
