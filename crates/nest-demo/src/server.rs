//! Running the demo server: the accept loop, connections, and shutdown.
//!
//! [`serve`] runs on the caller's runtime (for `nest demo-server`, which waits
//! for Ctrl-C); [`DemoServer`] wraps it in its own OS thread and tokio runtime
//! so that `nest run --demo` can start it from sync code or from inside
//! another runtime, and stop it by dropping the handle.
//!
//! Shutdown is graceful: the listener is closed first, then every live
//! connection is told to finish its in-flight request and close
//! (`graceful_shutdown`), bounded by [`SHUTDOWN_GRACE`]. Each connection learns about
//! shutdown through its own oneshot channel, which costs only atomics to poll:
//! a shared `Notify`/`watch` would take a lock on every wake of every
//! connection, which the hello benchmark would feel.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::hello::{DelayedHelloService, HelloService};
use crate::shop::ShopService;
use crate::stats::{Counters, DemoStats};
use crate::timer::Timer;
use crate::{DemoConfig, Error, Mode};

/// How long an in-flight connection may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Pause after a failed `accept` (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A demo server running on its own OS thread with its own tokio runtime.
///
/// It can be started from sync code and from inside another runtime.
/// Dropping it stops it like [`DemoServer::stop`] (blocking the dropping
/// thread for at most about [`SHUTDOWN_GRACE`]).
pub struct DemoServer {
    addr: SocketAddr,
    mode: Mode,
    counters: Counters,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Pending connections the kernel queues before `accept`: a load test opens thousands at once, and the 128 of
/// `std::net::TcpListener::bind` makes the kernel drop SYNs, which clients then retry after 1, 3, 7 seconds.
/// (The kernel caps it at `net.core.somaxconn`.)
pub const ACCEPT_BACKLOG: u32 = 8192;

/// Binds `addr` with a deep accept queue; with `reuse_port`, other processes may bind the same port and the
/// kernel spreads new connections over them (Linux `SO_REUSEPORT`). Must run inside a tokio runtime.
fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

#[cfg(unix)]
fn set_reuse_port(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    socket.set_reuseport(true)
}

#[cfg(not(unix))]
fn set_reuse_port(_: &tokio::net::TcpSocket) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "sharing a port needs SO_REUSEPORT (unix)"))
}

impl DemoServer {
    /// Binds `config.addr` and starts serving on a new thread.
    ///
    /// The socket is bound and registered before this returns, so
    /// [`addr`](Self::addr) is the real port and connections are accepted
    /// right away. Blocks briefly while the server thread starts its runtime.
    pub fn start(config: DemoConfig) -> Result<DemoServer, Error> {
        let addr = config.addr;
        let threads = config.threads.max(1);
        let reuse_port = config.reuse_port;
        let mode = config.mode;
        let counters = Counters::new();
        // The hello mode's latency and stall; the stall is timed from here, before `start` returns.
        let timed = !config.latency.is_zero() || config.stall.is_some() || config.usl.is_some();
        let delayed = if mode == Mode::Hello && timed {
            let now = Instant::now();
            let window = config.stall.map(|s| (now + s.at, now + s.at + s.length));
            let timer = Timer::start().map_err(Error::Thread)?;
            let usl = config.usl.map(|model| crate::usl::UslState::new(model, timer.clone()));
            Some(DelayedHelloService::new(counters.clone(), timer, config.latency, window).with_usl(usl))
        } else {
            None
        };
        let thread_counters = counters.clone();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<SocketAddr, Error>>(1);

        // The runtime is built and dropped on the server thread: dropping a
        // runtime inside the caller's async context would panic.
        let thread = std::thread::Builder::new()
            .name("nest-demo".to_owned())
            .spawn(move || {
                let runtime = match build_runtime(threads) {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Runtime(e)));
                        return;
                    }
                };
                let listener = {
                    let _context = runtime.enter();
                    listen(addr, reuse_port)
                };
                let listener = match listener.and_then(|l| l.local_addr().map(|a| (l, a))) {
                    Ok((listener, bound)) => {
                        if ready_tx.send(Ok(bound)).is_err() {
                            return;
                        }
                        listener
                    }
                    Err(source) => {
                        let _ = ready_tx.send(Err(Error::Bind { addr, source }));
                        return;
                    }
                };
                let shutdown = async move {
                    // A dropped sender means the handle is gone: stop too.
                    let _ = shutdown_rx.await;
                };
                let _ = runtime.block_on(serve_delayed(listener, mode, delayed, thread_counters, shutdown));
            })
            .map_err(Error::Thread)?;

        match ready_rx.recv() {
            Ok(Ok(addr)) => Ok(DemoServer { addr, mode, counters, shutdown: Some(shutdown_tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Startup)
            }
        }
    }

    /// The address the server listens on (with the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The mode the server runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Requests served so far, by route label.
    pub fn stats(&self) -> DemoStats {
        self.counters.snapshot()
    }

    /// Stops gracefully: stops accepting, lets in-flight requests finish
    /// (for at most about [`SHUTDOWN_GRACE`]), closes connections and joins the thread.
    /// When this returns the port is closed.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl std::fmt::Debug for DemoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServer").field("addr", &self.addr).field("mode", &self.mode).finish_non_exhaustive()
    }
}

fn build_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().thread_name("nest-demo-worker").build()
}

/// Serves `mode` on `listener` until `shutdown` completes, on the caller's
/// runtime, then shuts down gracefully like [`DemoServer::stop`].
///
/// Accept errors (such as running out of file descriptors) are retried after
/// a short pause rather than ending the server.
pub async fn serve(listener: TcpListener, mode: Mode, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    serve_with_counters(listener, mode, Counters::new(), shutdown).await
}

/// Like [`serve`], counting requests into `counters` (keep a clone to read
/// them with [`Counters::snapshot`]).
pub async fn serve_with_counters(
    listener: TcpListener,
    mode: Mode,
    counters: Counters,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_delayed(listener, mode, None, counters, shutdown).await
}

/// Like [`serve_with_counters`], with `delayed` as the hello-mode service when
/// a latency or stall is set. Without it, the plain [`HelloService`] runs: no
/// timer, no clock read.
async fn serve_delayed(
    listener: TcpListener,
    mode: Mode,
    delayed: Option<DelayedHelloService>,
    counters: Counters,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    match (mode, delayed) {
        (Mode::Hello, Some(delayed)) => accept_loop(listener, delayed, shutdown).await,
        (Mode::Hello, None) => accept_loop(listener, HelloService::new(counters), shutdown).await,
        (Mode::Shop, _) => accept_loop(listener, ShopService::new(counters), shutdown).await,
    }
}

/// Reports a connection's end to the accept loop, even if its task panics
/// or is cancelled.
struct DoneGuard {
    id: u64,
    done: mpsc::UnboundedSender<u64>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.done.send(self.id);
    }
}

async fn accept_loop<S>(listener: TcpListener, service: S, shutdown: impl Future<Output = ()>) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut shutdown = pin!(shutdown);
    // Live connections: dropping a sender tells that connection to wind down.
    let mut live: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
    let mut next_id: u64 = 0;

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(id) = done_rx.recv() => {
                live.remove(&id);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let id = next_id;
                    next_id += 1;
                    let (stop_tx, stop_rx) = oneshot::channel();
                    live.insert(id, stop_tx);
                    let guard = DoneGuard { id, done: done_tx.clone() };
                    let service = service.clone();
                    tokio::spawn(async move {
                        let _guard = guard;
                        serve_connection(stream, service, stop_rx).await;
                    });
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }

    // Stop accepting, tell every connection to finish, and wait for them
    // (each bounds itself by SHUTDOWN_GRACE; the extra margin covers scheduling).
    drop(listener);
    drop(live);
    drop(done_tx);
    let drained = async { while done_rx.recv().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(500), drained).await;
    Ok(())
}

async fn serve_connection<S>(stream: TcpStream, service: S, mut stop: oneshot::Receiver<()>)
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    // Nagle would delay small responses on keep-alive connections.
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    // No timer is set, so hyper arms no per-request header-read timeout
    // (which would allocate a sleep per request); idle connections are
    // closed at shutdown instead.
    builder.keep_alive(true);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        biased;
        // Client errors (resets, bad requests) end the connection; nothing to report.
        _ = conn.as_mut() => return,
        // Sent or dropped: either way the server is shutting down.
        _ = &mut stop => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}
