//! The hello mode: the benchmark target, so it does as little as possible.
//!
//! Every request, whatever its method and path, gets `200 text/plain`
//! `hello\n` from a ready future: no boxing, no latency, no locks. The body is
//! a static `Bytes`; the one header insert is the only allocation on top of
//! what hyper itself does. The request body is not read.

use std::convert::Infallible;
use std::future::{Ready, ready};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::Service;

use crate::stats::{Counters, Route};

/// The per-connection hyper service of the hello mode.
#[derive(Clone)]
pub(crate) struct HelloService {
    counters: Counters,
}

impl HelloService {
    /// A service counting into `counters`.
    pub(crate) fn new(counters: Counters) -> Self {
        HelloService { counters }
    }
}

impl Service<Request<Incoming>> for HelloService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    #[inline]
    fn call(&self, _req: Request<Incoming>) -> Self::Future {
        self.counters.hit(Route::Hello);
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello\n")));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        ready(Ok(response))
    }
}
