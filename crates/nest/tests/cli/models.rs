//! Load models as the server sees them: `--iterations`, the open model and its drops, `sequential()`, tags,
//! stages, load shapes, global `setup()`/`teardown()` with `shared`, pacing, and thresholds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::server::{Reply, Seen, Server};
use crate::support::{Report, Run, Sandbox};

/// A taskset whose only task makes one request to `path`.
fn one_request(path: &str) -> String {
    format!("task(1, hit);\n\nfn hit() {{ client.get(\"{path}\"); }}\n")
}

/// The distinct `X-VU` values of the recorded requests.
fn vu_ids(seen: &[Seen]) -> BTreeSet<String> {
    seen.iter().map(|s| s.vu().unwrap_or_else(|| panic!("{} {} without X-VU", s.method, s.path)).to_owned()).collect()
}

fn ids(n: u64) -> BTreeSet<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn num(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {value}"))
}

fn duration_s(report: &Report) -> f64 {
    num(&report.0, "duration_s")
}

fn timeline(report: &Report) -> &[Value] {
    report.0["timeline"].as_array().unwrap_or_else(|| panic!("no timeline[] in {}", report.0))
}

fn tasks_json<'a>(report: &'a Report, taskset: &str, task: &str) -> &'a Value {
    report.0["tasks"]
        .as_array()
        .expect("tasks[]")
        .iter()
        .find(|t| t["taskset"] == taskset && t["task"] == task)
        .unwrap_or_else(|| panic!("no tasks[] row {taskset}/{task} in {}", report.0["tasks"]))
}

#[test]
fn iterations_run_exactly_n_tasks_and_end_the_run() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    let run = sandbox.run(&server.url(), &["--iterations", "37", "-u", "5", "-t", "30s"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(server.count("GET", "/hit"), 37, "{}", run.context());
    assert_eq!(server.total(), 37, "{:?}", server.counts());
    assert_eq!(report.total_requests(), 37, "{}", run.context());
    assert_eq!(report.runs("hit", "hit"), 37, "{}", run.context());
    // 37 tasks take milliseconds: the run ended by itself, long before its 30 s limit, and not by a stop.
    let duration = duration_s(report);
    assert!(duration < 10.0, "duration_s {duration}\n{}", run.context());
    assert!(!run.stderr.contains("stopped"), "{}", run.context());
}

#[test]
fn the_open_model_runs_exact_iterations_with_corrected_latency() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    let run = sandbox.run(&server.url(), &["--rate", "200", "--max-users", "5", "--iterations", "40", "-t", "30s"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(server.count("GET", "/hit"), 40, "{}", run.context());
    assert_eq!(server.total(), 40, "{:?}", server.counts());
    let json = &report.0;
    assert_eq!(report.total_requests(), 40, "{}", run.context());
    assert_eq!(json["model"], "open", "{}", run.context());
    assert_eq!(json["users"], 5, "{}", run.context());
    assert_eq!(json["dropped_iterations"], 0, "{}", run.context());
    let corrected = &json["requests"][0]["corrected_latency_ms"];
    for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(corrected[key].is_f64(), "requests[0].corrected_latency_ms.{key} in {}", json["requests"]);
    }
    assert!(json["totals"]["corrected_latency_ms"].is_object(), "{}", json["totals"]);
    // 40 starts at 200/s are scheduled over 0.2 s.
    let duration = duration_s(report);
    assert!(duration < 10.0, "duration_s {duration}\n{}", run.context());
}

#[test]
fn starts_that_wait_too_long_are_dropped_and_counted() {
    let server = Server::builder().route(|_| Reply::ok().delay(Duration::from_millis(100))).start();
    let sandbox = Sandbox::new();
    sandbox.write("slow.rhai", &one_request("/slow"));
    let run = sandbox.run(&server.url(), &["--rate", "100", "--max-users", "1", "--max-delay", "50ms", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let json = &report.0;
    let seen = server.count("GET", "/slow");
    assert_eq!(server.total(), seen, "{:?}", server.counts());
    assert_eq!(report.total_requests(), seen, "{}", run.context());
    let dropped = json["dropped_iterations"].as_u64().unwrap_or_else(|| panic!("{}", run.context()));
    assert!(dropped > 0, "{}", run.context());
    let by_second: u64 = timeline(report).iter().map(|p| p["dropped"].as_u64().expect("timeline[].dropped")).sum();
    assert_eq!(by_second, dropped, "timeline {:?}", json["timeline"]);
    // One VU serves one task per 100 ms: about 20 of the 200 starts scheduled over 2 s (one more at t = 0 at
    // most). The others are dropped, those still queued when the run stops too; a start due within the stop's own
    // timer tick is neither run nor counted. So seen + dropped is about 200, at most 201; the lower bound leaves 12
    // for the stop's timer in a loaded debug build.
    let scheduled = seen + dropped;
    assert!((188..=201).contains(&scheduled), "{seen} seen + {dropped} dropped = {scheduled}\n{}", run.context());
    assert!((10..=30).contains(&seen), "one VU at 100 ms per task for 2 s served {seen}\n{}", run.context());
    let row = &json["requests"][0];
    let (raw, corrected) = (num(&row["latency_ms"], "p99"), num(&row["corrected_latency_ms"], "p99"));
    assert!(corrected >= raw, "corrected p99 {corrected} < raw p99 {raw}");
}

#[test]
fn sequential_runs_the_tasks_in_order_with_repeats() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "seq.rhai",
        r#"
sequential();

task(2, a);
task(1, b);

fn a() { client.get("/a", #{ headers: #{ "X-VU": `${vu_id}` } }); }
fn b() { client.get("/b", #{ headers: #{ "X-VU": `${vu_id}` } }); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "3", "-t", "1s"]);
    run.assert_code(0);
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in server.seen() {
        paths.entry(s.vu().expect("X-VU").to_owned()).or_default().push(s.path.clone());
    }
    assert_eq!(paths.keys().cloned().collect::<BTreeSet<_>>(), ids(3), "{}", run.context());
    let cycle = ["/a", "/a", "/b"];
    for (vu, seq) in &paths {
        // Each VU waits for its responses, so the server sees its requests in the order it sent them.
        assert!(seq.len() >= 6, "VU {vu} made only {} requests", seq.len());
        for (i, path) in seq.iter().enumerate() {
            assert_eq!(path, cycle[i % 3], "VU {vu}, request {i}: {:?}", &seq[..seq.len().min(i + 3)]);
        }
    }
    let report = run.report();
    assert_eq!(report.runs("seq", "a"), server.count("GET", "/a"), "{}", run.context());
    assert_eq!(report.runs("seq", "b"), server.count("GET", "/b"), "{}", run.context());
}

/// Tasksets for the tag tests: `one` has a task `a` tagged `slow` and an untagged `b`; `shop` is tagged as a whole.
/// Every task leaves its taskset, so each VU re-picks a taskset for every task.
fn tagged_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write(
        "one.rhai",
        r#"
task(1, a);
task(1, b);
tags(["slow"], a);

fn a() { client.get("/a"); interrupt(); }
fn b() { client.get("/b"); interrupt(); }
"#,
    );
    sandbox.write(
        "shop.rhai",
        r#"
tags(["shop"]);
task(1, buy);

fn buy() { client.get("/shop"); interrupt(); }
"#,
    );
    sandbox
}

#[test]
fn tags_select_the_tasks() {
    let server = Server::start();
    let run = tagged_sandbox().run(&server.url(), &["-u", "2", "-t", "1s", "--tags", "slow"]);
    run.assert_code(0);
    assert!(server.count("GET", "/a") > 0, "{:?}", server.counts());
    assert_eq!(server.total(), server.count("GET", "/a"), "only the `slow` task runs: {:?}", server.counts());
    assert_eq!(run.report().total_requests(), server.total(), "{}", run.context());
}

#[test]
fn exclude_tags_remove_a_tagged_taskset() {
    let server = Server::start();
    let run = tagged_sandbox().run(&server.url(), &["-u", "2", "-t", "1s", "--exclude-tags", "shop"]);
    run.assert_code(0);
    assert_eq!(server.count("GET", "/shop"), 0, "{:?}", server.counts());
    // Hundreds of picks among a and b, each 1/2.
    assert!(server.count("GET", "/a") > 0 && server.count("GET", "/b") > 0, "{:?}", server.counts());
    assert_eq!(run.report().total_requests(), server.total(), "{}", run.context());
}

#[test]
fn a_tag_selection_that_leaves_nothing_exits_2() {
    let server = Server::start();
    let run = tagged_sandbox().run(&server.url(), &["-u", "2", "-t", "1s", "--tags", "nothing"]);
    run.assert_code(2);
    let expected = "the tag selection (--tags nothing, --exclude-tags -) leaves no task to run; \
                    the tags in use are: shop, slow";
    assert!(run.stderr.contains(expected), "expected `{expected}`\n{}", run.context());
    assert_eq!(server.connections(), 0);
    assert_eq!(server.total(), 0);
    assert!(!run.has_report(), "{}", run.context());
}

#[test]
fn tags_that_only_select_a_disabled_taskset_say_so() {
    let server = Server::start();
    let sandbox = tagged_sandbox();
    sandbox.write_config("tasksets:\n  one: 1\n  shop: 0\n");
    // Locust's short flags: -T for --tags, -s for --stop-timeout.
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s", "-s", "1s", "-T", "shop"]);
    run.assert_code(2);
    let expected = "the tag selection (--tags shop, --exclude-tags -) leaves no task to run: the tasks it selects \
                    are in a disabled taskset with weight 0 (shop)";
    assert!(run.stderr.contains(expected), "expected `{expected}`\n{}", run.context());
    assert!(run.stderr.contains("nest configure --set shop=1"), "{}", run.context());
    assert_eq!(server.total(), 0);
}

#[test]
fn short_exclude_tags_flag_works_like_the_long_one() {
    let server = Server::start();
    let run = tagged_sandbox().run(&server.url(), &["-u", "2", "-t", "1s", "-E", "shop,slow"]);
    run.assert_code(0);
    assert!(server.count("GET", "/b") > 0, "{:?}", server.counts());
    assert_eq!(server.total(), server.count("GET", "/b"), "{:?}", server.counts());
    assert_eq!(run.report().total_requests(), server.total(), "{}", run.context());
}

/// A taskset whose task sends `X-VU` to `/work`, at most 20 times a second per VU.
const WORK_WITH_VU: &str = r#"
wait_time(constant(0.05));
task(1, work);

fn work() { client.get("/work", #{ headers: #{ "X-VU": `${vu_id}` } }); }
"#;

#[test]
fn stages_ramp_the_users_up_and_down() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", WORK_WITH_VU);
    let run = sandbox.run(&server.url(), &["--stages", "1s:4,1s:4,1s:0"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(vu_ids(&server.seen()), ids(4), "{}", run.context());
    assert_eq!(report.0["users"], 4, "{}", run.context());
    let max_users = timeline(report).iter().map(|p| p["users"].as_u64().expect("timeline[].users")).max();
    assert_eq!(max_users, Some(4), "timeline {}", report.0["timeline"]);
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
    // The stages last 3 s: the run ends with them, once the ramp-down has stopped the last user (in the last
    // quarter of the last stage, when the curve falls below 1 user), long before any safety limit.
    let duration = duration_s(report);
    assert!((2.5..10.0).contains(&duration), "duration_s {duration}");
}

#[test]
fn a_shape_script_drives_the_users() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", WORK_WITH_VU);
    // Outside the taskset folder, relative to the run's current directory.
    sandbox.write_root(
        "shape.rhai",
        "fn tick(t) { if t < 1.0 { #{ users: 2 } } else if t < 2.0 { #{ users: 3 } } else { () } }\n",
    );
    let run = sandbox.run(&server.url(), &["--shape", "shape.rhai", "-t", "30s"]);
    run.assert_code(0);
    let report = run.report();
    assert_eq!(vu_ids(&server.seen()), ids(3), "{}", run.context());
    let duration = duration_s(report);
    // tick(2.0) returns (): the run ends by itself then, long before -t.
    assert!((2.0..10.0).contains(&duration), "duration_s {duration}\n{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
}

#[test]
fn setup_and_teardown_run_once_around_the_load_and_share_a_value() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "global.rhai",
        r#"
task(1, work);

fn setup() {
    client.get("/setup");
    #{ token: "abc" }
}

fn work() { client.get("/work", #{ headers: #{ "X-Token": `${shared.token}` } }); }

fn teardown() { client.get("/teardown"); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "3", "-t", "1s"]);
    run.assert_code(0);
    let seen = server.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(server.count("GET", "/setup"), 1, "{:?}", server.counts());
    assert_eq!(server.count("GET", "/teardown"), 1, "{:?}", server.counts());
    let work = server.count("GET", "/work");
    assert!(work > 0, "{:?}", server.counts());
    assert_eq!(server.total(), work + 2, "{:?}", server.counts());
    // Recorded in arrival order: setup before every task request, teardown after every one.
    assert_eq!(paths.first(), Some(&"/setup"), "{:?}", &paths[..paths.len().min(5)]);
    assert_eq!(paths.last(), Some(&"/teardown"), "{:?}", &paths[paths.len().saturating_sub(5)..]);
    for s in seen.iter().filter(|s| s.path == "/work") {
        assert_eq!(s.header("x-token"), Some("abc"), "{s:?}");
    }
    let report = run.report();
    assert_eq!(report.requests("GET", "/setup"), 1, "{}", run.context());
    assert_eq!(report.requests("GET", "/teardown"), 1, "{}", run.context());
    assert!(report.errors().is_empty(), "{}", run.context());
}

/// Runs 1 user for 2 s on a taskset with `wait_time(wait)` whose task makes one request answered after `delay`;
/// returns the server's count and `tasks[].pacing_missed`.
fn paced(wait: &str, delay: Duration) -> (u64, u64, Run) {
    let server = Server::builder().route(move |_| Reply::ok().delay(delay)).start();
    let sandbox = Sandbox::new();
    sandbox.write("paced.rhai", &format!("wait_time({wait});\n\n{}", one_request("/tick")));
    let run = sandbox.run(&server.url(), &["-u", "1", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let seen = server.count("GET", "/tick");
    assert_eq!(server.total(), seen, "{:?}", server.counts());
    assert_eq!(report.runs("paced", "hit"), seen, "{}", run.context());
    let missed = tasks_json(report, "paced", "hit")["pacing_missed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no tasks[].pacing_missed\n{}", run.context()));
    (seen, missed, run)
}

/// Tasks start every 0.25 s from t = 0: 8 starts in [0, 2), and a 9th at t = 2.0 if it beats the stop. A slow
/// first start (a debug build on a loaded machine) may shift the cadence and lose one or two at the end: 6..=9.
const PACED_2S: std::ops::RangeInclusive<u64> = 6..=9;

#[test]
fn constant_pacing_sets_the_task_rate() {
    let (seen, missed, run) = paced("constant_pacing(0.25)", Duration::ZERO);
    assert!(PACED_2S.contains(&seen), "{seen} task requests in 2 s at a pacing of 0.25 s\n{}", run.context());
    assert_eq!(missed, 0, "{}", run.context());
}

#[test]
fn constant_throughput_sets_the_task_rate() {
    let (seen, missed, run) = paced("constant_throughput(4)", Duration::ZERO);
    assert!(PACED_2S.contains(&seen), "{seen} task requests in 2 s at 4 tasks/s\n{}", run.context());
    assert_eq!(missed, 0, "{}", run.context());
}

#[test]
fn missed_pacing_is_counted() {
    for wait in ["constant_pacing(0.25)", "constant_throughput(4)"] {
        // Each task takes 400 ms, longer than its 250 ms interval: about 5 tasks in 2 s, every one late.
        let (seen, missed, run) = paced(wait, Duration::from_millis(400));
        assert!((3..=6).contains(&seen), "{wait}: {seen} task requests\n{}", run.context());
        assert!(missed > 0, "{wait}: no pacing_missed\n{}", run.context());
        assert!(missed <= seen, "{wait}: {missed} missed of {seen}\n{}", run.context());
    }
}

#[test]
fn a_passing_threshold_exits_0() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s", "--threshold", "error_rate < 1%"]);
    run.assert_code(0);
    assert!(server.total() > 0);
    assert_eq!(run.report().total_requests(), server.total(), "{}", run.context());
    assert!(run.stdout.contains("PASS  error_rate < 1%"), "{}", run.context());
}

#[test]
fn a_failing_threshold_exits_99_with_the_verdicts() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s", "--threshold", "requests < 1"]);
    run.assert_code(99);
    let seen = server.total();
    assert!(seen > 0);
    assert_eq!(run.report().total_requests(), seen, "{}", run.context());
    assert!(run.stdout.contains("Thresholds"), "{}", run.context());
    assert!(run.stdout.contains(&format!("FAIL  requests < 1  all requests: {seen}")), "{}", run.context());
}

#[test]
fn a_malformed_threshold_exits_2_before_any_request() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s", "--threshold", "p95 << 3ms"]);
    run.assert_code(2);
    let expected = "threshold `p95 << 3ms`: `< 3ms` is not a number (at column 6)";
    assert!(run.stderr.contains(expected), "expected `{expected}`\n{}", run.context());
    assert!(run.stderr.contains("column"), "{}", run.context());
    assert_eq!(server.connections(), 0);
    assert_eq!(server.total(), 0);
    assert!(!run.has_report(), "{}", run.context());
}

#[test]
fn an_abort_threshold_stops_the_run_early() {
    let server = Server::builder().route(|_| Reply::status(500)).start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    sandbox.write_config("thresholds:\n  - { expr: \"error_rate < 1%\", abort: true, delay: 0s }\n");
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "30s"]);
    run.assert_code(99);
    let report = run.report();
    let seen = server.total();
    assert!(seen > 0);
    assert_eq!(report.total_requests(), seen, "{}", run.context());
    assert_eq!(report.total_failures(), seen, "{}", run.context());
    let duration = duration_s(report);
    assert!(duration < 10.0, "the abort threshold did not stop the run: duration_s {duration}\n{}", run.context());
    assert!(run.stdout.contains("FAIL  error_rate < 1% (abort)"), "{}", run.context());
}

#[test]
fn an_abort_threshold_waits_for_its_delay() {
    let server = Server::builder().route(|_| Reply::status(500)).start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", &one_request("/hit"));
    sandbox.write_config("thresholds:\n  - { expr: \"error_rate < 1%\", abort: true, delay: 2s }\n");
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "30s"]);
    run.assert_code(99);
    let report = run.report();
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
    // Every request failed from the first second on, but the threshold only looks from 2 s on.
    let aborted_at = num(&report.0["thresholds"][0], "aborted_at_s");
    assert!((2.0..10.0).contains(&aborted_at), "aborted at {aborted_at} s\n{}", run.context());
    let duration = duration_s(report);
    assert!((2.0..10.0).contains(&duration), "duration_s {duration}\n{}", run.context());
    let said = format!("threshold `error_rate < 1%` breached at {aborted_at:.0}s: stopping the run");
    assert!(run.stderr.contains(&said), "expected `{said}`\n{}", run.context());
    assert!(run.stderr.contains("stopped: an abort threshold was breached"), "{}", run.context());
}
