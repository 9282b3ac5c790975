//! The hello mode: keep-alive answers and request counts.

mod common;

use common::Conn;
use nest_demo::{DemoConfig, DemoServer, Mode};

#[test]
fn answers_hello_on_one_keep_alive_connection() {
    let server = DemoServer::start(DemoConfig { mode: Mode::Hello, ..DemoConfig::default() }).unwrap();
    let mut conn = Conn::open(server.addr());
    let requests =
        [("GET", "/"), ("GET", "/anything/at/all?x=1"), ("POST", "/login"), ("DELETE", "/items/7"), ("GET", "/")];
    for (method, path) in requests {
        let reply = conn.send(method, path, &[], None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello\n");
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.header("connection"), None, "keep-alive is the default");
    }
    let stats = server.stats();
    assert_eq!(stats.total, conn.sent);
    assert_eq!(stats.total, requests.len() as u64);
    assert_eq!(stats.by_route.len(), 1);
    assert_eq!(stats.get("hello"), requests.len() as u64);
}

#[test]
fn multi_thread_runtime_counts_every_connection() {
    let server = DemoServer::start(DemoConfig { mode: Mode::Hello, threads: 4, ..DemoConfig::default() }).unwrap();
    let addr = server.addr();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(move || {
                let mut conn = Conn::open(addr);
                for _ in 0..25 {
                    assert_eq!(conn.get("/").body, "hello\n");
                }
            });
        }
    });
    assert_eq!(server.stats().total, 200);
}
