//! Errors: broken scripts stop the run before load (exit 2), runtime and runaway errors are counted with their
//! place while the run goes on, and transport errors are failed requests with status 0.

use crate::server::Server;
use crate::support::{ErrorRow, Sandbox, closed_port, line_col};

const VALID: &str = r#"
task(1, ok);

fn ok() { client.get("/ok"); }
"#;

/// Runs a sandbox whose tasksets are broken: exit 2, the server saw nothing, no report. Returns stderr.
fn refused_before_load(sandbox: &Sandbox) -> String {
    let server = Server::start();
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s"]);
    run.assert_code(2);
    assert_eq!(server.total(), 0, "{:?}", server.counts());
    assert_eq!(server.connections(), 0);
    assert!(!run.has_report(), "a report was written\n{}", run.context());
    run.stderr.clone()
}

#[test]
fn a_syntax_error_exits_2_with_its_place_before_any_request() {
    let sandbox = Sandbox::new();
    let broken = "task(1, t);\nfn t() {\n    let x = ;\n}\n";
    sandbox.write("a.rhai", VALID).write("b.rhai", broken);
    let stderr = refused_before_load(&sandbox);
    // The place of the unexpected `;`.
    let (line, col) = line_col(broken, "= ;");
    let col = col + 2;
    assert_eq!(line, 3);
    let place = format!("{}:{line}:{col}: ", sandbox.path_of("b.rhai"));
    assert!(stderr.contains(&place), "expected `{place}` in:\n{stderr}");
    assert!(!stderr.contains(&sandbox.path_of("a.rhai")), "{stderr}");
}

#[test]
fn every_broken_file_is_reported() {
    let sandbox = Sandbox::new();
    sandbox
        .write("a.rhai", VALID)
        .write("b.rhai", "task(1, t);\nfn t() {\n    let x = ;\n}\n")
        .write("c.rhai", "fn t() { client.get(\"/\"); }\n");
    let stderr = refused_before_load(&sandbox);
    assert!(stderr.contains(&format!("{}:3:", sandbox.path_of("b.rhai"))), "{stderr}");
    assert!(stderr.contains(&sandbox.path_of("c.rhai")), "{stderr}");
}

#[test]
fn a_taskset_without_tasks_is_named() {
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", VALID).write("empty.rhai", "weight(2);\n\nfn t() { client.get(\"/\"); }\n");
    let stderr = refused_before_load(&sandbox);
    let expected = format!("{}: declares no task", sandbox.path_of("empty.rhai"));
    assert!(stderr.contains(&expected), "expected `{expected}` in:\n{stderr}");
}

#[test]
fn a_task_weight_of_zero_is_placed() {
    let sandbox = Sandbox::new();
    let source = "task(1, t);\n  task(0, t);\nfn t() { client.get(\"/\"); }\n";
    sandbox.write("zero.rhai", source);
    let stderr = refused_before_load(&sandbox);
    let (line, col) = line_col(source, "task(0");
    let place = format!("{}:{line}:{col}: ", sandbox.path_of("zero.rhai"));
    assert!(stderr.contains(&place), "expected `{place}` in:\n{stderr}");
    assert!(stderr.contains("a task weight is a whole number from 1 to 4294967295"), "{stderr}");
}

#[test]
fn client_at_the_top_level_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nlet r = client.get(\"/top\");\nfn t() { client.get(\"/\"); }\n";
    sandbox.write("top.rhai", source);
    let stderr = refused_before_load(&sandbox);
    let place = format!("{}:2:", sandbox.path_of("top.rhai"));
    assert!(stderr.contains(&place), "expected `{place}` in:\n{stderr}");
    assert!(stderr.contains("`client` can only be used inside a task, on_start or on_stop"), "{stderr}");
}

#[test]
fn an_unknown_host_scheme_exits_2() {
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", VALID);
    let run = sandbox.run("ftp://127.0.0.1:9", &["-u", "1", "-t", "1s"]);
    run.assert_code(2);
    assert!(run.stderr.contains("must be an http:// or https:// URL"), "{}", run.context());
    assert!(!run.has_report());
}

#[test]
fn a_runtime_error_is_counted_with_its_place_and_the_vu_goes_on() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let source = r#"
task(1, t);

fn t() {
    client.get("/before");
    throw "boom";
}
"#;
    sandbox.write("err.rhai", source);
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s"]);
    run.assert_code(1); // the default gate: with no threshold, a failed request or a script error exits 1
    let report = run.report();
    let before = server.count("GET", "/before");
    // More calls than VUs: a VU went on after its error.
    assert!(before > 2, "{}", run.context());
    let (line, col) = line_col(source, "throw");
    assert_eq!(
        report.errors(),
        [ErrorRow {
            location: format!("{}:{line}:{col}", sandbox.path_of("err.rhai")),
            message: "boom".into(),
            count: before,
        }],
        "{}",
        run.context()
    );
    let task = report.task("err", "t").expect("a tasks[] row for err/t");
    assert_eq!((task.runs, task.errors), (before, before));
    assert_eq!(report.total_requests(), before);
    assert_eq!(report.total_failures(), 0);
}

#[test]
fn runaway_scripts_are_stopped_and_the_other_vus_keep_going() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    // VU 0 runs away twice: first into deep recursion, then (on a later visit) into an endless loop; every other
    // visit, and every other VU, leaves at once. `ok` leaves after each request, so VUs keep moving between the
    // three tasksets and VU 0 reaches both runaways whatever order it picks them in.
    let deep = r#"
task(1, deep);

fn deep() {
    if vu_id != 0 || user.dove == true { interrupt(); }
    user.dove = true;
    rec(0)
}
fn rec(n) { rec(n + 1) }
"#;
    let spin = r#"
task(1, spin);

fn spin() {
    if vu_id != 0 || user.dove != true || user.spun == true { interrupt(); }
    user.spun = true;
    loop { }
}
"#;
    let ok = r#"
task(1, ok);

fn ok() {
    client.get("/ok", #{ headers: #{ "X-VU": vu_id } });
    interrupt();
}
"#;
    sandbox.write("spin.rhai", spin).write("deep.rhai", deep).write("ok.rhai", ok);
    let run = sandbox.run(&server.url(), &["-u", "4", "-t", "2s"]);
    run.assert_code(1); // the default gate: with no threshold, a failed request or a script error exits 1
    let report = run.report();
    let at = |file: &str, source: &str, needle: &str| {
        let (line, col) = line_col(source, needle);
        format!("{}:{line}:{col}", sandbox.path_of(file))
    };
    let mut errors = report.errors();
    errors.sort_by(|a, b| a.location.cmp(&b.location));
    assert_eq!(errors.len(), 2, "{}", run.context());
    let (dove, spun) = (&errors[0], &errors[1]);
    assert_eq!(dove.location, at("deep.rhai", deep, "fn deep"));
    assert!(dove.message.contains("too many nested function calls"), "{}", dove.message);
    assert_eq!(dove.count, 1);
    assert_eq!(spun.location, at("spin.rhai", spin, "fn spin"));
    assert!(spun.message.contains("too many operations"), "{}", spun.message);
    assert_eq!(spun.count, 1);
    assert_eq!(report.task("deep", "deep").map(|t| t.errors), Some(1));
    assert_eq!(report.task("spin", "spin").map(|t| t.errors), Some(1));

    // The other VUs kept sending requests, and nest counted each one.
    let ok = server.count("GET", "/ok");
    assert_eq!(report.requests("GET", "/ok"), ok, "{}", run.context());
    assert_eq!(report.total_requests(), server.total());
    for vu in ["1", "2", "3"] {
        assert!(server.seen().iter().any(|s| s.vu() == Some(vu)), "VU {vu} sent no request\n{}", run.context());
    }
}

#[test]
fn connection_refused_is_a_failed_request_with_status_0() {
    let port = closed_port();
    let sandbox = Sandbox::new();
    sandbox.write(
        "down.rhai",
        r#"
task(1, t);

fn t() {
    let r = client.get("/");
    if r.status != 0 { throw `status ${r.status}`; }
    if r.ok { throw "ok"; }
    if r.error == () { throw "no error text"; }
}
"#,
    );
    let run = sandbox.run(&format!("http://127.0.0.1:{port}"), &["-u", "2", "-t", "1s"]);
    run.assert_code(1); // the default gate: with no threshold, a failed request or a script error exits 1
    let report = run.report();
    let total = report.total_requests();
    assert!(total > 0, "{}", run.context());
    assert_eq!(report.total_failures(), total);
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].method.as_str(), failures[0].name.as_str()), ("GET", "/"));
    assert_eq!(failures[0].reason, "connection refused");
    assert_eq!(failures[0].count, total);
    assert!(report.errors().is_empty(), "{}", run.context());
    assert_eq!(report.runs("down", "t"), total);
}
