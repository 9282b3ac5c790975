//! Per-VU mutable state: the cookie jar, the idle keep-alive connections (one per origin)
//! and a one-entry `Host` header cache. It lives in a `RefCell` inside the client's `Rc`;
//! every method here is synchronous, so no borrow is ever held across an `.await`.

use cookie_store::CookieStore;
use http::HeaderValue;
use http::header::SET_COOKIE;
use url::Url;

use crate::Headers;
use crate::conn::Conn;

/// Upper bound on idle connections kept by one VU (one per origin); the oldest is closed
/// when a new origin would exceed it.
const MAX_IDLE: usize = 8;

/// One virtual user's browser-like session state.
#[derive(Default)]
pub(crate) struct Session {
    cookies: CookieStore,
    /// A cookie was stored since the jar was last cleared: while false, the jar is known to be empty and is not
    /// asked (even asking an empty `CookieStore` costs more than the rest of a request's cookie handling).
    stored: bool,
    idle: Vec<Conn>,
    last_host: Option<HeaderValue>,
}

impl Session {
    /// Takes the idle connection for this origin, if one is still open.
    pub(crate) fn take_idle(&mut self, https: bool, host: &str, port: u16) -> Option<Conn> {
        // Only a hyper connection can be seen closed while idle; most pools hold none.
        if self.idle.iter().any(Conn::is_closed) {
            self.idle.retain(|c| !c.is_closed());
        }
        let pos = self.idle.iter().position(|c| c.origin.is(https, host, port))?;
        Some(self.idle.swap_remove(pos))
    }

    /// Parks a connection for reuse, replacing any older idle one for the same origin.
    pub(crate) fn put_idle(&mut self, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        if let Some(slot) = self.idle.iter_mut().find(|c| c.origin == conn.origin) {
            *slot = conn;
            return;
        }
        if self.idle.len() >= MAX_IDLE {
            self.idle.remove(0);
        }
        self.idle.push(conn);
    }

    /// Drops every idle connection (closing them).
    pub(crate) fn close_idle(&mut self) {
        self.idle.clear();
    }

    /// Number of idle connections currently parked.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.len()
    }

    /// The `Host` header value for `host_port`, reusing the previous one when unchanged
    /// (a VU usually talks to one host, so this saves an allocation per request).
    pub(crate) fn host_header(&mut self, host_port: &str) -> Option<HeaderValue> {
        if let Some(v) = &self.last_host
            && v.as_bytes() == host_port.as_bytes()
        {
            return Some(v.clone());
        }
        let v = HeaderValue::from_str(host_port).ok()?;
        self.last_host = Some(v.clone());
        Some(v)
    }

    /// The `Cookie` header text (`a=1; b=2`) for a request to `url`, if any cookie matches.
    pub(crate) fn cookie_header(&self, url: &Url) -> Option<String> {
        // Skip the matching machinery (which allocates) when the jar is empty.
        if !self.stored {
            return None;
        }
        self.cookies.iter_any().next()?;
        let mut out = String::new();
        for (name, value) in self.cookies.get_request_values(url) {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Stores every `Set-Cookie` of a response received from `url`.
    pub(crate) fn store_cookies(&mut self, headers: &Headers, url: &Url) {
        for value in headers.values(SET_COOKIE.as_str()) {
            if let Ok(text) = std::str::from_utf8(value) {
                // Invalid or rejected cookies are ignored, as browsers do.
                if self.cookies.parse(text, url).is_ok() {
                    self.stored = true;
                }
            }
        }
    }

    /// Forgets every cookie.
    pub(crate) fn clear_cookies(&mut self) {
        self.cookies.clear();
        self.stored = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_scope() {
        let mut s = Session::default();
        let url = Url::parse("http://a.test/x").unwrap();
        assert_eq!(s.cookie_header(&url), None);
        let mut h = http::HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("sid=1; Path=/"));
        h.append(SET_COOKIE, HeaderValue::from_static("t=2; Path=/"));
        s.store_cookies(&Headers::new(h), &url);
        let got = s.cookie_header(&url).unwrap();
        assert!(got.contains("sid=1") && got.contains("t=2") && got.contains("; "));
        assert_eq!(s.cookie_header(&Url::parse("http://b.test/").unwrap()), None);
        s.clear_cookies();
        assert_eq!(s.cookie_header(&url), None);
        // A jar cleared, or offered only a cookie it refuses, is empty; one stored after a clear is sent.
        let mut bad = http::HeaderMap::new();
        bad.append(SET_COOKIE, HeaderValue::from_static("x=1; Domain=other.test"));
        s.store_cookies(&Headers::new(bad), &url);
        assert_eq!(s.cookie_header(&url), None);
        let mut h = http::HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("n=3"));
        s.store_cookies(&Headers::new(h), &url);
        assert_eq!(s.cookie_header(&url).as_deref(), Some("n=3"));
    }

    #[test]
    fn host_cache_reuses_and_refreshes() {
        let mut s = Session::default();
        assert_eq!(s.host_header("a:1").unwrap(), "a:1");
        assert_eq!(s.host_header("a:1").unwrap(), "a:1");
        assert_eq!(s.host_header("b").unwrap(), "b");
    }
}
