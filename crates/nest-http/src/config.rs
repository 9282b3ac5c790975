//! Run-wide client settings. One [`ClientConfig`] is built per run and shared (via `Arc`)
//! by every VU, so expensive things — the rustls configuration, its root store and its
//! TLS session cache — exist once, not once per virtual user.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::source::{self, Source};
use crate::{Error, tls};

/// Default time allowed for DNS + TCP connect + TLS handshake.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout when a request sets none.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on a buffered (decoded) response body: 16 MiB.
pub const DEFAULT_MAX_BODY: u64 = 16 << 20;
/// The `Accept-Encoding` sent by default: the codings nest decodes, as Python `requests` sends them.
pub const DEFAULT_ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// Shared, thread-safe settings built once per run (`Send + Sync`), handed to every
/// [`VuClient`](crate::VuClient) via `Arc`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    roots: RootCertStore,
    insecure: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) default_timeout: Duration,
    pub(crate) max_body: u64,
    pub(crate) accept_encoding: Option<HeaderValue>,
    /// Plain HTTP/1.1 requests take the lean path (`h1`) rather than hyper.
    pub(crate) fast_path: bool,
    source_addrs: Vec<IpAddr>,
    /// The ephemeral port range, read when source addresses are set: each VU's own port comes from it.
    ports: (u16, u16),
}

impl ClientConfig {
    /// `insecure`: accept any server certificate (for self-signed targets). Otherwise the
    /// standard web roots (webpki-roots) are trusted.
    pub fn new(insecure: bool) -> Result<ClientConfig, Error> {
        let roots = tls::web_roots();
        Ok(ClientConfig {
            tls: tls::build(insecure, &roots)?,
            roots,
            insecure,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            default_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            accept_encoding: Some(HeaderValue::from_static(DEFAULT_ACCEPT_ENCODING)),
            fast_path: true,
            source_addrs: Vec::new(),
            ports: (0, 0),
        })
    }

    /// Also trust the CA certificates in this PEM text (for tests and private CAs).
    ///
    /// Fails if the PEM is malformed, contains no certificate, or a certificate cannot be
    /// used as a trust anchor.
    pub fn with_root_pem(mut self, pem: &[u8]) -> Result<ClientConfig, Error> {
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            self.roots.add(cert?).map_err(Error::Certificate)?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::NoCertificates);
        }
        self.tls = tls::build(self.insecure, &self.roots)?;
        Ok(self)
    }

    /// Time allowed to establish a connection: DNS lookup, TCP connect and TLS handshake
    /// together. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Whole-request timeout used when a request gives none. Default 60 s.
    pub fn default_timeout(mut self, d: Duration) -> Self {
        self.default_timeout = d;
        self
    }

    /// Most bytes of a (decoded) response body kept in memory when a request gives no `max_body` of its own.
    /// A larger body fails the request with [`ErrorKind::BodyTooLarge`](crate::ErrorKind::BodyTooLarge) and drops
    /// its connection. Default 16 MiB. Bodies that are discarded ([`Request::keep_body`](crate::Request)) are not
    /// capped, only counted.
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// The `Accept-Encoding` header sent unless a request sets its own; an empty value sends none. Default
    /// `gzip, deflate, br`. Responses in those codings are decoded whatever was asked for.
    /// Fails as [`accept_encoding_value`] does.
    pub fn accept_encoding(mut self, value: &str) -> Result<Self, Error> {
        self.accept_encoding = accept_encoding_value(value)?;
        Ok(self)
    }

    /// Local addresses outgoing connections are made from, round-robin by VU (see
    /// [`VuClient::for_vu`](crate::VuClient::for_vu)); empty (the default) lets the system choose. One address
    /// gives at most about 28,000 concurrent connections to one target address and port (the ephemeral port
    /// range); each more address adds as many. Each VU also asks for a source port of its own (see the `source`
    /// module), which keeps the kernel's port search out of the way.
    pub fn source_addrs(mut self, addrs: Vec<IpAddr>) -> Self {
        if !addrs.is_empty() {
            self.ports = source::ephemeral_range();
        }
        self.source_addrs = addrs;
        self
    }

    /// The source address and port of the VU with this id, if any addresses are configured.
    pub(crate) fn source_for(&self, vu_id: u64) -> Option<Source> {
        source::for_vu(&self.source_addrs, self.ports, vu_id)
    }

    /// Whether plain HTTP/1.1 requests (a body of known length, no upgrade, no `Expect`) are exchanged by nest's
    /// own lean HTTP/1.1 code, on a connection the VU drives itself, rather than through hyper's client. Default
    /// `true`; `false` sends everything through hyper (to compare the two).
    pub fn http1_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// Whether any server certificate is accepted.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

/// The `Accept-Encoding` header an `accept_encoding` setting sends: `None` for an empty value, an error when it is
/// not a valid header value (a control character). The one check of this setting: callers run it on their input
/// before any load.
pub fn accept_encoding_value(value: &str) -> Result<Option<HeaderValue>, Error> {
    match value.trim() {
        "" => Ok(None),
        v => HeaderValue::from_str(v).map(Some).map_err(|_| Error::AcceptEncoding(value.to_owned())),
    }
}

/// Checks that `addr` can be a source address (an address of this machine), by binding a socket to it: the one
/// check of the `source_addrs` setting, for callers to run before any load.
pub fn check_source_addr(addr: IpAddr) -> Result<(), Error> {
    std::net::TcpListener::bind((addr, 0)).map(drop).map_err(|e| Error::SourceAddr(addr, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn config_is_send_sync() {
        assert_send_sync::<ClientConfig>();
    }

    #[test]
    fn defaults_and_setters() {
        let c = ClientConfig::new(false).unwrap();
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(c.default_timeout, DEFAULT_REQUEST_TIMEOUT);
        let c = c.connect_timeout(Duration::from_secs(1)).default_timeout(Duration::from_secs(2));
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
        assert_eq!(c.default_timeout, Duration::from_secs(2));
        assert_eq!(c.max_body, DEFAULT_MAX_BODY);
        assert_eq!(c.accept_encoding.as_ref().unwrap(), DEFAULT_ACCEPT_ENCODING);
        let c = c.max_body(10).accept_encoding(" ").unwrap();
        assert_eq!((c.max_body, c.accept_encoding), (10, None));
        let e = ClientConfig::new(false).unwrap().accept_encoding("gzip\u{1}").unwrap_err();
        assert!(e.to_string().contains("accept_encoding"), "{e}");
    }

    #[test]
    fn source_addresses_are_spread_by_vu_and_checked() {
        let c = ClientConfig::new(false).unwrap();
        assert_eq!(c.source_for(7), None);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let c = c.source_addrs(vec![a, b]);
        assert_eq!([0, 1, 2, 5].map(|id| c.source_for(id).map(|s| s.addr)), [Some(a), Some(b), Some(a), Some(b)]);
        let (low, _) = source::ephemeral_range();
        assert_eq!([0, 1, 2, 5].map(|id| c.source_for(id).unwrap().port), [low, low, low + 1, low + 2]);
        assert!(check_source_addr(a).is_ok());
        let e = check_source_addr("192.0.2.1".parse().unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("source address 192.0.2.1 cannot be used"), "{e}");
    }

    #[test]
    fn bad_pem_is_rejected() {
        let c = ClientConfig::new(false).unwrap();
        assert!(matches!(c.with_root_pem(b"not a pem"), Err(Error::NoCertificates)));
        let c = ClientConfig::new(false).unwrap();
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(c.with_root_pem(garbage).is_err());
    }
}
