//! The hello mode's fixed latency and stall. The bounds are one-sided (a
//! response may be late on a busy machine, never early) or generous.

mod common;

use std::time::{Duration, Instant};

use common::Conn;
use nest_demo::{DemoConfig, DemoServer, Mode, Stall};

const MS: Duration = Duration::from_millis(1);

fn hello(latency: Duration, stall: Option<Stall>, threads: usize) -> DemoServer {
    DemoServer::start(DemoConfig { mode: Mode::Hello, latency, stall, threads, ..DemoConfig::default() }).unwrap()
}

#[test]
fn every_response_waits_at_least_the_latency() {
    let server = hello(200 * MS, None, 1);
    let mut conn = Conn::open(server.addr());
    for _ in 0..3 {
        let sent = Instant::now();
        let reply = conn.get("/");
        assert!(sent.elapsed() >= 200 * MS, "answered after {:?}", sent.elapsed());
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello\n");
    }
    assert_eq!(server.stats().total, 3);
}

#[test]
fn the_latency_blocks_no_thread() {
    // 20 connections on a one-thread server: if the wait blocked the thread, the
    // last answer would come after 20 x 300 ms = 6 s.
    let server = hello(300 * MS, None, 1);
    let addr = server.addr();
    let sent = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..20 {
            s.spawn(move || {
                let mut conn = Conn::open(addr);
                assert_eq!(conn.get("/").body, "hello\n");
            });
        }
    });
    let took = sent.elapsed();
    assert!(took >= 300 * MS, "{took:?}");
    assert!(took < 3000 * MS, "20 concurrent requests took {took:?}: answered one after another?");
    assert_eq!(server.stats().total, 20);
}

#[test]
fn a_request_made_during_the_stall_is_answered_after_it() {
    // The stall is timed from a moment between `before` and `start` returning.
    let before = Instant::now();
    let server = hello(Duration::ZERO, Some(Stall { at: 300 * MS, length: 1000 * MS }), 1);
    let started = Instant::now();
    let mut conn = Conn::open(server.addr());
    // Sent at least 100 ms into the stall (or after it, on a very busy machine): either way the
    // answer cannot come before the stall's end, which is at least `before` + 1.3 s.
    std::thread::sleep((started + 400 * MS).saturating_duration_since(Instant::now()));
    let reply = conn.get("/");
    let answered = before.elapsed();
    assert_eq!(reply.status, 200);
    assert!(answered >= 1300 * MS, "answered {answered:?} after start, during the stall");
    // After the stall, answers are immediate again (generous bound).
    let sent = Instant::now();
    assert_eq!(conn.get("/").status, 200);
    assert!(sent.elapsed() < 1000 * MS, "{:?} after the stall", sent.elapsed());
    assert_eq!(server.stats().total, 2);
}

#[test]
fn requests_in_flight_when_the_stall_starts_wait_for_its_end() {
    // Each request takes 400 ms; the stall starts 200 ms after start, before any of them
    // is due, and ends 1.2 s after start. Sent on separate connections right away.
    let before = Instant::now();
    let server = hello(400 * MS, Some(Stall { at: 200 * MS, length: 1000 * MS }), 2);
    let addr = server.addr();
    let answered: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(move || {
                    let mut conn = Conn::open(addr);
                    assert_eq!(conn.get("/").body, "hello\n");
                    before.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for at in answered {
        assert!(at >= 1200 * MS, "answered {at:?} after start, during the stall");
    }
    assert_eq!(server.stats().total, 4);
}

#[test]
fn the_shop_mode_ignores_latency_and_stall() {
    let server = DemoServer::start(DemoConfig {
        latency: 5000 * MS,
        stall: Some(Stall { at: Duration::ZERO, length: 5000 * MS }),
        ..DemoConfig::default()
    })
    .unwrap();
    let mut conn = Conn::open(server.addr());
    let sent = Instant::now();
    assert_eq!(conn.get("/status/204").status, 204);
    assert!(sent.elapsed() < 4000 * MS, "{:?}", sent.elapsed());
}
