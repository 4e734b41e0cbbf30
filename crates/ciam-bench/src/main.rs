//! `ciam-bench`: measures, in one run on one machine, what the server does
//! against what the machine can do.
//!
//! A real `ciam serve` process on a fresh database (embedded SQLite, or
//! PostgreSQL with `--postgres`), set up through the admin API, is driven
//! over HTTP: successful, wrong-password and unknown-mobile logins, id_token
//! refreshes, and a flood of 1,000 connections. Right before and right
//! after each phase, with the server idle, the same machine's limit is
//! measured in-process on all cores: argon2id verifications per second with
//! the server's parameters and code, or raw RS256 signatures per second. Each
//! ratio divides a phase's rate by the mean of the two limits beside it, so a
//! virtual machine whose speed drifts during the run is still judged fairly.
//! The floor phase measures the cheapest exchange the server has, so that
//! each ratio can be set beside its bound: the best this machine allows any
//! server that must make the same HTTP exchange and the same hash or
//! signature on the same cores.
//! The last line printed is one JSON object with every figure. All traffic
//! goes to 127.0.0.1; every phase is bounded in time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciam_core::keys::KeyRing;
use ciam_core::mobile::Mobile;
use ciam_core::model::{ClientId, User, UserId};
use ciam_core::password::{HashingConfig, PasswordHasher};
use ciam_core::{Clock, Password, SystemClock};
use clap::Parser;
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789-abcdefghij";
const PASSWORD: &str = "Passw0rd!";
const USERS: usize = 16;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "ciam-bench", about = "ciam login throughput against the argon2id limit")]
struct Args {
    /// Short phases (the whole run in under a minute).
    #[arg(long)]
    quick: bool,
    /// Run the server on a fresh PostgreSQL database (created and dropped).
    #[arg(long)]
    postgres: bool,
    /// The PostgreSQL server for --postgres.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    /// The `ciam` binary (default: the one beside this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Requests in flight in the login phases (default: 4 × cores).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Requests in flight in the refresh phase (default: 32 × cores): a
    /// refresh is short, so saturating the server takes more of them.
    #[arg(long)]
    refresh_concurrency: Option<usize>,
    /// Connections in the flood.
    #[arg(long, default_value_t = 1000)]
    flood_connections: usize,
    /// Run only these phases (comma-separated: login, wrong, unknown, refresh, floor, attack, stuffing,
    /// flood).
    #[arg(long, value_delimiter = ',', default_value = "login,wrong,unknown,refresh,floor,attack,stuffing,flood")]
    phases: Vec<String>,
    /// A setting for the server, NAME=VALUE (repeatable), over the
    /// bench's defaults: the server runs as an operator would run it (log at
    /// info, its lines written to a file; metrics on).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    server_env: Vec<String>,
    /// Import this many more users first, through `ciam user import` with a
    /// pre-computed hash, and log in as users spread across them.
    #[arg(long, default_value_t = 0)]
    users: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    // Each rate phase: `rounds` windows of `window`, each between two windows
    // of the limit.
    let (rounds, window) = if args.quick { (3, Duration::from_secs(1)) } else { (5, Duration::from_secs(2)) };
    let flood = Duration::from_secs(if args.quick { 5 } else { 10 });
    let concurrency = args.concurrency.unwrap_or(4 * cores).max(2 * cores);
    let hashing = HashingConfig::default();
    let limits = Limits::new(&hashing, cores, window)?;

    // The load driver runs on this one thread: it needs little CPU, and one
    // thread wakes less often than a pool would, on the cores the server
    // shares. The limit windows block it too, when no request is in flight.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let server = runtime.block_on(Server::start(&args))?;
    let plan = Plan {
        concurrency,
        refresh_concurrency: args.refresh_concurrency.unwrap_or(32 * cores).max(1),
        rounds,
        window,
        flood,
        flood_connections: args.flood_connections,
        phases: args.phases.clone(),
        imported: args.users,
    };
    let result = runtime.block_on(drive(&server, &limits, &plan));
    let peak = server.peak_rss_mib();
    runtime.block_on(server.stop(&args));
    let mut figures = result?;

    let obj = figures.as_object_mut().ok_or("figures")?;
    obj.insert("backend".into(), json!(if args.postgres { "postgres" } else { "sqlite" }));
    obj.insert("cores".into(), json!(cores));
    obj.insert("argon2".into(), json!(format!("m={},t={},p={}", hashing.m_kib, hashing.t, hashing.p)));
    obj.insert("concurrency".into(), json!(concurrency));
    obj.insert("flood_peak_rss_mib".into(), json!(peak));
    obj.insert("quick".into(), json!(args.quick));
    println!("{}", serde_json::to_string(&figures).map_err(|e| e.to_string())?);
    Ok(())
}

/// The machine's own limits, measured in-process with the server idle.
struct Limits {
    cores: usize,
    window: Duration,
    hasher: PasswordHasher,
    password: Password,
    phc: String,
    rsa: aws_lc_rs::signature::RsaKeyPair,
    ring: KeyRing,
    user: User,
    client: ClientId,
}

impl Limits {
    fn new(config: &HashingConfig, cores: usize, window: Duration) -> Result<Self, String> {
        use aws_lc_rs::encoding::AsDer;
        let hasher = PasswordHasher::new(config).map_err(|e| format!("{e}"))?;
        let password = Password::new(PASSWORD.into());
        let phc = hasher.hash_now(&password).map_err(|e| format!("{e}"))?;
        if !hasher.verify_now(&password, &phc) {
            return Err("argon2 self-check failed".into());
        }
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|e| e.to_string())?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|e| e.to_string())?;
        let rsa = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.as_ref()).map_err(|e| e.to_string())?;
        let now = SystemClock.now();
        let ring = KeyRing::ephemeral(now).map_err(|e| format!("{e}"))?;
        let user = User {
            id: UserId::new("0123456789abcdef0123456789abcdef"),
            mobile: Mobile::from_stored("+8615200000000".into()),
            user_name: Some("bench".into()),
            name: None,
            email: None,
            disabled: false,
            password_hash: String::new(),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let client = ClientId::new("client");
        Ok(Self { cores, window, hasher, password, phc, rsa, ring, user, client })
    }

    /// argon2id verifications per second with the server's own code and
    /// parameters, on every core.
    fn hash(&self) -> f64 {
        parallel(self.cores, self.window, || {
            self.hasher.verify_now(&self.password, &self.phc);
        })
    }

    /// Raw RS256 signatures per second (aws-lc, key parsed once), on every
    /// core, over a message of an id_token's size.
    fn sign(&self) -> f64 {
        use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256};
        let message = [b'x'; 600];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        parallel(self.cores, self.window, || {
            let mut sig = vec![0u8; self.rsa.public_key().modulus_len()];
            let _ = self.rsa.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig);
        })
    }

    /// id_tokens per second through the server's own signing code.
    fn id_tokens(&self) -> f64 {
        let now = SystemClock.now();
        parallel(self.cores, self.window, || {
            let _ = self.ring.sign_id_token("http://127.0.0.1", &self.client, &self.user, now, 300);
        })
    }
}

fn ratio(rate: f64, limit: f64) -> f64 {
    if limit > 0.0 { (rate / limit * 1000.0).round() / 1000.0 } else { 0.0 }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Runs `work` on `threads` threads for `span`; returns operations per second.
fn parallel(threads: usize, span: Duration, work: impl Fn() + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while started.elapsed() < span {
                    work();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The server under test, as a child process.
struct Server {
    child: std::process::Child,
    base: String,
    pg_database: Option<String>,
    data_dir: PathBuf,
    binary: PathBuf,
    database_url: String,
}

impl Server {
    async fn start(args: &Args) -> Result<Self, String> {
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
    async fn database_bytes(&self) -> Result<u64, String> {
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

    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        round1(kib / 1024.0)
    }

    async fn stop(mut self, args: &Args) {
        self.kill();
        if let Some(name) = &self.pg_database {
            let _ = admin_sql(&args.postgres_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }

    fn kill(&mut self) {
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

async fn admin_sql(server: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres")).await.map_err(|e| e.to_string())?;
    sqlx::query(sql).execute(&mut conn).await.map_err(|e| e.to_string())?;
    Ok(())
}

struct Api {
    client: reqwest::Client,
    base: String,
    client_id: String,
}

impl Api {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, String> {
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

    fn sdk(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        client
            .post(format!("{}/api/v2/sdk{path}", self.base))
            .header("X-operating-sys-version", "bench")
            .header("X-device-fingerprint", "bench-device")
            .header("X-agent", "ciam-bench")
            .header("X-client-id", &self.client_id)
    }

    /// One login; returns the status string or error code.
    async fn login(&self, client: &reqwest::Client, mobile: &str, password: &str) -> String {
        let sent =
            self.sdk(client, "/login/mobile-pwd").json(&json!({"mobile": mobile, "password": password})).send().await;
        match sent {
            Ok(resp) => match resp.json::<Value>().await {
                Ok(body) => body["status"].as_str().or(body["error_code"].as_str()).unwrap_or("?").to_owned(),
                Err(_) => "unreadable".into(),
            },
            Err(_) => "transport".into(),
        }
    }
}

/// Imports `n` users through `ciam user import`, all with one pre-computed
/// hash of [`PASSWORD`] (an import never hashes), and records the rate and
/// the database's size per user.
async fn import_users(
    server: &Server,
    limits: &Limits,
    n: usize,
    out: &mut serde_json::Map<String, Value>,
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
    out.insert("imported_users".into(), json!(imported));
    out.insert("import_per_s".into(), json!(round1(imported as f64 / seconds)));
    out.insert("database_bytes_per_user".into(), json!(bytes / users.max(1)));
    Ok(())
}

fn user_mobile(i: usize) -> String {
    format!("+86152{:08}", i)
}

/// CPU time (user + system) in a `/proc/…/stat` file, in milliseconds.
fn stat_cpu_ms(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) * 10.0
}

/// CPU time a process has used so far, ms.
fn cpu_ms(pid: &str) -> f64 {
    stat_cpu_ms(&format!("/proc/{pid}/stat"))
}

/// CPU time the server's hashing threads (named `ciam-hash-N`) have used so
/// far, ms.
fn hash_cpu_ms(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("ciam-hash")))
        .map(|t| stat_cpu_ms(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// CPU used during a window, ms.
struct CpuUse {
    /// The whole server process.
    server: f64,
    /// The server's hashing threads.
    hashing: f64,
    /// The load driver (this process).
    driver: f64,
}

/// Measures [`CpuUse`] from its start.
struct CpuMeter {
    server: String,
    start: CpuUse,
}

impl CpuMeter {
    fn start(server_pid: u32) -> Self {
        let server = server_pid.to_string();
        Self { start: Self::now(&server), server }
    }

    fn now(server: &str) -> CpuUse {
        CpuUse { server: cpu_ms(server), hashing: hash_cpu_ms(server), driver: cpu_ms("self") }
    }

    /// CPU used since the start.
    fn used(&self) -> CpuUse {
        let now = Self::now(&self.server);
        CpuUse {
            server: now.server - self.start.server,
            hashing: now.hashing - self.start.hashing,
            driver: now.driver - self.start.driver,
        }
    }
}

/// Runs `tasks` concurrent loops of `op` for `span`; returns the rate of
/// answers equal to `expect`, the latencies of those (ms), and the others.
async fn rate_phase<F, Fut>(tasks: usize, span: Duration, expect: &'static str, op: Arc<F>) -> Window
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let op = Arc::clone(&op);
        handles.push(tokio::spawn(async move {
            let (mut ok, mut other, mut latencies) = (0u64, 0u64, Vec::new());
            let mut i = t;
            while started.elapsed() < span {
                let sent = Instant::now();
                if op(i).await == expect {
                    ok += 1;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    other += 1;
                }
                i += tasks;
            }
            (ok, other, latencies)
        }));
    }
    let (mut ok, mut other, mut latencies) = (0, 0, Vec::new());
    for h in handles {
        if let Ok((o, x, l)) = h.await {
            ok += o;
            other += x;
            latencies.extend(l);
        }
    }
    Window { ok, secs: started.elapsed().as_secs_f64(), latencies, other }
}

/// What one window of a phase answered.
struct Window {
    ok: u64,
    secs: f64,
    latencies: Vec<f64>,
    other: u64,
}

/// What a phase measured against the machine's limit.
struct Measured {
    /// Expected answers per second.
    rate: f64,
    /// The limit's mean rate over the windows beside the phase's.
    limit: f64,
    /// Latencies of the expected answers, ms.
    latencies: Vec<f64>,
    /// Unexpected answers.
    other: u64,
    /// Server CPU per expected answer, ms (phase windows only).
    server_ms: f64,
    /// The part of `server_ms` spent in the hashing threads.
    hashing_ms: f64,
    /// Load-driver CPU per expected answer, ms (phase windows only).
    driver_ms: f64,
}

/// A phase against the machine's limit: `rounds` windows of the phase, each
/// between two windows of the limit, with CPU metered in the phase windows.
async fn interleaved<F, Fut>(
    rounds: usize,
    window: Duration,
    tasks: usize,
    server_pid: u32,
    expect: &'static str,
    limit: impl Fn() -> f64,
    op: F,
) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let op = Arc::new(op);
    let mut limits = vec![limit()];
    let (mut ok, mut secs, mut latencies, mut other) = (0, 0.0, Vec::new(), 0);
    let mut cpu = CpuUse { server: 0.0, hashing: 0.0, driver: 0.0 };
    for round in 0..rounds {
        // Different requests each round: offset the request numbers.
        let shifted = {
            let op = Arc::clone(&op);
            let base = round * 1_000_000;
            Arc::new(move |i: usize| op(base + i))
        };
        let meter = CpuMeter::start(server_pid);
        let w = rate_phase(tasks, window, expect, shifted).await;
        let used = meter.used();
        cpu.server += used.server;
        cpu.hashing += used.hashing;
        cpu.driver += used.driver;
        ok += w.ok;
        secs += w.secs;
        other += w.other;
        latencies.extend(w.latencies);
        limits.push(limit());
    }
    let per_op = |cpu: f64| if ok > 0 { round2(cpu / ok as f64) } else { 0.0 };
    Measured {
        rate: ok as f64 / secs.max(f64::EPSILON),
        limit: limits.iter().sum::<f64>() / limits.len() as f64,
        latencies,
        other,
        server_ms: per_op(cpu.server),
        hashing_ms: per_op(cpu.hashing),
        driver_ms: per_op(cpu.driver),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round1(sorted[idx.min(sorted.len() - 1)])
}

/// The mobile and password of the i-th request of a login phase.
type LoginInput = fn(&Plan, usize) -> (String, &'static str);

/// What to run.
#[derive(Debug, Clone)]
struct Plan {
    concurrency: usize,
    refresh_concurrency: usize,
    rounds: usize,
    window: Duration,
    flood: Duration,
    flood_connections: usize,
    phases: Vec<String>,
    /// Users imported beside the 16 made through the API.
    imported: usize,
}

impl Plan {
    /// The mobile of the `i`-th user the phases log in as: one of 16, spread
    /// over the imported users when there are any.
    fn login_mobile(&self, i: usize) -> String {
        match self.imported {
            0 => user_mobile(i % USERS),
            n => user_mobile(USERS + (i % USERS) * (n / USERS)),
        }
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

async fn drive(server: &Server, limits: &Limits, plan: &Plan) -> Result<Value, String> {
    let concurrency = plan.concurrency;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * concurrency.max(plan.refresh_concurrency))
        .build()
        .map_err(|e| e.to_string())?;
    let mut api = Api { client: client.clone(), base: server.base.clone(), client_id: String::new() };
    let app = api.admin(reqwest::Method::POST, "/apps", json!({"name": "bench"})).await?;
    api.client_id = app["client_id"].as_str().ok_or("client_id")?.to_owned();
    // Wrong passwords are spread over the users; the cap keeps any from locking.
    api.admin(reqwest::Method::PUT, "/policies/lockout", json!({"max_failures": 1000, "lock_seconds": 60})).await?;
    // The rate phases send thousands of failures from one address: the
    // throttle still counts each attempt, but never closes.
    api.admin(reqwest::Method::PUT, "/policies/throttle", OPEN_THROTTLE.clone()).await?;
    for i in 0..USERS {
        api.admin(reqwest::Method::POST, "/users", json!({"mobile": user_mobile(i), "password": PASSWORD})).await?;
    }
    let api = Arc::new(api);
    let mut out = serde_json::Map::new();
    if plan.imported > 0 {
        import_users(server, limits, plan.imported, &mut out).await?;
    }
    let pid = server.child.id();
    eprintln!(
        "{concurrency} requests in flight; each phase {} windows of {:?}, each between two windows of the limit",
        plan.rounds, plan.window
    );

    let logins: [(&str, &str, LoginInput); 3] = [
        ("login", "SUCCESS", |plan, i| (plan.login_mobile(i), PASSWORD)),
        ("wrong", "IDAAS.SDK.LOGIN.0002", |plan, i| (plan.login_mobile(i), "Wrong-pass1")),
        ("unknown", "IDAAS.SDK.LOGIN.0002", |_, i| (format!("+86139{:08}", i % 100_000_000), PASSWORD)),
    ];
    let mut hash_limits = Vec::new();
    for (name, expect, input) in logins {
        if !plan.runs(name) {
            continue;
        }
        let (a, c, p) = (Arc::clone(&api), client.clone(), Arc::new(plan.clone()));
        let Measured { rate, limit, mut latencies, other, server_ms, hashing_ms, driver_ms } = interleaved(
            plan.rounds,
            plan.window,
            concurrency,
            pid,
            expect,
            || limits.hash(),
            move |i| {
                let (a, c) = (Arc::clone(&a), c.clone());
                let (mobile, password) = input(&p, i);
                async move { a.login(&c, &mobile, password).await }
            },
        )
        .await;

        hash_limits.push(limit);
        latencies.sort_by(f64::total_cmp);
        eprintln!(
            "  {name}: {rate:.1}/s against {limit:.1}/s (others {other}); cpu per request: server {server_ms} ms (hashing threads {hashing_ms} ms), driver {driver_ms} ms"
        );
        out.insert(format!("{name}_per_s"), json!(round1(rate)));
        out.insert(format!("{name}_hash_limit_per_s"), json!(round1(limit)));
        out.insert(format!("{name}_ratio"), json!(ratio(rate, limit)));
        out.insert(format!("{name}_server_cpu_ms"), json!(server_ms));
        out.insert(format!("{name}_hashing_cpu_ms"), json!(hashing_ms));
        // What the server spends per request beside the hash itself.
        out.insert(format!("{name}_beside_hash_cpu_ms"), json!(round2(server_ms - hashing_ms)));
        if name == "login" {
            out.insert("login_p50_ms".into(), json!(percentile(&latencies, 0.5)));
            out.insert("login_p99_ms".into(), json!(percentile(&latencies, 0.99)));
            out.insert("login_driver_cpu_ms".into(), json!(driver_ms));
        }
    }
    if !hash_limits.is_empty() {
        out.insert(
            "hash_limit_per_s".into(),
            json!(round1(hash_limits.iter().sum::<f64>() / hash_limits.len() as f64)),
        );
    }

    if plan.runs("refresh") {
        let mut sessions = Vec::new();
        for i in 0..USERS {
            let body = json!({"mobile": plan.login_mobile(i), "password": PASSWORD});
            let sent = api.sdk(&client, "/login/mobile-pwd").json(&body).send().await;
            let body: Value = sent.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            sessions.push(body["session_token"].as_str().ok_or("session_token")?.to_owned());
        }
        let sessions = Arc::new(sessions);
        let (a, c) = (Arc::clone(&api), client.clone());
        let Measured { rate: refresh, limit, other, server_ms, driver_ms, .. } = interleaved(
            plan.rounds,
            plan.window,
            plan.refresh_concurrency,
            pid,
            "ok",
            || limits.sign(),
            move |i| {
                let (a, c, s) = (Arc::clone(&a), c.clone(), Arc::clone(&sessions));
                async move {
                    let token = &s[i % s.len()];
                    answered(a.sdk(&c, "/sso/session-token/id-token").header("session-token", token).send().await).await
                }
            },
        )
        .await;

        eprintln!(
            "  refresh: {refresh:.1}/s against {limit:.1}/s raw RS256 (others {other}); cpu per refresh: server {server_ms} ms, driver {driver_ms} ms"
        );
        out.insert("refresh_per_s".into(), json!(round1(refresh)));
        out.insert("refresh_concurrency".into(), json!(plan.refresh_concurrency));
        out.insert("sign_limit_per_s".into(), json!(round1(limit)));
        out.insert("refresh_ratio".into(), json!(ratio(refresh, limit)));
        out.insert("refresh_server_cpu_ms".into(), json!(server_ms));
        out.insert("refresh_driver_cpu_ms".into(), json!(driver_ms));
        out.insert("id_token_sign_per_s".into(), json!(round1(limits.id_tokens())));
    }

    if plan.runs("floor") {
        // At each phase's concurrency: with more requests in flight, one
        // wake-up serves several of them.
        let attempt = floor_phase(&api, &client, plan, plan.concurrency, pid).await;
        let refresh = floor_phase(&api, &client, plan, plan.refresh_concurrency, pid).await;
        for (name, floor) in [("floor", &attempt), ("floor_refresh", &refresh)] {
            eprintln!(
                "  {name}: {:.1} exchanges/s, cpu per exchange {} ms (server and driver)",
                floor.rate, floor.cpu_ms
            );
            out.insert(format!("{name}_per_s"), json!(round1(floor.rate)));
            out.insert(format!("{name}_cpu_ms"), json!(floor.cpu_ms));
        }
        let sign_limit = match out.get("sign_limit_per_s").and_then(Value::as_f64) {
            Some(limit) => limit,
            None => limits.sign(),
        };
        let hash_limit = out.get("hash_limit_per_s").and_then(Value::as_f64).unwrap_or_else(|| limits.hash());
        let bounds = Bounds::new(limits.cores, hash_limit, sign_limit, attempt.cpu_ms, refresh.cpu_ms);
        for (name, bound) in bounds.named() {
            out.insert(format!("{name}_bound"), json!(bound));
        }
    }

    if plan.runs("attack") {
        eprintln!(
            "attack: {} connections from one address for {:?}, {HONEST} others once a second",
            plan.flood_connections, plan.flood
        );
        let attack = attack_phase(&api, plan.flood_connections, plan.flood).await?;
        eprintln!(
            "  honest {}/{} ok, p99 {} ms; attacker hashed {:.1}/s, answers {:?}",
            attack.honest_ok, attack.honest_sent, attack.honest_p99_ms, attack.attacker_hashes_per_s, attack.attacker
        );
        out.insert("honest_ok_ratio".into(), json!(round3(attack.honest_ok as f64 / attack.honest_sent.max(1) as f64)));
        out.insert("honest_p50_ms".into(), json!(attack.honest_p50_ms));
        out.insert("honest_p99_ms".into(), json!(attack.honest_p99_ms));
        out.insert("attacker_hashes_per_s".into(), json!(round1(attack.attacker_hashes_per_s)));
        out.insert("attacker_answers".into(), json!(attack.attacker));
    }

    if plan.runs("stuffing") {
        eprintln!("stuffing: one address tries {STUFFING} numbers once each, under the default throttle");
        let stuffing = stuffing_phase(&api, pid).await?;
        eprintln!(
            "  hashed {}, throttled {}, other {}; server cpu per throttled attempt {} ms, {} audit rows for {}",
            stuffing.hashed,
            stuffing.throttled,
            stuffing.other,
            stuffing.throttled_cpu_ms,
            stuffing.throttled_rows,
            stuffing.throttled_counted
        );
        eprintln!(
            "  {JUNK} unparsable bodies: server cpu {} ms each, {} audit rows for {}",
            stuffing.junk_cpu_ms, stuffing.junk_rows, stuffing.junk_counted
        );
        out.insert("stuffing_hashed".into(), json!(stuffing.hashed));
        out.insert("stuffing_throttled".into(), json!(stuffing.throttled));
        out.insert("stuffing_other".into(), json!(stuffing.other));
        out.insert("stuffing_throttled_cpu_ms".into(), json!(stuffing.throttled_cpu_ms));
        out.insert("stuffing_throttled_audit_rows".into(), json!(stuffing.throttled_rows));
        out.insert("stuffing_throttled_audit_counted".into(), json!(stuffing.throttled_counted));
        out.insert("junk_cpu_ms".into(), json!(stuffing.junk_cpu_ms));
        out.insert("junk_audit_rows".into(), json!(stuffing.junk_rows));
        out.insert("junk_audit_counted".into(), json!(stuffing.junk_counted));
    }

    if plan.runs("flood") {
        eprintln!("flood: {} connections for {:?}", plan.flood_connections, plan.flood);
        let (ok, busy, throttled, others) = flood_phase(&api, plan.flood_connections, plan.flood).await?;
        eprintln!("  success {ok}, busy {busy}, throttled {throttled}, other {others}");
        out.insert("flood_ok".into(), json!(ok));
        out.insert("flood_busy".into(), json!(busy));
        out.insert("flood_throttled".into(), json!(throttled));
        out.insert("flood_other".into(), json!(others));
        let after = api.login(&client, &user_mobile(0), PASSWORD).await;
        out.insert("flood_recovered".into(), json!(after == "SUCCESS"));
    }
    Ok(Value::Object(out))
}

/// `ok` for a 2xx answer read to its end, else what went wrong.
async fn answered(sent: reqwest::Result<reqwest::Response>) -> String {
    match sent {
        Ok(r) if r.status().is_success() => match r.bytes().await {
            Ok(_) => "ok".to_owned(),
            Err(_) => "unreadable".to_owned(),
        },
        _ => "failed".to_owned(),
    }
}

/// What the floor phase measured.
struct Floor {
    /// Exchanges per second.
    rate: f64,
    /// Server and driver CPU per exchange, ms.
    cpu_ms: f64,
}

/// The cheapest exchange the server has, `GET /healthz` (no database, no
/// hash, no signature), `tasks` at a time: what one HTTP request and answer
/// cost the two processes on this machine at the least.
async fn floor_phase(api: &Arc<Api>, client: &reqwest::Client, plan: &Plan, tasks: usize, pid: u32) -> Floor {
    let url = Arc::new(format!("{}/healthz", api.base));
    let (mut ok, mut secs, mut cpu) = (0, 0.0, 0.0);
    for _ in 0..plan.rounds {
        let (c, u) = (client.clone(), Arc::clone(&url));
        let op = Arc::new(move |_: usize| {
            let (c, u) = (c.clone(), Arc::clone(&u));
            async move { answered(c.get(u.as_str()).send().await).await }
        });
        let meter = CpuMeter::start(pid);
        let w = rate_phase(tasks, plan.window, "ok", op).await;
        let used = meter.used();
        cpu += used.server + used.driver;
        ok += w.ok;
        secs += w.secs;
    }
    Floor { rate: ok as f64 / f64::max(secs, f64::EPSILON), cpu_ms: if ok > 0 { round3(cpu / ok as f64) } else { 0.0 } }
}

/// The best ratios this machine allows, whatever the server: each request
/// is at least its HTTP exchange (the floor, server and driver together)
/// plus the work the API (docs/api.md) requires of it, an argon2id
/// verification for every login attempt and an RS256 signature for every
/// id_token, all on the same cores as the limits they are judged against.
struct Bounds {
    /// CPU of one verification, ms (all cores busy).
    hash_ms: f64,
    /// CPU of one signature, ms.
    sign_ms: f64,
    /// CPU of the cheapest exchange at the login phases' concurrency, ms.
    floor_ms: f64,
    /// The same at the refresh phase's concurrency, ms.
    floor_refresh_ms: f64,
}

impl Bounds {
    fn new(cores: usize, hash_limit: f64, sign_limit: f64, floor_ms: f64, floor_refresh_ms: f64) -> Self {
        let per_op = |limit: f64| if limit > 0.0 { cores as f64 * 1000.0 / limit } else { 0.0 };
        Self { hash_ms: per_op(hash_limit), sign_ms: per_op(sign_limit), floor_ms, floor_refresh_ms }
    }

    /// `(phase, bound)`: a login signs an id_token, a refused attempt does
    /// not, a refresh hashes nothing.
    fn named(&self) -> [(&'static str, f64); 4] {
        let share = |core: f64, rest: f64| if core + rest > 0.0 { ratio(core, core + rest) } else { 0.0 };
        let attempt = share(self.hash_ms, self.floor_ms);
        [
            ("login", share(self.hash_ms, self.sign_ms + self.floor_ms)),
            ("wrong", attempt),
            ("unknown", attempt),
            ("refresh", share(self.sign_ms, self.floor_refresh_ms)),
        ]
    }
}

/// `connections` clients, each on its own connection from `address`,
/// sending logins until `stop` is set; returns how each was answered.
fn flood_from(
    api: &Arc<Api>,
    address: [u8; 4],
    connections: usize,
    stop: &Arc<AtomicBool>,
    input: fn(usize, usize) -> (String, &'static str),
) -> Result<Vec<tokio::task::JoinHandle<HashMap<String, u64>>>, String> {
    let start = Arc::new(tokio::sync::Barrier::new(connections));
    let mut handles = Vec::new();
    for i in 0..connections {
        let (api, start, stop) = (Arc::clone(api), Arc::clone(&start), Arc::clone(stop));
        let client = client_from(address, 1)?;
        handles.push(tokio::spawn(async move {
            let mut answers = HashMap::new();
            start.wait().await;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (mobile, password) = input(i, n);
                *answers.entry(api.login(&client, &mobile, password).await).or_insert(0) += 1;
            }
            answers
        }));
    }
    Ok(handles)
}

async fn tally(handles: Vec<tokio::task::JoinHandle<HashMap<String, u64>>>) -> HashMap<String, u64> {
    let mut total = HashMap::new();
    for h in handles {
        if let Ok(answers) = h.await {
            for (answer, n) in answers {
                *total.entry(answer).or_insert(0) += n;
            }
        }
    }
    total
}

/// A client whose connections come from `address` (a loopback address:
/// every 127.x.y.z is this machine).
fn client_from(address: [u8; 4], idle: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .pool_max_idle_per_host(idle)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// `connections` clients, each on its own connection, sending logins back
/// to back until `span` is over; returns the answers: success, busy,
/// throttled, other.
async fn flood_phase(api: &Arc<Api>, connections: usize, span: Duration) -> Result<(u64, u64, u64, u64), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles = flood_from(api, [127, 0, 0, 1], connections, &stop, |i, _| (user_mobile(i % USERS), PASSWORD))?;
    tokio::time::sleep(span).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = tally(handles).await;
    let mut take = |answer: &str| answers.remove(answer).unwrap_or(0);
    let (ok, busy, throttled) = (take("SUCCESS"), take("IDAAS.SDK.COM.0002"), take("IDAAS.SDK.REQ.0007"));
    Ok((ok, busy, throttled, answers.values().sum()))
}

/// The throttle the rate phases run under: every attempt counted, the
/// window never closed.
static OPEN_THROTTLE: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"ip_max_failures": 1_000_000, "ip_window_seconds": 60, "ip_allowlist": []}));

/// Honest addresses in the attack phase.
const HONEST: usize = 16;

/// What the attack phase measured.
struct Attack {
    honest_sent: u64,
    honest_ok: u64,
    honest_p50_ms: f64,
    honest_p99_ms: f64,
    attacker_hashes_per_s: f64,
    attacker: HashMap<String, u64>,
}

/// One address floods logins (unknown mobiles and wrong passwords, on
/// `connections` connections) while [`HONEST`] other addresses each log in
/// once a second with the right password. The throttle stays open, so fair
/// hashing alone keeps the honest users in.
async fn attack_phase(api: &Arc<Api>, connections: usize, span: Duration) -> Result<Attack, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let flood_started = Instant::now();
    let flood = flood_from(api, [127, 0, 0, 2], connections, &stop, |i, n| match n % 2 {
        0 => (format!("+86138{:08}", (i * 100_000 + n) % 100_000_000), "Wrong-pass1"),
        _ => (user_mobile((i + n) % USERS), "Wrong-pass1"),
    })?;
    // Let the flood fill the pool before the honest users arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut honest = Vec::new();
    for h in 0..HONEST {
        let api = Arc::clone(api);
        let client = client_from([127, 0, 1, u8::try_from(h + 1).unwrap_or(1)], 1)?;
        honest.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut next = Instant::now();
            while started.elapsed() < span {
                let sent = Instant::now();
                let answer = api.login(&client, &user_mobile(h), PASSWORD).await;
                results.push((answer == "SUCCESS", sent.elapsed().as_secs_f64() * 1000.0));
                next += Duration::from_secs(1);
                tokio::time::sleep_until(next.into()).await;
            }
            results
        }));
    }
    let mut results = Vec::new();
    for h in honest {
        results.extend(h.await.map_err(|e| e.to_string())?);
    }
    stop.store(true, Ordering::Relaxed);
    let attacker = tally(flood).await;
    // Over the whole flood, its first half second included.
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    Ok(Attack {
        honest_sent: results.len() as u64,
        honest_ok: results.iter().filter(|(ok, _)| *ok).count() as u64,
        honest_p50_ms: percentile(&latencies, 0.5),
        honest_p99_ms: percentile(&latencies, 0.99),
        attacker_hashes_per_s: attacker.get("IDAAS.SDK.LOGIN.0002").copied().unwrap_or(0) as f64 / flood_secs,
        attacker,
    })
}

/// Numbers the stuffing phase tries.
const STUFFING: usize = 10_000;

/// What the stuffing phase measured.
struct Stuffing {
    hashed: u64,
    throttled: u64,
    other: u64,
    throttled_cpu_ms: f64,
    /// Audit rows the throttled attempts added, and the refusals they count
    /// (one row per address and outcome a minute).
    throttled_rows: u64,
    throttled_counted: u64,
    /// The same for [`JUNK`] bodies that do not parse.
    junk_cpu_ms: f64,
    junk_rows: u64,
    junk_counted: u64,
}

/// Bodies that do not parse, sent by one address in the stuffing phase.
const JUNK: usize = 5_000;

/// The audit events from `ip` with `outcome`: how many rows, and how many
/// calls they count.
async fn audit_rows(api: &Api, ip: &str, outcome: &str) -> Result<(u64, u64), String> {
    let events = api.admin(reqwest::Method::GET, &format!("/audit-events?ip={ip}&limit=1000"), json!({})).await?;
    let rows: Vec<&Value> =
        events.as_array().map(|e| e.iter().filter(|e| e["outcome"] == outcome).collect()).unwrap_or_default();
    Ok((rows.len() as u64, rows.iter().filter_map(|e| e["count"].as_u64()).sum()))
}

/// One address tries [`STUFFING`] distinct numbers once each under the
/// default throttle (100 failures an hour): only the first 100 may be
/// hashed. The server's CPU is metered over the attempts after the window
/// has closed.
async fn stuffing_phase(api: &Arc<Api>, pid: u32) -> Result<Stuffing, String> {
    api.admin(reqwest::Method::PUT, "/policies/throttle", json!({"ip_max_failures": 100, "ip_window_seconds": 3600}))
        .await?;
    let client = client_from([127, 0, 0, 3], 64)?;
    let attempt = |n: usize| {
        let (api, client) = (Arc::clone(api), client.clone());
        async move { api.login(&client, &format!("+86137{n:08}"), "Wrong-pass1").await }
    };
    // The first attempts close the window; the rest are all refused.
    let mut answers: HashMap<String, u64> = HashMap::new();
    let closing = 200;
    for batch in (0..closing).collect::<Vec<_>>().chunks(32) {
        let sent: Vec<_> = batch.iter().map(|n| tokio::spawn(attempt(*n))).collect();
        for s in sent {
            *answers.entry(s.await.map_err(|e| e.to_string())?).or_insert(0) += 1;
        }
    }
    let meter = CpuMeter::start(pid);
    let mut refused_after = 0u64;
    for batch in (closing..STUFFING).collect::<Vec<_>>().chunks(64) {
        let sent: Vec<_> = batch.iter().map(|n| tokio::spawn(attempt(*n))).collect();
        for s in sent {
            let answer = s.await.map_err(|e| e.to_string())?;
            refused_after += u64::from(answer == "IDAAS.SDK.REQ.0007");
            *answers.entry(answer).or_insert(0) += 1;
        }
    }
    let cpu = meter.used();
    api.admin(reqwest::Method::PUT, "/policies/throttle", OPEN_THROTTLE.clone()).await?;
    let (throttled_rows, throttled_counted) = audit_rows(api, "127.0.0.3", "IDAAS.SDK.REQ.0007").await?;
    // Bodies that do not parse from another address: refused before any
    // read of the database, counted in one event a minute.
    let junk = client_from([127, 0, 0, 4], 64)?;
    let meter = CpuMeter::start(pid);
    for batch in (0..JUNK).collect::<Vec<_>>().chunks(64) {
        let sent: Vec<_> = batch
            .iter()
            .map(|_| {
                let req = api.sdk(&junk, "/login/mobile-pwd").header("Content-Type", "application/json");
                tokio::spawn(req.body("{not json").send())
            })
            .collect();
        for s in sent {
            s.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
    }
    let junk_cpu = meter.used();
    let (junk_rows, junk_counted) = audit_rows(api, "127.0.0.4", "IDAAS.SDK.REQ.0002").await?;
    let mut take = |answer: &str| answers.remove(answer).unwrap_or(0);
    let (hashed, throttled) = (take("IDAAS.SDK.LOGIN.0002"), take("IDAAS.SDK.REQ.0007"));
    Ok(Stuffing {
        hashed,
        throttled,
        other: answers.values().sum(),
        throttled_cpu_ms: round3(cpu.server / refused_after.max(1) as f64),
        throttled_rows,
        throttled_counted,
        junk_cpu_ms: round3(junk_cpu.server / JUNK as f64),
        junk_rows,
        junk_counted,
    })
}
