//! Seen from outside (docs/api.md §9): request ids, the access log, metrics,
//! every setting in `ciam serve --help`, and backups of a live database.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, PASSWORD, TestApp, TestDatabase, admin_at, assert_error, read, samples, serve,
};

crate::on_both_backends!(
    request_ids_are_kept_or_made_and_reach_the_answer_and_the_audit_event,
    refusals_that_cost_no_hash_are_one_event_and_one_log_line_a_minute,
);

async fn request_ids_are_kept_or_made_and_reach_the_answer_and_the_audit_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client_id = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;

    // A client's id of the allowed shape is kept: in the header, the error
    // body and the audit event.
    let resp = app
        .sdk(Method::POST, "/login/mobile-pwd", &client_id)
        .header("X-Request-Id", "app-7.login_1")
        .json(&json!({"mobile": "15200000000", "password": "Wrong-pass1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.headers()["x-request-id"], "app-7.login_1");
    let refused = read(resp).await;
    assert_error(&refused, 400, "IDAAS.SDK.LOGIN.0002", None);
    assert_eq!(refused.1["request_id"], "app-7.login_1");
    let (_, events) = app.admin(Method::GET, "/audit-events?mobile=15200000000", None).await;
    assert_eq!(events[0]["request_id"], "app-7.login_1", "{events}");

    // Any other is replaced by a new one, different each time.
    let mut made = Vec::new();
    for sent in ["has space", &"x".repeat(65), "quote\"d", ""] {
        let resp = app
            .sdk(Method::POST, "/login/mobile-pwd", &client_id)
            .header("X-Request-Id", sent)
            .json(&json!({"mobile": "15200000000", "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        assert_ne!(id, sent);
        assert_eq!(id.len(), 36, "{id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 4);
    let (_, events) = app.admin(Method::GET, "/audit-events?mobile=15200000000&limit=1", None).await;
    assert_eq!(events[0]["outcome"], "SUCCESS");
    assert!(made.contains(&events[0]["request_id"].as_str().expect("request_id").to_owned()), "{events}");

    // Every answer carries one, admin and discovery calls too, and the admin
    // API's errors name it.
    let resp = app.client.get(app.url("/api/v2/admin/apps")).send().await.expect("request");
    let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["request_id"], id.as_str());
    let resp = app.client.get(app.url("/healthz")).header("X-Request-Id", "probe-1").send().await.expect("request");
    assert_eq!(resp.headers()["x-request-id"], "probe-1");
}

fn sdk(client: &reqwest::Client, base: &str, path: &str, client_id: &str, request_id: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/v2/sdk{path}"))
        .header("X-operating-sys-version", "ios17")
        .header("X-device-fingerprint", "fp-1")
        .header("X-agent", "test")
        .header("X-client-id", client_id)
        .header("X-Request-Id", request_id)
}

async fn login(client: &reqwest::Client, base: &str, client_id: &str, mobile: &str, password: &str, id: &str) -> Value {
    let resp = sdk(client, base, "/login/mobile-pwd", client_id, id)
        .json(&json!({"mobile": mobile, "password": password}))
        .send()
        .await
        .expect("login");
    read(resp).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_and_the_json_log_has_one_line_per_request_without_secrets() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let server = serve(&db.url, &[("CIAM_LOG_FORMAT", "json")]).await;
    let (client, base) = (reqwest::Client::new(), server.base.clone());
    let client_id = admin_at(&client, &base, Method::POST, "/apps", json!({"name": "Shop"})).await["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    for mobile in ["15200000000", "15200000001"] {
        admin_at(&client, &base, Method::POST, "/users", json!({"mobile": mobile, "password": PASSWORD})).await;
    }
    admin_at(&client, &base, Method::PUT, "/policies/lockout", json!({"max_failures": 3})).await;

    let granted = login(&client, &base, &client_id, "15200000000", PASSWORD, "login-ok").await;
    let session_token = granted["session_token"].as_str().expect("session_token").to_owned();
    let id_token = granted["id_token"].as_str().expect("id_token").to_owned();
    for n in 0..2 {
        let wrong = login(&client, &base, &client_id, "15200000000", "Wrong-pass1", &format!("wrong-{n}")).await;
        assert_eq!(wrong["error_code"], "IDAAS.SDK.LOGIN.0002");
    }
    // The third failure in a row locks the second account.
    for n in 0..3 {
        login(&client, &base, &client_id, "15200000001", "Wrong-pass1", &format!("lock-{n}")).await;
    }
    let stranger = login(&client, &base, "no-such-app", "15200000000", PASSWORD, "stranger").await;
    assert_eq!(stranger["error_code"], "IDAAS.SDK.PARAM.0003");
    let refreshed = sdk(&client, &base, "/sso/session-token/id-token", &client_id, "refresh-1")
        .header("session-token", &session_token)
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::OK);
    let intruder = client.get(format!("{base}/api/v2/admin/apps")).bearer_auth("wrong").send().await.expect("request");
    assert_eq!(intruder.status(), StatusCode::UNAUTHORIZED);

    let page = client.get(&server.metrics).send().await.expect("scrape").text().await.expect("text");
    let got = samples(&page);
    let at = |series: &str| got.get(series).copied().unwrap_or_else(|| panic!("{series} is not in:\n{page}"));
    assert_eq!(at(r#"ciam_sdk_requests_total{call="login",outcome="SUCCESS"}"#), 1.0);
    assert_eq!(at(r#"ciam_sdk_requests_total{call="login",outcome="IDAAS.SDK.LOGIN.0002"}"#), 4.0);
    assert_eq!(at(r#"ciam_sdk_requests_total{call="login",outcome="IDAAS.SDK.LOGIN.0001"}"#), 1.0);
    assert_eq!(at(r#"ciam_sdk_requests_total{call="login",outcome="IDAAS.SDK.PARAM.0003"}"#), 1.0);
    assert_eq!(at(r#"ciam_sdk_requests_total{call="refresh",outcome="SUCCESS"}"#), 1.0);
    assert_eq!(at(r#"ciam_sdk_request_duration_seconds_count{call="login"}"#), 7.0);
    assert_eq!(at(r#"ciam_sdk_request_duration_seconds_bucket{call="refresh",le="+Inf"}"#), 1.0);
    assert_eq!(at("ciam_lockouts_total"), 1.0);
    assert_eq!(at("ciam_password_verifications_total"), 6.0, "one right and five wrong passwords were hashed");
    assert_eq!(at("ciam_admin_auth_failures_total"), 1.0);
    assert_eq!(at("ciam_throttled_total"), 0.0);
    assert_eq!(at("ciam_db_errors_total"), 0.0);
    assert_eq!(at("ciam_audit_purged_total"), 0.0);
    assert_eq!(at(r#"ciam_hash_rejected_total{reason="pool_full"}"#), 0.0);
    assert_eq!(at("ciam_hash_pool_busy"), 0.0);
    assert_eq!(at("ciam_hash_queue_depth"), 0.0);
    assert!(at("process_cpu_seconds_total") > 0.0);
    assert!(at("process_resident_memory_bytes") > 1e6);
    assert!(page.contains("# TYPE ciam_sdk_request_duration_seconds histogram"), "{page}");

    let log = server.stop();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let access = |id: &str| {
        let found: Vec<&Value> = lines.iter().filter(|l| l["span"]["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one line for {id} in:\n{log}");
        found[0].clone()
    };
    let ok = access("login-ok");
    assert_eq!(ok["span"]["method"], "POST");
    assert_eq!(ok["span"]["route"], "/api/v2/sdk/login/mobile-pwd");
    assert_eq!(ok["span"]["ip"], "127.0.0.1");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["outcome"], "SUCCESS");
    assert!(ok["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0 && ms < 5000.0), "{ok}");
    // Alone, a call waits no turn: well under its own duration.
    let waited = ok["span"]["waited_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(waited < ok["duration_ms"].as_f64().unwrap_or_default(), "{ok}");
    let wrong = access("wrong-1");
    assert_eq!((wrong["status"].as_u64(), wrong["outcome"].as_str()), (Some(400), Some("IDAAS.SDK.LOGIN.0002")));
    assert_eq!(access("lock-2")["outcome"], "IDAAS.SDK.LOGIN.0001");
    assert_eq!(access("refresh-1")["span"]["route"], "/api/v2/sdk/sso/session-token/id-token");
    for secret in [PASSWORD, "Wrong-pass1", ADMIN_TOKEN, &session_token, &id_token] {
        assert!(!log.contains(secret), "the log holds a secret:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_log_has_no_colour_codes_off_a_terminal_and_metrics_can_be_turned_off() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let server = serve(&db.url, &[("CIAM_METRICS_LISTEN", "")]).await;
    let client = reqwest::Client::new();
    client.get(format!("{}/healthz", server.base)).header("X-Request-Id", "text-1").send().await.expect("request");
    assert!(client.get(&server.metrics).send().await.is_err(), "metrics are off");
    let log = server.stop();
    assert!(!log.contains('\u{1b}'), "colour codes in:\n{log}");
    let line = log.lines().find(|l| l.contains("text-1")).unwrap_or_else(|| panic!("no line for the request:\n{log}"));
    for part in ["request_id=text-1", "method=GET", "route=/healthz", "status=200", "duration_ms="] {
        assert!(line.contains(part), "{part} is not in {line}");
    }
}

#[test]
fn serve_help_lists_every_setting_with_its_variable_and_default_and_hides_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["serve", "--help"])
        .env("CIAM_ADMIN_TOKEN", "a-secret-admin-token-that-must-not-show")
        .env("CIAM_LOG", "debug")
        .output()
        .expect("run ciam");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    // A flag's entry: its line and, when clap puts the help below it, the
    // lines up to the next flag.
    let entry = |flag: &str| {
        let lines: Vec<&str> = help.lines().collect();
        let at = lines
            .iter()
            .position(|line| line.trim_start().starts_with(&format!("--{flag} ")))
            .unwrap_or_else(|| panic!("--{flag} is not in:\n{help}"));
        let end =
            lines[at + 1..].iter().position(|l| l.trim_start().starts_with('-')).map_or(lines.len(), |n| at + 1 + n);
        lines[at..end].join(" ")
    };
    for setting in ciam::config::SETTINGS {
        let text = entry(&setting.flag());
        assert!(text.contains(&format!("[env: {}", setting.env())), "{text}");
        assert!(text.contains("[default: "), "{text}");
    }
    assert!(!help.contains("a-secret-admin-token"), "{help}");
    assert!(help.contains("[env: CIAM_LOG=debug]"), "a value that is no secret is shown:\n{help}");
    assert!(help.contains("--metrics-listen <VALUE>") && help.contains("[default: 127.0.0.1:9464]"), "{help}");
}

/// `ciam backup --to FILE` on `database_url`.
fn backup(database_url: &str, to: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ciam"))
        .args(["backup", "--to"])
        .arg(to)
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_LOG", "warn")
        .output()
        .expect("run ciam backup")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_logins_go_on_restores_into_a_working_server() {
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    let client_id = app.default_app().await;
    app.create_user("15200000000", PASSWORD).await;

    // Logins and new users go on all through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..3)
        .map(|worker| {
            let (app, client_id, stop, created) =
                (Arc::clone(&app), client_id.clone(), Arc::clone(&stop), Arc::clone(&created));
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    app.login_ok(&client_id, "15200000000", PASSWORD).await;
                    let mobile = format!("1390000{worker}{n:03}");
                    let (status, _) =
                        app.admin(Method::POST, "/users", Some(json!({"mobile": mobile, "password": PASSWORD}))).await;
                    assert_eq!(status, StatusCode::CREATED);
                    created.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let folder = app.db.folder().expect("a SQLite folder");
    let file = folder.join("backup.db");
    let url = app.db.url.clone();
    let (file_for_task, url_for_task) = (file.clone(), url.clone());
    let out = tokio::task::spawn_blocking(move || backup(&url_for_task, &file_for_task)).await.expect("backup task");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(report["bytes"].as_u64().is_some_and(|b| b > 0), "{report}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load");
    }
    assert!(created.load(Ordering::Relaxed) > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("backup file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds password hashes and keys: {mode:o}");
    }

    // A second backup to the same file is refused; the first is kept.
    let again = backup(&url, &file);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // The copy is a whole database: a new server on it logs the user in.
    let restored_db = Arc::new(TestDatabase::create(Backend::Sqlite).await);
    let config = ciam::Config {
        listen: "127.0.0.1:0".into(),
        database_url: Some(format!("sqlite://{}", file.display())),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..ciam::Config::default()
    };
    let restored = TestApp::start(config, restored_db).await;
    restored.login_ok(&client_id, "15200000000", PASSWORD).await;
    let (status, users) = restored.admin(Method::GET, "/users?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
    let copied = users.as_array().expect("users").len();
    assert!(copied >= 1 && copied <= 1 + created.load(Ordering::Relaxed), "{copied}");
    let wrong = restored.login(&client_id, "15200000000", "Wrong-pass1").await;
    assert_error(&wrong, 400, "IDAAS.SDK.LOGIN.0002", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_postgres_database_names_pg_dump() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let out = backup(&db.url, &std::env::temp_dir().join("ciam-never-written.db"));
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pg_dump"), "{said}");
    assert!(!std::env::temp_dir().join("ciam-never-written.db").exists());
}

/// Client ids ship inside apps, so a registered app's refusals that cost
/// no hash prove nothing: 300 bodies that do not parse grow the audit log
/// by one event (two if a minute turns) with a count, and write as many
/// access log lines.
async fn refusals_that_cost_no_hash_are_one_event_and_one_log_line_a_minute(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let server = serve(&db.url, &[("CIAM_LOG_FORMAT", "json")]).await;
    let (client, base) = (reqwest::Client::new(), server.base.clone());
    let app = admin_at(&client, &base, Method::POST, "/apps", json!({"name": "Shop"})).await;
    let client_id = app["client_id"].as_str().expect("client_id").to_owned();
    let sent = 300;
    for chunk in 0..sent / 50 {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let req = sdk(&client, &base, "/login/mobile-pwd", &client_id, &format!("junk-{chunk}-{i}"))
                    .header("Content-Type", "application/json")
                    .body("{not json");
                tokio::spawn(async move { read(req.send().await.expect("request")).await })
            })
            .collect();
        for t in tasks {
            assert_error(&t.await.expect("task"), 400, "IDAAS.SDK.REQ.0002", None);
        }
    }
    let events = admin_at(&client, &base, Method::GET, "/audit-events?ip=127.0.0.1&limit=1000", json!({})).await;
    let events = events.as_array().expect("events");
    assert!((1..=2).contains(&events.len()), "{events:?}");
    assert!(events.iter().all(|e| e["outcome"] == "IDAAS.SDK.REQ.0002"), "{events:?}");
    let counted: i64 = events.iter().map(|e| e["count"].as_i64().expect("count")).sum();
    assert_eq!(counted, sent, "every refusal is counted");
    // A refusal that cost a hash is still one event each.
    for _ in 0..2 {
        let wrong = login(&client, &base, &client_id, "15200000000", "Wrong-pass1", "wrong").await;
        assert_eq!(wrong["error_code"], "IDAAS.SDK.LOGIN.0002");
    }
    let events = admin_at(&client, &base, Method::GET, "/audit-events?mobile=15200000000", json!({})).await;
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");
    assert!(events.as_array().expect("events").iter().all(|e| e["count"] == 1));

    let log = server.stop();
    let junk = log.lines().filter(|line| line.contains("junk-")).count();
    assert!((1..=2).contains(&junk), "{junk} access log lines for {sent} refusals:\n{log}");
    let first = log.lines().find(|line| line.contains("junk-")).expect("a line");
    assert!(first.contains("\"sampled\":true"), "{first}");
}

/// One sign-in on the hosted login page as a browser makes it: the form
/// of a fresh authorization request, posted with `password`; the answer.
async fn page_login(base: &str, client_id: &str, password: &str) -> reqwest::Response {
    use crate::oidc_helpers::{hidden, no_redirects};
    let browser = no_redirects();
    let url = format!(
        "{base}/api/v1/oauth2/authorize?response_type=code&client_id={client_id}&scope=openid&redirect_uri=\
         http%3A%2F%2F127.0.0.1%3A8765%2Fcb&code_challenge=S1ffuEi-L5AyLHhlDrbdSVjmILGB42U18BOaT1SVHiY\
         &code_challenge_method=S256"
    );
    let page = browser.get(url).send().await.expect("authorize");
    let bind = page.headers().get("set-cookie").expect("a binding cookie").to_str().expect("ASCII");
    let bind = bind.split(';').next().expect("name=value").to_owned();
    let body = page.text().await.expect("page");
    let form = [
        ("request", hidden(&body, "request").expect("request")),
        ("csrf", hidden(&body, "csrf").expect("csrf")),
        ("mobile", "15200000000".to_owned()),
        ("password", password.to_owned()),
    ];
    let post = browser.post(format!("{base}/api/v1/login")).header("Cookie", bind).header("Origin", base);
    post.form(&form).send().await.expect("login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_pages_calls_are_counted_like_the_sdks() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let server = serve(&db.url, &[]).await;
    let (client, base) = (reqwest::Client::new(), server.base.clone());
    let app = json!({"name": "Shop web", "redirect_uris": ["http://127.0.0.1:8765/cb"]});
    let created = admin_at(&client, &base, Method::POST, "/apps", app).await;
    let client_id = created["client_id"].as_str().expect("client_id").to_owned();
    admin_at(&client, &base, Method::POST, "/users", json!({"mobile": "15200000000", "password": PASSWORD})).await;
    assert_eq!(page_login(&base, &client_id, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(page_login(&base, &client_id, "Wrong-pass1").await.status(), StatusCode::BAD_REQUEST);

    let page = client.get(&server.metrics).send().await.expect("scrape").text().await.expect("text");
    let got = samples(&page);
    let at = |series: &str| got.get(series).copied().unwrap_or_else(|| panic!("{series} is not in:\n{page}"));
    assert_eq!(at(r#"ciam_sdk_requests_total{call="oidc_login",outcome="SUCCESS"}"#), 1.0);
    assert_eq!(at(r#"ciam_sdk_requests_total{call="oidc_login",outcome="IDAAS.SDK.LOGIN.0002"}"#), 1.0);
    assert_eq!(at("ciam_password_verifications_total"), 2.0);
}
