//! Who may see the page and who may drive load through it.
//!
//! A web UI that starts load is a weapon if anyone can use it, including a page on another site that a user of
//! the UI happens to open (the browser would send its requests to 127.0.0.1). So:
//!
//! - it binds to loopback unless credentials are given ([`check_bind`]); with credentials, every request needs
//!   them (HTTP Basic, compared in constant time, 401 otherwise);
//! - without credentials, the `Host` header must name a loopback host, so that a rebound DNS name cannot read
//!   the page;
//! - every control request is a POST that carries the per-process token (embedded in the page, which another
//!   site cannot read) in the `X-Nest-Token` header, and whose `Origin`, when the browser sends one, is this
//!   server (403 otherwise, and nothing changes).
//!
//! Credentials never come from the command line (it is visible to every user of the machine in `ps`): the binary
//! reads them from `NEST_WEB_AUTH` or a file.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::WebError;

/// The header that carries the per-process token on control requests.
pub const TOKEN_HEADER: &str = "x-nest-token";

/// A user name and password for HTTP Basic authentication.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

impl Credentials {
    /// Parses `user:pass` (surrounding white space, such as a file's final newline, is dropped). Both parts must
    /// be non-empty; the password may contain `:`.
    pub fn parse(text: &str) -> Result<Credentials, WebError> {
        let text = text.trim();
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| WebError::Credentials("expected USER:PASS, with a colon between them".into()))?;
        if user.is_empty() || pass.is_empty() {
            return Err(WebError::Credentials("neither the user name nor the password may be empty".into()));
        }
        Ok(Credentials { user: user.to_owned(), pass: pass.to_owned() })
    }

    /// Whether an `Authorization` header value carries these credentials (constant time in their content).
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(encoded) = authorization.and_then(|v| v.strip_prefix("Basic ")) else { return false };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else { return false };
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(self.user.as_bytes());
        let pass_ok = pass.ct_eq(self.pass.as_bytes());
        (user_ok & pass_ok).into()
    }
}

/// Refuses a non-loopback address without credentials.
pub fn check_bind(addr: SocketAddr, auth: Option<&Credentials>) -> Result<(), WebError> {
    if addr.ip().is_loopback() || auth.is_some() { Ok(()) } else { Err(WebError::Unprotected { addr }) }
}

/// The checks of one server: its credentials, token and address.
pub(crate) struct Guard {
    auth: Option<Credentials>,
    token: String,
    addr: SocketAddr,
}

/// Why a request was refused: the status and a one-line message.
pub(crate) type Refusal = (StatusCode, &'static str);

impl Guard {
    pub(crate) fn new(auth: Option<Credentials>, addr: SocketAddr) -> Guard {
        let bytes: [u8; 24] = rand::random();
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Guard { auth, token, addr }
    }

    /// The per-process token the page sends back.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Every request: the credentials, if any are required; else a loopback `Host`.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(auth) = &self.auth {
            let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            return if auth.accepts(given) {
                Ok(())
            } else {
                Err((StatusCode::UNAUTHORIZED, "wrong or missing credentials"))
            };
        }
        match host_of(headers) {
            Some(host) if is_loopback_host(host) => Ok(()),
            _ => Err((StatusCode::FORBIDDEN, "this UI answers only to a loopback Host (127.0.0.1, localhost)")),
        }
    }

    /// A control request: the token, and an `Origin` (when sent) that is this server.
    pub(crate) fn control(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let own = host_of(headers).is_some_and(|host| {
                origin.strip_prefix("http://").is_some_and(|o| o.eq_ignore_ascii_case(host))
                    || origin.eq_ignore_ascii_case(&format!("http://{}", self.addr))
            });
            if !own {
                return Err((StatusCode::FORBIDDEN, "refused: the request comes from another site (Origin)"));
            }
        } else if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
            return Err((StatusCode::FORBIDDEN, "refused: the request comes from another site"));
        }
        let token = headers.get(TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if token.ct_eq(self.token.as_bytes()).into() {
            Ok(())
        } else {
            Err((StatusCode::FORBIDDEN, "refused: missing or wrong X-Nest-Token (reload the page)"))
        }
    }
}

/// The `Host` header.
fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn credentials_parse_and_compare() {
        let c = Credentials::parse("ann:s3:cret\n").unwrap();
        let basic = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert!(c.accepts(Some(&basic("ann:s3:cret"))));
        assert!(!c.accepts(Some(&basic("ann:s3:cre"))));
        assert!(!c.accepts(Some(&basic("bob:s3:cret"))));
        assert!(!c.accepts(Some("Bearer x")));
        assert!(!c.accepts(None));
        assert!(Credentials::parse("ann").is_err());
        assert!(Credentials::parse(":x").is_err());
        assert!(!format!("{c:?}").contains("s3"));
    }

    #[test]
    fn only_loopback_binds_without_credentials() {
        let auth = Credentials::parse("a:b").unwrap();
        assert!(check_bind("127.0.0.1:8089".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:8089".parse().unwrap(), None).is_ok());
        assert!(matches!(check_bind("0.0.0.0:8089".parse().unwrap(), None), Err(WebError::Unprotected { .. })));
        assert!(check_bind("0.0.0.0:8089".parse().unwrap(), Some(&auth)).is_ok());
    }

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1:8089", "localhost:1", "LOCALHOST", "[::1]:80", "127.1.2.3"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8089", "10.0.0.1", "localhost.evil.example", "[::2]:80"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn control_needs_the_token_and_our_origin() {
        let guard = Guard::new(None, "127.0.0.1:8089".parse().unwrap());
        let token = guard.token().to_owned();
        let ok = headers(&[("host", "127.0.0.1:8089"), (TOKEN_HEADER, &token), ("origin", "http://127.0.0.1:8089")]);
        assert!(guard.control(&ok).is_ok());
        let no_origin = headers(&[("host", "127.0.0.1:8089"), (TOKEN_HEADER, &token)]);
        assert!(guard.control(&no_origin).is_ok());
        let foreign = headers(&[("host", "127.0.0.1:8089"), (TOKEN_HEADER, &token), ("origin", "http://evil.example")]);
        assert_eq!(guard.control(&foreign).unwrap_err().0, StatusCode::FORBIDDEN);
        let no_token = headers(&[("host", "127.0.0.1:8089")]);
        assert_eq!(guard.control(&no_token).unwrap_err().0, StatusCode::FORBIDDEN);
        let wrong = headers(&[("host", "127.0.0.1:8089"), (TOKEN_HEADER, "00")]);
        assert_eq!(guard.control(&wrong).unwrap_err().0, StatusCode::FORBIDDEN);
    }
}
