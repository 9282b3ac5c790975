//! Both request paths against nginx, a server no one here wrote: gzip-compressed chunked bodies, `Connection:
//! close` after `keepalive_requests`, an idle keep-alive connection closed by `keepalive_timeout`, HEAD, 204 and 304.
//! nginx's access log says what it served, and on which connection.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use nest_http::{ClientConfig, Request, VuClient};

use super::support::nginx::{Nginx, nginx};
use super::support::run;

fn both() -> [(&'static str, ClientConfig); 2] {
    [("lean", ClientConfig::new(false).unwrap()), ("hyper", ClientConfig::new(false).unwrap().http1_fast_path(false))]
}

fn start(binary: &std::path::Path) -> Nginx {
    Nginx::start_with(
        binary,
        "keepalive_requests 3; keepalive_timeout 1s; gzip on; gzip_min_length 1; gzip_types text/plain;",
        "location = /empty { return 204; } location / { default_type text/plain; }",
    )
}

/// A text of `n` lines, compressible but not trivially.
fn text(n: usize) -> String {
    (0..n).map(|i| format!("line {i} of the file, {}\n", i * 7919 % 1000)).collect()
}

#[test]
fn nginx_chunked_gzip_bodies_and_connection_close_after_keepalive_requests() {
    let Some(binary) = nginx() else { return };
    for (path, config) in both() {
        let nginx = start(&binary);
        let file = text(2000);
        std::fs::write(nginx.root().join("big.txt"), &file).unwrap();
        run(async {
            let vu = VuClient::new(Arc::new(config), Some(nginx.url.parse().unwrap()));
            for _ in 0..3 {
                // gzip on the fly: nginx sends it chunked.
                let r = vu.send(Request::new(Method::GET, "/big.txt")).await;
                assert_eq!(r.status, 200, "{path}: {:?}", r.error);
                assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"), "{path}");
                assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"), "{path}");
                assert_eq!(r.body, file.as_bytes(), "{path}");
                assert!(r.wire_bytes < file.len() as u64 / 2, "{path}: {} on the wire", r.wire_bytes);
                let mut identity = Request::new(Method::GET, "/big.txt");
                identity.headers = vec![("Accept-Encoding".into(), "identity".into())];
                let r = vu.send(identity).await;
                assert_eq!((r.status, r.body_bytes), (200, file.len() as u64), "{path}: {:?}", r.error);
                assert_eq!(r.header("content-length").as_deref(), Some(file.len().to_string().as_str()), "{path}");
                let r = vu.send(Request::new(Method::GET, "/empty")).await;
                assert_eq!((r.status, r.wire_bytes), (204, 0), "{path}: {:?}", r.error);
            }
        });
        // 9 requests, 3 per connection: nginx said `Connection: close` on every third and closed.
        let log = nginx.log_of(9);
        assert_eq!(log.len(), 9, "{path}: {log:?}");
        assert!(log.iter().all(|l| l.1 == 200 || l.1 == 204), "{path}: {log:?}");
        assert_eq!(nginx.connections(), 3, "{path}: {log:?}");
    }
}

#[test]
fn nginx_head_and_not_modified_and_an_idle_connection_closed_by_keepalive_timeout() {
    let Some(binary) = nginx() else { return };
    for (path, config) in both() {
        let nginx = start(&binary);
        std::fs::write(nginx.root().join("page.txt"), text(50)).unwrap();
        run(async {
            let vu = VuClient::new(Arc::new(config), Some(nginx.url.parse().unwrap()));
            let r = vu.send(Request::new(Method::HEAD, "/page.txt")).await;
            assert_eq!((r.status, r.wire_bytes), (200, 0), "{path}: {:?}", r.error);
            let etag = r.header("etag").expect("nginx sends an ETag").into_owned();
            let mut conditional = Request::new(Method::GET, "/page.txt");
            conditional.headers = vec![("If-None-Match".into(), etag)];
            let r = vu.send(conditional).await;
            assert_eq!((r.status, r.wire_bytes), (304, 0), "{path}: {:?}", r.error);
            // Past keepalive_timeout nginx has closed the idle connection: the next request must still succeed.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let r = vu.send(Request::new(Method::GET, "/page.txt")).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.error);
        });
        let log = nginx.log_of(3);
        assert_eq!(log.iter().map(|l| l.1).collect::<Vec<_>>(), [200, 304, 200], "{path}: {log:?}");
        assert_eq!(nginx.connections(), 2, "{path}: the last request came on a new connection: {log:?}");
    }
}
