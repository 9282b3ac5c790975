//! The coordinator's HTTP service: token check, size caps, decoding, long polls, and the clock.
//!
//! Every rule lives in [`crate::state::State`]; this file only puts it on the network. One mutex holds the state
//! (a coordinator serves a few requests per segment per second, never the load itself), and a `watch` channel
//! wakes the long polls whenever it changes. A clock task ticks four times a second: the ready timeout, lost
//! segments, the abort thresholds on the merged figures, and the live snapshot for the operator's view.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State as Axum};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use nest_core::snapshot::{RunPhase, Snapshot, Snapshots};
use nest_core::stats::Aggregate;

use crate::protocol::{
    Ack, ErrorBody, ErrorKind, Live, LoadDoneReply, Member, POLL, Ready, ReadyReply, Register, Upload, limits,
};
use crate::state::{End, Event, Settings, State, Stranger};
use crate::token::Token;

/// How often the clock ticks.
const TICK: Duration = Duration::from_millis(250);

/// How long the service may take to close its connections once the run has ended.
const SHUTDOWN: Duration = Duration::from_secs(5);

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    token: Token,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every long poll to look at the state again.
    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// A bound coordinator, not serving yet: see [`Coordinator::run`].
pub struct Coordinator {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    snapshots: (watch::Sender<Arc<Snapshot>>, Snapshots),
}

/// A handle on a running coordinator, for the process that hosts it.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Stops every segment (before the start: cancels the run), as on Ctrl-C.
    pub fn stop_all(&self, reason: &str) {
        self.shared.lock().stop_all(reason);
        self.shared.notify();
    }

    /// Gives up on the segments still running: they are lost, and the run ends with what came in.
    pub fn abandon(&self, reason: &str) {
        self.shared.lock().abandon(reason, Instant::now());
        self.shared.notify();
    }

    /// Closed model: a new target of users for the whole run (each segment takes its share), reached at
    /// `spawn_rate` users per second; every segment applies it at one instant, [`crate::steer::LEAD`] from now. A
    /// segment whose plan cannot take it says so ([`crate::state::Event::Refused`]).
    pub fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), nest_core::ControlError> {
        self.steer(nest_core::LoadTarget::Users { users, spawn_rate })
    }

    /// Open model: a new arrival rate for the whole run, tasks per second (see [`Handle::set_users`]).
    pub fn set_rate(&self, per_second: f64) -> Result<(), nest_core::ControlError> {
        self.steer(nest_core::LoadTarget::Rate { per_second })
    }

    /// Resets the statistics of every segment and the live figures: they count from the first whole second of the
    /// load [`crate::steer::LEAD`] from now.
    pub fn reset_stats(&self) -> Result<(), nest_core::ControlError> {
        self.shared.lock().reset_stats(Instant::now())?;
        self.shared.notify();
        Ok(())
    }

    fn steer(&self, target: nest_core::LoadTarget) -> Result<(), nest_core::ControlError> {
        self.shared.lock().steer(target, Instant::now())?;
        self.shared.notify();
        Ok(())
    }

    /// Every segment as the coordinator sees it now (see [`crate::state::State::seats`]).
    pub fn seats(&self) -> Vec<crate::state::SeatStatus> {
        self.shared.lock().seats(Instant::now())
    }

    /// Segment `index`'s process ended (`how`: its exit status): without a result, it is lost at once.
    pub fn exited(&self, index: u32, how: &str) {
        self.shared.lock().exited(index, how, Instant::now());
        self.shared.notify();
    }
}

impl Coordinator {
    /// Binds `addr` (port 0 picks one) for a run of `settings`, admitting only requests that carry `token`.
    pub async fn bind(addr: SocketAddr, token: Token, settings: Settings, run_id: String) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let state = State::new(settings, run_id, Instant::now());
        let shared = Arc::new(Shared { state: Mutex::new(state), changed: watch::channel(0).0, token });
        Ok(Coordinator { listener, shared, snapshots: nest_core::snapshot::channel() })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// A handle to stop the run or report a segment's exit.
    pub fn handle(&self) -> Handle {
        Handle { shared: self.shared.clone() }
    }

    /// The merged live figures, a [`Snapshot`] per second of load, as a single run publishes them: the same
    /// observers (the live view) read them.
    pub fn snapshots(&self) -> Snapshots {
        self.snapshots.1.clone()
    }

    /// Serves until the run ends (every segment handed in its result or was lost, or the run was cancelled), giving
    /// each [`Event`] to `on_event` as it happens. Returns how it ended.
    pub async fn run(self, mut on_event: impl FnMut(Event) + Send) -> std::io::Result<End> {
        let Coordinator { listener, shared, snapshots: (publish, _) } = self;
        let router = router(shared.clone());
        let (done_tx, mut done_rx) = watch::channel(false);
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = done_rx.wait_for(|done| *done).await;
        });
        let server = tokio::spawn(async move { server.await });
        let mut clock = tokio::time::interval(TICK);
        let mut published = None;
        let end = loop {
            clock.tick().await;
            let now = Instant::now();
            let (events, end) = {
                let mut state = shared.lock();
                state.tick(now);
                state.check_abort(now);
                published = publish_live(&state, now, &publish, published);
                (state.take_events(), state.end(now))
            };
            shared.notify();
            events.into_iter().for_each(&mut on_event);
            if let Some(end) = end {
                break end;
            }
        };
        publish_end(&shared.lock(), &publish, &end);
        let _ = done_tx.send(true);
        // The answers in flight go out; a connection that never finishes its request (a stranger's) cannot hold the
        // end of the run up.
        let mut server = server;
        match tokio::time::timeout(SHUTDOWN, &mut server).await {
            Ok(served) => served.map_err(std::io::Error::other)??,
            Err(_) => server.abort(),
        }
        Ok(end)
    }
}

/// Publishes the merged figures once per new second of load; returns the last second published.
fn publish_live(state: &State, now: Instant, publish: &watch::Sender<Arc<Snapshot>>, last: Option<u64>) -> Option<u64> {
    let Some((live, elapsed)) = state.live_view(now) else { return last };
    let second = elapsed.as_secs();
    if last == Some(second) || elapsed.is_zero() {
        return last;
    }
    let seq = publish.borrow().seq + 1;
    let (target, counted_from) = state.steering();
    let snapshot = Snapshot {
        phase: RunPhase::Load,
        seq,
        elapsed,
        seconds: second,
        users: live.live_users,
        totals: live.without_timeline(),
        last: None,
        counted_from: Duration::from_secs(counted_from),
        target,
        started_at: state.start_at(),
    };
    publish.send_replace(Arc::new(snapshot));
    Some(second)
}

fn publish_end(state: &State, publish: &watch::Sender<Arc<Snapshot>>, end: &End) {
    if let Some((live, elapsed)) = state.live_view(Instant::now()) {
        let seq = publish.borrow().seq + 1;
        let mut totals = live.without_timeline();
        if let Some(last) = final_figures(end) {
            (totals.requests, totals.failures, totals.dropped) = (last.requests, last.failures, last.dropped);
        }
        let seconds = elapsed.as_secs();
        publish.send_replace(Arc::new(Snapshot {
            phase: RunPhase::Drain,
            seq,
            elapsed,
            seconds,
            totals,
            ..Default::default()
        }));
    }
}

/// The run's final request figures, exact, when every segment handed its result in: the live pushes stop short of
/// each segment's last second, which only its result holds. (With a segment lost, the live figures stay.)
fn final_figures(end: &End) -> Option<Aggregate> {
    let End::Ran { results, lost, .. } = end else { return None };
    if results.is_empty() || !lost.is_empty() {
        return None;
    }
    let mut totals = Aggregate::default();
    for (_, report) in results {
        for (key, counts) in nest_report::merge::request_counts(&report.summary).ok()? {
            totals.requests.entry(key).or_default().merge(&counts);
        }
        for f in &report.summary.failures {
            let key = (f.method.clone(), f.name.clone(), f.reason.clone());
            totals.failures.entry(key).or_insert((f.kind, 0)).1 += f.count;
        }
        totals.dropped += report.summary.dropped_iterations;
    }
    Some(totals)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/register", post(register).layer(DefaultBodyLimit::max(limits::SMALL)))
        .route("/v1/ready", post(ready).layer(DefaultBodyLimit::max(limits::READY)))
        .route("/v1/live", post(live).layer(DefaultBodyLimit::max(limits::LIVE)))
        .route("/v1/load-done", post(load_done).layer(DefaultBodyLimit::max(limits::SMALL)))
        .route("/v1/result", post(result).layer(DefaultBodyLimit::max(limits::RESULT)))
        .layer(middleware::from_fn_with_state(shared.clone(), auth))
        .with_state(shared)
}

/// Only the run's token is heard; nothing else is read before it is checked.
async fn auth(Axum(shared): Axum<Arc<Shared>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !shared.token.admits(given) {
        let message = "no token or a wrong one: send the run's NEST_COORDINATOR_TOKEN as `Authorization: Bearer …`";
        return error(StatusCode::UNAUTHORIZED, ErrorKind::Unauthorized, message);
    }
    next.run(request).await
}

fn error(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody { kind, error: message.into() })).into_response()
}

fn stranger(e: Stranger) -> Response {
    error(StatusCode::FORBIDDEN, ErrorKind::Stranger, e.0)
}

fn ok(body: impl Serialize) -> Response {
    axum::Json(body).into_response()
}

/// Decodes a JSON body, or answers 400 naming what is wrong.
#[allow(clippy::result_large_err)]
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, ErrorKind::Invalid, e.to_string()))
}

/// A segment's request in progress: a long poll is presence, so a waiting segment is never lost.
struct Presence {
    shared: Arc<Shared>,
    index: u32,
}

impl Presence {
    #[allow(clippy::result_large_err)]
    fn enter(shared: &Arc<Shared>, m: &Member) -> Result<Presence, Response> {
        shared.lock().enter(m, Instant::now()).map_err(stranger)?;
        Ok(Presence { shared: shared.clone(), index: m.index })
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.shared.lock().leave(self.index, Instant::now());
    }
}

async fn register(Axum(shared): Axum<Arc<Shared>>, body: Bytes) -> Response {
    let r: Register = match decode(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let answer = shared.lock().register(&r, Instant::now());
    shared.notify();
    match answer {
        Ok(registered) => ok(registered),
        Err(refusal) => error(StatusCode::CONFLICT, ErrorKind::Refused, refusal.to_string()),
    }
}

/// `first` unless it says wait; then waits for a change up to [`POLL`] and asks `again`.
async fn long_poll<T: PartialEq + Serialize>(
    shared: &Shared,
    mut changes: watch::Receiver<u64>,
    first: T,
    wait: T,
    again: impl Fn(&State) -> T,
) -> T {
    let mut reply = first;
    let deadline = tokio::time::Instant::now() + POLL;
    while reply == wait {
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            break;
        }
        reply = again(&shared.lock());
    }
    reply
}

async fn ready(Axum(shared): Axum<Arc<Shared>>, body: Bytes) -> Response {
    let r: Ready = match decode(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    if r.setup.as_ref().is_some_and(|_| r.member.index != 0) {
        return error(StatusCode::BAD_REQUEST, ErrorKind::Invalid, "only segment 0 runs setup() and sends its value");
    }
    let _presence = match Presence::enter(&shared, &r.member) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let changes = shared.changed.subscribe();
    let first = shared.lock().ready(&r, Instant::now());
    shared.notify();
    match first {
        Ok(first) => {
            let reply = long_poll(&shared, changes, first, ReadyReply::Wait, State::ready_reply).await;
            if matches!(reply, ReadyReply::Cancelled { .. }) {
                shared.lock().told(r.member.index);
            }
            ok(reply)
        }
        Err(e) => stranger(e),
    }
}

async fn live(Axum(shared): Axum<Arc<Shared>>, body: Bytes) -> Response {
    let l: Live = match decode(&body) {
        Ok(l) => l,
        Err(response) => return response,
    };
    if l.rows.len() > limits::ROWS || l.checks.len() > limits::ROWS {
        return error(StatusCode::BAD_REQUEST, ErrorKind::Invalid, "too many rows in one live push");
    }
    let answer = shared.lock().live(l, Instant::now());
    match answer {
        Ok(Ok(reply)) => ok(reply),
        Ok(Err(invalid)) => error(StatusCode::BAD_REQUEST, ErrorKind::Invalid, invalid),
        Err(e) => stranger(e),
    }
}

async fn load_done(Axum(shared): Axum<Arc<Shared>>, body: Bytes) -> Response {
    let m: Member = match decode(&body) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let _presence = match Presence::enter(&shared, &m) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let changes = shared.changed.subscribe();
    let first = shared.lock().load_done(&m);
    shared.notify();
    match first {
        Ok(first) => ok(long_poll(&shared, changes, first, LoadDoneReply::Wait, State::load_done_reply).await),
        Err(e) => stranger(e),
    }
}

async fn result(Axum(shared): Axum<Arc<Shared>>, body: Bytes) -> Response {
    let u: Upload = match decode(&body) {
        Ok(u) => u,
        Err(response) => return response,
    };
    let answer = shared.lock().upload(&u.member, *u.report);
    shared.notify();
    match answer {
        Ok(()) => ok(Ack {}),
        Err(e) => stranger(e),
    }
}
