//! The `checks` threshold keeps its first spelling: with a request name it is the share of that request's
//! responses that passed their status checks; bare, it is the pass rate of the script's `check()`s, which holds,
//! saying so, when the scripts recorded none.

use serde_json::Value;

use crate::server::{Reply, Server};
use crate::support::Sandbox;

fn verdict<'a>(report: &'a Value, expr: &str) -> &'a Value {
    let rows = report["thresholds"].as_array().unwrap();
    rows.iter().find(|v| v["expr"] == expr).unwrap_or_else(|| panic!("no verdict `{expr}` in {rows:?}"))
}

/// 200 for `/a`, 500 for `/b`; each iteration asks for both, and the script makes no check().
fn setup() -> (Server, Sandbox) {
    let server =
        Server::builder().route(|seen| if seen.path == "/a" { Reply::ok() } else { Reply::status(500) }).start();
    let sandbox = Sandbox::new();
    sandbox.write("ab.rhai", "task(1, both);\n\nfn both() {\n    client.get(\"/a\");\n    client.get(\"/b\");\n}\n");
    (server, sandbox)
}

#[test]
fn checks_of_a_request_are_the_share_of_its_responses_that_passed() {
    let (server, sandbox) = setup();
    let run = sandbox.run(&server.url(), &["--iterations", "20", "--threshold", "GET /a: checks > 99%"]);
    run.assert_code(0);
    assert_eq!((server.count("GET", "/a"), server.count("GET", "/b")), (20, 20));
    assert_eq!(run.report().requests("GET", "/a"), 20, "{}", run.context());
    let a = verdict(&run.report().0, "GET /a: checks > 99%");
    assert_eq!((a["passed"].as_bool(), a["observed"].as_f64()), (Some(true), Some(100.0)), "{a}");

    let run = sandbox.run(&server.url(), &["--iterations", "20", "--threshold", "/b: checks > 1%"]);
    run.assert_code(99);
    assert_eq!(server.count("GET", "/b"), 40);
    assert_eq!(run.report().request_failures("GET", "/b"), 20, "{}", run.context());
    let b = verdict(&run.report().0, "/b: checks > 1%");
    assert_eq!((b["passed"].as_bool(), b["observed"].as_f64()), (Some(false), Some(0.0)), "{b}");
}

#[test]
fn bare_checks_without_any_check_call_holds_and_says_so() {
    let (server, sandbox) = setup();
    let run = sandbox.run(&server.url(), &["--iterations", "10", "--threshold", "checks > 99%"]);
    run.assert_code(0);
    assert_eq!(server.total(), 20);
    let all = verdict(&run.report().0, "checks > 99%");
    assert_eq!(all["passed"].as_bool(), Some(true), "{all}");
    assert!(all["message"].as_str().unwrap().contains("no check() was recorded"), "{all}");
    assert!(run.stdout.contains("PASS  checks > 99%  no check() was recorded"), "{}", run.context());
}
