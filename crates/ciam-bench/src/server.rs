//! The server under test, as a child process, and the client that speaks
//! to it as an app would.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::limits::Limits;
use crate::report::{Report, round1};
use crate::{ADMIN_TOKEN, Args, USERS};

/// The server under test, as a child process.
pub(crate) struct Server {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
    pub(crate) pg_database: Option<String>,
    pub(crate) data_dir: PathBuf,
    pub(crate) binary: PathBuf,
    pub(crate) database_url: String,
}

impl Server {
    /// Starts `ciam serve`, delivering SMS codes to `sms_url`.
    pub(crate) async fn start(args: &Args, sms_url: &str) -> Result<Self, String> {
        let binary = match &args.server {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ciam"),
        };
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let data_dir = std::env::temp_dir().join(format!("ciam-bench-{}", uuid::Uuid::new_v4().simple()));
        let mut command = std::process::Command::new(&binary);
        command
            .arg("serve")
            .env("CIAM_LISTEN", format!("127.0.0.1:{port}"))
            .env("CIAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CIAM_DATA_DIR", &data_dir)
            .env("CIAM_METRICS_LISTEN", "127.0.0.1:0")
            .env("CIAM_SMS_PROVIDER", "webhook")
            .env("CIAM_SMS_WEBHOOK_URL", sms_url)
            .env("CIAM_SMS_WEBHOOK_SECRET", crate::gateway::SECRET)
            .stdout(std::process::Stdio::null());
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let log = std::fs::File::create(data_dir.join("server.log")).map_err(|e| e.to_string())?;
        command.stderr(log);
        for setting in &args.server_env {
            let (name, value) = setting.split_once('=').ok_or_else(|| format!("--server-env {setting}: NAME=VALUE"))?;
            command.env(name, value);
        }
        let mut pg_database = None;
        let mut database_url = format!("sqlite://{}", data_dir.join("ciam.db").display());
        if args.postgres {
            let name = format!("ciam_bench_{}", uuid::Uuid::new_v4().simple());
            admin_sql(&args.postgres_url, &format!("CREATE DATABASE {name}")).await?;
            database_url = format!("{}/{name}", args.postgres_url);
            command.env("CIAM_DATABASE_URL", &database_url);
            pg_database = Some(name);
        }
        let child = command.spawn().map_err(|e| format!("{}: {e}", binary.display()))?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pg_database,
            data_dir,
            binary: binary.clone(),
            database_url,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client.get(format!("{}/readyz", server.base)).send().await.map(|r| r.status().is_success());
            if ready.unwrap_or(false) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err("server did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's peak resident set (VmHWM), MiB.
    /// The database's size on disk: the SQLite file and its WAL, or what
    /// PostgreSQL reports for the database.
    pub(crate) async fn database_bytes(&self) -> Result<u64, String> {
        if self.pg_database.is_some() {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.database_url).await.map_err(|e| e.to_string())?;
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(u64::try_from(size).unwrap_or(0));
        }
        let file =
            |suffix: &str| std::fs::metadata(self.data_dir.join(format!("ciam.db{suffix}"))).map_or(0, |m| m.len());
        Ok(file("") + file("-wal"))
    }

    pub(crate) fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        round1(kib / 1024.0)
    }

    pub(crate) async fn stop(mut self, args: &Args) {
        self.kill();
        if let Some(name) = &self.pg_database {
            let _ = admin_sql(&args.postgres_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A benchmark that fails half-way leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) async fn admin_sql(server: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres")).await.map_err(|e| e.to_string())?;
    sqlx::query(sql).execute(&mut conn).await.map_err(|e| e.to_string())?;
    Ok(())
}

pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) client_id: String,
}

impl Api {
    pub(crate) async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, String> {
        let resp = self
            .client
            .request(method, format!("{}/api/v2/admin{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{path}: {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }

    pub(crate) fn sdk(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        self.sdk_for(client, path, &self.client_id)
    }

    /// An SDK request of the app `client_id`.
    pub(crate) fn sdk_for(&self, client: &reqwest::Client, path: &str, client_id: &str) -> reqwest::RequestBuilder {
        client
            .post(format!("{}/api/v2/sdk{path}", self.base))
            .header("X-operating-sys-version", "bench")
            .header("X-device-fingerprint", "bench-device")
            .header("X-agent", "ciam-bench")
            .header("X-client-id", client_id)
    }

    /// One login; returns the status string or error code.
    pub(crate) async fn login(&self, client: &reqwest::Client, mobile: &str, password: &str) -> String {
        let sent =
            self.sdk(client, "/login/mobile-pwd").json(&json!({"mobile": mobile, "password": password})).send().await;
        status_of(sent).await
    }
}

/// The `status` of an SDK answer, or its error code, or what went wrong.
pub(crate) async fn status_of(sent: reqwest::Result<reqwest::Response>) -> String {
    match sent {
        Ok(resp) => match resp.json::<Value>().await {
            Ok(body) => body["status"].as_str().or(body["error_code"].as_str()).unwrap_or("?").to_owned(),
            Err(_) => "unreadable".into(),
        },
        Err(_) => "transport".into(),
    }
}

/// Imports `n` users through `ciam user import`, all with one pre-computed
/// hash of [`PASSWORD`] (an import never hashes), and records the rate and
/// the database's size per user.
pub(crate) async fn import_users(
    server: &Server,
    limits: &Limits,
    n: usize,
    report: &mut Report,
) -> Result<(), String> {
    use std::io::Write;
    let file = server.data_dir.join("users.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
        for i in 0..n {
            let line = json!({"mobile": user_mobile(USERS + i), "password_hash": limits.phc});
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    eprintln!("importing {n} users");
    let started = Instant::now();
    let done = std::process::Command::new(&server.binary)
        .args(["user", "import"])
        .arg(&file)
        .env("CIAM_DATABASE_URL", &server.database_url)
        .env("CIAM_LOG", "warn")
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    if !done.status.success() {
        return Err(format!("import: {}", String::from_utf8_lossy(&done.stderr)));
    }
    let summary: Value = serde_json::from_slice(&done.stdout).map_err(|e| format!("import summary: {e}"))?;
    let imported = summary["imported"].as_u64().unwrap_or(0);
    let bytes = server.database_bytes().await?;
    let users = imported + USERS as u64;
    eprintln!("  imported {imported} users in {seconds:.1} s; database {} MiB", bytes / (1024 * 1024));
    report.put("imported_users", imported);
    report.put("import_per_s", round1(imported as f64 / seconds));
    report.put("database_bytes_per_user", bytes / users.max(1));
    Ok(())
}

pub(crate) fn user_mobile(i: usize) -> String {
    format!("+86152{:08}", i)
}

/// A client whose connections come from `address` (a loopback address:
/// every 127.x.y.z is this machine).
pub(crate) fn client_from(address: [u8; 4], idle: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .pool_max_idle_per_host(idle)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// `ok` for a 2xx answer read to its end, else what went wrong.
pub(crate) async fn answered(sent: reqwest::Result<reqwest::Response>) -> String {
    match sent {
        Ok(r) if r.status().is_success() => match r.bytes().await {
            Ok(_) => "ok".to_owned(),
            Err(_) => "unreadable".to_owned(),
        },
        _ => "failed".to_owned(),
    }
}
