//! Load as the server sees it: exact totals, the task mix, and request options on the wire.

use serde_json::Value;

use crate::server::{Reply, Server};
use crate::support::Sandbox;

#[test]
fn totals_match_the_server_exactly() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "hit.rhai",
        r#"
task(1, hit);

fn hit() { client.get("/hit"); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "8", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let seen = server.count("GET", "/hit");
    assert!(seen > 0, "the server saw no request\n{}", run.context());
    assert_eq!(server.total(), seen, "{:?}", server.counts());
    assert_eq!(report.total_requests(), seen, "{}", run.context());
    assert_eq!(report.request_names(), [("GET".into(), "/hit".into())]);
    assert_eq!(report.requests("GET", "/hit"), seen);
    assert_eq!(report.total_failures(), 0, "{}", run.context());
    // Graceful stop: the calls in flight at the end finish and are counted as runs.
    assert_eq!(report.runs("hit", "hit"), seen, "{}", run.context());

    // The keys other tools read.
    let json = &report.0;
    assert_eq!(json["users"], 8);
    let duration = json["duration_s"].as_f64().expect("duration_s");
    assert!((1.9..30.0).contains(&duration), "duration_s {duration}");
    let totals = &json["totals"];
    assert!(totals["rps"].as_f64().unwrap() > 0.0);
    let latency_keys = ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"];
    for latency in [&totals["latency_ms"], &json["requests"][0]["latency_ms"]] {
        for key in latency_keys {
            assert!(latency[key].is_f64(), "latency_ms.{key} in {latency}");
        }
        let l = |k: &str| latency[k].as_f64().unwrap();
        assert!(l("min") <= l("p50") && l("p50") <= l("p99") && l("p999") <= l("max"));
    }
    for key in ["method", "name", "requests", "failures", "rps", "latency_ms"] {
        assert!(json["requests"][0].get(key).is_some(), "requests[].{key}");
    }
    assert!(json["failures"].is_array() && json["errors"].is_array());
}

#[test]
fn the_task_mix_follows_the_weights() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "mix.rhai",
        r#"
task(3, a);
task(1, b);

fn a() { client.get("/a"); }
fn b() { client.get("/b"); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "4", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let (a, b) = (server.count("GET", "/a"), server.count("GET", "/b"));
    let n = a + b;
    assert!(n >= 200, "too few requests for a ratio: {a} + {b}");
    assert_eq!(server.total(), n);
    assert_eq!(report.runs("mix", "a"), a, "{}", run.context());
    assert_eq!(report.runs("mix", "b"), b, "{}", run.context());
    assert_eq!(report.requests("GET", "/a"), a);
    assert_eq!(report.requests("GET", "/b"), b);
    // Each pick is an independent draw with p = 3/4: allow 4 binomial standard deviations.
    let (p, n) = (0.75, n as f64);
    let sd = (n * p * (1.0 - p)).sqrt();
    let off = (a as f64 - p * n).abs();
    assert!(off <= 4.0 * sd, "/a {a} of {n}: expected {} ± {:.1} (4 sd)", p * n, 4.0 * sd);
}

#[test]
fn request_options_reach_the_server() {
    let server = Server::builder()
        .record()
        .route(|seen| match seen.path.as_str() {
            "/missing" => Reply::status(404),
            "/broken" => Reply::status(500),
            _ => Reply::ok(),
        })
        .start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "opts.rhai",
        r#"
task(1, all);

fn all() {
    client.post("/p", #{ json: #{ a: 1 }, query: #{ q: "x y" }, headers: #{ "X-T": "1" }, name: "post" });
    client.get("/missing", #{ expect: [404] });
    client.get("/broken");
    let r = client.get("/check");
    r.fail("why");
}
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s", "--no-default-gate"]);
    run.assert_code(0);
    let report = run.report();
    let posts = server.count("POST", "/p");
    assert!(posts > 0, "{:?}", server.counts());
    // A graceful stop lets each task call finish: every call made all four requests.
    for path in ["/missing", "/broken", "/check"] {
        assert_eq!(server.count("GET", path), posts, "{:?}", server.counts());
    }
    assert_eq!(server.total(), 4 * posts, "{:?}", server.counts());
    assert_eq!(report.runs("opts", "all"), posts, "{}", run.context());

    for seen in server.seen().iter().filter(|s| s.path == "/p") {
        let body: Value =
            serde_json::from_slice(&seen.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", seen.body));
        assert_eq!(body, serde_json::json!({ "a": 1 }));
        assert_eq!(seen.query_pairs(), [("q".to_owned(), "x y".to_owned())]);
        assert_eq!(seen.header("x-t"), Some("1"));
        assert!(seen.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", seen.headers);
    }
    // Grouped under its name, not its path.
    assert_eq!(report.requests("POST", "post"), posts, "{}", run.context());
    assert_eq!(report.requests("POST", "/p"), 0);
    assert_eq!(report.request_failures("POST", "post"), 0);

    // `expect: [404]` makes a 404 a success.
    let missing = server.count("GET", "/missing");
    assert_eq!(report.requests("GET", "/missing"), missing);
    assert_eq!(report.request_failures("GET", "/missing"), 0);
    // A 500 without `expect` is a failure.
    let broken = server.count("GET", "/broken");
    assert_eq!(report.requests("GET", "/broken"), broken);
    assert_eq!(report.request_failures("GET", "/broken"), broken);
    // `r.fail(reason)` turns a 200 into a failure with that reason.
    let checked = server.count("GET", "/check");
    assert_eq!(report.requests("GET", "/check"), checked);
    assert_eq!(report.request_failures("GET", "/check"), checked);

    let mut failures = report.failures();
    failures.sort_by(|a, b| a.name.cmp(&b.name));
    let failures: Vec<(&str, &str, &str, u64)> =
        failures.iter().map(|f| (f.method.as_str(), f.name.as_str(), f.reason.as_str(), f.count)).collect();
    assert_eq!(
        failures,
        [("GET", "/broken", "HTTP 500", broken), ("GET", "/check", "why", checked)],
        "{}",
        run.context()
    );
    assert_eq!(report.total_failures(), broken + checked);
    assert!(report.errors().is_empty(), "{}", run.context());
}
