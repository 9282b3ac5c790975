//! Hostile and odd servers: huge and endless bodies, compressed bodies, idle connections closed under the client,
//! URL credentials, base paths.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use nest_http::{ClientConfig, ErrorKind, Request, VuClient};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::support::{self, Server, read_head, run};

fn vu(addr: SocketAddr, config: ClientConfig) -> VuClient {
    VuClient::new(Arc::new(config), Some(format!("http://{addr}").parse().unwrap()))
}

/// A raw server that answers every request of every connection with `head` then `body`, keeping connections open.
/// Counts the requests it answered.
async fn canned(head: String, body: Vec<u8>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (count, head, body) = (count.clone(), head.clone(), body.clone());
            tokio::spawn(async move {
                while read_head(&mut s).await {
                    let reply = [head.as_bytes(), &body].concat();
                    if s.write_all(&reply).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, served)
}

/// A raw server whose single response never ends: `head`, then `chunk` written forever. Reports on the channel
/// when the client has hung up (a write failed).
async fn endless(head: &'static [u8], chunk: &'static [u8]) -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await && s.write_all(head).await.is_ok() {
                    while s.write_all(chunk).await.is_ok() {}
                }
                let _ = tx.send(());
            });
        }
    });
    (addr, rx)
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

#[test]
fn a_body_over_max_body_fails_clearly_and_drops_the_connection() {
    run(async {
        // Announces 64 MiB, then sends zeros until the client goes away.
        let (addr, mut hung_up) = endless(b"HTTP/1.1 200 OK\r\ncontent-length: 67108864\r\n\r\n", &ZEROS).await;
        let vu = vu(addr, ClientConfig::new(false).unwrap().max_body(1 << 20));
        let r = vu.send(Request::new(Method::GET, "/big")).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::BodyTooLarge));
        let e = r.error.unwrap();
        assert!(e.contains("larger than max_body (1 MiB)") && e.contains("67108864"), "{e}");
        assert!(r.body.is_empty());
        assert_eq!(vu.idle_connections(), 0);
        hung_up.recv().await.unwrap();
    });
}

#[test]
fn an_endless_chunked_body_stops_at_the_cap() {
    run(async {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        // 64 KiB chunks, forever.
        let chunk: &'static [u8] = Box::leak([b"10000\r\n".as_slice(), &ZEROS, b"\r\n"].concat().into_boxed_slice());
        let (addr, mut hung_up) = endless(head, chunk).await;
        let vu = vu(addr, ClientConfig::new(false).unwrap().max_body(4 << 20));
        let mut req = Request::new(Method::GET, "/stream");
        req.max_body = Some(256 << 10);
        let r = vu.send(req).await;
        assert_eq!(r.error_kind, Some(ErrorKind::BodyTooLarge), "{:?}", r.error);
        assert!(r.error.unwrap().contains("max_body (256 KiB)"));
        hung_up.recv().await.unwrap();
    });
}

#[test]
fn a_discarded_body_is_streamed_and_counted_whatever_its_size() {
    run(async {
        let body = vec![b'x'; 3 << 20];
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let (addr, served) = canned(head, body).await;
        let vu = vu(addr, ClientConfig::new(false).unwrap().max_body(1024));
        let mut req = Request::new(Method::GET, "/");
        req.keep_body = false;
        let r = vu.send(req).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        assert!(r.body.is_empty());
        assert_eq!((r.body_bytes, r.wire_bytes), (3 << 20, 3 << 20));
        // The connection stays usable.
        let r = vu.send(Request::new(Method::GET, "/")).await;
        assert_eq!(r.error_kind, Some(ErrorKind::BodyTooLarge));
        assert_eq!(served.load(Ordering::SeqCst), 2);
    });
}

fn text() -> Vec<u8> {
    "the quick brown fox jumps over the lazy dog. ".repeat(40).into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn encoded_reply(coding: &str, body: &[u8], chunked: bool) -> String {
    let framing =
        if chunked { "transfer-encoding: chunked".to_owned() } else { format!("content-length: {}", body.len()) };
    format!("HTTP/1.1 200 OK\r\ncontent-encoding: {coding}\r\n{framing}\r\n\r\n")
}

#[test]
fn gzip_deflate_and_br_bodies_are_decoded_and_both_sizes_counted() {
    run(async {
        // brotli-decompressor cannot encode; this fixture is `"brotli says hello. " * 50`, made by Python's brotli.
        let brotli = include_bytes!("../fixtures/hello.br").to_vec();
        let cases = [
            ("gzip", gzip(&text()), text()),
            ("deflate", zlib(&text()), text()),
            ("br", brotli, b"brotli says hello. ".repeat(50)),
        ];
        for (coding, wire, plain) in cases {
            let (addr, served) = canned(encoded_reply(coding, &wire, false), wire.clone()).await;
            let r = vu(addr, ClientConfig::new(false).unwrap()).send(Request::new(Method::GET, "/")).await;
            assert_eq!(r.status, 200, "{coding}: {:?}", r.error);
            assert_eq!(&r.body[..], &plain[..], "{coding}");
            assert_eq!(r.body_bytes, plain.len() as u64, "{coding}");
            assert_eq!(r.wire_bytes, wire.len() as u64, "{coding}");
            assert!(r.wire_bytes < r.body_bytes, "{coding}");
            assert_eq!(r.header("content-encoding").as_deref(), Some(coding));
            assert_eq!(served.load(Ordering::SeqCst), 1);
        }
    });
}

#[test]
fn a_gzip_bomb_is_stopped_by_max_body() {
    run(async {
        let wire = gzip(&vec![0u8; 8 << 20]);
        let mut chunked = format!("{:x}\r\n", wire.len()).into_bytes();
        chunked.extend_from_slice(&wire);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let (addr, _) = canned(encoded_reply("gzip", &wire, true), chunked).await;
        let r =
            vu(addr, ClientConfig::new(false).unwrap().max_body(1 << 20)).send(Request::new(Method::GET, "/")).await;
        assert_eq!(r.error_kind, Some(ErrorKind::BodyTooLarge), "{:?}", r.error);
        assert!(r.error.unwrap().contains("decodes to more than 1048576 bytes"));
    });
}

#[test]
fn accept_encoding_is_sent_by_default_configurable_and_overridable() {
    run(async {
        let server = Server::start().await;
        server.client().send(Request::new(Method::GET, "/")).await;
        assert_eq!(server.last().header("accept-encoding"), Some("gzip, deflate, br"));
        let config = Arc::new(ClientConfig::new(false).unwrap().accept_encoding("gzip").unwrap());
        let vu = VuClient::new(config, Some(server.base()));
        vu.send(Request::new(Method::GET, "/")).await;
        assert_eq!(server.last().header("accept-encoding"), Some("gzip"));
        let mut req = Request::new(Method::GET, "/");
        req.headers.push(("Accept-Encoding".into(), "identity".into()));
        vu.send(req).await;
        assert_eq!(server.last().header("accept-encoding"), Some("identity"));
        let config = Arc::new(ClientConfig::new(false).unwrap().accept_encoding("").unwrap());
        VuClient::new(config, Some(server.base())).send(Request::new(Method::GET, "/")).await;
        assert_eq!(server.last().header("accept-encoding"), None);
    });
}

/// A raw server that answers the first request of each connection with a keep-alive 200 and closes the connection
/// when the next request arrives, without answering it: what nginx does to a request that lands just as its
/// `keepalive_timeout` closes the connection. Counts the requests it answered.
async fn answers_once_per_connection() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await && s.write_all(support::OK_KEEP_ALIVE).await.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                    read_head(&mut s).await;
                }
            });
        }
    });
    (addr, answered)
}

/// Every reused connection is closed under the client's next request: each request must still succeed, retried
/// once on a fresh connection, and each is answered exactly once.
#[test]
fn a_keep_alive_connection_closed_by_the_server_never_fails_a_request() {
    run(async {
        let (addr, answered) = answers_once_per_connection().await;
        let vu = vu(addr, ClientConfig::new(false).unwrap());
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE, Method::OPTIONS] {
            for i in 0..5 {
                let r = vu.send(Request::new(method.clone(), "/")).await;
                assert_eq!(r.status, 200, "{method} {i}: {:?}", r.error);
            }
        }
        assert_eq!(answered.load(Ordering::SeqCst), 25);
    });
}

/// A raw server that answers each connection's first request with a keep-alive 200, and the second with the start
/// of a response head, then closes: a server that crashed mid-answer. Counts the requests it received.
async fn dies_mid_second_answer() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await && s.write_all(support::OK_KEEP_ALIVE).await.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                    if read_head(&mut s).await {
                        count.fetch_add(1, Ordering::SeqCst);
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
                    }
                }
            });
        }
    });
    (addr, received)
}

/// The retry covers only a reused connection closed before any response byte: a response that started to arrive
/// proves the server got the request, so not even an idempotent one is sent again.
#[test]
fn a_connection_closed_mid_response_head_is_not_retried() {
    run(async {
        for method in [Method::GET, Method::POST] {
            let (addr, received) = dies_mid_second_answer().await;
            let vu = vu(addr, ClientConfig::new(false).unwrap());
            assert_eq!(vu.send(Request::new(Method::GET, "/")).await.status, 200);
            let r = vu.send(Request::new(method.clone(), "/")).await;
            assert_eq!((r.status, r.error_kind), (0, Some(ErrorKind::Closed)), "{method}: {:?}", r.error);
            assert_eq!(received.load(Ordering::SeqCst), 2, "{method} was sent again");
        }
    });
}

#[test]
fn url_credentials_become_basic_auth_and_are_never_shown() {
    run(async {
        let server = Server::start().await;
        let base = format!("http://alice:s3cret@{}/", server.addr).parse().unwrap();
        let vu = VuClient::new(Arc::new(ClientConfig::new(false).unwrap()), Some(base));
        let r = vu.send(Request::new(Method::GET, "/a")).await;
        assert_eq!(r.status, 200);
        // base64("alice:s3cret")
        assert_eq!(server.last().header("authorization"), Some("Basic YWxpY2U6czNjcmV0"));
        assert!(!r.url.contains("s3cret"), "{}", r.url);
        assert!(!format!("{vu:?}").contains("s3cret"));
        let full = format!("http://bob:hunter2@{}/b", server.addr);
        let r = vu.send(Request::new(Method::GET, full)).await;
        assert_eq!(server.last().header("authorization"), Some("Basic Ym9iOmh1bnRlcjI="));
        assert_eq!(r.url, format!("http://{}/b", server.addr));
        let r = vu.send(Request::new(Method::GET, "http://bob:hunter2@127.0.0.1:1/")).await;
        assert_eq!(r.status, 0);
        assert!(!r.url.contains("hunter2") && !r.error.unwrap().contains("hunter2"), "{}", r.url);
    });
}

#[test]
fn relative_paths_are_appended_to_the_base_path() {
    run(async {
        let server = Server::start().await;
        let cases =
            [("/v1/", "/a", "/v1/a"), ("/v1", "a", "/v1/a"), ("/v1/", "a", "/v1/a"), ("/v1", "/a?x=1", "/v1/a?x=1")];
        for (base, path, seen) in cases {
            let vu =
                VuClient::new(Arc::new(ClientConfig::new(false).unwrap()), Some(server.url(base).parse().unwrap()));
            let r = vu.send(Request::new(Method::GET, path)).await;
            assert_eq!(r.status, 200);
            assert_eq!(server.last().target, seen, "{base} + {path}");
        }
        let vu = VuClient::new(Arc::new(ClientConfig::new(false).unwrap()), Some(server.url("/v1/").parse().unwrap()));
        vu.send(Request::new(Method::GET, server.url("/abs"))).await;
        assert_eq!(server.last().target, "/abs");
    });
}

#[test]
fn a_huge_body_fails_fast_not_at_the_timeout() {
    run(async {
        let (addr, _hung_up) = endless(b"HTTP/1.1 200 OK\r\ncontent-length: 67108864\r\n\r\n", &ZEROS).await;
        let config = ClientConfig::new(false).unwrap().max_body(1 << 20).default_timeout(Duration::from_secs(30));
        let started = Instant::now();
        let r = vu(addr, config).send(Request::new(Method::GET, "/")).await;
        assert_eq!(r.error_kind, Some(ErrorKind::BodyTooLarge));
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    });
}

#[test]
fn bodiless_responses_are_not_capped_or_decoded() {
    run(async {
        // A HEAD answer announces the size and coding of the body a GET would get, and carries none.
        let (addr, served) =
            canned("HTTP/1.1 200 OK\r\ncontent-length: 67108864\r\ncontent-encoding: gzip\r\n\r\n".into(), Vec::new())
                .await;
        let vu = vu(addr, ClientConfig::new(false).unwrap().max_body(1024));
        for _ in 0..2 {
            let r = vu.send(Request::new(Method::HEAD, "/")).await;
            assert_eq!(r.status, 200, "{:?}", r.error);
            assert_eq!((r.body_bytes, r.wire_bytes), (0, 0));
        }
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert_eq!(vu.idle_connections(), 1);
    });
}
