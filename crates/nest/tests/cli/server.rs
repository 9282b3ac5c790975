//! A loopback HTTP/1.1 server (optionally over TLS) that counts and records what it receives.
//!
//! Each test starts its own on 127.0.0.1, port 0. It runs on its own thread with its own tokio runtime, so a test
//! can block on the `nest` child process while the server keeps answering. Requests are counted per
//! (method, path without query) as soon as their head and body are in, before the reply (and any configured delay):
//! once `nest` has exited, every request it saw answered is in the counts, and nothing else is.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Headers, with lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
    /// The client's address (of its connection).
    pub peer: std::net::IpAddr,
}

impl Seen {
    /// The first value of a header (`name` in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The `X-VU` header the test scripts send.
    pub fn vu(&self) -> Option<&str> {
        self.header("x-vu")
    }

    /// The value of cookie `name` in the `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The decoded query pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let query = self.query.as_deref().unwrap_or("");
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    body: String,
    set_cookie: Option<String>,
    delay: Option<Duration>,
}

impl Reply {
    /// 200 with body `ok`.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// The given status, with body `ok`.
    pub fn status(status: u16) -> Reply {
        Reply { status, body: "ok".to_owned(), set_cookie: None, delay: None }
    }

    /// Answers with this body instead of `ok`.
    pub fn body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    /// Adds a `Set-Cookie` header.
    pub fn set_cookie(mut self, cookie: impl Into<String>) -> Reply {
        self.set_cookie = Some(cookie.into());
        self
    }

    /// Waits this long (after counting the request) before answering.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

/// Chooses the reply to a request.
type Route = dyn Fn(&Seen) -> Reply + Send + Sync;

/// Options of a server to start.
pub struct Builder {
    route: Arc<Route>,
    record: bool,
    tls: bool,
}

impl Builder {
    /// Answers with `route` instead of a plain 200.
    pub fn route(mut self, route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Builder {
        self.route = Arc::new(route);
        self
    }

    /// Keeps every request (headers and body) for [`Server::seen`], not only the counts.
    pub fn record(mut self) -> Builder {
        self.record = true;
        self
    }

    /// Serves HTTPS with a freshly generated self-signed certificate for `127.0.0.1` and `localhost`.
    pub fn tls(mut self) -> Builder {
        self.tls = true;
        self
    }

    /// Starts the server.
    pub fn start(self) -> Server {
        let tls = self.tls.then(|| tokio_rustls::TlsAcceptor::from(Arc::new(self_signed())));
        let state = Arc::new(State {
            route: self.route,
            record: self.record,
            counts: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("server-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        () = accept_loop(listener, tls, shared) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task.
                drop(runtime);
            })
            .unwrap();
        Server { addr, https: self.tls, state, shutdown: Some(shutdown), thread: Some(thread) }
    }
}

struct State {
    route: Arc<Route>,
    record: bool,
    counts: Mutex<HashMap<(String, String), u64>>,
    seen: Mutex<Vec<Seen>>,
    connections: AtomicU64,
    handshake_failures: AtomicU64,
}

/// A running server. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    https: bool,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Options for a server to start.
    pub fn builder() -> Builder {
        Builder { route: Arc::new(|_| Reply::ok()), record: false, tls: false }
    }

    /// A server that answers 200 to everything and only counts.
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Requests seen for (method, path).
    pub fn count(&self, method: &str, path: &str) -> u64 {
        let counts = self.state.counts.lock().unwrap();
        counts.get(&(method.to_owned(), path.to_owned())).copied().unwrap_or(0)
    }

    /// Every request seen.
    pub fn total(&self) -> u64 {
        self.state.counts.lock().unwrap().values().sum()
    }

    /// A snapshot of the counts, `"METHOD /path"` → count, sorted.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let counts = self.state.counts.lock().unwrap();
        counts.iter().map(|((method, path), n)| (format!("{method} {path}"), *n)).collect()
    }

    /// The recorded requests (only with [`Builder::record`]).
    pub fn seen(&self) -> Vec<Seen> {
        assert!(self.state.record, "start the server with .record()");
        self.state.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed.
    pub fn handshake_failures(&self) -> u64 {
        self.state.handshake_failures.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests were seen; false if `timeout` passes first.
    pub fn wait_for_total(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.total() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, state: Arc<State>) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            // E.g. out of file descriptors: do not spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve(TokioIo::new(tcp), peer.ip(), state).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve(TokioIo::new(stream), peer.ip(), state).await,
                    Err(_) => {
                        state.handshake_failures.fetch_add(1, Ordering::SeqCst);
                    }
                },
            }
        });
    }
}

async fn serve<I>(io: I, peer: std::net::IpAddr, state: Arc<State>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(request, peer, &state).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
}

async fn handle(
    request: hyper::Request<Incoming>,
    peer: std::net::IpAddr,
    state: &State,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let seen = Seen {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body,
        peer,
    };
    let reply = (state.route)(&seen);
    *state.counts.lock().unwrap().entry((seen.method.clone(), seen.path.clone())).or_default() += 1;
    if state.record {
        state.seen.lock().unwrap().push(seen);
    }
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
    if let Some(cookie) = reply.set_cookie {
        response.headers_mut().insert(hyper::header::SET_COOKIE, cookie.parse().unwrap());
    }
    response
}

/// A rustls server config with a self-signed certificate for `127.0.0.1` and `localhost`.
fn self_signed() -> rustls::ServerConfig {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap()
}
