//! Careless scripts and configs: a memory bomb fails its task and the run ends on time with its report; durations
//! no clock can hold are refused with their place (never a panic); names defined nowhere stop the run before load
//! unless `--no-strict`; a repeated key in nest.yaml names both lines.

use std::time::{Duration, Instant};

use crate::server::Server;
use crate::support::{Sandbox, line_col};

/// Runs `nest run` on a sandbox whose scripts are refused: exit 2, no connection, no report. Returns stderr.
fn refused_before_load(sandbox: &Sandbox, args: &[&str]) -> String {
    let server = Server::start();
    let mut all = vec!["-u", "2", "-t", "1s"];
    all.extend_from_slice(args);
    let run = sandbox.run(&server.url(), &all);
    run.assert_code(2);
    assert_eq!(server.connections(), 0, "{:?}", server.counts());
    assert!(!run.has_report(), "a report was written\n{}", run.context());
    run.stderr.clone()
}

#[test]
fn a_memory_bomb_fails_its_task_and_the_run_ends_on_time_with_its_report() {
    let sandbox = Sandbox::new();
    let source = "task(1, bomb);\nfn bomb() {\n    client.get(\"/before\");\n    let s = \"x\";\n    \
                  for i in 0..40 { s += s; }\n    client.get(\"/never\");\n}\n";
    sandbox.write("bomb.rhai", source);
    let server = Server::start();
    let started = Instant::now();
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "2s", "--threshold", "requests > 0"]);
    // Without the cap, one doubling loop takes 10 GB and minutes; with it the run ends at its run time.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}\n{}", started.elapsed(), run.context());
    run.assert_code(0);
    let report = run.report();
    assert!(report.total_requests() > 0, "{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "{:?}", server.counts());
    assert_eq!(report.requests("GET", "/before"), server.count("GET", "/before"));
    assert_eq!(server.count("GET", "/never"), 0);
    let errors = report.errors();
    assert_eq!(errors.len(), 1, "{}", run.context());
    let (line, col) = line_col(source, "fn bomb");
    assert_eq!(errors[0].location, format!("{}:{line}:{col}", sandbox.path_of("bomb.rhai")));
    assert!(errors[0].message.starts_with("a string grew larger than max_string_size allows"), "{:?}", errors[0]);
    assert_eq!(errors[0].count, report.requests("GET", "/before"));
    assert!(run.stderr.len() < 10_000, "stderr is {} bytes", run.stderr.len());
}

#[test]
fn the_string_limit_is_a_setting_of_every_layer() {
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nfn t() {\n    let s = \"0123456789\";\n    s += s;\n    client.get(\"/\");\n}\n";
    sandbox.write("grow.rhai", source);
    let server = Server::start();
    let bounded = ["-u", "1", "--iterations", "3", "--threshold", "requests >= 0"];
    let errors = |run: &crate::support::Run| run.report().errors().iter().map(|e| e.count).sum::<u64>();
    let run = sandbox.run(&server.url(), &bounded);
    assert_eq!((errors(&run), server.total()), (0, 3), "{}", run.context());
    let run = sandbox.run(&server.url(), &[&bounded[..], &["--max-string-size", "15"]].concat());
    assert_eq!((errors(&run), server.total()), (3, 3), "{}", run.context());
    sandbox.write_config("max_string_size: 15\n");
    let run = sandbox.run(&server.url(), &bounded);
    assert_eq!((errors(&run), server.total()), (3, 3), "{}", run.context());
    let bad = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[]);
    bad.assert_code(0);
    sandbox.write_config("max_string_size: 0\n");
    let bad = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("max_string_size: must be at least 1"), "{}", bad.context());
}

#[test]
fn a_huge_wait_time_is_refused_with_its_place_not_a_panic() {
    for (declaration, call) in [
        ("wait_time(constant(1e300));", "constant()"),
        ("wait_time(constant_throughput(1e-300));", "constant_throughput(1e-300)"),
    ] {
        let sandbox = Sandbox::new();
        let source = format!("task(1, t);\n{declaration}\nfn t() {{ client.get(\"/\"); }}\n");
        sandbox.write("huge.rhai", &source);
        let list = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[]);
        list.assert_code(2);
        let place = format!("{}:2:11: {call}", sandbox.path_of("huge.rhai"));
        assert!(list.stderr.contains(&place), "expected `{place}` in\n{}", list.context());
        let stderr = refused_before_load(&sandbox, &[]);
        assert!(stderr.contains(&place) && !stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn huge_sleeps_and_timeouts_fail_their_task_once_per_call_without_a_backtrace() {
    let sandbox = Sandbox::new();
    let source = "task(1, nap);\ntask(1, slow);\nfn nap() { client.get(\"/nap\"); sleep(1e300); }\n\
                  fn slow() { client.get(\"/slow\", #{ timeout: 1e300 }); }\n";
    sandbox.write("huge.rhai", source);
    let server = Server::start();
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "20", "--threshold", "requests >= 0"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(server.count("GET", "/slow"), 0, "the request with a bad timeout is never sent");
    assert_eq!(report.total_requests(), server.total());
    let mut errors = report.errors();
    errors.sort_by(|a, b| a.location.cmp(&b.location));
    let at = |needle: &str| {
        let (line, col) = line_col(source, needle);
        format!("{}:{line}:{col}", sandbox.path_of("huge.rhai"))
    };
    assert_eq!(errors.len(), 2, "{}", run.context());
    assert_eq!(errors[0].location, at("sleep"));
    assert!(errors[0].message.starts_with("sleep(1e300): 1e300 is not a duration"), "{:?}", errors[0]);
    assert_eq!(errors[1].location, at("get(\"/slow\""));
    assert!(
        errors[1].message.contains("option `timeout` of a GET request: 1e300 is not a duration"),
        "{:?}",
        errors[1]
    );
    assert_eq!(errors[0].count + errors[1].count, 20);
    assert_eq!(errors[0].count, server.count("GET", "/nap"));
    assert!(!run.stderr.contains("panicked") && run.stderr.len() < 10_000, "{}", run.context());
}

#[test]
fn undefined_names_stop_the_run_before_load_with_a_suggestion() {
    let sandbox = Sandbox::new();
    let source = "let base = \"/items\";\ntask(1, t);\nfn t() {\n    client.gett(base);\n    self.client.get(\"/\");\n    \
                  helpr();\n}\nfn helper() {}\n";
    sandbox.write("careless.rhai", source);
    let stderr = refused_before_load(&sandbox, &[]);
    let file = sandbox.path_of("careless.rhai");
    for expected in [
        format!("{file}:4:12: method `gett` exists on no type: did you mean `get`?"),
        format!(
            "{file}:4:17: variable `base` is not defined in this function: a `fn` cannot see the variables of the top \
             level; declare it `const base = ..;` and read it as `global::base`, or pass it as a parameter"
        ),
        format!(
            "{file}:5:5: variable `self` is not defined: nest scripts have no `self`: write `client.get(..)`, \
             `user.name`, ... directly"
        ),
        format!(
            "{file}:6:5: function `helpr` is not defined in this file, its imports or the taskset API: did you mean \
             `helper`?"
        ),
    ] {
        assert!(stderr.contains(&expected), "expected `{expected}` in:\n{stderr}");
    }
    assert!(stderr.contains("4 errors in tasksets; nothing was run"), "{stderr}");
}

#[test]
fn no_strict_turns_the_findings_into_warnings_and_runs() {
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nfn t() {\n    client.get(\"/\");\n    if vu_id < 0 { helpr(); }\n}\n";
    sandbox.write("lenient.rhai", source);
    refused_before_load(&sandbox, &[]);
    let server = Server::start();
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "4", "--no-strict"]);
    run.assert_code(0);
    assert_eq!((run.report().total_requests(), server.total()), (4, 4));
    let (line, col) = line_col(source, "helpr");
    let warning = format!("warning: {}:{line}:{col}: function `helpr` is not defined", sandbox.path_of("lenient.rhai"));
    assert!(run.stderr.contains(&warning), "expected `{warning}` in\n{}", run.context());
    let run = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[("NEST_STRICT", "0")]);
    run.assert_code(0);
    assert!(run.stderr.contains(&warning), "{}", run.context());
}

#[test]
fn a_function_named_like_a_builtin_is_a_warning() {
    let sandbox = Sandbox::new();
    let source = "task(1, t);\nfn t() { client.get(\"/\"); }\nfn json() { 1 }\n";
    sandbox.write("shadow.rhai", source);
    let run = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[]);
    run.assert_code(0);
    let warning = format!("warning: {}:3:1: `fn json` has the name of a built-in", sandbox.path_of("shadow.rhai"));
    assert!(run.stderr.contains(&warning), "expected `{warning}` in\n{}", run.context());
}

#[test]
fn a_repeated_key_in_nest_yaml_names_both_lines() {
    let sandbox = Sandbox::new();
    sandbox.write("shop.rhai", "task(1, t);\nfn t() { client.get(\"/\"); }\n");
    sandbox.write_config("users: 2\ntasksets:\n  shop: 1\n  # again\n  shop: 3\n");
    let stderr = refused_before_load(&sandbox, &[]);
    assert!(stderr.contains("nest.yaml:5:3: duplicate key \"shop\" (first at line 3)"), "{stderr}");
    let list = sandbox.nest(&["list"], &[]);
    list.assert_code(2);
    assert!(list.stderr.contains("nest.yaml:5:3: duplicate key \"shop\" (first at line 3)"), "{}", list.context());
}
