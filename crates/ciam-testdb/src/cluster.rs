//! A throwaway PostgreSQL cluster for the test suite, for machines where
//! PostgreSQL is installed but not running: made with the server's own
//! programs (`initdb`, `pg_ctl`) in a folder of the temporary directory,
//! trusting local connections, listening on 127.0.0.1 only.
//!
//! Every test process of a run (and later runs) shares it: the first one
//! starts it, under a file lock; it stays up until the machine restarts or
//! `pg_ctl -D <folder>/data stop` ends it.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the shared cluster lives.
pub fn shared_folder() -> PathBuf {
    std::env::temp_dir().join("ciam-test-postgres")
}

/// The URL of the cluster in `folder` (no database name), started if it
/// is not running.
pub fn ensure(folder: &Path) -> Result<String, String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let lock = File::create(folder.join("lock")).map_err(|e| format!("{}: {e}", folder.display()))?;
    lock.lock().map_err(|e| format!("lock {}: {e}", folder.display()))?;
    let port_file = folder.join("port");
    if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse::<u16>().ok())
        && answers(port)
    {
        return Ok(url(port));
    }
    let bin = server_programs()?;
    let data = folder.join("data");
    let as_postgres = running_as_root();
    if !data.join("PG_VERSION").exists() {
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        if as_postgres {
            // initdb refuses to run as root: the cluster belongs to postgres.
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(folder))?;
        }
        let initdb = bin.join("initdb");
        let mut command = program(as_postgres, &initdb);
        command.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        run(&mut command)?;
    }
    let port = free_port()?;
    let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", data.display());
    let mut command = program(as_postgres, &bin.join("pg_ctl"));
    command.arg("-D").arg(&data).arg("-l").arg(folder.join("server.log")).args(["-o", &options, "-w", "start"]);
    run(&mut command)?;
    std::fs::write(&port_file, port.to_string()).map_err(|e| format!("{}: {e}", port_file.display()))?;
    Ok(url(port))
}

/// Stops the cluster in `folder`.
pub fn stop(folder: &Path) -> Result<(), String> {
    let bin = server_programs()?;
    let mut command = program(running_as_root(), &bin.join("pg_ctl"));
    command.arg("-D").arg(folder.join("data")).args(["-m", "fast", "-w", "stop"]);
    run(&mut command)
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}")
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_ok()
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The folder of `initdb` and `pg_ctl`: on `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first).
fn server_programs() -> Result<PathBuf, String> {
    let on_path =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect::<Vec<_>>()).unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by_key(|bin| {
        let version = bin.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse().ok());
        std::cmp::Reverse(version.unwrap_or(0u32))
    });
    on_path
        .into_iter()
        .chain(debian)
        .find(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "PostgreSQL is not answering on 127.0.0.1:5432 and its server programs (initdb, pg_ctl) are not \
             installed, so the tests cannot start one: install PostgreSQL's server package (Debian and Ubuntu: \
             `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; macOS: `brew install \
             postgresql`), start a server, or set CIAM_TEST_POSTGRES_URL to one"
                .to_owned()
        })
}

/// Whether this process runs as root: the owner of a file it makes.
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let probe = std::env::temp_dir().join(format!("ciam-uid-{}", std::process::id()));
        let root = File::create(&probe).and_then(|f| f.metadata()).map(|m| m.uid() == 0).unwrap_or(false);
        let _ = std::fs::remove_file(probe);
        root
    }
    #[cfg(not(unix))]
    false
}

/// `program`, run as the postgres user when `as_postgres`.
fn program(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
