//! CPU time from `/proc`: the server's, its hashing threads', and the load
//! driver's.

/// CPU time (user + system) in a `/proc/…/stat` file, in milliseconds.
pub(crate) fn stat_cpu_ms(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) * 10.0
}

/// CPU time a process has used so far, ms.
pub(crate) fn cpu_ms(pid: &str) -> f64 {
    stat_cpu_ms(&format!("/proc/{pid}/stat"))
}

/// CPU time the server's hashing threads (named `ciam-hash-N`) have used so
/// far, ms.
pub(crate) fn hash_cpu_ms(pid: &str) -> f64 {
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
pub(crate) struct CpuUse {
    /// The whole server process.
    pub(crate) server: f64,
    /// The server's hashing threads.
    pub(crate) hashing: f64,
    /// The load driver (this process).
    pub(crate) driver: f64,
}

/// Measures [`CpuUse`] from its start.
pub(crate) struct CpuMeter {
    pub(crate) server: String,
    pub(crate) start: CpuUse,
}

impl CpuMeter {
    pub(crate) fn start(server_pid: u32) -> Self {
        let server = server_pid.to_string();
        Self { start: Self::now(&server), server }
    }

    pub(crate) fn now(server: &str) -> CpuUse {
        CpuUse { server: cpu_ms(server), hashing: hash_cpu_ms(server), driver: cpu_ms("self") }
    }

    /// CPU used since the start.
    pub(crate) fn used(&self) -> CpuUse {
        let now = Self::now(&self.server);
        CpuUse {
            server: now.server - self.start.server,
            hashing: now.hashing - self.start.hashing,
            driver: now.driver - self.start.driver,
        }
    }
}
