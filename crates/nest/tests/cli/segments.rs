//! A plan split over three `nest run --segment I/3` processes started together with `--start-at`, against one
//! counting server, then `nest merge` of their reports: the server's count is the merged total, no data row is
//! claimed by two segments, the mix and the latency figures are those of one process running the whole plan; a
//! late segment sends nothing, an incomplete set exits 4 and says which segment is missing, another plan is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::server::{Reply, Server};
use crate::support::{RUN_LIMIT, Run, Sandbox};

/// Each VU claims one account for its whole life (never released): a row claimed twice would be seen with two VUs.
/// `/a` (weight 3) answers in 20 ms, `/b` (weight 1) in 60 ms.
const SCRIPT: &str = r#"
wait_time(constant(0.005));
task(3, a);
task(1, b);
fn on_start() { user.account = data.claim("accounts"); }
fn a() { client.get(`/a?u=${user.account.name}`, #{ name: "/a", headers: #{ "X-VU": `${vu_id}` } }); }
fn b() { client.get(`/b?u=${user.account.name}`, #{ name: "/b", headers: #{ "X-VU": `${vu_id}` } }); }
"#;

const USERS: usize = 9;

fn shop() -> Sandbox {
    let sandbox = Sandbox::new();
    let mut csv = String::from("name\n");
    for i in 0..USERS {
        csv.push_str(&format!("account{i}\n"));
    }
    sandbox.write("shop.rhai", SCRIPT).write("_data/accounts.csv", &csv);
    sandbox
}

fn slow_server() -> Server {
    Server::builder()
        .record()
        .route(|seen| {
            let ms = if seen.path == "/b" { 60 } else { 20 };
            Reply::ok().delay(Duration::from_millis(ms))
        })
        .start()
}

/// A start time `secs` from now, as Unix seconds with milliseconds (what a launcher would pass).
fn start_at(secs: u64) -> String {
    let at = SystemTime::now() + Duration::from_secs(secs);
    format!("{:.3}", at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64())
}

/// `nest run` arguments of the plan, writing its report to `out/NAME.json`.
fn run_args(sandbox: &Sandbox, host: &str, name: &str, load: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "-y", "--workers", "2", "--seed", "7", "-H", host, "--taskset-dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(sandbox.dir().display().to_string());
    args.extend(["--json".into(), sandbox.root().join(format!("out/{name}.json")).display().to_string()]);
    args.extend(load.iter().map(|s| s.to_string()));
    args
}

/// Runs the segments `0..n` of the plan as separate processes, all started at once, to their ends.
fn run_segments(sandbox: &Sandbox, host: &str, n: u32, load: &[&str]) -> Vec<(Run, Value)> {
    let at = start_at(4);
    let running: Vec<_> = (0..n)
        .map(|i| {
            let mut args = run_args(sandbox, host, &format!("s{i}"), load);
            // A generous tolerance: a loaded machine must not make this test late (lateness has its own test).
            args.extend(["--start-at".into(), at.clone(), "--late-tolerance".into(), "60s".into()]);
            sandbox.spawn_nest(&args, &[("NEST_SEGMENT", &format!("{i}/{n}"))])
        })
        .collect();
    running
        .into_iter()
        .enumerate()
        .map(|(i, process)| {
            let run = process.wait(RUN_LIMIT, sandbox);
            assert_eq!(run.code, Some(0), "segment {i}: {}", run.context());
            (run, read(sandbox, &format!("out/s{i}.json")))
        })
        .collect()
}

fn read(sandbox: &Sandbox, relative: &str) -> Value {
    let text = std::fs::read_to_string(sandbox.root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn merge(sandbox: &Sandbox, files: &[&str]) -> Run {
    let mut args = vec!["merge".to_owned()];
    args.extend(files.iter().map(|f| format!("out/{f}.json")));
    args.extend(["--json".into(), "out/merged.json".into()]);
    sandbox.nest(&args, &[])
}

fn requests(report: &Value, name: &str) -> u64 {
    let rows = report["requests"].as_array().unwrap();
    rows.iter().filter(|r| r["name"] == name).map(|r| r["requests"].as_u64().unwrap()).sum()
}

/// A histogram's recorded buckets: (value, count).
fn buckets(encoded: &str) -> Vec<(u64, u64)> {
    let histogram = nest_core::stats::decode_histogram(encoded).unwrap();
    histogram.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

fn ms(report: &Value, percentile: &str) -> f64 {
    report["totals"]["latency_ms"][percentile].as_f64().unwrap()
}

#[test]
fn three_segments_add_up_to_one_run_of_the_whole_plan() {
    let (server, sandbox) = (slow_server(), shop());
    let load = ["-u", "9", "--iterations", "120"];
    let segments = run_segments(&sandbox, &server.url(), 3, &load);
    let merged = merge(&sandbox, &["s0", "s1", "s2"]);
    assert_eq!(merged.code, Some(0), "{}", merged.context());
    let merged = read(&sandbox, "out/merged.json");

    // The server saw exactly the merged total, and the plan's iterations.
    assert_eq!(server.total(), 120);
    assert_eq!(merged["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(requests(&merged, "/a"), server.count("GET", "/a"));
    assert_eq!(merged["users"].as_u64(), Some(USERS as u64), "each segment counts its own users");

    // Each account was claimed by one VU only, across the three processes.
    let mut vus_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for seen in server.seen() {
        let account = seen.query_pairs().into_iter().find(|(k, _)| k == "u").unwrap().1;
        vus_of.entry(account).or_default().insert(seen.vu().unwrap().to_owned());
    }
    assert!(vus_of.values().all(|vus| vus.len() == 1), "an account held by two VUs: {vus_of:?}");
    let vus: BTreeSet<&String> = vus_of.values().flatten().collect();
    assert_eq!(vus.len(), USERS, "every global VU ran once, in one segment: {vus_of:?}");

    // One identity: one plan hash and run id (derived from the plan and --start-at), each index once.
    let ids: Vec<&Value> = segments.iter().map(|(_, r)| &r["run"]["identity"]).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(id["segment"], serde_json::json!({"index": i, "count": 3}));
        assert_eq!((&id["plan_hash"], &id["run_id"]), (&ids[0]["plan_hash"], &ids[0]["run_id"]));
        assert_eq!(id["intended_start"], ids[0]["intended_start"], "one common start");
        let skew = id["start_skew_ms"].as_f64().unwrap();
        assert!(skew >= 0.0, "{id}");
        assert_eq!(id["actual_start"].as_f64().unwrap(), id["intended_start"].as_f64().unwrap() + skew / 1e3);
    }
    let listed: Vec<u64> =
        merged["run"]["segments"].as_array().unwrap().iter().map(|s| s["index"].as_u64().unwrap()).collect();
    assert_eq!(listed, [0, 1, 2]);
    assert!(merged["run"].get("incomplete").is_none(), "{}", merged["run"]);

    // The merged histogram is the one a single process recording every sample would hold, bucket for bucket.
    let histogram = |r: &Value| nest_core::stats::decode_histogram(r["totals"]["histogram"].as_str().unwrap()).unwrap();
    // (A decoded histogram is sized to its own values: the sum must be free to grow.)
    let mut all = histogram(&segments[0].1);
    all.auto(true);
    for (_, report) in &segments[1..] {
        all.add(histogram(report)).unwrap();
    }
    let all_encoded = nest_core::stats::encode_histogram(&all);
    assert_eq!(buckets(merged["totals"]["histogram"].as_str().unwrap()), buckets(&all_encoded));
    assert_eq!(all.len(), 120);
    // Its percentiles show the server's latencies: 20 ms for three requests in four, 60 ms for the others.
    assert!(ms(&merged, "p50") >= 20.0 && ms(&merged, "p90") >= 60.0, "{}", merged["totals"]);
    let p90_us = all.value_at_quantile(0.9) as f64;
    assert!((ms(&merged, "p90") * 1e3 - p90_us).abs() <= p90_us / 500.0, "{} vs {p90_us} µs", ms(&merged, "p90"));

    // One process running the whole plan: the same plan hash, the same mix within sampling noise.
    let (whole_server, whole_box) = (slow_server(), shop());
    let whole = whole_box.nest(&run_args(&whole_box, &whole_server.url(), "whole", &load), &[]);
    assert_eq!(whole.code, Some(0), "{}", whole.context());
    let whole = read(&whole_box, "out/whole.json");
    assert_eq!(whole["run"]["identity"]["plan_hash"], ids[0]["plan_hash"], "the segment is not in the hash");
    let share = |r: &Value| requests(r, "/a") as f64 / r["totals"]["requests"].as_f64().unwrap();
    assert!((share(&merged) - share(&whole)).abs() < 0.12, "/a: {} vs {}", share(&merged), share(&whole));
    assert_eq!(whole_server.total(), 120);
}

#[test]
fn a_run_time_split_adds_up_and_an_incomplete_set_exits_4() {
    let (server, sandbox) = (slow_server(), shop());
    run_segments(&sandbox, &server.url(), 3, &["-u", "9", "-t", "2s"]);
    let merged = merge(&sandbox, &["s0", "s1", "s2"]);
    assert_eq!(merged.code, Some(0), "{}", merged.context());
    let total = read(&sandbox, "out/merged.json")["totals"]["requests"].as_u64();
    assert!(server.total() > 0);
    assert_eq!(total, Some(server.total()));

    // Two of three: merged anyway, marked incomplete, exit 4.
    let partial = merge(&sandbox, &["s0", "s2"]);
    assert_eq!(partial.code, Some(4), "{}", partial.context());
    assert!(
        partial.stderr.contains("incomplete: segment 1 of 3 missing (33.3% of the users)"),
        "{}",
        partial.context()
    );
    let report = read(&sandbox, "out/merged.json");
    let incomplete = &report["run"]["incomplete"];
    assert_eq!(incomplete["missing"], serde_json::json!([{"index": 1, "reason": "missing"}]), "{incomplete}");
    assert_eq!(incomplete["missing_users"].as_u64(), Some(3));
    assert_eq!(report["totals"]["requests"], {
        let (s0, s2) = (read(&sandbox, "out/s0.json"), read(&sandbox, "out/s2.json"));
        serde_json::json!(s0["totals"]["requests"].as_u64().unwrap() + s2["totals"]["requests"].as_u64().unwrap())
    });

    // One file alone is a set too: two thirds missing.
    let alone = merge(&sandbox, &["s1"]);
    assert_eq!(alone.code, Some(4), "{}", alone.context());
    assert!(
        alone.stderr.contains("incomplete: segments 0, 2 of 3 missing (66.7% of the users)"),
        "{}",
        alone.context()
    );

    // Segment 1 of another plan (one more user) is refused, by name.
    let other =
        sandbox.nest(&run_args(&sandbox, &server.url(), "other", &["-u", "10", "-t", "1s", "--segment", "1/3"]), &[]);
    assert_eq!(other.code, Some(0), "{}", other.context());
    let mixed = merge(&sandbox, &["s0", "other", "s2"]);
    assert_eq!(mixed.code, Some(2), "{}", mixed.context());
    assert!(
        mixed.stderr.contains("out/other.json was not run with the same plan as out/s0.json: the plan hashes differ"),
        "{}",
        mixed.context()
    );
}

#[test]
fn a_late_segment_sends_nothing_and_says_by_how_much() {
    let (server, sandbox) = (slow_server(), shop());
    let ten_ago = SystemTime::now() - Duration::from_secs(10);
    let at = humantime::format_rfc3339_millis(ten_ago).to_string();
    let mut args = run_args(&sandbox, &server.url(), "late", &["-u", "3", "-t", "5s", "--segment", "0/2"]);
    args.extend(["--start-at".into(), at, "--late-tolerance".into(), "1s".into()]);
    let run = sandbox.nest(&args, &[]);
    assert_eq!(run.code, Some(3), "{}", run.context());
    assert!(run.stderr.contains("error: late: ready 1"), "ten seconds late: {}", run.context());
    assert!(run.stderr.contains("s after the start time (tolerance 1.000 s): nothing was sent"), "{}", run.context());
    assert_eq!(server.total(), 0, "a late segment sends nothing");
    assert!(!sandbox.root().join("out/late.json").exists());
}

#[test]
fn a_bad_segment_is_a_usage_error_and_an_empty_variable_is_unset() {
    let sandbox = shop();
    for bad in ["3/3", "1/0", "one/3"] {
        let run = sandbox.nest(&["run", "-H", "http://127.0.0.1:9", "--segment", bad], &[]);
        assert_eq!(run.code, Some(2), "{}", run.context());
        assert!(run.stderr.contains("give I/N with 0 <= I < N"), "{}", run.context());
        let run = sandbox.nest(&["run", "-H", "http://127.0.0.1:9"], &[("NEST_SEGMENT", bad)]);
        assert_eq!(run.code, Some(2), "{}", run.context());
        assert!(
            run.stderr.contains(&format!("error: NEST_SEGMENT={bad}: `{bad}` is not a segment")),
            "{}",
            run.context()
        );
    }
    let run = sandbox.nest(&["run", "-H", "http://127.0.0.1:9"], &[("NEST_START_AT", "soon")]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert!(run.stderr.contains("error: NEST_START_AT=soon: `soon` is not a time"), "{}", run.context());

    let server = slow_server();
    let mut args = run_args(&sandbox, &server.url(), "whole", &["-u", "1", "--iterations", "2"]);
    args.push("--run-id=given".into());
    let empty = [("NEST_SEGMENT", ""), ("NEST_START_AT", ""), ("NEST_LATE_TOLERANCE", ""), ("NEST_RUN_ID", "")];
    let run = sandbox.nest(&args, &empty);
    assert_eq!(run.code, Some(0), "{}", run.context());
    assert_eq!(server.total(), 2);
    let id = &read(&sandbox, "out/whole.json")["run"]["identity"];
    assert_eq!(
        (&id["segment"], &id["run_id"]),
        (&serde_json::json!({"index": 0, "count": 1}), &serde_json::json!("given"))
    );
}
