//! [`VuClient`]: one virtual user's HTTP session. `send` drives a request through
//! preparation, connection reuse or setup, the exchange itself, cookie bookkeeping and
//! redirects, all under one deadline, and folds every failure into a status-0 response.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::LOCATION;
use url::Url;

use crate::body::{self, Limits, ReadBody};
use crate::conn::{self, Attempt, Conn, Outgoing, Pending, Target, fmt_duration};
use crate::error::Failure;
use crate::h1;
use crate::prepare::{Base, Prepared, host_and_port, prepare, redact, redact_word};
use crate::redirect::{self, MAX_REDIRECTS};
use crate::session::Session;
use crate::source::Source;
use crate::{ClientConfig, ErrorKind, Headers, Request, Response};

/// The deadline of a request whose limit cannot be added to its start, as `tokio::time::timeout` puts it.
const FOREVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// One VU's client. Cheap to clone: clones share the same session (cookies and idle
/// connections). Not `Send`: it lives on the thread of its VU.
#[derive(Clone)]
pub struct VuClient {
    inner: Rc<Inner>,
}

struct Inner {
    config: Arc<ClientConfig>,
    base: Option<Base>,
    /// The local address this VU's connections are made from (`None`: any).
    source: Option<Source>,
    session: RefCell<Session>,
    /// The timer of this VU's requests, kept from one to the next (a send takes it and puts it back). Moved to a
    /// later deadline, a timer is not taken out of tokio's timer wheel and put back, as a new one per request is.
    /// Like the idle connections, it belongs to the runtime the client is used on.
    timer: Timer,
}

/// Where a VU keeps its request timer between requests.
type Timer = Cell<Option<Pin<Box<tokio::time::Sleep>>>>;

/// Head and body of the last hop of a successful exchange.
struct Exchange {
    status: StatusCode,
    headers: Headers,
    body: ReadBody,
}

impl VuClient {
    /// `base`: the host that relative paths resolve against (e.g. `http://127.0.0.1:8080`);
    /// `None` means only full URLs work (a relative path then yields a status-0 response
    /// with [`ErrorKind::InvalidUrl`]). Credentials in `base` (`http://user:pw@host`) are sent as `Basic`
    /// authorization with every relative request; they are taken out of the URL here, once.
    pub fn new(config: Arc<ClientConfig>, base: Option<Url>) -> VuClient {
        VuClient::for_vu(config, base, 0)
    }

    /// As [`new`](Self::new), for the VU with this run-wide id: its connections are made from the config's
    /// [source address](ClientConfig::source_addrs) number `vu_id % count`, so VUs are spread round-robin over
    /// them (and every segment of a split run agrees on which VU uses which).
    pub fn for_vu(config: Arc<ClientConfig>, base: Option<Url>, vu_id: u64) -> VuClient {
        let base = base.map(Base::new);
        let source = config.source_for(vu_id);
        VuClient {
            inner: Rc::new(Inner {
                config,
                base,
                source,
                session: RefCell::new(Session::default()),
                timer: Cell::new(None),
            }),
        }
    }

    /// Sends one request, following redirects if asked. Never fails: any transport problem
    /// (refused, DNS, TLS, timeout, bad URL, too many redirects) gives a [`Response`] with
    /// status 0, `error` and `error_kind` set.
    ///
    /// The future owns everything it needs (`'static`), holds no `RefCell` borrow across an
    /// `.await`, and is not `Send`. It needs a tokio runtime with I/O and time enabled.
    pub fn send(&self, req: Request) -> impl Future<Output = Response> + 'static {
        let start = Instant::now();
        let inner = Rc::clone(&self.inner);
        async move {
            let Request { method, url, headers, query, body, timeout, follow_redirects, keep_body, max_body } = req;
            let limit = timeout.unwrap_or(inner.config.default_timeout);
            let limits = Limits { keep: keep_body, max: max_body.unwrap_or(inner.config.max_body) };
            let mut prepared = match prepare(inner.base.as_ref(), &url, &query, headers, method, body) {
                Ok(p) => p,
                Err(f) => return Response::failed(f.kind, f.message, redact_word(&url).into_owned(), start.elapsed()),
            };
            prepared.accept_encoding.clone_from(&inner.config.accept_encoding);
            // The deadline counts from `start`, read once; a limit too large to add to it waits as long as tokio's
            // own `timeout` does then (30 years).
            let deadline = tokio::time::Instant::from_std(start)
                .checked_add(limit)
                .unwrap_or_else(|| tokio::time::Instant::now() + FOREVER);
            // Pinned where it is built and polled by reference: moving a future this large costs copies of it.
            let outcome = {
                let exchange = std::pin::pin!(run(&inner, &mut prepared, follow_redirects, limits));
                within(&inner.timer, deadline, exchange).await
            };
            let elapsed = start.elapsed();
            let final_url = String::from(prepared.url);
            match outcome {
                Ok(Ok(ex)) => Response {
                    status: ex.status.as_u16(),
                    headers: ex.headers,
                    body: ex.body.body,
                    body_bytes: ex.body.decoded,
                    wire_bytes: ex.body.wire,
                    error: None,
                    error_kind: None,
                    elapsed,
                    url: final_url,
                },
                Ok(Err(f)) => Response::failed(f.kind, f.message, final_url, elapsed),
                Err(Elapsed) => Response::failed(
                    ErrorKind::Timeout,
                    format!("request timed out after {}", fmt_duration(limit)),
                    final_url,
                    elapsed,
                ),
            }
        }
    }

    /// Forgets every cookie of this session (e.g. between script iterations).
    pub fn clear_cookies(&self) {
        self.inner.session.borrow_mut().clear_cookies();
    }

    /// Closes the session's idle keep-alive connections.
    pub fn close_idle_connections(&self) {
        self.inner.session.borrow_mut().close_idle();
    }

    /// Number of idle keep-alive connections the session currently holds.
    pub fn idle_connections(&self) -> usize {
        self.inner.session.borrow().idle_count()
    }

    /// The `Cookie` header this session would send to `url` (`a=1; b=2`), if any.
    pub fn cookie_header(&self, url: &Url) -> Option<String> {
        self.inner.session.borrow().cookie_header(url)
    }
}

impl std::fmt::Debug for VuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = self.inner.base.as_ref().map(|b| redact(b.url()).into_owned());
        f.debug_struct("VuClient").field("base", &base).finish_non_exhaustive()
    }
}

/// The deadline passed.
struct Elapsed;

pin_project_lite::pin_project! {
    /// `future`'s output, unless the deadline comes first: `tokio::time::timeout_at` with the VU's own timer (see
    /// [`Inner::timer`]), which goes back to the VU when the output is in. As there, the future is polled first.
    struct Within<'a, F> {
        #[pin]
        future: F,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        home: &'a Timer,
    }
}

/// [`Within`] `deadline`, with the timer kept in `home` (moved to the deadline) or a new one.
fn within<F: Future>(home: &Timer, deadline: tokio::time::Instant, future: F) -> Within<'_, F> {
    let sleep = match home.take() {
        Some(mut sleep) => {
            sleep.as_mut().reset(deadline);
            sleep
        }
        None => Box::pin(tokio::time::sleep_until(deadline)),
    };
    Within { future, sleep: Some(sleep), home }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = match this.future.poll(cx) {
            Poll::Ready(output) => Ok(output),
            Poll::Pending => match this.sleep.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
                // (Polled again after its output, it says the deadline passed.)
                Some(Poll::Ready(())) | None => Err(Elapsed),
                Some(Poll::Pending) => return Poll::Pending,
            },
        };
        this.home.set(this.sleep.take());
        Poll::Ready(outcome)
    }
}

/// Performs hops until a non-redirect response (or a redirect that is not followed).
async fn run(inner: &Inner, p: &mut Prepared, follow: bool, limits: Limits) -> Result<Exchange, Failure> {
    let mut redirects = 0usize;
    loop {
        let (status, headers, pending, mut conn) = send_head(inner, p).await?;
        inner.session.borrow_mut().store_cookies(&headers, &p.url);
        let location =
            if follow && redirect::is_redirect(status) { headers.get_bytes(LOCATION.as_str()) } else { None };
        // The body of a hop that is followed is never shown: stream it, only to keep the connection usable.
        let hop_limits = if location.is_some() { Limits { keep: false, ..limits } } else { limits };
        // Not boxed: the decoders, which are large, are boxed inside only when a body is encoded.
        let body = body::read(&headers, conn.body(pending), hop_limits).await?;
        if conn.reusable(&headers) {
            park(inner, conn);
        }
        if let Some(location) = location {
            if redirects == MAX_REDIRECTS {
                return Err(Failure::new(
                    ErrorKind::TooManyRedirects,
                    format!("too many redirects (more than {MAX_REDIRECTS})"),
                ));
            }
            redirects += 1;
            redirect::follow(p, status, location)?;
            continue;
        }
        return Ok(Exchange { status, headers, body });
    }
}

/// The wire request for the current hop, with this session's `Host` and cookies: for a lean connection (`fast`)
/// its head written straight into the thread's write buffer, else an `http::Request` for hyper.
fn build(inner: &Inner, p: &Prepared, fast: bool) -> Result<Outgoing, Failure> {
    let mut session = inner.session.borrow_mut();
    let host = session
        .host_header(host_and_port(&p.url))
        .ok_or_else(|| Failure::new(ErrorKind::InvalidUrl, "host is not a valid header"))?;
    let jar = session.cookie_header(&p.url);
    if !fast {
        return p.build(host, jar).map(|req| Outgoing::Hyper(Box::new(req)));
    }
    let target = p.target()?;
    let cookie = p.cookie_value(jar)?;
    let mut out = h1::write_buffer();
    if p.headers.is_empty() {
        let fields = h1::Plain {
            host: &host,
            accept_encoding: p.accept_encoding.as_ref(),
            content_type: p.content_type.as_ref(),
            zero_length: p.zero_length(),
            cookie: cookie.as_ref(),
        };
        h1::encode_plain(&p.method, target, &fields, p.body.len(), &mut out);
    } else {
        let has_length = p.headers.contains_key(http::header::CONTENT_LENGTH);
        h1::encode(&p.method, target, p.fields(&host, cookie.as_ref()), p.body.len(), has_length, &mut out);
    }
    Ok(Outgoing::Fast(out))
}

/// Sends the current hop on a reused or new connection and waits for the response head.
///
/// A plain request goes the lean HTTP/1.1 way ([`h1`]) unless the config turns it off; one that needs hyper
/// (an upgrade, `Expect`, its own framing) goes through hyper, on a fresh connection or a reused one handed over.
///
/// A reused keep-alive connection may have been closed by the server while it sat idle (nginx's
/// `keepalive_timeout`, a load balancer's idle timer); the request then fails before any response arrives, through
/// no fault of the server. Like browsers and hyper-util's pooled client, such a request is retried once on a fresh
/// connection: always when it was provably never written, and when it was written, only for an idempotent method
/// (GET, HEAD, PUT, DELETE, OPTIONS, TRACE), only for a closed or reset connection (never a malformed response), and
/// only when not one byte of a response arrived: a connection closed in the middle of a response head fails the
/// request (the connection's read count tells the two apart).
async fn send_head(inner: &Inner, p: &Prepared) -> Result<(StatusCode, Headers, Pending, Conn), Failure> {
    let target = Target::of(&p.url)?;
    let fast = inner.config.fast_path && h1::eligible(&p.method, &p.headers, &p.body);
    let idle = inner.session.borrow_mut().take_idle(target.https, target.host_str, target.port);
    let (mut conn, mut may_retry) = match idle {
        Some(conn) => (conn.for_request(fast).await?, true),
        None => (conn::connect(&inner.config, &target, inner.source, fast).await?, false),
    };
    loop {
        let out = build(inner, p, conn.is_fast())?;
        let failure = match conn.send(out, p).await {
            Attempt::Sent(status, headers, pending) => return Ok((status, headers, pending, conn)),
            Attempt::Retry(failure) => failure,
            Attempt::Failed(failure) => return Err(failure),
        };
        if !may_retry {
            return Err(failure);
        }
        may_retry = false;
        conn = conn::connect(&inner.config, &target, inner.source, fast).await?;
    }
}

fn park(inner: &Inner, conn: Conn) {
    inner.session.borrow_mut().put_idle(conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of VUs each hold a session and one in-flight `send` future, so both must
    /// stay small (connection setup is boxed out of line for this reason).
    #[test]
    fn per_vu_state_stays_small() {
        assert!(std::mem::size_of::<Inner>() <= 512);
        let cfg = Arc::new(ClientConfig::new(false).unwrap());
        let vu = VuClient::new(cfg, None);
        let fut = vu.send(Request::new(http::Method::GET, "/"));
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 3 * 1024, "send future is {size} bytes");
    }
}
