//! Connections: establishing them — DNS (non-blocking), TCP with `TCP_NODELAY` from an optional source address,
//! optional TLS via tokio-rustls — and the one connection type the per-VU idle pool stores, [`Conn`]: either a lean
//! HTTP/1.1 connection the VU drives itself ([`h1`]), or a hyper one whose connection task is driven by
//! `tokio::spawn`. A request that the lean path does not handle turns a lean connection into a hyper one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::body::Frames;
use crate::error::{Failure, chain};
use crate::h1;
use crate::prepare::Prepared;
use crate::source::{self, Source};
use crate::stream::Stream;
use crate::{ClientConfig, ErrorKind, Headers};

/// The request half of a hyper client connection.
pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// Identifies an origin: connections are only reused for the same scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: Box<str>,
    pub(crate) port: u16,
}

impl Origin {
    /// Compares against a borrowed origin without allocating.
    pub(crate) fn is(&self, https: bool, host: &str, port: u16) -> bool {
        self.https == https && self.port == port && &*self.host == host
    }
}

/// An open HTTP/1.1 connection to one origin: a lean one (see [`h1`]) or a hyper one.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) origin: Origin,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Fast(h1::Conn),
    Hyper {
        sender: Sender,
        /// Bytes read from the connection so far (plaintext, after TLS), counted by its [`Counted`] stream.
        read: Arc<AtomicU64>,
    },
}

/// How an attempt to send a request on a connection ended.
pub(crate) enum Attempt {
    /// The response head arrived; the body is read with [`Conn::body`].
    Sent(StatusCode, Headers, Pending),
    /// The request may be sent again on a fresh connection: it was provably never written, or it was written
    /// with an idempotent method and the connection was closed or reset before one byte of a response arrived.
    Retry(Failure),
    /// The request failed.
    Failed(Failure),
}

/// A request in the form its connection sends it (see [`Conn::is_fast`]).
pub(crate) enum Outgoing {
    /// The head's bytes, in the buffer from [`h1::write_buffer`].
    Fast(Vec<u8>),
    /// Boxed: it is large, and most requests take the lean path.
    Hyper(Box<http::Request<Full<Bytes>>>),
}

/// A response body not read yet.
pub(crate) enum Pending {
    Hyper(Incoming),
    Fast(h1::Framing),
}

/// A response body being read, on either kind of connection.
pub(crate) enum ResponseBody<'a> {
    Hyper(Incoming),
    Fast(h1::Body<'a>),
}

impl Frames for ResponseBody<'_> {
    fn exact_len(&self) -> Option<u64> {
        match self {
            ResponseBody::Hyper(incoming) => incoming.exact_len(),
            ResponseBody::Fast(body) => body.exact_len(),
        }
    }

    async fn frame(&mut self) -> Option<Result<Bytes, Failure>> {
        match self {
            ResponseBody::Hyper(incoming) => incoming.frame().await,
            ResponseBody::Fast(body) => body.frame().await,
        }
    }
}

impl Conn {
    /// False when the connection is known to be closed (hyper's task saw it); a lean connection is checked when
    /// it is next used.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.kind {
            Kind::Fast(_) => false,
            Kind::Hyper { sender, .. } => sender.is_closed(),
        }
    }

    /// True for a lean connection: it sends an [`Outgoing::Fast`] request.
    pub(crate) fn is_fast(&self) -> bool {
        matches!(self.kind, Kind::Fast(_))
    }

    /// This connection, ready for a request that may (`fast`) or may not take the lean path: a lean connection
    /// is handed to hyper for a request that needs hyper (no I/O happens).
    pub(crate) async fn for_request(self, fast: bool) -> Result<Conn, Failure> {
        match self.kind {
            Kind::Fast(conn) if !fast => {
                let (stream, read) = conn.into_stream();
                let read = Arc::new(AtomicU64::new(read));
                // Boxed, as hyper's request path is (see `send`).
                let sender = Box::pin(handshake(Counted { inner: stream, read: read.clone() })).await?;
                Ok(Conn { origin: self.origin, kind: Kind::Hyper { sender, read } })
            }
            kind => Ok(Conn { origin: self.origin, kind }),
        }
    }

    /// Sends the current hop of `p`, as `out` (in the form [`is_fast`](Self::is_fast) asks for), and waits for the
    /// response head. An idempotent request may be sent twice (see [`Attempt::Retry`]).
    pub(crate) async fn send(&mut self, out: Outgoing, p: &Prepared) -> Attempt {
        let idempotent = p.method.is_idempotent();
        match (&mut self.kind, out) {
            (Kind::Fast(conn), Outgoing::Fast(head)) => {
                match conn.send(&p.method, head, &p.body, h1::request_closes(&p.headers)).await {
                    h1::Sent::Head(status, headers, framing) => Attempt::Sent(status, headers, Pending::Fast(framing)),
                    h1::Sent::NoResponse { failure, written } if !written || idempotent => Attempt::Retry(failure),
                    h1::Sent::NoResponse { failure, .. } | h1::Sent::Failed(failure) => Attempt::Failed(failure),
                }
            }
            // Boxed: hyper's futures are large, and only requests that need hyper pay for them.
            (Kind::Hyper { sender, read }, Outgoing::Hyper(req)) => {
                Box::pin(send_hyper(sender, read, *req, idempotent)).await
            }
            _ => unreachable!("a request is built in the form its connection asks for"),
        }
    }

    /// The body of the response [`send`](Self::send) returned.
    pub(crate) fn body(&mut self, pending: Pending) -> ResponseBody<'_> {
        match (pending, &mut self.kind) {
            (Pending::Fast(framing), Kind::Fast(conn)) => ResponseBody::Fast(conn.body(framing)),
            (Pending::Hyper(incoming), _) => ResponseBody::Hyper(incoming),
            (Pending::Fast(_), Kind::Hyper { .. }) => unreachable!("a lean response comes from a lean connection"),
        }
    }

    /// After the response with `headers` was read: may the connection carry another request?
    pub(crate) fn reusable(&self, headers: &Headers) -> bool {
        match &self.kind {
            Kind::Fast(conn) => conn.reusable(),
            Kind::Hyper { sender, .. } => !sender.is_closed() && !h1::closes(headers),
        }
    }
}

/// [`Conn::send`] on a hyper connection.
async fn send_hyper(
    sender: &mut Sender,
    read: &AtomicU64,
    req: http::Request<Full<Bytes>>,
    idempotent: bool,
) -> Attempt {
    if sender.ready().await.is_err() {
        return Attempt::Retry(Failure::new(ErrorKind::Closed, "connection closed before the request was sent"));
    }
    let read_before = read.load(Ordering::Relaxed);
    match sender.try_send_request(req).await {
        Ok(response) => {
            let (head, incoming) = response.into_parts();
            Attempt::Sent(head.status, Headers::new(head.headers), Pending::Hyper(incoming))
        }
        Err(mut e) => {
            let failure = Failure::from_hyper(e.error(), "request failed");
            let unsent = e.take_message().is_some();
            let no_response = idempotent
                && matches!(failure.kind, ErrorKind::Closed | ErrorKind::Io)
                && read.load(Ordering::Relaxed) == read_before;
            if unsent || no_response { Attempt::Retry(failure) } else { Attempt::Failed(failure) }
        }
    }
}

/// A stream that counts the bytes read through it. hyper reports a connection closed before any response byte and
/// one closed in the middle of a response head alike (an incomplete message); this count tells them apart.
struct Counted<T> {
    inner: T,
    read: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The scheme, host and port a URL must be fetched from.
pub(crate) struct Target<'a> {
    pub(crate) https: bool,
    pub(crate) host: Host<&'a str>,
    pub(crate) host_str: &'a str,
    pub(crate) port: u16,
}

impl<'a> Target<'a> {
    /// Extracts the target of `url`, rejecting non-HTTP schemes and host-less URLs.
    pub(crate) fn of(url: &'a Url) -> Result<Target<'a>, Failure> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(Failure::new(ErrorKind::InvalidUrl, format!("unsupported URL scheme {other:?} in {url}")));
            }
        };
        let (Some(host), Some(host_str), Some(port)) = (url.host(), url.host_str(), url.port_or_known_default()) else {
            return Err(Failure::new(ErrorKind::InvalidUrl, format!("URL has no host: {url}")));
        };
        Ok(Target { https, host, host_str, port })
    }
}

/// Opens a new connection to `target` from `source` (any local address when `None`), bounded by the configured
/// connect timeout: a lean one when `fast`, else a hyper one.
///
/// The future is boxed: connection setup (DNS, TLS) has a large state machine, and keeping
/// it out of line keeps every in-flight `send` future small; the allocation is negligible
/// next to a TCP/TLS handshake and does not happen on reused connections.
pub(crate) fn connect<'a>(
    config: &'a ClientConfig,
    target: &'a Target<'a>,
    source: Option<Source>,
    fast: bool,
) -> Pin<Box<dyn Future<Output = Result<Conn, Failure>> + 'a>> {
    Box::pin(async move {
        let timeout = config.connect_timeout;
        match tokio::time::timeout(timeout, connect_inner(config, target, source, fast)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::ConnectTimeout,
                format!("connect to {}:{} timed out after {}", target.host_str, target.port, fmt_duration(timeout)),
            )),
        }
    })
}

async fn connect_inner(
    config: &ClientConfig,
    target: &Target<'_>,
    source: Option<Source>,
    fast: bool,
) -> Result<Conn, Failure> {
    let tcp = connect_tcp(target, source).await?;
    let stream = if target.https {
        let name = match target.host {
            Host::Domain(d) => ServerName::try_from(d.to_owned())
                .map_err(|e| Failure::new(ErrorKind::InvalidUrl, format!("invalid TLS name {d:?}: {e}")))?,
            Host::Ipv4(ip) => ServerName::IpAddress(ip.into()),
            Host::Ipv6(ip) => ServerName::IpAddress(ip.into()),
        };
        let tls = TlsConnector::from(config.tls.clone()).connect(name, tcp).await.map_err(|e| {
            Failure::new(
                ErrorKind::Tls,
                format!("TLS handshake with {}:{} failed: {}", target.host_str, target.port, chain(&e)),
            )
        })?;
        Stream::Tls(Box::new(tls))
    } else {
        Stream::Tcp(tcp)
    };
    let origin = Origin { https: target.https, host: target.host_str.into(), port: target.port };
    let conn = Conn { origin, kind: Kind::Fast(h1::Conn::new(stream)) };
    if fast { Ok(conn) } else { conn.for_request(false).await }
}

/// Runs the HTTP/1.1 handshake and spawns the task that drives the connection.
async fn handshake<T>(io: T) -> Result<Sender, Failure>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        http1::handshake(TokioIo::new(io)).await.map_err(|e| Failure::from_hyper(&e, "HTTP handshake failed"))?;
    // The task ends when the connection closes, which happens once every `Sender` clone is
    // dropped; errors surface through the pending request, so the result is not needed.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Resolves the host (IP literals without a lookup) and tries each address in turn (only those of the source
/// address's family when one is given).
async fn connect_tcp(target: &Target<'_>, source: Option<Source>) -> Result<TcpStream, Failure> {
    let port = target.port;
    let addrs: Vec<SocketAddr> = match target.host {
        Host::Ipv4(ip) => vec![SocketAddr::from((ip, port))],
        Host::Ipv6(ip) => vec![SocketAddr::from((ip, port))],
        Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| Failure::new(ErrorKind::Dns, format!("DNS lookup of {name:?} failed: {}", chain(&e))))?
            .collect(),
    };
    let mut last_err: Option<io::Error> = None;
    let mut tried = false;
    for addr in &addrs {
        if source.is_some_and(|s| s.addr.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        tried = true;
        match source::connect(*addr, source).await {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .map_err(|e| Failure::new(ErrorKind::Connect, format!("setting TCP_NODELAY: {e}")))?;
                return Ok(stream);
            }
            Err(e) => last_err = Some(e),
        }
    }
    let from = source.map(|s| format!(" from {}", s.addr)).unwrap_or_default();
    Err(match last_err {
        Some(e) => Failure::new(
            if e.kind() == io::ErrorKind::ConnectionRefused {
                ErrorKind::ConnectionRefused
            } else {
                ErrorKind::Connect
            },
            format!("connect to {}:{port}{from} failed: {}", target.host_str, chain(&e)),
        ),
        None if !addrs.is_empty() && !tried => Failure::new(
            ErrorKind::Connect,
            format!("{} has no address of the family of the source address{from}", target.host_str),
        ),
        None => Failure::new(ErrorKind::Dns, format!("DNS lookup of {:?} returned no address", target.host_str)),
    })
}

/// `2s`, `200ms`, `1.5s`: compact text for error messages.
pub(crate) fn fmt_duration(d: Duration) -> String {
    format!("{d:?}")
}
