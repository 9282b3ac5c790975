//! Both heads of an exchange are the same on the lean path and through hyper: the request head the server reads
//! (defaults, the user's headers, a user's `Cookie` merged with the jar's), and the response headers a script
//! reads (names in any case, repeated names, non-UTF-8 values, their order).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::Method;
use nest_http::{Body, ClientConfig, Request, VuClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::support::run;

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1; Path=/\r\n\
    X-Custom: caf\xc3\xa9\r\nset-cookie: b=2; Path=/\r\nX-Raw: bad\xffbyte\r\nSET-COOKIE: c=3; Path=/\r\n\
    Content-Length: 2\r\n\r\nok";

/// A keep-alive server that answers every request with [`REPLY`] and records each request head as it read it.
async fn recording() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        // The bodies sent here are short, and come with their head.
                        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        while buf.len() < length {
                            let n = s.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        buf.drain(..length);
                        seen.lock().unwrap().push(head);
                        if s.write_all(REPLY).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// The requests each path sends: a plain GET (which gets the jar's cookies from the first response), one with the
/// user's own headers (a repeated one, a `Cookie` to merge with the jar's, a `Host`), and a JSON POST and an empty
/// POST (their default `Content-Type` and lengths).
fn requests() -> Vec<Request> {
    let mut own = Request::new(Method::GET, "/own?q=1");
    own.headers = [("X-A", "1"), ("Cookie", "mine=0"), ("X-B", "2"), ("x-a", "3"), ("Host", "example.test")]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec();
    let mut json = Request::new(Method::POST, "/json");
    json.body = Body::Json(serde_json::json!({"k": 1}));
    vec![
        Request::new(Method::GET, "/"),
        Request::new(Method::GET, "/again"),
        own,
        json,
        Request::new(Method::POST, "/empty"),
    ]
}

/// Each response's headers as string pairs.
type Pairs = Vec<Vec<(String, String)>>;

/// The request heads the server read and the response headers each request got, on one path.
fn exchange(config: ClientConfig) -> (Vec<Vec<u8>>, Pairs) {
    run(async {
        let (addr, heads) = recording().await;
        let port = addr.port().to_string();
        let vu = VuClient::new(Arc::new(config), Some(format!("http://{addr}").parse().unwrap()));
        let mut responses = Vec::new();
        for req in requests() {
            let r = vu.send(req).await;
            assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]), "{:?}", r.error);
            responses.push(r.headers.iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect());
        }
        let heads = heads.lock().unwrap().iter().map(|h| normalized(h, &port)).collect();
        (heads, responses)
    })
}

/// A request head with the server's port as `PORT`, and the jar's cookies (which come in no set order) sorted
/// after the user's own.
fn normalized(head: &[u8], port: &str) -> Vec<u8> {
    let text = String::from_utf8(head.to_vec()).unwrap().replace(port, "PORT");
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| match line.strip_prefix("cookie: ") {
            Some(pairs) => {
                let (mine, mut jar): (Vec<&str>, Vec<&str>) = pairs.split("; ").partition(|p| p.starts_with("mine="));
                jar.sort();
                format!("cookie: {}", [mine, jar].concat().join("; "))
            }
            None => line.to_owned(),
        })
        .collect();
    lines.join("\r\n").into_bytes()
}

#[test]
fn both_paths_send_the_same_request_heads_and_read_the_same_response_headers() {
    let (lean_heads, lean) = exchange(ClientConfig::new(false).unwrap());
    let (hyper_heads, hyper) = exchange(ClientConfig::new(false).unwrap().http1_fast_path(false));
    let text = |heads: &[Vec<u8>]| heads.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect::<Vec<_>>();
    assert_eq!(text(&lean_heads), text(&hyper_heads));
    assert_eq!(lean, hyper);

    let own = String::from_utf8(lean_heads[2].clone()).unwrap();
    let lines: Vec<&str> = own.lines().collect();
    assert_eq!(lines[0], "GET /own?q=1 HTTP/1.1");
    assert_eq!(
        lines[1..5],
        ["x-a: 1", "x-a: 3", "cookie: mine=0; a=1; b=2; c=3", "x-b: 2"],
        "the user's headers, repeated names together, the user's cookie merged with the jar's: {own}"
    );
    assert!(lines.contains(&"host: example.test"), "{own}");
    assert!(lean_heads[1].starts_with(b"GET /again HTTP/1.1\r\nhost: 127.0.0.1:PORT\r\n"));
    assert!(String::from_utf8_lossy(&lean_heads[1]).contains("\r\ncookie: a=1; b=2; c=3\r\n"));
    let post = String::from_utf8_lossy(&lean_heads[4]).into_owned();
    assert!(post.contains("\r\ncontent-length: 0\r\n"), "{post}");

    let names: Vec<&str> = lean[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "set-cookie", "set-cookie", "set-cookie", "x-custom", "x-raw", "content-length"]
    );
    assert_eq!(lean[0][4].1, "café");
    assert_eq!(lean[0][5].1, "bad\u{fffd}byte");
}

#[test]
fn response_headers_are_looked_up_alike_on_both_paths() {
    for config in [ClientConfig::new(false).unwrap(), ClientConfig::new(false).unwrap().http1_fast_path(false)] {
        run(async {
            let (addr, _) = recording().await;
            let vu = VuClient::new(Arc::new(config), Some(format!("http://{addr}").parse().unwrap()));
            let r = vu.send(Request::new(Method::GET, "/")).await;
            assert_eq!(r.header("CONTENT-TYPE").as_deref(), Some("text/plain"));
            let cookies: Vec<String> = r.headers.get_all("Set-Cookie").map(|c| c.into_owned()).collect();
            assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/", "c=3; Path=/"]);
            assert_eq!(r.headers.len(), 7);
            assert_eq!(r.headers.to_map()["x-raw"].as_bytes(), b"bad\xffbyte");
            assert_eq!(r.header("x-missing"), None);
        });
    }
}
