//! Checks, custom metrics, extraction helpers, the threshold grammar of rates and the default gate: every count
//! nest reports is compared with what the loopback server saw.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::server::{Reply, Server};
use crate::support::{Sandbox, closed_port, line_col};

/// A task that sends one GET to `path`.
fn one_request(path: &str) -> String {
    format!("task(1, hit);\n\nfn hit() {{ client.get(\"{path}\"); }}\n")
}

/// 200 for `/ok`, 500 for everything else.
fn ok_or_500() -> Server {
    Server::builder().route(|seen| if seen.path == "/ok" { Reply::ok() } else { Reply::status(500) }).start()
}

fn check_row<'a>(report: &'a Value, name: &str) -> &'a Value {
    let rows = report["checks"].as_array().unwrap_or_else(|| panic!("no checks[] in {report}"));
    rows.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check `{name}` in {rows:?}"))
}

fn metric_row<'a>(report: &'a Value, name: &str) -> &'a Value {
    let rows = report["metrics"].as_array().unwrap_or_else(|| panic!("no metrics[] in {report}"));
    rows.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no metric `{name}` in {rows:?}"))
}

fn verdict<'a>(report: &'a Value, expr: &str) -> &'a Value {
    let rows = report["thresholds"].as_array().unwrap();
    rows.iter().find(|v| v["expr"] == expr).unwrap_or_else(|| panic!("no verdict `{expr}` in {rows:?}"))
}

#[test]
fn the_default_gate_fails_a_run_against_a_dead_target() {
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/"));
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let run = sandbox.run(&dead, &["--iterations", "4"]);
    run.assert_code(1);
    let report = &run.report().0;
    assert_eq!(run.report().total_failures(), 4, "{}", run.context());
    let gate = &report["thresholds"][0];
    assert_eq!((gate["default_gate"].as_bool(), gate["passed"].as_bool()), (Some(true), Some(false)), "{gate}");
    assert!(run.stdout.contains("FAIL  default gate: no failed request and no script error"), "{}", run.context());

    sandbox.run(&dead, &["--iterations", "4", "--no-default-gate"]).assert_code(0);
    sandbox.run(&dead, &["--iterations", "4", "--exit-code-on-error", "3"]).assert_code(3);
    let quiet = sandbox.run(&dead, &["--iterations", "4", "-q"]);
    quiet.assert_code(1);
    assert!(quiet.stdout.starts_with("FAIL: default gate"), "{}", quiet.context());
    let off = sandbox.nest(
        &["run", "--taskset-dir", &sandbox.dir().display().to_string(), "-H", &dead, "--iterations", "2", "-y"],
        &[("NEST_EXIT_CODE_ON_ERROR", "0")],
    );
    off.assert_code(0);
}

#[test]
fn a_configured_threshold_replaces_the_default_gate() {
    let server = ok_or_500();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/bad"));
    let run = sandbox.run(&server.url(), &["--iterations", "5", "--threshold", "requests > 0"]);
    run.assert_code(0);
    assert_eq!(server.count("GET", "/bad"), 5);
    assert_eq!(run.report().total_failures(), 5);
    let verdicts = run.report().0["thresholds"].as_array().unwrap().clone();
    assert_eq!(verdicts.len(), 1, "no default gate beside a configured threshold: {verdicts:?}");

    // A run that has nothing to fail passes the gate.
    let clean = Server::start();
    let run = sandbox.run(&clean.url(), &["--iterations", "3"]);
    run.assert_code(0);
    assert!(run.stdout.contains("PASS  default gate"), "{}", run.context());
}

#[test]
fn a_bare_number_on_a_rate_is_refused_with_a_suggestion() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/"));
    let run = sandbox.run(&server.url(), &["--iterations", "3", "--threshold", "error_rate < 1"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("a rate takes a percentage: did you mean `error_rate < 1%`? (at column 14)"),
        "{}",
        run.context()
    );
    assert_eq!(server.total(), 0, "nothing is sent");
    sandbox.write_config("thresholds:\n  - \"p95 < 1s\"\n  - \"checks > 0.99\"\n");
    let run = sandbox.run(&server.url(), &["--iterations", "3"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nest.yaml:3:") && run.stderr.contains("`checks > 99%`"), "{}", run.context());
}

#[test]
fn an_error_rate_threshold_fails_a_run_with_more_failures() {
    let server = ok_or_500();
    let sandbox = Sandbox::new();
    // 3 of 5 requests fail: 60%.
    sandbox.write(
        "mix.rhai",
        "task(1, hit);\nfn hit() {\n    for i in 0..3 { client.get(\"/bad\"); }\n    client.get(\"/ok\");\n    \
         client.get(\"/ok\");\n}\n",
    );
    let run = sandbox.run(&server.url(), &["--iterations", "4", "--threshold", "error_rate < 50%"]);
    run.assert_code(99);
    assert_eq!((server.count("GET", "/bad"), server.count("GET", "/ok")), (12, 8));
    let v = verdict(&run.report().0, "error_rate < 50%");
    assert_eq!((v["passed"].as_bool(), v["observed"].as_f64()), (Some(false), Some(60.0)), "{v}");
}

#[test]
fn checks_count_what_the_server_answered() {
    let server = ok_or_500();
    let sandbox = Sandbox::new();
    let source = r#"task(1, hit);

fn hit() {
    let path = if rand(0, 1) == 0 { "/ok" } else { "/nope" };
    let r = client.get(path, #{ name: "page" });
    let all = check(r, #{
        "is 200": |r| r.status == 200,
        "is json": |r| r.json().token != (),
    });
    if all { throw "a body of `ok` is not JSON: not every check can pass"; }
}
"#;
    sandbox.write("checks.rhai", source);
    let run = sandbox.run(
        &server.url(),
        &["--iterations", "40", "--threshold", "check \"is 200\" >= 0%", "--threshold", "checks > 99%"],
    );
    run.assert_code(99);
    let report = &run.report().0;
    let (ok, bad) = (server.count("GET", "/ok"), server.count("GET", "/nope"));
    assert_eq!(ok + bad, 40);
    let is_200 = check_row(report, "is 200");
    assert_eq!((is_200["passes"].as_u64(), is_200["fails"].as_u64()), (Some(ok), Some(bad)), "{is_200}");
    let json = check_row(report, "is json");
    assert_eq!((json["passes"].as_u64(), json["fails"].as_u64()), (Some(0), Some(40)), "an error is a failed check");
    // A failed check does not fail the request: only the 500s count.
    assert_eq!(run.report().total_failures(), bad, "{}", run.context());
    assert!(run.report().errors().is_empty(), "{:?}", run.report().errors());
    let all = verdict(report, "checks > 99%");
    let expected = 100.0 * ok as f64 / 80.0;
    assert!(all["passed"] == false && (all["observed"].as_f64().unwrap() - expected).abs() < 1e-9, "{all}");
    assert_eq!(verdict(report, "check \"is 200\" >= 0%")["passed"], true);
    let (line, col) = line_col(source, "r.json()");
    let place = format!("{}:{line}:{}", sandbox.path_of("checks.rhai"), col + 2);
    assert!(
        run.stderr.contains("check \"is json\" failed with an error at") && run.stderr.contains(&place),
        "{place}\n{}",
        run.context()
    );
    assert!(run.stdout.contains("✗ is json") && run.stdout.contains("all checks:"), "{}", run.context());
}

#[test]
fn custom_metrics_are_merged_and_judged() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "shop.rhai",
        r#"task(1, look);
task(1, idle);
metric.counter("declared only");
let hits = metric.rate("cache_hit");

fn look() {
    client.get("/item");
    metric.counter("looked").add(1);
    metric.trend("cart_value").add(120.5);
    metric.rate("cache_hit").add(false);
    metric.gauge("queue").set(vu_id);
}
fn idle() {
    metric.rate("cache_hit").add(true);
}
"#,
    );
    let thresholds = [
        "counter \"looked\" > 10",
        "trend \"cart_value\": p95 < 300",
        "trend \"cart_value\": max < 100ms",
        "rate \"cache_hit\" > 90%",
    ];
    let mut args = vec!["-u", "3", "--iterations", "60"];
    for t in thresholds {
        args.extend(["--threshold", t]);
    }
    let run = sandbox.run(&server.url(), &args);
    run.assert_code(99);
    let report = &run.report().0;
    let looked = server.count("GET", "/item");
    assert!(looked > 10, "{}", run.context());
    let counter = metric_row(report, "looked");
    assert_eq!((counter["kind"].as_str(), counter["value"].as_f64()), (Some("counter"), Some(looked as f64)));
    let trend = metric_row(report, "cart_value");
    assert_eq!(trend["count"].as_u64(), Some(looked));
    assert!((trend["trend_ms"]["p95"].as_f64().unwrap() - 120.5).abs() < 0.2, "{trend}");
    let rate = metric_row(report, "cache_hit");
    assert_eq!((rate["count"].as_u64(), rate["passes"].as_u64()), (Some(60), Some(60 - looked)), "{rate}");
    let gauge = metric_row(report, "queue");
    assert!((0.0..3.0).contains(&gauge["value"].as_f64().unwrap()), "{gauge}");
    assert_eq!(metric_row(report, "declared only")["count"], 0, "declared at the top level, never used");
    let passed: Vec<bool> = thresholds.iter().map(|t| verdict(report, t)["passed"].as_bool().unwrap()).collect();
    assert_eq!(passed, [true, true, false, rate["value"].as_f64().unwrap() > 0.9]);
    assert!(run.stdout.contains("Custom metrics") && run.stdout.contains("counter looked"), "{}", run.context());
}

#[test]
fn a_metric_name_used_with_two_kinds_is_a_task_error() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nfn t() {\n    metric.counter(\"x\").add(1);\n    metric.trend(\"x\").add(1);\n}\n";
    sandbox.write("m.rhai", source);
    let run = sandbox.run(&server.url(), &["--iterations", "2", "--no-default-gate"]);
    run.assert_code(0);
    let errors = run.report().errors();
    let (line, col) = line_col(source, "metric.trend");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].location, format!("{}:{line}:{}", sandbox.path_of("m.rhai"), col + 7), "{errors:?}");
    assert!(errors[0].message.contains("metric `x` is a counter, not a trend"), "{errors:?}");
}

#[test]
fn extraction_helpers_find_the_token_the_server_generated() {
    let issued = Arc::new(AtomicU64::new(0));
    let counter = issued.clone();
    let server = Server::builder()
        .record()
        .route(move |seen| match seen.path.as_str() {
            "/form" => {
                let token = format!("tok{}", counter.fetch_add(1, Ordering::SeqCst));
                Reply::ok().body(format!(
                    "<html><body><form><input type=\"hidden\" name=\"csrf\" value=\"{token}\"></form>\
                     <a class=\"next\" href=\"/p/1\">one</a> <a class=\"next\" href=\"/p/2\">two &amp; more</a>\
                     </body></html>"
                ))
            }
            _ => Reply::ok(),
        })
        .start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "form.rhai",
        r#"task(1, submit);

fn submit() {
    let page = client.get("/form");
    let by_css = page.css("input[name=csrf]")[0].attr("value");
    let by_regex = page.find("value=\"(tok\\d+)\"");
    let links = page.find_all("href=\"(/p/\\d+)\"");
    let anchors = page.css("a.next");
    if page.find("nothing(\\d+)") != () || page.css("table").len() != 0 { throw "found what is not there"; }
    if anchors[1].text != "two & more" || anchors[0].attr("missing") != () { throw `anchors ${anchors}`; }
    client.post("/submit", #{ body: by_css, headers: #{ "X-Regex": by_regex, "X-Links": links.reduce(|s, l| s + l, "") } });
}
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "2", "--iterations", "10"]);
    run.assert_code(0);
    let seen = server.seen();
    let submits: Vec<_> = seen.iter().filter(|s| s.path == "/submit").collect();
    assert_eq!(submits.len(), 10, "{}", run.context());
    let sent: BTreeSet<String> = submits.iter().map(|s| String::from_utf8_lossy(&s.body).into_owned()).collect();
    let generated: BTreeSet<String> = (0..issued.load(Ordering::SeqCst)).map(|i| format!("tok{i}")).collect();
    assert_eq!(sent, generated, "each token the server generated came back once");
    for s in &submits {
        assert_eq!(s.header("x-regex"), Some(String::from_utf8_lossy(&s.body).as_ref()), "find == css");
        assert_eq!(s.header("x-links"), Some("/p/1/p/2"));
    }
}

#[test]
fn a_bad_pattern_fails_the_task_at_its_place() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nfn t() {\n    let r = client.get(\"/\");\n    r.find(\"(unclosed\");\n}\n";
    sandbox.write("bad.rhai", source);
    let run = sandbox.run(&server.url(), &["--iterations", "2", "--exit-code-on-error", "5"]);
    run.assert_code(5);
    assert_eq!(server.total(), 2);
    let errors = run.report().errors();
    let (line, col) = line_col(source, "r.find");
    assert_eq!(errors[0].location, format!("{}:{line}:{}", sandbox.path_of("bad.rhai"), col + 2), "{errors:?}");
    assert!(errors[0].message.contains("`(unclosed` is not a valid regex"), "{errors:?}");
    assert_eq!(errors[0].count, 2);
}
