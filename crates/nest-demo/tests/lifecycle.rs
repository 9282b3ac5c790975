//! Starting and stopping: real port before `start` returns, graceful stop,
//! drop, `serve` on the caller's runtime, and bind errors.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Conn;
use nest_demo::{DemoConfig, DemoServer, Error, Mode};

fn refused(addr: std::net::SocketAddr) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn stop_closes_the_port_and_idle_connections() {
    let server = DemoServer::start(DemoConfig::default()).unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(server.url(), format!("http://127.0.0.1:{}", addr.port()));
    assert_eq!(server.mode(), Mode::Shop);

    let mut idle = Conn::open(addr);
    assert_eq!(idle.get("/status/200").status, 200);
    server.stop();
    assert!(idle.is_closed());
    assert!(refused(addr));
}

#[test]
fn dropping_stops_the_server() {
    let server = DemoServer::start(DemoConfig::default()).unwrap();
    let addr = server.addr();
    drop(server);
    assert!(refused(addr));
}

/// Blocks until the server has routed `n` requests to `route`.
fn wait_for(server: &DemoServer, route: &str, n: u64) {
    while server.stats().get(route) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn stop_lets_an_in_flight_request_finish() {
    let server = DemoServer::start(DemoConfig::default()).unwrap();
    let mut conn = Conn::open(server.addr());
    conn.write("GET", "/slow?ms=200", &[], None);
    wait_for(&server, "GET /slow", 1);
    server.stop();
    // The reply was written before the connection closed.
    let reply = conn.read().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.is_closed());
}

#[test]
fn stop_is_bounded_when_a_request_takes_too_long() {
    let server = DemoServer::start(DemoConfig::default()).unwrap();
    let mut conn = Conn::open(server.addr());
    conn.write("GET", "/slow?ms=10000", &[], None);
    wait_for(&server, "GET /slow", 1);
    let started = Instant::now();
    server.stop();
    // The grace period is 1 s; allow generous slack for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(conn.read().is_none());
}

#[test]
fn binding_a_busy_port_fails() {
    let first = DemoServer::start(DemoConfig::default()).unwrap();
    let err = DemoServer::start(DemoConfig { addr: first.addr(), ..DemoConfig::default() }).unwrap_err();
    assert!(matches!(err, Error::Bind { addr, .. } if addr == first.addr()));
    assert!(err.to_string().contains(&first.addr().to_string()));
}

#[cfg(unix)]
#[test]
fn servers_with_reuse_port_share_one_port_and_the_connections() {
    let hello = DemoConfig { mode: Mode::Hello, reuse_port: true, ..DemoConfig::default() };
    let first = DemoServer::start(hello.clone()).unwrap();
    let second = DemoServer::start(DemoConfig { addr: first.addr(), ..hello }).unwrap();
    assert_eq!(second.addr(), first.addr());
    // Without the option, the port stays taken.
    assert!(DemoServer::start(DemoConfig { addr: first.addr(), ..DemoConfig::default() }).is_err());

    // The kernel hashes each new connection's address pair to one of the sockets: over 64 connections, both get
    // some (all on one would have odds of 2^-63).
    const CONNECTIONS: u64 = 64;
    for _ in 0..CONNECTIONS {
        assert_eq!(Conn::open(first.addr()).get("/").body, "hello\n");
    }
    let (a, b) = (first.stats().total, second.stats().total);
    assert_eq!(a + b, CONNECTIONS);
    assert!(a > 0 && b > 0, "one server got every connection: {a} and {b}");
}

#[tokio::test]
async fn starts_and_stops_inside_another_runtime() {
    let server = DemoServer::start(DemoConfig { mode: Mode::Hello, ..DemoConfig::default() }).unwrap();
    let addr = server.addr();
    let body = tokio::task::spawn_blocking(move || Conn::open(addr).get("/").body).await.unwrap();
    assert_eq!(body, "hello\n");
    drop(server);
    assert!(refused(addr));
}

#[tokio::test]
async fn serve_runs_on_the_callers_runtime() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = nest_demo::Counters::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nest_demo::serve_with_counters(listener, Mode::Shop, counters.clone(), async move {
        let _ = stop_rx.await;
    }));

    let reply = tokio::task::spawn_blocking(move || Conn::open(addr).get("/items/1")).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(counters.snapshot().get("GET /items/:id"), 1);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(refused(addr));
}

#[tokio::test]
async fn plain_serve_stops_on_its_shutdown_future() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // An already-finished shutdown future: serve returns at once.
    nest_demo::serve(listener, Mode::Hello, async {}).await.unwrap();
    assert!(refused(addr));
}
