//! Error types. `send` never fails, so transport problems are reported *inside* a
//! [`Response`](crate::Response) as an [`ErrorKind`] plus text; the only `Result`-returning
//! API is building a [`ClientConfig`](crate::ClientConfig), which uses [`Error`].

use std::error::Error as StdError;
use std::fmt;

/// Failure while building a [`ClientConfig`](crate::ClientConfig).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// rustls refused the TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The PEM input could not be parsed.
    #[error("invalid PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    /// The PEM input contained no `CERTIFICATE` section.
    #[error("no certificate found in PEM input")]
    NoCertificates,
    /// A PEM certificate could not be used as a trust anchor.
    #[error("invalid CA certificate: {0}")]
    Certificate(rustls::Error),
    /// The `accept_encoding` setting is not a valid header value.
    #[error("accept_encoding {0:?} is not a valid header value")]
    AcceptEncoding(String),
    /// A source address cannot be bound: it is not an address of this machine.
    #[error("source address {0} cannot be used: {1} (is it an address of this machine?)")]
    SourceAddr(std::net::IpAddr, std::io::Error),
}

/// Category of a transport error carried by a status-0 [`Response`](crate::Response).
///
/// `Display` gives a short, stable label suitable for grouping errors in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be parsed, is relative with no base configured, has no host, or
    /// uses a scheme other than `http`/`https`. Label: `invalid url`.
    InvalidUrl,
    /// The request itself is malformed: invalid header name or value. Label: `invalid request`.
    InvalidRequest,
    /// Host name resolution failed or returned no address. Label: `dns error`.
    Dns,
    /// Nothing listens on the target port: the TCP connection was refused. Label: `connection refused`.
    ConnectionRefused,
    /// The TCP connection could not be established for another reason (unreachable, reset, ...).
    /// Label: `connect failed`.
    Connect,
    /// Establishing the connection (DNS + TCP + TLS handshake) took longer than the
    /// configured connect timeout. Label: `connect timeout`.
    ConnectTimeout,
    /// The TLS handshake failed, e.g. the certificate was not trusted. Label: `tls error`.
    Tls,
    /// The whole request (including connect and redirects) exceeded its timeout.
    /// Label: `timeout`.
    Timeout,
    /// More than 10 redirects were followed. Label: `too many redirects`.
    TooManyRedirects,
    /// The server closed the connection before a complete response arrived.
    /// Label: `connection closed`.
    Closed,
    /// The server's response violated HTTP/1.1 (unparsable head, bad redirect target, ...).
    /// Label: `protocol error`.
    Protocol,
    /// Any other I/O error on an established connection (e.g. connection reset).
    /// Label: `io error`.
    Io,
    /// The response body was larger than `max_body` (after decoding): the request failed and its connection was
    /// dropped. Label: `body too large`.
    BodyTooLarge,
    /// A `gzip`, `deflate` or `br` response body could not be decoded. Label: `decode error`.
    Decode,
}

impl ErrorKind {
    /// The short, stable label also produced by `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid url",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Dns => "dns error",
            ErrorKind::ConnectionRefused => "connection refused",
            ErrorKind::Connect => "connect failed",
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::Tls => "tls error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooManyRedirects => "too many redirects",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Io => "io error",
            ErrorKind::BodyTooLarge => "body too large",
            ErrorKind::Decode => "decode error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Internal transport failure: becomes a status-0 response.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into() }
    }

    /// Classifies an error reported by hyper while sending a request or reading its body.
    pub(crate) fn from_hyper(err: &hyper::Error, context: &str) -> Failure {
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_parse() || err.is_parse_status() || err.is_parse_too_large() {
            ErrorKind::Protocol
        } else if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
            ErrorKind::Closed
        } else if has_io_source(err) {
            ErrorKind::Io
        } else {
            ErrorKind::Protocol
        };
        Failure::new(kind, format!("{context}: {}", chain(err)))
    }
}

/// True when some error in the `source()` chain is an `io::Error`.
fn has_io_source(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = err.source();
    while let Some(e) = cur {
        if e.is::<std::io::Error>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Formats an error and its `source()` chain as `outer: inner: innermost`, skipping
/// sources whose text is already contained in their parent's (io wrappers repeat it).
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable() {
        assert_eq!(ErrorKind::Connect.to_string(), "connect failed");
        assert_eq!(ErrorKind::Timeout.to_string(), "timeout");
        assert_eq!(ErrorKind::TooManyRedirects.to_string(), "too many redirects");
    }

    #[test]
    fn chain_includes_sources() {
        let inner = std::io::Error::other("boom");
        let outer = std::io::Error::other(inner);
        assert_eq!(chain(&outer), "boom");
    }
}
