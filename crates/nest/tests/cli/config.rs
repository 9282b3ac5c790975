//! `nest.yaml` end to end: bad input refused with its place before any connection, disabled tasksets and weights as
//! the server sees them, the precedence of flag, environment and file, and `nest list`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::server::Server;
use crate::support::{Run, Sandbox};

/// A taskset whose only task makes one request to `/NAME` (with `X-VU`) and leaves, so every task re-picks a taskset.
fn visiting(name: &str) -> String {
    format!(
        r#"
task(1, visit);

fn visit() {{
    client.get("/{name}", #{{ headers: #{{ "X-VU": `${{vu_id}}` }} }});
    interrupt();
}}
"#
    )
}

/// A sandbox with one [`visiting`] taskset per name.
fn sandbox_with(names: &[&str]) -> Sandbox {
    let sandbox = Sandbox::new();
    for name in names {
        sandbox.write(&format!("{name}.rhai"), &visiting(name));
    }
    sandbox
}

/// Asserts a run refused before load: exit 2, no report, and `expected` (a `nest.yaml:LINE:COL: ` place and a
/// message) on stderr; the server saw no connection and no request.
fn assert_refused(run: &Run, server: &Server, expected: &str) {
    run.assert_code(2);
    assert!(run.stderr.contains(expected), "expected `{expected}` in stderr\n{}", run.context());
    assert_eq!(server.connections(), 0, "{}", run.context());
    assert_eq!(server.total(), 0, "{:?}", server.counts());
    assert!(!run.has_report(), "a report was written\n{}", run.context());
}

/// Runs `nest run -H <server>` on a sandbox of tasksets `a` and `b` with `config` as `nest.yaml`, and asserts it was
/// refused before load with `expected` on stderr.
fn refused(config: &str, expected: &str) {
    let server = Server::start();
    let sandbox = sandbox_with(&["a", "b"]);
    sandbox.write_config(config);
    // No `-u`/`-t`: the file's settings are parsed as they would be used.
    let run = sandbox.run(&server.url(), &[]);
    assert_refused(&run, &server, expected);
}

#[test]
fn a_yaml_syntax_error_is_placed() {
    // `b` is indented by one space instead of two.
    refused("users: 2\ntasksets:\n  a: 1\n b: 2\n", "error: nest.yaml:4:2: did not find expected key");
}

#[test]
fn a_wrong_type_is_placed() {
    refused("run_time: 1s\nusers: many\n", r#"error: nest.yaml:2:8: users: expected a whole number, found "many""#);
}

#[test]
fn a_misspelt_key_suggests_the_right_one() {
    refused("run_time: 1s\nusres: 2\n", "error: nest.yaml:2:1: unknown key `usres`; did you mean `users`?");
}

#[test]
fn a_file_that_is_not_a_map_says_so_in_words() {
    refused("users 2\n", "error: nest.yaml:1:1: the config must be a map of settings, one `key: value` per line");
}

#[test]
fn a_negative_weight_is_placed() {
    refused(
        "run_time: 1s\ntasksets:\n  a: 1\n  b: -1\n",
        "error: nest.yaml:4:6: tasksets.b: weight -1 is negative: a weight is a whole number >= 0",
    );
}

#[test]
fn a_fractional_weight_is_placed() {
    refused(
        "run_time: 1s\ntasksets:\n  a: 1.5\n  b: 1\n",
        "error: nest.yaml:3:6: tasksets.a: weight 1.5 is not a whole number: a weight is a whole number >= 0",
    );
}

#[test]
fn an_unknown_taskset_name_suggests_the_closest() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("shop/browse.rhai", &visiting("browse")).write("shop/checkout.rhai", &visiting("checkout"));
    sandbox.write_config("run_time: 1s\ntasksets:\n  shop/checkout: 1\n  shop/brwose: 2\n");
    let run = sandbox.run(&server.url(), &[]);
    assert_refused(&run, &server, "error: nest.yaml:4:3: no taskset named `shop/brwose`; did you mean `shop/browse`?");
}

#[test]
fn every_taskset_disabled_is_refused() {
    // The place is the `tasksets:` key.
    refused(
        "run_time: 1s\ntasksets:\n  a: 0\n  b: 0\n",
        "error: nest.yaml:2:1: every taskset has weight 0: give at least one a weight of 1 or more",
    );
}

#[test]
fn a_bad_duration_is_placed() {
    refused(
        "users: 1\nrun_time: soon\n",
        "error: nest.yaml:2:11: run_time: `soon` is not a duration (expected number at 0); use e.g. 30s, 5m, 1h30m",
    );
}

#[test]
fn a_bad_url_is_placed() {
    let server = Server::start();
    let sandbox = sandbox_with(&["a", "b"]);
    // The host on line 2, so that the place names its line (not the file's start).
    let config = "run_time: 1s\nhost: localhost:8080\n";
    sandbox.write_config(config);
    let dir = sandbox.dir().display().to_string();
    let [json, path] = sandbox.json_args();
    // No -H: the file's host is the one used.
    let run = sandbox.nest(&["run", "--taskset-dir", &dir, "-y", &json, &path], &[]);
    let message = "host `localhost:8080` must be an http:// or https:// URL: did you mean http://localhost:8080?";
    assert_refused(&run, &server, message);
    // Line 2; the column of the key (1) or of its value (7), like the other values' errors.
    let placed = ["error: nest.yaml:2:1: ", "error: nest.yaml:2:7: "].map(|p| format!("{p}{message}"));
    assert!(
        placed.iter().any(|p| run.stderr.contains(p.as_str())),
        "expected one of {placed:?} in stderr\n{}",
        run.context()
    );
}

#[test]
fn a_disabled_taskset_is_never_sent() {
    let server = Server::start();
    let sandbox = sandbox_with(&["a", "b", "c"]);
    sandbox.write_config("tasksets:\n  a: 1\n  b: 0\n");
    let run = sandbox.run(&server.url(), &["-u", "3", "-t", "1s"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(server.count("GET", "/b"), 0, "{:?}", server.counts());
    // `a` from the file and `c` from its script: each VU re-picks on every task, hundreds of times.
    assert!(server.count("GET", "/a") > 0 && server.count("GET", "/c") > 0, "{:?}", server.counts());
    assert_eq!(server.total(), server.count("GET", "/a") + server.count("GET", "/c"), "{:?}", server.counts());
    assert_eq!(report.runs("b", "visit"), 0, "{}", run.context());
    assert_eq!(report.requests("GET", "/b"), 0, "{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
}

#[test]
fn weights_6_to_1_give_the_server_that_ratio() {
    let server = Server::start();
    let sandbox = sandbox_with(&["a", "b"]);
    sandbox.write_config("tasksets:\n  a: 6\n  b: 1\n");
    // A count of tasks, not a run time: a busy machine cannot leave the ratio too few requests to mean anything.
    let run = sandbox.run(&server.url(), &["-u", "4", "--iterations", "700", "-t", "60s", "--seed", "7"]);
    run.assert_code(0);
    let report = run.report();
    let (a, b) = (server.count("GET", "/a"), server.count("GET", "/b"));
    let n = a + b;
    assert_eq!(server.total(), n, "{:?}", server.counts());
    assert_eq!(n, 700, "--iterations 700 ran {a} + {b}\n{}", run.context());
    assert_eq!(report.runs("a", "visit"), a, "{}", run.context());
    assert_eq!(report.runs("b", "visit"), b, "{}", run.context());
    // Every task is a fresh taskset pick (interrupt()), an independent draw with p = 6/7: 4 binomial standard
    // deviations leave a false failure at about 6e-5 (and the seed fixes the picks of each VU anyway).
    let (p, nf) = (6.0 / 7.0, n as f64);
    let sd = (nf * p * (1.0 - p)).sqrt();
    let off = (a as f64 - p * nf).abs();
    assert!(off <= 4.0 * sd, "/a {a} of {n}: expected {:.1} ± {:.1} (4 sd)", p * nf, 4.0 * sd);
}

/// Runs `nest run` with `-t 1s` on a sandbox whose `nest.yaml` says `users: 3`, plus `flags` and `env`, and returns
/// the distinct `X-VU` values the server saw and the report's `users`.
fn users_of(flags: &[&str], env: &[(&str, &str)]) -> (BTreeSet<String>, u64) {
    let server = Server::builder().record().start();
    let sandbox = sandbox_with(&["a"]);
    sandbox.write_config("users: 3\n");
    let (dir, url) = (sandbox.dir().display().to_string(), server.url());
    let [json, path] = sandbox.json_args();
    let mut args = vec!["run", "--taskset-dir", &dir, "-H", &url, "-t", "1s", "--workers", "2", "-y", &json, &path];
    args.extend_from_slice(flags);
    let run = sandbox.nest(&args, env);
    run.assert_code(0);
    let report = run.report();
    let vus: BTreeSet<String> =
        server.seen().iter().map(|s| s.vu().unwrap_or_else(|| panic!("no X-VU: {s:?}")).to_owned()).collect();
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
    let users = report.0["users"].as_u64().unwrap_or_else(|| panic!("no users\n{}", run.context()));
    (vus, users)
}

fn ids(n: u64) -> BTreeSet<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[test]
fn the_file_alone_sets_the_users() {
    assert_eq!(users_of(&[], &[]), (ids(3), 3));
}

#[test]
fn the_environment_overrides_the_file() {
    assert_eq!(users_of(&[], &[("NEST_USERS", "2")]), (ids(2), 2));
}

#[test]
fn the_command_line_overrides_the_environment() {
    assert_eq!(users_of(&["-u", "4"], &[("NEST_USERS", "2")]), (ids(4), 4));
}

/// A row of the mix table: the taskset's weight, share and source.
fn table_row<'a>(stdout: &'a str, taskset: &str) -> (&'a str, &'a str, String) {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(taskset) && !l.starts_with(' '))
        .unwrap_or_else(|| panic!("no row for {taskset} in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    // The think time is the last column; the source is one or two words before it.
    let source = if words[3] == "from" { format!("{} {}", words[3], words[4]) } else { words[3].to_owned() };
    (words[1], words[2], source)
}

#[test]
fn nest_list_shows_the_mix_as_configured_and_sends_nothing() {
    let server = Server::start();
    let sandbox = sandbox_with(&["a", "c"]);
    sandbox.write("b.rhai", &format!("weight(2);\n{}", visiting("b")));
    sandbox.write_config("tasksets:\n  a: 6\n  c: 0\n");
    let env = [("NEST_HOST", server.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let run = sandbox.nest(&["list"], &env);
    run.assert_code(0);
    assert_eq!(table_row(&run.stdout, "a"), ("6", "75.0%", "config".to_owned()), "{}", run.context());
    assert_eq!(table_row(&run.stdout, "b"), ("2", "25.0%", "from script".to_owned()), "{}", run.context());
    assert_eq!(table_row(&run.stdout, "c"), ("0", "off", "config".to_owned()), "{}", run.context());
    assert!(run.stdout.contains("3 tasksets in tasksets (config nest.yaml)"), "{}", run.context());

    let run = sandbox.nest(&["list", "--json"], &env);
    run.assert_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", run.context()));
    assert_eq!(json["config"], "nest.yaml");
    assert_eq!(json["taskset_dir"], "tasksets");
    let rows: Vec<(String, u64, String, f64)> = json["tasksets"]
        .as_array()
        .expect("tasksets[]")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["weight"].as_u64().unwrap(),
                t["source"].as_str().unwrap().to_owned(),
                t["share_pct"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("a".to_owned(), 6, "config".to_owned(), 75.0),
            ("b".to_owned(), 2, "from_script".to_owned(), 25.0),
            ("c".to_owned(), 0, "config".to_owned(), 0.0),
        ],
        "{}",
        run.stdout
    );
    assert_eq!(json["tasksets"][0]["tasks"][0]["name"], "visit");

    assert_eq!(server.connections(), 0);
}

#[test]
fn nest_list_with_a_broken_script_exits_2_with_its_place() {
    let server = Server::start();
    let sandbox = sandbox_with(&["a"]);
    let broken = "task(1, t);\nfn t() {\n    let x = ;\n}\n";
    sandbox.write("bad.rhai", broken);
    let run = sandbox.nest(&["list"], &[("NEST_HOST", server.url().as_str())]);
    run.assert_code(2);
    // The unexpected `;`, as `nest run` places it (see errors.rs).
    let (line, col) = crate::support::line_col(broken, "= ;");
    let place = format!("tasksets/bad.rhai:{line}:{}: ", col + 2);
    assert!(run.stderr.contains(&place), "expected `{place}` in stderr\n{}", run.context());
    assert!(!run.stdout.contains("Taskset"), "{}", run.context());
    assert_eq!(server.connections(), 0);
}
