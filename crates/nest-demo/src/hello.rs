//! The hello mode: the benchmark target, so it does as little as possible.
//!
//! Every request, whatever its method and path, gets `200 text/plain`
//! `hello\n` from a ready future: no boxing, no latency, no locks. The body is
//! a static `Bytes`; the one header insert is the only allocation on top of
//! what hyper itself does. The request body is not read.
//!
//! With a configured latency or stall, [`DelayedHelloService`] is used instead
//! (chosen once per server, so the plain path above pays nothing for it): each
//! response waits until its due time on the [`Timer`] thread, which is precise
//! to tens of microseconds where tokio's millisecond timer would add 1–2 ms.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::Service;

use crate::stats::{Counters, Route};
use crate::timer::Timer;
use crate::usl::UslState;

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
        ready(Ok(hello()))
    }
}

#[inline]
fn hello() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"hello\n")));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The hello mode with a fixed latency and/or a stall window.
#[derive(Clone)]
pub(crate) struct DelayedHelloService {
    counters: Counters,
    timer: Arc<Timer>,
    latency: Duration,
    /// The stall window `[start, end)`, if any.
    stall: Option<(Instant, Instant)>,
    /// The USL mode, which replaces the latency and the stall.
    usl: Option<Arc<UslState>>,
}

impl DelayedHelloService {
    /// A service counting into `counters`, delaying every response by
    /// `latency` and answering nothing during `stall` (`[start, end)`), with
    /// responses waiting on `timer`.
    pub(crate) fn new(
        counters: Counters,
        timer: Arc<Timer>,
        latency: Duration,
        stall: Option<(Instant, Instant)>,
    ) -> Self {
        DelayedHelloService { counters, timer, latency, stall, usl: None }
    }

    /// The same service answering as the USL model `usl` does, when given.
    pub(crate) fn with_usl(self, usl: Option<Arc<UslState>>) -> Self {
        DelayedHelloService { usl, ..self }
    }

    /// When the response to a request arriving at `arrival` is sent.
    fn due(&self, arrival: Instant) -> Instant {
        let due = arrival + self.latency;
        match self.stall {
            // Arrived during the stall: taken up when it ends.
            Some((start, end)) if arrival >= start && arrival < end => end + self.latency,
            // In flight, falling due during the stall: sent when it ends.
            Some((start, end)) if due >= start && due < end => end,
            _ => due,
        }
    }
}

impl Service<Request<Incoming>> for DelayedHelloService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, _req: Request<Incoming>) -> Self::Future {
        self.counters.hit(Route::Hello);
        if let Some(usl) = &self.usl {
            let usl = usl.clone();
            return Box::pin(async move {
                usl.serve().await;
                Ok(hello())
            });
        }
        let now = Instant::now();
        let due = self.due(now);
        if due <= now {
            // Not delayed (no latency, outside the stall): no trip through the timer thread.
            return Box::pin(ready(Ok(hello())));
        }
        let wait = self.timer.at(due);
        Box::pin(async move {
            // An error means the server is shutting down: answer anyway.
            let _ = wait.await;
            Ok(hello())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn due_times() {
        let t0 = Instant::now();
        let stall = Some((t0 + 100 * MS, t0 + 200 * MS));
        let timer = Timer::start().unwrap();
        let service = DelayedHelloService::new(Counters::new(), timer.clone(), 10 * MS, stall);
        // Before the stall, untouched by it.
        assert_eq!(service.due(t0), t0 + 10 * MS);
        assert_eq!(service.due(t0 + 80 * MS), t0 + 90 * MS);
        // In flight when the stall starts: held until its end.
        assert_eq!(service.due(t0 + 95 * MS), t0 + 200 * MS);
        // Arriving during the stall: taken up at its end.
        assert_eq!(service.due(t0 + 100 * MS), t0 + 210 * MS);
        assert_eq!(service.due(t0 + 199 * MS), t0 + 210 * MS);
        // After it.
        assert_eq!(service.due(t0 + 200 * MS), t0 + 210 * MS);
        assert_eq!(service.due(t0 + 300 * MS), t0 + 310 * MS);

        let no_stall = DelayedHelloService::new(Counters::new(), timer, 10 * MS, None);
        assert_eq!(no_stall.due(t0 + 150 * MS), t0 + 160 * MS);
    }
}
