//! `GET /metrics` on `CIAM_METRICS_LISTEN` (docs/api.md §9): the counters of
//! [`ciam_core::telemetry`] in the Prometheus text format, with the hashing
//! pool's load and the process's CPU and memory read at each scrape.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use ciam_core::Ciam;
use ciam_core::sms::delivery::SMS_SENT;
use ciam_core::telemetry::{self as names, Rejection};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::startup::StartError;

/// Bounds of the SDK request duration histogram, seconds: from a refresh
/// (about a millisecond) to the 4.5 s deadline.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How often recorded histogram samples are folded into their buckets
/// when nobody scrapes, so memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder and serves `/metrics` on `listener`
/// (bound from `CIAM_METRICS_LISTEN`) for as long as the process runs.
/// Returns the bound address.
pub async fn start(listener: TcpListener, ciam: Ciam, limits: crate::serve::Limits) -> Result<SocketAddr, StartError> {
    let addr = listener.local_addr().map_err(|e| StartError::Metrics(e.to_string()))?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::SDK_REQUEST_DURATION.into()), &DURATION_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| StartError::Metrics(e.to_string()))?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let router = Router::new().route("/metrics", get(move || scrape(handle.clone(), ciam.clone())));
    tokio::spawn(crate::serve::serve(listener, router, limits, std::future::pending()));
    Ok(addr)
}

async fn scrape(handle: PrometheusHandle, ciam: Ciam) -> impl IntoResponse {
    let (busy, queued) = ciam.hashing_load();
    metrics::gauge!(names::HASH_POOL_BUSY).set(busy as f64);
    metrics::gauge!(names::HASH_QUEUE_DEPTH).set(queued as f64);
    if let Some(process) = Process::read() {
        metrics::gauge!("process_cpu_seconds_total").set(process.cpu_seconds);
        metrics::gauge!("process_resident_memory_bytes").set(process.resident_bytes);
        metrics::gauge!("process_virtual_memory_bytes").set(process.virtual_bytes);
        metrics::gauge!("process_threads").set(process.threads);
        metrics::gauge!("process_open_fds").set(process.open_fds);
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}

/// Help texts, and every labelled series at zero, so that dashboards and
/// alerts find them before the first event.
fn describe() {
    describe_counter!(names::SDK_REQUESTS, "SDK requests by call and outcome (status or error code)");
    describe_histogram!(names::SDK_REQUEST_DURATION, Unit::Seconds, "SDK request duration by call");
    describe_gauge!(names::HASH_POOL_BUSY, "Password hashes running");
    describe_gauge!(names::HASH_QUEUE_DEPTH, "Password hashes waiting for a worker");
    describe_counter!(names::HASH_REJECTED, "Password attempts the hashing pool refused, by reason");
    describe_counter!(names::THROTTLED, "Answers IDAAS.SDK.REQ.0007 (address throttled)");
    describe_counter!(names::LOCKOUTS, "Failures that locked an account");
    describe_counter!(names::PASSWORD_VERIFICATIONS, "Password hashes verified (dummy hashes of unknown mobiles too)");
    describe_counter!(names::ADMIN_AUTH_FAILURES, "Admin requests with a missing or wrong token");
    describe_counter!(names::DB_ERRORS, "Database calls that failed");
    describe_counter!(names::DB_READS, "Database calls that only read (one statement each)");
    describe_counter!(names::DB_WRITES, "Database calls that commit a write (a statement, a transaction or a group)");
    describe_counter!(names::DB_STATEMENTS, "Statements sent to the database, in transactions or not");
    describe_counter!(names::AUDIT_PURGED, "Audit events deleted by retention");
    describe_counter!(SMS_SENT, "SMS codes handed to delivery, by type and result (delivered, failed, withheld)");
    describe_gauge!("process_cpu_seconds_total", Unit::Seconds, "CPU time of the process, user and system");
    describe_gauge!("process_resident_memory_bytes", Unit::Bytes, "Resident memory of the process");
    describe_gauge!("process_virtual_memory_bytes", Unit::Bytes, "Virtual memory of the process");
    describe_gauge!("process_threads", "Threads of the process");
    describe_gauge!("process_open_fds", "Open file descriptors of the process");
    for kind in ["LOGIN_SMS", "REGISTER_SMS", "FORGET_PWD_SMS"] {
        for result in ["delivered", "failed", "withheld"] {
            metrics::counter!(SMS_SENT, "type" => kind, "result" => result).absolute(0);
        }
    }
    for reason in Rejection::ALL {
        metrics::counter!(names::HASH_REJECTED, "reason" => reason.as_str()).absolute(0);
    }
    for name in [
        names::THROTTLED,
        names::LOCKOUTS,
        names::PASSWORD_VERIFICATIONS,
        names::ADMIN_AUTH_FAILURES,
        names::DB_ERRORS,
        names::DB_READS,
        names::DB_WRITES,
        names::DB_STATEMENTS,
        names::AUDIT_PURGED,
    ] {
        metrics::counter!(name).absolute(0);
    }
}

/// The process's resources, from `/proc/self` (Linux).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Process {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    threads: f64,
    open_fds: f64,
}

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on every
/// Linux architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// Bytes per page of `/proc/self/statm`.
const PAGE_BYTES: f64 = 4096.0;

impl Process {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0);
        Self::parse(&stat, &statm, open_fds)
    }

    /// From the text of `stat` and `statm`.
    fn parse(stat: &str, statm: &str, open_fds: usize) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces;
        // the fields after it are counted from its closing parenthesis.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        let (utime, stime, threads, virtual_bytes) = (field(14)?, field(15)?, field(20)?, field(23)?);
        let resident_pages = statm.split_whitespace().nth(1)?.parse::<f64>().ok()?;
        Some(Process {
            cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
            resident_bytes: resident_pages * PAGE_BYTES,
            virtual_bytes,
            threads,
            open_fds: open_fds as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_are_read_from_proc_text() {
        let stat = "4242 (ciam serve) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 150 0 0 20 0 7 0 1000 \
                    104857600 5000 18446744073709551615";
        let statm = "25600 5000 1200 300 0 9000 0\n";
        let process = Process::parse(stat, statm, 12).expect("parsed");
        assert_eq!(process.cpu_seconds, 4.0);
        assert_eq!(process.threads, 7.0);
        assert_eq!(process.virtual_bytes, 104_857_600.0);
        assert_eq!(process.resident_bytes, 5000.0 * 4096.0);
        assert_eq!(process.open_fds, 12.0);
    }

    #[test]
    fn this_process_can_be_read() {
        let process = Process::read().expect("/proc/self");
        assert!(process.resident_bytes > 0.0 && process.threads >= 1.0, "{process:?}");
    }
}
