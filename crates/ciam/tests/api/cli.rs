//! The operator command line acts on the same database as the server.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{ADMIN_TOKEN, Backend, PASSWORD, TestApp, TestDatabase, assert_error};

/// Runs `ciam ARGS` on `database_url`, feeding `stdin`; returns stdout.
fn ciam(database_url: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(args)
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ciam");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "ciam {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_apps_users_locks_and_the_admin_token_without_http() {
    let db = std::sync::Arc::new(TestDatabase::create(Backend::Sqlite).await);
    // The server makes the database; the commands act on it.
    ciam_store::open(&db.url, &ciam_store::DbOptions::default()).await.expect("database").close().await;
    let app: Value = serde_json::from_str(&ciam(&db.url, &["app", "create", "--name", "Shop"], "")).expect("json");
    let client_id = app["client_id"].as_str().expect("client_id").to_owned();
    assert_eq!(client_id.len(), 32);
    let user: Value = serde_json::from_str(&ciam(
        &db.url,
        &["user", "create", "--mobile", "+86 152 0000 0000", "--user-name", "alice"],
        &format!("{PASSWORD}\n"),
    ))
    .expect("json");
    assert_eq!(user["mobile"], "+8615200000000");
    let apps: Value = serde_json::from_str(&ciam(&db.url, &["app", "list"], "")).expect("json");
    assert_eq!(apps[0]["client_id"], client_id.as_str());

    let config = ciam::Config {
        listen: "127.0.0.1:0".into(),
        database_url: Some(db.url.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ciam::Config::default()
    };
    let server = TestApp::start(config, std::sync::Arc::clone(&db)).await;
    server.login_ok(&client_id, "15200000000", PASSWORD).await;
    server.set_lockout(1, 1800).await;
    let locked = server.login(&client_id, "15200000000", "Wrong-pass1").await;
    assert_error(&locked, 400, "IDAAS.SDK.LOGIN.0001", None);
    let unlocked: Value =
        serde_json::from_str(&ciam(&db.url, &["user", "unlock", "--mobile", "152 0000 0000"], "")).expect("json");
    assert_eq!(unlocked["unlocked"], "+8615200000000");
    assert!(unlocked["user_id"].is_string(), "{unlocked}");
    server.login_ok(&client_id, "15200000000", PASSWORD).await;
    // A number nobody has is refused, unless the operator says so.
    let nobody = Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["user", "unlock", "--mobile", "13900000000"])
        .env("CIAM_DATABASE_URL", &db.url)
        .env("CIAM_LOG", "warn")
        .output()
        .expect("run");
    assert!(!nobody.status.success());
    let why = String::from_utf8_lossy(&nobody.stderr);
    assert!(why.contains("no user has mobile \"13900000000\"; --unregistered clears"), "{why}");
    let cleared: Value =
        serde_json::from_str(&ciam(&db.url, &["user", "unlock", "--mobile", "13900000000", "--unregistered"], ""))
            .expect("json");
    assert_eq!((cleared["unlocked"].as_str(), cleared["user_id"].is_null()), (Some("+8613900000000"), true));
    // The scope is spelled as the API spells it (the old spelling still works).
    for scope in ["account_ip", "account-ip"] {
        let policy: Value =
            serde_json::from_str(&ciam(&db.url, &["policy", "lockout", "--scope", scope], "")).expect("json");
        assert_eq!(policy["scope"], "account_ip", "{policy}");
    }
    ciam(&db.url, &["policy", "lockout", "--scope", "account"], "");

    // A reset admin token replaces the configured one at once.
    let token = ciam(&db.url, &["admin-token", "reset"], "");
    let token = token.trim();
    assert_eq!(token.len(), 48);
    let old =
        server.client.get(server.url("/api/v2/admin/apps")).bearer_auth(ADMIN_TOKEN).send().await.expect("request");
    assert_eq!(old.status(), reqwest::StatusCode::UNAUTHORIZED);
    let new = server.client.get(server.url("/api/v2/admin/apps")).bearer_auth(token).send().await.expect("request");
    assert_eq!(new.status(), reqwest::StatusCode::OK);

    // A key rotated from the command line reaches the running server's JWKS.
    let rotated: Value = serde_json::from_str(&ciam(&db.url, &["keys", "rotate"], "")).expect("json");
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    let started = std::time::Instant::now();
    while server.jwks().await["keys"][0]["kid"] != kid.as_str() {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "rotation not picked up");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let jwks = server.jwks().await;
    assert_eq!(jwks["keys"][1]["kid"], rotated["eddsa_kid"], "{jwks}");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(4), "two current keys, two retired: {jwks}");
}

/// At a terminal, `ciam user create` asks for the password twice and does
/// not show it. Driven through tmux, as a person at a terminal would type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_at_a_terminal_asks_without_echo() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    ciam_store::open(&db.url, &ciam_store::DbOptions::default()).await.expect("database").close().await;
    let session = format!("ciam-{}", uuid::Uuid::new_v4().simple());
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux (Debian package tmux)");
    let command = format!(
        "CIAM_DATABASE_URL={} {} user create --mobile 15200000000; sleep 30",
        db.url,
        env!("CARGO_BIN_EXE_ciam")
    );
    assert!(tmux(&["new-session", "-d", "-s", &session, "-x", "200", "-y", "20", &command]).status.success());
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    let wait_for = |text: &str, times: usize| {
        for _ in 0..100 {
            if screen().matches(text).count() >= times {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no {text:?} on the screen: {}", screen());
    };
    wait_for("Password:", 1);
    tmux(&["send-keys", "-t", &session, PASSWORD, "Enter"]);
    wait_for("Password again:", 1);
    tmux(&["send-keys", "-t", &session, PASSWORD, "Enter"]);
    wait_for("+8615200000000", 1);
    let shown = screen();
    tmux(&["kill-session", "-t", &session]);
    assert!(!shown.contains(PASSWORD), "the password was shown: {shown}");
    assert!(shown.contains("\"mobile\": \"+8615200000000\""), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_a_web_app_and_replaces_its_secret() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    ciam_store::open(&db.url, &ciam_store::DbOptions::default()).await.expect("database").close().await;
    let args = [
        "app",
        "create",
        "--name",
        "Shop web",
        "--client-type",
        "confidential",
        "--redirect-uri",
        "https://shop.example.com/cb",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--initiate-login-uri",
        "https://shop.example.com/login",
    ];
    let app: Value = serde_json::from_str(&ciam(&db.url, &args, "")).expect("json");
    assert_eq!(app["client_type"], "confidential", "{app}");
    assert_eq!(app["redirect_uris"], serde_json::json!(["https://shop.example.com/cb", "http://127.0.0.1/cb"]));
    let first = app["client_secret"].as_str().expect("the secret, once").to_owned();
    let client_id = app["client_id"].as_str().expect("client_id").to_owned();
    let listed: Value = serde_json::from_str(&ciam(&db.url, &["app", "list"], "")).expect("json");
    assert!(listed[0].get("client_secret").is_none(), "never listed: {listed}");
    let renewed: Value = serde_json::from_str(&ciam(&db.url, &["app", "secret", &client_id], "")).expect("json");
    let second = renewed["client_secret"].as_str().expect("a new secret");
    assert!(second.len() == 43 && second != first, "{renewed}");
    // A bad redirect URI is refused, naming the field.
    let refused = Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["app", "create", "--name", "Bad", "--redirect-uri", "http://shop.example.com/cb"])
        .env("CIAM_DATABASE_URL", &db.url)
        .output()
        .expect("run ciam");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("redirect_uris"), "{refused:?}");
}
