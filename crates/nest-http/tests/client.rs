//! End-to-end tests of `VuClient` against real servers on 127.0.0.1, asserting what the
//! server saw (connections, bytes on the wire) rather than only what the client reports.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use nest_http::{Body, ClientConfig, ErrorKind, Request, VuClient};
use serde_json::json;
use support::{Server, run};

#[path = "client/h1.rs"]
mod h1;
#[path = "client/hardening.rs"]
mod hardening;
#[path = "client/heads.rs"]
mod heads;
#[path = "client/nginx.rs"]
mod nginx;

fn get(url: &str) -> Request {
    Request::new(Method::GET, url)
}

fn config() -> Arc<ClientConfig> {
    Arc::new(ClientConfig::new(false).unwrap())
}

// ---------------------------------------------------------------- keep-alive

#[test]
fn sequential_requests_share_one_connection() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        for _ in 0..5 {
            let r = vu.send(get("/echo")).await;
            assert_eq!(r.status, 200, "{:?}", r.error);
            assert_eq!(&r.body[..], b"ok");
        }
        assert_eq!(server.accepts(), 1);
        assert_eq!(server.seen().len(), 5);
        assert!(server.seen().iter().all(|s| s.conn == 0));
        assert_eq!(vu.idle_connections(), 1);
    });
}

/// Read buffers are reused from response to response on a thread, and a response shares its buffer: the responses
/// a script still holds keep their heads and bodies whole, whatever is read after them.
#[test]
fn responses_held_keep_their_bytes_while_later_ones_are_read() {
    run(async {
        let server = Server::start().await;
        let (vu, other) = (server.client(), server.client());
        let mut held = Vec::new();
        for round in 0..3 {
            for (client, path, body) in [(&vu, "/chain/0", "end"), (&other, "/echo", "ok"), (&vu, "/set-cookie", "set")]
            {
                let target = if path == "/set-cookie" { format!("{path}?r{round}=1") } else { path.to_owned() };
                let r = client.send(get(&target)).await;
                assert_eq!(r.status, 200, "{:?}", r.error);
                held.push((r, body, round));
            }
            // Dropping some lets their buffers' memory be reclaimed for the next responses.
            held.retain(|(_, _, r)| *r != round || round == 1);
            for (r, body, round) in &held {
                assert_eq!(&r.body[..], body.as_bytes());
                match *body {
                    "ok" => assert_eq!(r.headers.get("x-reply").as_deref(), Some("Yes")),
                    "set" => {
                        assert_eq!(r.headers.get("Set-Cookie").as_deref(), Some(format!("r{round}=1; Path=/").as_str()))
                    }
                    _ => assert_eq!(r.headers.get("x-reply"), None),
                }
                assert_eq!(r.headers.get("content-length").as_deref(), Some(body.len().to_string().as_str()));
            }
        }
        assert_eq!(server.seen().len(), 9, "the server saw every request");
        assert_eq!(server.accepts(), 2, "one connection per client, kept alive throughout");
    });
}

#[test]
fn two_clients_use_two_connections() {
    run(async {
        let server = Server::start().await;
        let (a, b) = (server.client(), server.client());
        for _ in 0..3 {
            assert_eq!(a.send(get("/echo")).await.status, 200);
            assert_eq!(b.send(get("/echo")).await.status, 200);
        }
        assert_eq!(server.accepts(), 2);
    });
}

#[test]
fn concurrent_sends_on_one_session_keep_one_idle_connection() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let (r1, r2) = tokio::join!(vu.send(get("/echo")), vu.clone().send(get("/echo")));
        assert_eq!((r1.status, r2.status), (200, 200));
        assert_eq!(server.accepts(), 2);
        assert_eq!(vu.idle_connections(), 1);
        assert_eq!(vu.send(get("/echo")).await.status, 200);
        assert_eq!(server.accepts(), 2);
        vu.close_idle_connections();
        assert_eq!(vu.idle_connections(), 0);
        assert_eq!(vu.send(get("/echo")).await.status, 200);
        assert_eq!(server.accepts(), 3);
    });
}

#[test]
fn server_closing_idle_connection_is_transparent() {
    run(async {
        let (addr, accepts, mut closed) = support::closes_after_each_response().await;
        let vu = VuClient::new(config(), Some(format!("http://{addr}").parse().unwrap()));
        for i in 1..=3 {
            let r = vu.send(get("/")).await;
            assert_eq!(r.status, 200, "request {i}: {:?}", r.error);
            assert_eq!(&r.body[..], b"ok");
            // Wait until the server has really closed this connection.
            closed.recv().await.unwrap();
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn written_idempotent_request_is_retried_once_on_a_fresh_connection() {
    run(async {
        let (addr, accepts, requests) = support::drops_second_request().await;
        let vu = VuClient::new(config(), Some(format!("http://{addr}").parse().unwrap()));
        assert_eq!(vu.send(get("/")).await.status, 200);
        let r = vu.send(get("/")).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn written_post_is_not_retried() {
    run(async {
        let (addr, accepts, requests) = support::drops_second_request().await;
        let vu = VuClient::new(config(), Some(format!("http://{addr}").parse().unwrap()));
        assert_eq!(vu.send(get("/")).await.status, 200);
        let r = vu.send(Request::new(Method::POST, "/")).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::Closed), "{:?}", r.error);
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn send_future_is_static_and_outlives_the_client_handle() {
    run(async {
        let server = Server::start().await;
        let fut = {
            let vu = server.client();
            vu.send(get("/echo"))
        };
        // Not Send, so spawn_local; 'static, so no borrow of `vu` remains.
        let r = tokio::task::spawn_local(fut).await.unwrap();
        assert_eq!(r.status, 200);
    });
}

// ---------------------------------------------------------------- encoding

#[test]
fn query_headers_and_defaults_arrive_encoded() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let mut req = get("/echo?a=1");
        req.query = vec![("q".into(), "a b&c".into()), ("é".into(), "ü".into())];
        req.headers = vec![("X-Test".into(), "yes".into())];
        let r = vu.send(req).await;
        assert_eq!(r.status, 200);
        let seen = server.last();
        assert_eq!(seen.method, Method::GET);
        assert_eq!(seen.target, "/echo?a=1&q=a+b%26c&%C3%A9=%C3%BC");
        assert_eq!(seen.header("x-test"), Some("yes"));
        assert_eq!(seen.header("host"), Some(server.addr.to_string().as_str()));
        let ua = format!("nest/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(seen.header("user-agent"), Some(ua.as_str()));
        assert_eq!(seen.header("content-type"), None);
        assert_eq!(seen.header("cookie"), None);
        // Response side: lowercase names, values intact, final URL.
        assert_eq!(r.header("X-Reply").as_deref(), Some("Yes"));
        assert!(r.headers.iter().any(|(k, v)| k == "x-reply" && v == "Yes"));
        assert_eq!(r.url, server.url("/echo?a=1&q=a+b%26c&%C3%A9=%C3%BC"));
        assert!(r.error.is_none() && r.error_kind.is_none());
    });
}

#[test]
fn bodies_are_encoded_with_content_types() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();

        let value = json!({"name": "Jürgen", "n": [1, 2]});
        let mut req = Request::new(Method::POST, "/json");
        req.body = Body::Json(value.clone());
        assert_eq!(vu.send(req).await.status, 200);
        let seen = server.last();
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.header("content-type"), Some("application/json"));
        let len = seen.body.len().to_string();
        assert_eq!(seen.header("content-length"), Some(len.as_str()));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(), value);

        let mut req = Request::new(Method::PUT, "/form");
        req.body = Body::Form(vec![("name".into(), "Jürgen X".into()), ("a".into(), "1&2".into())]);
        assert_eq!(vu.send(req).await.status, 200);
        let seen = server.last();
        assert_eq!(seen.method, Method::PUT);
        assert_eq!(seen.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(&seen.body[..], b"name=J%C3%BCrgen+X&a=1%262");

        let mut req = Request::new(Method::POST, "/text");
        req.body = Body::Text("raw text".into());
        assert_eq!(vu.send(req).await.status, 200);
        let seen = server.last();
        assert_eq!(seen.header("content-type"), None);
        assert_eq!(&seen.body[..], b"raw text");

        assert_eq!(vu.send(Request::new(Method::POST, "/empty")).await.status, 200);
        assert_eq!(server.last().header("content-length"), Some("0"));
        assert!(server.last().body.is_empty());
        assert_eq!(server.accepts(), 1);
    });
}

#[test]
fn explicit_headers_win_over_defaults() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let mut req = Request::new(Method::POST, "/echo");
        req.body = Body::Json(json!({"a": 1}));
        req.headers = vec![
            ("content-type".into(), "application/vnd.api+json".into()),
            ("Host".into(), "custom.example".into()),
            ("User-Agent".into(), "mine/1".into()),
        ];
        assert_eq!(vu.send(req).await.status, 200);
        let seen = server.last();
        let all = |n: &str| seen.headers.get_all(n).iter().count();
        assert_eq!(seen.header("content-type"), Some("application/vnd.api+json"));
        assert_eq!(seen.header("host"), Some("custom.example"));
        assert_eq!(seen.header("user-agent"), Some("mine/1"));
        assert_eq!((all("content-type"), all("host"), all("user-agent")), (1, 1, 1));
    });
}

// ---------------------------------------------------------------- cookies

#[test]
fn cookies_are_per_session() {
    run(async {
        let server = Server::start().await;
        let (a, b) = (server.client(), server.client());
        assert_eq!(a.send(get("/set-cookie?sid=abc")).await.status, 200);
        assert_eq!(a.send(get("/echo")).await.status, 200);
        assert_eq!(server.last().header("cookie"), Some("sid=abc"));

        assert_eq!(b.send(get("/echo")).await.status, 200);
        assert_eq!(server.last().header("cookie"), None);

        // A clone shares the session; a user Cookie header is merged with the jar's.
        let mut req = get("/echo");
        req.headers = vec![("Cookie".into(), "mine=1".into())];
        assert_eq!(a.clone().send(req).await.status, 200);
        assert_eq!(server.last().header("cookie"), Some("mine=1; sid=abc"));

        a.clear_cookies();
        assert_eq!(a.send(get("/echo")).await.status, 200);
        assert_eq!(server.last().header("cookie"), None);
    });
}

#[test]
fn cookies_set_on_a_redirect_hop_are_sent_on_the_next() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let r = vu.send(get("/login")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.url, server.url("/echo"));
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].target, "/echo");
        assert_eq!(seen[1].header("cookie"), Some("session=s1"));
        assert_eq!(vu.cookie_header(&server.base()).as_deref(), Some("session=s1"));
    });
}

// ---------------------------------------------------------------- redirects

#[test]
fn see_other_family_becomes_get_without_body() {
    for code in [301, 302, 303] {
        run(async {
            let server = Server::start().await;
            let mut req = Request::new(Method::POST, format!("/redirect/{code}"));
            req.body = Body::Text("payload".into());
            req.headers = vec![("Content-Type".into(), "text/plain".into())];
            let r = server.client().send(req).await;
            assert_eq!(r.status, 200, "{code}: {:?}", r.error);
            assert_eq!(r.url, server.url("/echo"));
            let seen = server.seen();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0].method, Method::POST);
            assert_eq!(seen[1].method, Method::GET, "{code}");
            assert!(seen[1].body.is_empty());
            assert_eq!(seen[1].header("content-type"), None);
            assert_eq!(seen[1].header("content-length"), None);
        });
    }
}

#[test]
fn temporary_and_permanent_redirects_keep_method_and_body() {
    for code in [307, 308] {
        run(async {
            let server = Server::start().await;
            // Relative Location resolved against the current URL.
            let mut req = Request::new(Method::POST, format!("/redirect/{code}?to=../echo"));
            req.body = Body::Text("payload".into());
            req.headers = vec![("Content-Type".into(), "text/plain".into())];
            let r = server.client().send(req).await;
            assert_eq!(r.status, 200, "{code}: {:?}", r.error);
            let seen = server.last();
            assert_eq!(seen.target, "/echo");
            assert_eq!(seen.method, Method::POST);
            assert_eq!(&seen.body[..], b"payload");
            assert_eq!(seen.header("content-type"), Some("text/plain"));
        });
    }
}

#[test]
fn redirect_chain_limit() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let r = vu.send(get("/chain/10")).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        assert_eq!(&r.body[..], b"end");
        assert_eq!(r.url, server.url("/chain/0"));
        assert_eq!(server.seen().len(), 11);
        // Redirect responses were drained so every hop reused the connection.
        assert_eq!(server.accepts(), 1);

        let r = vu.send(get("/chain/11")).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::TooManyRedirects));
        assert!(r.error.unwrap().contains("too many redirects"));
        assert_eq!(server.seen().len(), 11 + 11);
    });
}

#[test]
fn redirects_not_followed_when_disabled_or_without_location() {
    run(async {
        let server = Server::start().await;
        let vu = server.client();
        let mut req = get("/redirect/302");
        req.follow_redirects = false;
        let r = vu.send(req).await;
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location").as_deref(), Some("/echo"));
        assert_eq!(&r.body[..], b"moved");
        assert_eq!(r.url, server.url("/redirect/302"));
        assert_eq!(server.seen().len(), 1);

        assert_eq!(vu.send(get("/nolocation")).await.status, 302);
        assert_eq!(server.seen().len(), 2);
    });
}

// ---------------------------------------------------------------- failures

#[test]
fn connection_refused_is_a_connect_error() {
    run(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let vu = VuClient::new(config(), None);
        let url = format!("http://127.0.0.1:{port}/x");
        let r = vu.send(get(&url)).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::ConnectionRefused), "{:?}", r.error);
        assert!(r.error.unwrap().contains(&format!("127.0.0.1:{port}")));
        assert_eq!(r.url, url);
    });
}

#[test]
fn silent_server_times_out() {
    run(async {
        let addr = support::silent_server().await;
        let vu = VuClient::new(config(), Some(format!("http://{addr}").parse().unwrap()));
        let mut req = get("/slow");
        req.timeout = Some(Duration::from_millis(200));
        let r = vu.send(req).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{:?}", r.error);
        assert_eq!(r.error.as_deref(), Some("request timed out after 200ms"));
        assert!(r.elapsed >= Duration::from_millis(200), "{:?}", r.elapsed);
        assert_eq!(vu.idle_connections(), 0);

        // The config default applies when the request gives no timeout.
        let cfg = ClientConfig::new(false).unwrap().default_timeout(Duration::from_millis(100));
        let vu = VuClient::new(Arc::new(cfg), Some(format!("http://{addr}").parse().unwrap()));
        let r = vu.send(get("/slow")).await;
        assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
        assert!(r.elapsed >= Duration::from_millis(100));

        // A huge timeout must not overflow the deadline arithmetic.
        let server = Server::start().await;
        let mut req = Request::new(Method::GET, server.url("/echo"));
        req.timeout = Some(Duration::MAX);
        assert_eq!(vu.send(req).await.status, 200);
    });
}

/// A client keeps one timer from request to request and moves it to each deadline: later, earlier, or after it
/// fired. Each request still gets its own limit.
#[test]
fn a_client_moves_its_timer_to_each_requests_deadline() {
    run(async {
        let silent = support::silent_server().await;
        let server = Server::start().await;
        let vu = VuClient::new(config(), None);
        let send = |url: String, ms: u64| {
            let mut req = Request::new(Method::GET, url);
            req.timeout = Some(Duration::from_millis(ms));
            vu.send(req)
        };
        let timed_out = |r: &nest_http::Response, ms: u64| {
            assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{:?}", r.error);
            assert!(r.elapsed >= Duration::from_millis(ms), "{:?}", r.elapsed);
            // Far below the long limits around it: this request's own limit ended it.
            assert!(r.elapsed < Duration::from_secs(20), "{:?}", r.elapsed);
        };
        for _ in 0..5 {
            assert_eq!(send(server.url("/echo"), 60_000).await.status, 200);
        }
        // An earlier deadline than the last request's.
        timed_out(&send(format!("http://{silent}/slow"), 200).await, 200);
        // After the timer fired.
        assert_eq!(send(server.url("/echo"), 60_000).await.status, 200);
        timed_out(&send(format!("http://{silent}/slow"), 150).await, 150);
        assert_eq!(send(server.url("/echo"), 60_000).await.status, 200);
        assert_eq!(server.seen().len(), 7, "the server saw every request that was answered");
    });
}

#[test]
fn bad_urls_are_reported_not_panicked() {
    run(async {
        let vu = VuClient::new(config(), None);
        let r = vu.send(get("/relative")).await;
        assert_eq!((r.status, r.error_kind), (0, Some(ErrorKind::InvalidUrl)));
        assert!(r.error.unwrap().contains("base URL"));
        assert_eq!(r.url, "/relative");

        let r = vu.send(get("ftp://127.0.0.1/file")).await;
        assert_eq!(r.error_kind, Some(ErrorKind::InvalidUrl));

        let mut req = get("http://127.0.0.1:1/");
        req.headers = vec![("bad header".into(), "x".into())];
        assert_eq!(vu.send(req).await.error_kind, Some(ErrorKind::InvalidRequest));
    });
}

// ---------------------------------------------------------------- TLS

#[test]
fn tls_untrusted_certificate_fails_by_default() {
    run(async {
        let pki = support::pki();
        let server = Server::start_tls(pki.server).await;
        let vu = VuClient::new(config(), None);
        let r = vu.send(get(&server.url("/echo"))).await;
        assert_eq!(r.status, 0);
        assert_eq!(r.error_kind, Some(ErrorKind::Tls), "{:?}", r.error);
        assert!(server.seen().is_empty());
    });
}

#[test]
fn tls_insecure_accepts_any_certificate_and_keeps_alive() {
    run(async {
        let pki = support::pki();
        let server = Server::start_tls(pki.server).await;
        let cfg = Arc::new(ClientConfig::new(true).unwrap());
        let vu = VuClient::new(cfg, Some(server.base()));
        for _ in 0..3 {
            let r = vu.send(get("/echo")).await;
            assert_eq!(r.status, 200, "{:?}", r.error);
            assert_eq!(&r.body[..], b"ok");
        }
        assert_eq!(server.accepts(), 1);
        // No SNI for an IP address.
        assert_eq!(server.last().sni, None);
    });
}

#[test]
fn tls_private_ca_is_trusted_with_root_pem() {
    run(async {
        let pki = support::pki();
        let server = Server::start_tls(pki.server).await;
        let cfg = ClientConfig::new(false).unwrap().with_root_pem(pki.ca_pem.as_bytes()).unwrap();
        let vu = VuClient::new(Arc::new(cfg), None);
        let port = server.addr.port();
        let url = format!("https://localhost:{port}/echo");
        let r = vu.send(get(&url)).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
        let seen = server.last();
        assert_eq!(seen.sni.as_deref(), Some("localhost"));
        assert_eq!(seen.header("host"), Some(format!("localhost:{port}").as_str()));

        // Same CA, IP address certificate SAN.
        let r = vu.send(get(&server.url("/echo"))).await;
        assert_eq!(r.status, 200, "{:?}", r.error);
    });
}
