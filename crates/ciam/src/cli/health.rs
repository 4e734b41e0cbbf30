//! `ciam health`: asks the server at `CIAM_LISTEN` for `/healthz` and exits
//! 0 when it answers 200, 1 otherwise: a container's health check where
//! there is no shell or curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::CliError;
use crate::config::Config;

/// How long the probe waits for the server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn run(config: &Config) -> Result<(), CliError> {
    let address = probe_address(&config.listen)?;
    let answer = get_healthz(address).map_err(|e| CliError::Input(format!("{address}: {e}")))?;
    match answer.split(' ').nth(1) {
        Some("200") => {
            println!("ok");
            Ok(())
        }
        _ => Err(CliError::Input(format!("{address}: {}", answer.lines().next().unwrap_or("no answer")))),
    }
}

/// Where to ask: the listening address, on loopback when it listens on
/// every address.
fn probe_address(listen: &str) -> Result<SocketAddr, CliError> {
    let mut address = listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| CliError::Input(format!("CIAM_LISTEN={listen} is not an address to ask")))?;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Ok(address)
}

/// The head of the answer to `GET /healthz`.
fn get_healthz(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.take(4096).read_to_string(&mut answer)?;
    Ok(answer)
}
