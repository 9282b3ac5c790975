//! The plain-data request and response types exchanged with the scripting layer. They are
//! deliberately simple (owned `String`s and `Vec`s, and response [`Headers`] that read like string pairs) so
//! the caller never handles `hyper` types; conversion to and from the wire types happens in `prepare` and
//! `client`.

use std::time::Duration;

use bytes::Bytes;

use crate::{ErrorKind, Headers};

/// One HTTP request as described by a script.
///
/// A relative `url` is appended to the base URL's path (`http://h/v1/` + `/items` is `http://h/v1/items`), as
/// Locust does; credentials in a URL (`http://user:pass@h/`) are sent as Basic auth and never shown.
#[derive(Debug, Clone)]
pub struct Request {
    /// The HTTP method.
    pub method: http::Method,
    /// A path relative to the client's base (`"/items?x=1"`) or a full URL.
    pub url: String,
    /// Extra headers. An explicit `Host`, `User-Agent` or `Content-Type` wins over the defaults.
    pub headers: Vec<(String, String)>,
    /// Pairs appended to the URL's query string, form-urlencoded.
    pub query: Vec<(String, String)>,
    /// The request body.
    pub body: Body,
    /// Bound on the whole request including connect and redirects; `None` = config default.
    pub timeout: Option<Duration>,
    /// Follow 3xx redirects (at most 10 hops). Default `true`.
    pub follow_redirects: bool,
    /// Keep the response body in [`Response::body`]. `false` streams it and only counts its bytes (no cap
    /// applies then). Default `true`.
    pub keep_body: bool,
    /// Cap on the kept (decoded) body for this request; `None` = the config's `max_body`.
    pub max_body: Option<u64>,
}

impl Request {
    /// A request with no headers, no query pairs, an empty body, the default timeout and
    /// redirect following on.
    pub fn new(method: http::Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            query: Vec::new(),
            body: Body::Empty,
            timeout: None,
            follow_redirects: true,
            keep_body: true,
            max_body: None,
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Sent as-is; no `Content-Type` unless given in the headers.
    Text(String),
    /// Serialized JSON, sent with `Content-Type: application/json`.
    Json(serde_json::Value),
    /// Form-urlencoded pairs, sent with `Content-Type: application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

/// The outcome of [`VuClient::send`](crate::VuClient::send): either an HTTP response or,
/// with `status == 0`, a transport error.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// HTTP status code; 0 on a transport error.
    pub status: u16,
    /// Response headers in wire order, names lowercase, turned into strings only when read.
    pub headers: Headers,
    /// The full response body, decoded when it came `gzip`-, `deflate`- or `br`-encoded; empty when the request
    /// did not keep it.
    pub body: Bytes,
    /// Decoded body bytes of the last hop (counted even when the body was not kept).
    pub body_bytes: u64,
    /// Body bytes of the last hop as they came off the connection, before decoding.
    pub wire_bytes: u64,
    /// Transport error text, when `status == 0`.
    pub error: Option<String>,
    /// Transport error category, when `status == 0`.
    pub error_kind: Option<ErrorKind>,
    /// From the start of `send()` to the end of the last body read (includes connect and
    /// redirects).
    pub elapsed: Duration,
    /// The final URL after redirects (the URL being fetched when an error occurred).
    pub url: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.headers.get(name)
    }

    /// True for a transport error (`status == 0`).
    pub fn is_error(&self) -> bool {
        self.status == 0
    }

    /// Builds a status-0 response for a transport failure.
    pub(crate) fn failed(kind: ErrorKind, message: String, url: String, elapsed: Duration) -> Self {
        Response {
            status: 0,
            headers: Headers::default(),
            body: Bytes::new(),
            body_bytes: 0,
            wire_bytes: 0,
            error: Some(message),
            error_kind: Some(kind),
            elapsed,
            url,
        }
    }
}
