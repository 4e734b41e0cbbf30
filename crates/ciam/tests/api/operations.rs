//! Running it (docs/api.md §8): files readable by their owner only, one server
//! per SQLite file, signing keys sealed at rest, and operator commands that
//! say what is wrong instead of making an empty database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp, verify_with_jwks};

crate::on_both_backends!(
    signing_keys_are_sealed_at_rest_and_refused_without_their_key,
    readiness_means_the_database_takes_a_write,
);

/// `/readyz`'s status, polled until it is `want` (a check is cached 2 s).
async fn ready_becomes(app: &TestApp, want: StatusCode) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let status = app.client.get(app.url("/readyz")).send().await.expect("request").status();
        if status == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "/readyz stayed {status}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn readiness_means_the_database_takes_a_write(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.db_timeout_ms = 1000).await;
    ready_becomes(&app, StatusCode::OK).await;
    match backend {
        Backend::Sqlite => {
            // Another process holds the write lock: reads work, writes wait in vain.
            use sqlx::Connection;
            let mut holder = sqlx::SqliteConnection::connect(&app.db.url).await.expect("connect");
            sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut holder).await.expect("lock");
            ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(app.client.get(app.url("/healthz")).send().await.expect("request").status(), StatusCode::OK);
            sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.expect("unlock");
        }
        Backend::Postgres => {
            // The database turns read-only, as a replica or a full disk does.
            let name = app.db.url.rsplit('/').next().expect("name").to_owned();
            read_only(&name, true).await;
            ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
            read_only(&name, false).await;
        }
    }
    ready_becomes(&app, StatusCode::OK).await;
}

/// Makes database `name` read-only (or writable again) for every new
/// connection, and ends the connections it has.
async fn read_only(name: &str, on: bool) {
    use sqlx::Connection;
    let server = ciam_testdb::postgres_server_url();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await.expect("connect");
    let set = if on { "on" } else { "off" };
    sqlx::raw_sql(&format!("ALTER DATABASE {name} SET default_transaction_read_only = {set}"))
        .execute(&mut admin)
        .await
        .expect("alter");
    let end = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
    sqlx::raw_sql(&end).execute(&mut admin).await.expect("terminate");
}

/// A fresh empty folder, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ciam-ops-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        Folder(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ciam ARGS` in `dir` with only `env` set, under a umask of 000 (every
/// file must be owner-only all the same).
fn ciam_in(dir: &Path, args: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask 000; exec {} {args}", env!("CARGO_BIN_EXE_ciam")))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIAM_METRICS_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn run(dir: &Path, args: &str, env: &[(&str, &str)]) -> Output {
    ciam_in(dir, args, env).output().expect("run ciam")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A `ciam serve` process, stopped on drop.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(dir: &Path) -> (Serving, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serving = Serving(ciam_in(dir, "serve", &[("CIAM_LISTEN", &listen)]).spawn().expect("spawn"));
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if client.get(format!("http://{listen}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return (serving, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ciam serve did not become ready");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_owner_only_and_one_server_holds_them() {
    let dir = Folder::new();
    let (first, _) = serve(&dir.0).await;
    let data = dir.0.join("data");
    assert_eq!(mode(&data), 0o700, "the data folder, whatever the umask");
    assert!(data.join("ciam.db.lock").exists());
    for file in ["ciam.db", "ciam.db-wal", "ciam.db-shm", "ciam.db.lock"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(data.join("ciam.db").exists());
    // A second server on the same data is refused, naming the first.
    let second =
        ciam_in(&dir.0, "serve", &[("CIAM_LISTEN", &format!("127.0.0.1:{}", free_port()))]).output().expect("run");
    assert!(!second.status.success());
    let why = stderr(&second);
    assert!(why.contains(&format!("another ciam serve (pid {})", first.0.id())), "{why}");
    assert!(why.contains(&data.join("ciam.db.lock").display().to_string()), "{why}");
    drop(first);
    // Once it has stopped, a server starts there again; files made loose by
    // hand are made owner-only again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join("ciam.db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let (_again, _) = serve(&dir.0).await;
    assert_eq!(mode(&data.join("ciam.db")), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_refuse_a_missing_database_and_say_why() {
    let dir = Folder::new();
    // A command run where there is no database makes none, and names the path.
    let missing = run(&dir.0, "app list", &[]);
    assert!(!missing.status.success());
    let why = stderr(&missing);
    assert!(why.contains(&dir.0.join("data/ciam.db").display().to_string()), "{why}");
    assert!(!dir.0.join("data").exists(), "no empty database is left behind");
    // A typo in a copy's source is not an empty source.
    let typo = format!("copy --from sqlite://{0}/cima.db --to sqlite://{0}/copy.db", dir.0.display());
    let copied = run(&dir.0, &typo, &[]);
    assert!(!copied.status.success());
    assert!(stderr(&copied).contains(&format!("{}/cima.db", dir.0.display())), "{}", stderr(&copied));
    // A folder that is not there is named (where the server would make the file).
    let port = free_port().to_string();
    let nowhere = run(
        &dir.0,
        "serve",
        &[("CIAM_DATABASE_URL", "sqlite:///no/such/folder/ciam.db"), ("CIAM_LISTEN", &format!("127.0.0.1:{port}"))],
    );
    assert!(stderr(&nowhere).contains("the SQLite folder /no/such/folder does not exist"), "{}", stderr(&nowhere));
    assert!(!stderr(&nowhere).contains("database: database"), "{}", stderr(&nowhere));
    // An unreachable PostgreSQL says why, not "pool timed out".
    let refused = run(&dir.0, "app list", &[("CIAM_DATABASE_URL", "postgres://postgres@127.0.0.1:1/ciam")]);
    let why = stderr(&refused).to_lowercase();
    assert!(why.contains("refused") && !why.contains("timed out"), "{why}");
    // Settings that cannot be used are refused at start, with the reason.
    let short = run(&dir.0, "serve", &[("CIAM_ADMIN_TOKEN", &"a".repeat(20))]);
    assert_eq!(short.status.code(), Some(2));
    assert!(stderr(&short).contains("at least 32 characters"), "{}", stderr(&short));
    let plain = run(&dir.0, "serve", &[("CIAM_ADMIN_TOKEN", &"ab".repeat(20))]);
    assert!(stderr(&plain).contains("distinct characters"), "{}", stderr(&plain));
    let log = run(&dir.0, "serve", &[("CIAM_LOG", "ciam=loud")]);
    assert_eq!(log.status.code(), Some(2));
    assert!(stderr(&log).contains("log filter"), "{}", stderr(&log));
    let key = run(&dir.0, "serve", &[("CIAM_KEY_ENCRYPTION_KEY", "c2hvcnQ=")]);
    assert!(stderr(&key).contains("32 bytes"), "{}", stderr(&key));
    assert!(!dir.0.join("data").exists(), "nothing was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_into_a_database_in_use_says_why() {
    let dir = Folder::new();
    let (server, _) = serve(&dir.0).await;
    drop(server);
    let source = format!("sqlite://{}/data/ciam.db", dir.0.display());
    // The target already holds a deployment: the copy says so.
    let copied = run(&dir.0, &format!("copy --from {source} --to {source}"), &[]);
    assert!(!copied.status.success());
    assert!(stderr(&copied).contains("not empty"), "{}", stderr(&copied));
    assert!(!stderr(&copied).contains("System busy"), "{}", stderr(&copied));
}

/// A key encryption key, as `openssl rand -base64 32` prints one.
fn kek(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

async fn signing_keys_are_sealed_at_rest_and_refused_without_their_key(backend: Backend) {
    // A deployment that kept its key in clear turns on sealing.
    let plain = TestApp::spawn(backend).await;
    let client = plain.default_app().await;
    plain.create_user("15200000000", PASSWORD).await;
    let kid = plain.jwks().await["keys"][0]["kid"].clone();
    let (config, db) = (plain.config.clone(), std::sync::Arc::clone(&plain.db));
    plain.stop().await;
    let sealed_keys = || db.count(sealed_count(backend));
    assert_eq!(sealed_keys().await.expect("count"), 0);

    let sealed_config = ciam::Config { key_encryption_key: Some(kek(7).into()), ..config.clone() };
    let sealed = TestApp::start(sealed_config.clone(), std::sync::Arc::clone(&db)).await;
    assert_eq!(sealed_keys().await.expect("count"), 2, "the keys in clear (RSA and Ed25519) were sealed at start");
    assert_eq!(sealed.jwks().await["keys"][0]["kid"], kid, "the same key signs");
    let body = sealed.login_ok(&client, "15200000000", PASSWORD).await;
    verify_with_jwks(body["id_token"].as_str().expect("id_token"), &sealed.jwks().await).expect("verifies");
    let (_, rotated) = sealed.admin(reqwest::Method::POST, "/keys/rotate", None).await;
    assert!(rotated["kid"].is_string());
    assert_eq!(sealed_keys().await.expect("count"), 4, "the new keys are sealed too");
    sealed.stop().await;

    // Without the key, or with another, the server refuses to start.
    for config in [config.clone(), ciam::Config { key_encryption_key: Some(kek(8).into()), ..config }] {
        let refused = ciam::Server::build(&config).await.expect_err("refused");
        assert!(refused.to_string().contains("CIAM_KEY_ENCRYPTION_KEY"), "{refused}");
    }
    let again = TestApp::start(sealed_config, db).await;
    again.login_ok(&client, "15200000000", PASSWORD).await;
    assert_eq!(again.admin(reqwest::Method::GET, "/apps", None).await.0, StatusCode::OK);
}

fn sealed_count(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM signing_keys WHERE CAST(substr(private_pkcs8, 1, 15) AS TEXT) = 'ciam-aes256gcm:'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM signing_keys WHERE substring(private_pkcs8 from 1 for 15) = 'ciam-aes256gcm:'::bytea"
        }
    }
}

/// With the metrics port taken (a second instance on one machine), `serve`
/// fails naming `CIAM_METRICS_LISTEN`, before it makes or prints anything:
/// the next start, on a free port, is the one that shows the admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_the_start_naming_its_setting_and_printing_nothing() {
    let dir = Folder::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let failed = run(&dir.0, "serve", &[("CIAM_LISTEN", &listen), ("CIAM_METRICS_LISTEN", &taken)]);
    assert!(!failed.status.success());
    let why = stderr(&failed);
    assert!(why.contains(&format!("CIAM_METRICS_LISTEN={taken}: cannot listen there")), "{why}");
    assert!(String::from_utf8_lossy(&failed.stdout).trim().is_empty(), "nothing is printed by a failed start");
    let failed = run(&dir.0, "serve", &[("CIAM_LISTEN", &taken)]);
    assert!(stderr(&failed).contains(&format!("CIAM_LISTEN={taken}: cannot listen there")), "{}", stderr(&failed));
    assert!(String::from_utf8_lossy(&failed.stdout).trim().is_empty());
    let (serving, _) = serve(&dir.0).await;
    let out = serving_stdout(serving);
    assert!(out.contains("generated the admin token (shown only now"), "the first start to run shows it: {out:?}");
}

/// Stops a server and returns what it printed.
fn serving_stdout(mut serving: Serving) -> String {
    use std::io::Read;
    let _ = serving.0.kill();
    let _ = serving.0.wait();
    let mut out = String::new();
    if let Some(mut stdout) = serving.0.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    out
}

/// `ciam init` makes the database (with its admin token, shown once) so
/// that users can be imported before the first start; run again it changes
/// nothing. A backup over an existing file says so in its own words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_makes_a_database_to_import_into_before_the_first_start() {
    let dir = Folder::new();
    let refused = run(&dir.0, "user export", &[]);
    assert!(stderr(&refused).contains("run `ciam init` (or start `ciam serve`) there first"), "{}", stderr(&refused));
    let made = run(&dir.0, "init", &[]);
    assert!(made.status.success(), "{}", stderr(&made));
    let out = String::from_utf8_lossy(&made.stdout);
    assert!(out.contains("generated the admin token (shown only now"), "{out}");
    assert!(out.contains("\"created\": true"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&dir.0.join("data/ciam.db")), 0o600);
    let line = serde_json::json!({"mobile": "15200000000", "password_hash": "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"});
    std::fs::write(dir.0.join("users.jsonl"), line.to_string()).expect("write");
    let imported = run(&dir.0, "user import users.jsonl", &[]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let again = run(&dir.0, "init", &[]);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success() && !out.contains("admin token") && out.contains("\"created\": false"), "{out}");
    std::fs::write(dir.0.join("taken.db"), b"").expect("write");
    let backup = run(&dir.0, "backup --to taken.db", &[]);
    assert!(!backup.status.success());
    let why = stderr(&backup);
    assert!(why.contains("backup --to: ") && why.contains("taken.db already exists; name a new file"), "{why}");
    assert!(!why.contains("database:"), "{why}");
}

/// `ciam --version` names the version and the commit; `ciam health` asks a
/// running server for /healthz (exit 0) and fails when none answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_its_commit_and_health_asks_the_server() {
    let dir = Folder::new();
    let version = run(&dir.0, "--version", &[]);
    let text = String::from_utf8_lossy(&version.stdout).into_owned();
    let expected = format!("ciam {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.status.success() && text.starts_with(&expected) && text.trim_end().ends_with(')'), "{text}");
    let (_serving, port) = serve(&dir.0).await;
    let listen = format!("127.0.0.1:{port}");
    let healthy = run(&dir.0, "health", &[("CIAM_LISTEN", &listen)]);
    assert!(healthy.status.success(), "{}", stderr(&healthy));
    assert_eq!(String::from_utf8_lossy(&healthy.stdout).trim(), "ok");
    let everywhere = run(&dir.0, "health", &[("CIAM_LISTEN", &format!("0.0.0.0:{port}"))]);
    assert!(everywhere.status.success(), "a server listening everywhere is asked on loopback");
    let nobody = run(&dir.0, "health", &[("CIAM_LISTEN", &format!("127.0.0.1:{}", free_port()))]);
    assert!(!nobody.status.success());
}
