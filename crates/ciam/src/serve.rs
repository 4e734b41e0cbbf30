//! The accept loop: HTTP/1.1 connections with the bounds of docs/api.md §8.
//!
//! - a request's head must arrive within `header_timeout` of the connection
//!   opening, or of the first byte after an idle spell; a connection that
//!   misses it is closed;
//! - a head over `max_header_bytes` is answered 431 by the HTTP parser;
//! - an idle keep-alive connection is closed after `idle_timeout`;
//! - at most `max_connections` are open at once: the next is accepted when
//!   one closes (it waits in the kernel's backlog meanwhile);
//! - at most `max_connections_per_address` from one peer address (trusted
//!   proxies exempt): the next one from it is closed once accepted;
//! - on shutdown the listener stops; connections still in its accept
//!   queue are taken and served, since their clients may have sent a
//!   request already. Each connection answers the request it is reading or
//!   handling with `Connection: close`; an idle one closes at once, and one
//!   that has sent nothing closes after [`FIRST_BYTE_GRACE`]. All of it
//!   within `drain_timeout`.
//!
//! hyper's own header timeout also covers idle time, so one timer would close
//! idle connections after the header bound; each connection here keeps its
//! own phase (head, busy, idle) and deadline instead.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::response::Response;
use ciam_core::model::AddressKey;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// The bounds on connections.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From the connection opening, or the first byte after an idle spell,
    /// to the end of the request head.
    pub header_timeout: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle_timeout: Duration,
    /// The largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one peer address; the next one from
    /// it is closed as soon as it is accepted, so that one address cannot
    /// take every connection.
    pub max_connections_per_address: usize,
    /// Peers not held to `max_connections_per_address`: the trusted
    /// proxies, behind which every client shares the proxy's address.
    pub exempt: Arc<[ipnet::IpNet]>,
    /// The longest shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// From the shutdown signal to the listener closing: `/readyz` answers
    /// 503 meanwhile, and calls are still served.
    pub shutdown_delay: Duration,
}

/// At shutdown, how long a connection that has sent nothing yet is given
/// for its first byte (a request may be on its way).
pub const FIRST_BYTE_GRACE: Duration = Duration::from_secs(1);

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Open, no byte received yet.
    Open(Instant),
    Head(Instant),
    Busy,
    Idle(Instant),
}

#[derive(Debug)]
struct Conn {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Conn {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Open(since) | Phase::Head(since) => Some(since + limits.header_timeout),
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// What a connection does at a shutdown that began at `stopped`.
    fn at_shutdown(&self, stopped: Instant) -> Stopping {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            // Keep-alive goes off: a request being handled is answered
            // with `Connection: close`, an idle connection closes.
            Phase::Busy | Phase::Idle(_) => Stopping::Now,
            Phase::Open(_) if Instant::now() >= stopped + FIRST_BYTE_GRACE => Stopping::Now,
            Phase::Open(_) => Stopping::At(stopped + FIRST_BYTE_GRACE),
            // A head being read is waited for (within `header_timeout`).
            Phase::Head(_) => Stopping::OnChange,
        }
    }

    /// A byte arrived: on a new connection, or while idle, a request's head
    /// has begun.
    fn read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = match *phase {
            // The head's time still runs from the connection opening.
            Phase::Open(since) => Phase::Head(since),
            Phase::Idle(_) => Phase::Head(Instant::now()),
            Phase::Head(_) | Phase::Busy => return,
        };
        drop(phase);
        self.changed.notify_one();
    }
}

/// See [`Conn::at_shutdown`].
enum Stopping {
    Now,
    At(Instant),
    OnChange,
}

/// The socket, noticing the first byte of each request.
#[derive(Debug)]
struct Tracked {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks the connection idle when the response has been written (hyper
/// drops its body).
#[derive(Debug)]
struct IdleOnDrop(Arc<Conn>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

/// A response body that marks its connection idle once written.
#[derive(Debug)]
struct TrackedBody {
    inner: Body,
    _idle: IdleOnDrop,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One connection's service: the router, told the peer's address.
#[derive(Debug, Clone)]
struct Service {
    router: Router,
    peer: SocketAddr,
    conn: Arc<Conn>,
}

type Responding = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Responding;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        // The head is in: no deadline while the request is handled.
        self.conn.set(Phase::Busy);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A Router is always ready, so it may be called at once.
        let responding = tower_service::Service::call(&mut self.router.clone(), request);
        let idle = IdleOnDrop(Arc::clone(&self.conn));
        Box::pin(async move {
            let response = responding.await?;
            Ok(response.map(|inner| TrackedBody { inner, _idle: idle }))
        })
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Open connections per peer address (an IPv6 /64 counts as one, as for
/// the address throttle: one subscriber is handed a whole /64).
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<AddressKey, usize>>,
}

/// One connection counted against its address, given back on drop.
#[derive(Debug)]
struct AddressSlot {
    key: AddressKey,
    counts: Arc<PerAddress>,
}

impl PerAddress {
    /// A slot for a connection from `ip`, unless it has `cap` open already.
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = AddressKey::of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot { key, counts: Arc::clone(self) })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection holds while it is open: its place among all
/// connections and, unless its peer is exempt, among its address's.
#[derive(Debug)]
struct Slots {
    _all: Option<OwnedSemaphorePermit>,
    _address: Option<AddressSlot>,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
    _slots: Slots,
) {
    let _ = stream.set_nodelay(true);
    let conn = Arc::new(Conn { phase: Mutex::new(Phase::Open(Instant::now())), changed: Notify::new() });
    let io = TokioIo::new(Tracked { inner: stream, conn: Arc::clone(&conn) });
    let service = Service { router, peer, conn: Arc::clone(&conn) };
    let mut builder = http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true).max_header_size(limits.max_header_bytes);
    let mut serving = pin!(builder.serve_connection(io, service));
    // Once shutdown began: when, and whether the connection was told.
    let mut stopped = None;
    let mut told = false;
    loop {
        let mut grace = None;
        if let Some(since) = stopped.filter(|_| !told) {
            match conn.at_shutdown(since) {
                Stopping::Now => {
                    serving.as_mut().graceful_shutdown();
                    told = true;
                }
                Stopping::At(at) => grace = Some(at),
                Stopping::OnChange => {}
            }
        }
        let deadline = conn.deadline(&limits);
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop), if stopped.is_none() => stopped = Some(Instant::now()),
            () = sleep_until(grace) => {}
            _ = serving.as_mut() => break,
            () = sleep_until(deadline) => {
                // Dropping the connection closes the socket.
                if conn.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    break;
                }
            }
            () = conn.changed.notified() => {}
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`
/// completes, then drains.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // A free slot first: at most `max_connections` are ever open.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slots) = admit(&per_address, &limits, peer, Some(slot)) else {
            // Closed at once: the address has its share open already.
            continue;
        };
        tokio::spawn(connection(stream, peer, router.clone(), Arc::clone(&limits), stopping.clone(), slots));
    }
    stop.send_replace(true);
    serve_queued(listener, &router, &limits, &per_address, &stopping);
    drop(stopping);
    tokio::select! {
        () = stop.closed() => {}
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!("requests still in flight at shutdown"),
    }
}

/// Serves the connections waiting in the accept queue as the listener
/// goes: their clients may have sent a request already. They are outside
/// `max_connections`, which would wait on connections not yet told to
/// close.
fn serve_queued(
    listener: TcpListener,
    router: &Router,
    limits: &Arc<Limits>,
    per_address: &Arc<PerAddress>,
    stopping: &watch::Receiver<bool>,
) {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => return tracing::warn!(error = %e, "accept queue not drained"),
    };
    while let Ok((stream, peer)) = listener.accept() {
        let stream = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream));
        if let (Ok(stream), Some(slots)) = (stream, admit(per_address, limits, peer, None)) {
            tokio::spawn(connection(stream, peer, router.clone(), Arc::clone(limits), stopping.clone(), slots));
        }
    }
}

/// The slots a connection from `peer` holds, unless its address has its
/// share open already.
fn admit(
    per_address: &Arc<PerAddress>,
    limits: &Limits,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
) -> Option<Slots> {
    let address = if limits.exempt.iter().any(|net| net.contains(&peer.ip().to_canonical())) {
        None
    } else {
        Some(per_address.take(peer.ip(), limits.max_connections_per_address)?)
    };
    Some(Slots { _all: slot, _address: address })
}
