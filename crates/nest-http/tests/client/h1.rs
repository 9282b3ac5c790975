//! The lean HTTP/1.1 path against misbehaving raw servers, and the same exchanges through hyper (both paths must
//! behave alike): chunked bodies, `Connection: close` and HTTP/1.0, 1xx responses, bodiless statuses, bodies read
//! to EOF, oversized heads, a response sent before the request, bytes a server sends beyond its response, requests
//! that need hyper, and source addresses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::Method;
use nest_http::{Body, ClientConfig, ErrorKind, Request, VuClient};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::support::{Server, read_head, run};

/// Both ways a request can go: the lean path (the default) and hyper.
fn both() -> [(&'static str, ClientConfig); 2] {
    [("lean", ClientConfig::new(false).unwrap()), ("hyper", ClientConfig::new(false).unwrap().http1_fast_path(false))]
}

fn vu(addr: SocketAddr, config: &ClientConfig) -> VuClient {
    VuClient::new(Arc::new(config.clone()), Some(format!("http://{addr}").parse().unwrap()))
}

fn get() -> Request {
    Request::new(Method::GET, "/")
}

/// A raw server: every request of every connection is answered by `answer(connection number, request number on
/// it)`, written in pieces of `piece` bytes; `None` closes the connection instead. Counts accepted connections.
async fn scripted(
    piece: usize,
    answer: impl Fn(usize, usize) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let (count, answer) = (accepts.clone(), Arc::new(answer));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (conn, answer) = (count.fetch_add(1, Ordering::SeqCst), answer.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while read_head(&mut s).await {
                    let Some(reply) = answer(conn, n) else { return };
                    for part in reply.chunks(piece) {
                        if s.write_all(part).await.is_err() {
                            return;
                        }
                        s.flush().await.unwrap();
                    }
                    n += 1;
                }
            });
        }
    });
    (addr, accepts)
}

#[test]
fn chunked_bodies_split_anywhere_are_decoded_and_the_connection_reused() {
    for (path, config) in both() {
        run(async {
            let body = b"5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: ignored\r\n\r\n";
            let reply = [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], body].concat();
            // One byte per write: every element of the chunked stream arrives split.
            let (addr, accepts) = scripted(1, move |_, _| Some(reply.clone())).await;
            let vu = vu(addr, &config);
            for _ in 0..3 {
                let r = vu.send(get()).await;
                assert_eq!(r.status, 200, "{path}: {:?}", r.error);
                assert_eq!(&r.body[..], b"hello, world", "{path}");
                assert_eq!(r.wire_bytes, 12, "{path}");
            }
            assert_eq!(accepts.load(Ordering::SeqCst), 1, "{path}");
        });
    }
}

#[test]
fn connection_close_and_http_1_0_responses_are_not_reused() {
    let replies: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        // HTTP/1.0 keep-alive is honoured.
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    ];
    for (i, reply) in replies.into_iter().enumerate() {
        for (path, config) in both() {
            run(async {
                // The server keeps the connection open: only the client's reading of the head closes it.
                let (addr, accepts) = scripted(usize::MAX, move |_, _| Some(reply.to_vec())).await;
                let vu = vu(addr, &config);
                for _ in 0..3 {
                    let r = vu.send(get()).await;
                    assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]), "{path} {i}: {:?}", r.error);
                }
                let expected = if i == 2 { 1 } else { 3 };
                assert_eq!(accepts.load(Ordering::SeqCst), expected, "{path} reply {i}");
            });
        }
    }
}

#[test]
fn informational_responses_are_skipped() {
    for (path, config) in both() {
        run(async {
            let reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                          HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone";
            let (addr, accepts) = scripted(7, move |_, _| Some(reply.to_vec())).await;
            let vu = vu(addr, &config);
            for _ in 0..2 {
                let r = vu.send(get()).await;
                assert_eq!((r.status, &r.body[..]), (201, &b"done"[..]), "{path}: {:?}", r.error);
                assert_eq!(r.header("link"), None, "{path}: the 103's headers are not the response's");
            }
            assert_eq!(accepts.load(Ordering::SeqCst), 1, "{path}");
        });
    }
}

#[test]
fn no_content_and_not_modified_have_no_body_whatever_they_announce() {
    for (path, config) in both() {
        run(async {
            let (addr, accepts) = scripted(usize::MAX, |_, n| {
                Some(match n % 2 {
                    0 => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
                    _ => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n".to_vec(),
                })
            })
            .await;
            let vu = vu(addr, &config);
            for expected in [204, 304, 204, 304] {
                let r = vu.send(get()).await;
                assert_eq!(r.status, expected, "{path}: {:?}", r.error);
                assert_eq!(r.wire_bytes, 0, "{path}");
            }
            assert_eq!(accepts.load(Ordering::SeqCst), 1, "{path}");
        });
    }
}

#[test]
fn a_body_without_length_is_read_to_eof_and_its_connection_not_reused() {
    for (path, config) in both() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepts = Arc::new(AtomicUsize::new(0));
            let count = accepts.clone();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    if read_head(&mut s).await {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil ").await;
                        let _ = s.write_all(b"the end").await;
                    }
                }
            });
            let vu = vu(addr, &config);
            for _ in 0..2 {
                let r = vu.send(get()).await;
                assert_eq!((r.status, &r.body[..]), (200, &b"until the end"[..]), "{path}: {:?}", r.error);
                assert_eq!(vu.idle_connections(), 0, "{path}");
            }
            assert_eq!(accepts.load(Ordering::SeqCst), 2, "{path}");
        });
    }
}

/// hyper calls it an I/O error (an unexpected end of file); the lean path, a closed connection.
#[test]
fn a_body_cut_short_is_a_failure() {
    for ((path, config), kind) in both().into_iter().zip([ErrorKind::Closed, ErrorKind::Io]) {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    if read_head(&mut s).await {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
                    }
                }
            });
            let r = vu(addr, &config).send(get()).await;
            assert_eq!((r.status, r.error_kind), (0, Some(kind)), "{path}: {:?}", r.error);
        });
    }
}

#[test]
fn an_oversized_response_head_fails_clearly() {
    run(async {
        let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok", "a".repeat(100 * 1024));
        let (addr, _) = scripted(usize::MAX, move |_, _| Some(big.clone().into_bytes())).await;
        let r = vu(addr, &ClientConfig::new(false).unwrap()).send(get()).await;
        assert_eq!((r.status, r.error_kind), (0, Some(ErrorKind::Protocol)), "{:?}", r.error);
        assert!(r.error.unwrap().contains("response head is larger than 64 KiB"));
    });
    for (path, config) in both() {
        run(async {
            let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
            let reply = format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 2\r\n\r\nok");
            let (addr, _) = scripted(usize::MAX, move |_, _| Some(reply.clone().into_bytes())).await;
            let r = vu(addr, &config).send(get()).await;
            assert_eq!((r.status, r.error_kind), (0, Some(ErrorKind::Protocol)), "{path}: {:?}", r.error);
        });
    }
}

/// The lean path only: hyper refuses a response that arrives before its request was sent ("received unexpected
/// message from connection", a status-0 response).
#[test]
fn a_response_sent_before_the_request_is_read_is_the_response() {
    let path = "lean";
    let config = ClientConfig::new(false).unwrap();
    {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    // Answer at once (a server shedding load), then read the request and close.
                    let _ =
                        s.write_all(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy").await;
                    read_head(&mut s).await;
                }
            });
            let vu = vu(addr, &config);
            let r = vu.send(get()).await;
            assert_eq!((r.status, &r.body[..]), (503, &b"busy"[..]), "{path}: {:?}", r.error);
            assert_eq!(vu.idle_connections(), 0, "{path}");
        });
    }
}

#[test]
fn bytes_beyond_a_response_are_never_taken_for_the_next_one() {
    for (path, config) in both() {
        run(async {
            // Each answer is followed by a second, unasked-for response: a client that pipelined, or reused the
            // connection, would take "stale" for the answer to its next request.
            let (addr, accepts) = scripted(usize::MAX, |conn, _| {
                let real = format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nc{conn}");
                Some(format!("{real}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale").into_bytes())
            })
            .await;
            let vu = vu(addr, &config);
            for i in 0..3 {
                let r = vu.send(get()).await;
                assert_eq!(r.status, 200, "{path}: {:?}", r.error);
                assert_eq!(r.body, format!("c{i}"), "{path}");
            }
            assert_eq!(accepts.load(Ordering::SeqCst), 3, "{path}");
        });
    }
}

#[test]
fn a_request_that_needs_hyper_takes_over_a_lean_connection() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        assert_eq!(vu.send(Request::new(Method::GET, "/echo")).await.status, 200);
        // A request with its own framing goes through hyper, on the connection the lean GET left idle.
        let mut req = Request::new(Method::POST, "/echo");
        req.headers = vec![("Transfer-Encoding".into(), "chunked".into())];
        req.body = Body::Text("abc".into());
        assert_eq!(vu.send(req).await.status, 200);
        let seen = server.last();
        assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
        assert_eq!(&seen.body[..], b"abc");
        assert_eq!(vu.send(Request::new(Method::GET, "/echo")).await.status, 200);
        assert_eq!(server.accepts(), 1);
        assert_eq!(server.seen().len(), 3);
    });
}

/// A server on 127.0.0.1 that records the peer address of each connection and answers every request.
async fn recording_peers() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = listener.accept().await {
            seen.lock().unwrap().push(peer);
            tokio::spawn(async move {
                while read_head(&mut s).await {
                    if s.write_all(super::support::OK_KEEP_ALIVE).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, peers)
}

#[test]
fn connections_come_from_the_source_addresses_round_robin_by_vu() {
    for (path, config) in both() {
        run(async {
            let (addr, peers) = recording_peers().await;
            let sources = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
            let config = Arc::new(config.source_addrs(sources));
            for vu_id in 10..14 {
                let vu = VuClient::for_vu(config.clone(), Some(format!("http://{addr}").parse().unwrap()), vu_id);
                for _ in 0..2 {
                    assert_eq!(vu.send(get()).await.status, 200, "{path}");
                }
            }
            let got: Vec<String> = peers.lock().unwrap().iter().map(|p| p.ip().to_string()).collect();
            assert_eq!(got, ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"], "{path}");
        });
    }
}

/// The low end of the ephemeral port range, from which each VU's own source port is counted.
#[cfg(target_os = "linux")]
fn ephemeral_low() -> u16 {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn each_vu_connects_from_its_own_source_port() {
    for (path, config) in both() {
        run(async {
            let (addr, peers) = recording_peers().await;
            // An address no other test uses, so that no other connection holds these ports on it.
            let sources = vec!["127.0.0.61".parse().unwrap(), "127.0.0.62".parse().unwrap()];
            let config = Arc::new(config.source_addrs(sources));
            for vu_id in [2 * 1234, 2 * 1234 + 1, 2 * 4321] {
                let vu = VuClient::for_vu(config.clone(), Some(format!("http://{addr}").parse().unwrap()), vu_id);
                assert_eq!(vu.send(get()).await.status, 200, "{path}");
            }
            let low = ephemeral_low();
            let got: Vec<String> = peers.lock().unwrap().iter().map(ToString::to_string).collect();
            let want = [format!("127.0.0.61:{}", low + 1234), format!("127.0.0.62:{}", low + 1234)];
            assert_eq!(got[..2], want, "{path}");
            assert_eq!(got[2], format!("127.0.0.61:{}", low + 4321), "{path}");
        });
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_vu_whose_source_port_is_taken_connects_from_another() {
    run(async {
        let (addr, peers) = recording_peers().await;
        let source: std::net::IpAddr = "127.0.0.63".parse().unwrap();
        // Another program listens on the VU's own port: the kernel chooses another one instead.
        let own = ephemeral_low() + 777;
        let _holder = std::net::TcpListener::bind((source, own)).unwrap();
        let config = Arc::new(ClientConfig::new(false).unwrap().source_addrs(vec![source]));
        let vu = VuClient::for_vu(config, Some(format!("http://{addr}").parse().unwrap()), 777);
        let r = vu.send(get()).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        let got = peers.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].ip(), source);
        assert_ne!(got[0].port(), own);
    });
}

#[test]
fn a_source_address_that_is_not_local_fails_the_connect_clearly() {
    run(async {
        let (addr, peers) = recording_peers().await;
        // TEST-NET-1: not an address of this machine.
        let config = ClientConfig::new(false).unwrap().source_addrs(vec!["192.0.2.1".parse().unwrap()]);
        let r = vu(addr, &config).send(get()).await;
        assert_eq!((r.status, r.error_kind), (0, Some(ErrorKind::Connect)), "{:?}", r.error);
        assert!(r.error.unwrap().contains("from 192.0.2.1"));
        assert!(peers.lock().unwrap().is_empty());
    });
}
