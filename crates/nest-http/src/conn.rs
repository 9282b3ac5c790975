//! Establishing connections: DNS (non-blocking), TCP with `TCP_NODELAY`, optional TLS via
//! tokio-rustls, then a hyper HTTP/1.1 handshake whose connection task is driven by
//! `tokio::spawn`. The resulting [`Conn`] is what the per-VU idle pool stores.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::ClientConfig;
use crate::ErrorKind;
use crate::error::{Failure, chain};

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

/// An open HTTP/1.1 connection to one origin.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) origin: Origin,
    pub(crate) sender: Sender,
    /// Bytes read from the connection so far (plaintext, after TLS), counted by its [`Counted`] stream.
    read: Arc<AtomicU64>,
}

impl Conn {
    /// Bytes received on this connection so far: a request whose exchange failed with this count unchanged since
    /// it was written provably got no byte of a response.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
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

/// Opens a new connection to `target`, bounded by the configured connect timeout.
///
/// The future is boxed: connection setup (DNS, TLS) has a large state machine, and keeping
/// it out of line keeps every in-flight `send` future small; the allocation is negligible
/// next to a TCP/TLS handshake and does not happen on reused connections.
pub(crate) fn connect<'a>(
    config: &'a ClientConfig,
    target: &'a Target<'a>,
) -> Pin<Box<dyn Future<Output = Result<Conn, Failure>> + 'a>> {
    Box::pin(async move {
        let timeout = config.connect_timeout;
        match tokio::time::timeout(timeout, connect_inner(config, target)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::ConnectTimeout,
                format!("connect to {}:{} timed out after {}", target.host_str, target.port, fmt_duration(timeout)),
            )),
        }
    })
}

async fn connect_inner(config: &ClientConfig, target: &Target<'_>) -> Result<Conn, Failure> {
    let tcp = connect_tcp(target).await?;
    let read = Arc::new(AtomicU64::new(0));
    let sender = if target.https {
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
        handshake(Counted { inner: tls, read: read.clone() }).await?
    } else {
        handshake(Counted { inner: tcp, read: read.clone() }).await?
    };
    let origin = Origin { https: target.https, host: target.host_str.into(), port: target.port };
    Ok(Conn { origin, sender, read })
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

/// Resolves the host (IP literals without a lookup) and tries each address in turn.
async fn connect_tcp(target: &Target<'_>) -> Result<TcpStream, Failure> {
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
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .map_err(|e| Failure::new(ErrorKind::Connect, format!("setting TCP_NODELAY: {e}")))?;
                return Ok(stream);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(match last_err {
        Some(e) => Failure::new(
            if e.kind() == io::ErrorKind::ConnectionRefused {
                ErrorKind::ConnectionRefused
            } else {
                ErrorKind::Connect
            },
            format!("connect to {}:{port} failed: {}", target.host_str, chain(&e)),
        ),
        None => Failure::new(ErrorKind::Dns, format!("DNS lookup of {:?} returned no address", target.host_str)),
    })
}

/// `2s`, `200ms`, `1.5s`: compact text for error messages.
pub(crate) fn fmt_duration(d: Duration) -> String {
    format!("{d:?}")
}
