//! HTTPS against a local rustls server with a generated self-signed certificate.

use crate::server::Server;
use crate::support::Sandbox;

const TASKSET: &str = r#"
task(1, hit);

fn hit() { client.get("/tls"); }
"#;

#[test]
fn https_works_with_insecure() {
    let server = Server::builder().tls().start();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let sandbox = Sandbox::new();
    sandbox.write("tls.rhai", TASKSET);
    let run = sandbox.run(&server.url(), &["--insecure", "-u", "2", "-t", "1s"]);
    run.assert_code(0);
    let report = run.report();
    let seen = server.count("GET", "/tls");
    assert!(seen > 0, "{}", run.context());
    assert_eq!(server.total(), seen);
    assert_eq!(report.total_requests(), seen, "{}", run.context());
    assert_eq!(report.total_failures(), 0, "{}", run.context());
    assert_eq!(server.handshake_failures(), 0);
    // Keep-alive: far fewer connections than requests.
    assert!(server.connections() < seen, "{} connections", server.connections());
}

#[test]
fn an_untrusted_certificate_fails_every_request() {
    let server = Server::builder().tls().start();
    let sandbox = Sandbox::new();
    sandbox.write("tls.rhai", TASKSET);
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s"]);
    run.assert_code(1); // the default gate: with no threshold, a failed request or a script error exits 1
    let report = run.report();
    let total = report.total_requests();
    assert!(total > 0, "{}", run.context());
    assert_eq!(report.total_failures(), total, "{}", run.context());
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].reason, "tls error", "{failures:?}");
    assert_eq!(failures[0].count, total);
    // nest did connect, and no request got through the handshake.
    assert_eq!(server.total(), 0, "{:?}", server.counts());
    assert!(server.connections() > 0);
}
