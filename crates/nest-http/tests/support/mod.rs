//! Test helpers: a current-thread runtime runner, an in-process hyper server on 127.0.0.1
//! (plain or TLS) that records what it saw, raw-socket servers for misbehaving peers, and
//! rcgen certificates.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nest_http::{ClientConfig, VuClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub mod nginx;

/// Runs `f` on a fresh current-thread runtime inside a `LocalSet`, as nest does.
pub fn run<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query as sent on the wire.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Which accepted connection carried it (0-based).
    pub conn: usize,
    /// TLS SNI, if any.
    pub sni: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A recording hyper server on 127.0.0.1.
pub struct Server {
    pub addr: SocketAddr,
    scheme: &'static str,
    accepts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub async fn start() -> Server {
        Self::spawn(None).await
    }

    pub async fn start_tls(config: rustls::ServerConfig) -> Server {
        Self::spawn(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn spawn(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (a, s) = (accepts.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let conn = a.fetch_add(1, Ordering::SeqCst);
                let seen = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(tcp), conn, None, seen).await,
                        Some(acceptor) => {
                            // A client rejecting our certificate aborts the handshake.
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let sni = stream.get_ref().1.server_name().map(str::to_owned);
                            serve(TokioIo::new(stream), conn, sni, seen).await;
                        }
                    }
                });
            }
        });
        Server { addr, scheme, accepts, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn base(&self) -> url::Url {
        self.url("/").parse().unwrap()
    }

    /// A client (on a fresh config) whose base is this server.
    pub fn client(&self) -> VuClient {
        VuClient::new(Arc::new(ClientConfig::new(false).unwrap()), Some(self.base()))
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("server saw no request")
    }
}

async fn serve<I>(io: I, conn: usize, sni: Option<String>, seen: Arc<Mutex<Vec<Seen>>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: hyper::Request<Incoming>| {
        let seen = seen.clone();
        let sni = sni.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let target = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
            let record = Seen { method: parts.method, target, headers: parts.headers, body, conn, sni };
            let reply = route(&record);
            seen.lock().unwrap().push(record);
            Ok::<_, Infallible>(reply)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
}

fn query_param(target: &str, key: &str) -> Option<String> {
    let (_, q) = target.split_once('?')?;
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn reply(status: u16, headers: &[(&str, &str)], body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    r
}

/// Routes:
/// - `/set-cookie?name=value` sets that cookie (Path=/);
/// - `/login` sets `session=s1` and 302s to `/echo`;
/// - `/redirect/{code}?to=loc` answers `code` with `Location: loc` (default `/echo`);
/// - `/chain/{n}` 302s to `/chain/{n-1}` until 0, which answers "end";
/// - `/nolocation` answers 302 without Location;
/// - anything else: 200 "ok" with `X-Reply: Yes`.
fn route(seen: &Seen) -> hyper::Response<Full<Bytes>> {
    let path = seen.target.split('?').next().unwrap_or("");
    if path == "/set-cookie" {
        let (_, q) = seen.target.split_once('?').unwrap();
        let cookie = format!("{q}; Path=/");
        return reply(200, &[("set-cookie", cookie.as_str())], "set");
    }
    if path == "/login" {
        return reply(302, &[("set-cookie", "session=s1; Path=/"), ("location", "/echo")], "");
    }
    if let Some(code) = path.strip_prefix("/redirect/") {
        let to = query_param(&seen.target, "to").unwrap_or_else(|| "/echo".into());
        return reply(code.parse().unwrap(), &[("location", to.as_str())], "moved");
    }
    if let Some(n) = path.strip_prefix("/chain/") {
        let n: u32 = n.parse().unwrap();
        if n == 0 {
            return reply(200, &[], "end");
        }
        let next = format!("/chain/{}", n - 1);
        return reply(302, &[("location", next.as_str())], "");
    }
    if path == "/nolocation" {
        return reply(302, &[], "");
    }
    reply(200, &[("X-Reply", "Yes")], "ok")
}

/// Reads one request head (no body) from a raw socket; `false` on EOF/error.
pub async fn read_head(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
    }
}

pub const OK_KEEP_ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// A raw server that answers each connection's first request with a keep-alive 200, then
/// closes the socket (without `Connection: close`) and reports on the channel.
pub async fn closes_after_each_response() -> (SocketAddr, Arc<AtomicUsize>, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let a = accepts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            if read_head(&mut s).await {
                s.write_all(OK_KEEP_ALIVE).await.unwrap();
            }
            drop(s);
            let _ = tx.send(());
        }
    });
    (addr, accepts, rx)
}

/// A raw server that answers the first request on a connection, then reads the second
/// and closes without answering. Counts accepts and requests.
pub async fn drops_second_request() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (a, r) = (accepts.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await {
                    r.fetch_add(1, Ordering::SeqCst);
                    s.write_all(OK_KEEP_ALIVE).await.unwrap();
                }
                if read_head(&mut s).await {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, accepts, requests)
}

/// A server that accepts connections and never reads or answers.
pub async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

/// A private CA and a leaf certificate for `localhost` / `127.0.0.1` signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub server: rustls::ServerConfig,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    Pki { ca_pem: ca.pem(), server }
}
