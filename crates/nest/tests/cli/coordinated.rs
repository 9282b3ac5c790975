//! Coordinated runs end to end: `nest launch local` and `nest coordinate` with `nest run --coordinator`, three
//! segments against one counting loopback server. What the server saw is the truth: the merged totals must equal
//! its counts, `setup()` and `teardown()` reach it once, and a refused or cancelled segment sends it nothing.

use std::process::Command;
use std::time::Duration;

use crate::server::{Reply, Server};
use crate::support::{RUN_LIMIT, Run, Running, Sandbox};

const TOKEN: &str = "cli-test-token-0123456789";

const GLOBALS: &str = r#"
task(1, work);

fn setup() {
    client.get("/setup");
    #{ token: "abc" }
}

fn work() { client.get("/work", #{ headers: #{ "X-Token": `${shared.token}` } }); }

fn teardown() { client.get("/teardown"); }
"#;

/// `nest launch local --segments 3` on the sandbox's tasksets against `host`, one worker each, the merged report
/// in the sandbox's JSON path; `extra` before the run flags.
fn launch(sandbox: &Sandbox, host: &str, extra: &[&str], run_flags: &[&str]) -> Running {
    let json = sandbox.json_path().display().to_string();
    let dir = sandbox.dir().display().to_string();
    let mut args = vec!["launch", "local", "--segments", "3", "--json", &json];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", &dir, "-H", host, "--workers", "1"]);
    args.extend_from_slice(run_flags);
    sandbox.spawn_nest(&args, &[])
}

/// A port on loopback that was free a moment ago (for a coordinator the segments must know in advance).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `nest coordinate --segments N --listen 127.0.0.1:PORT` with the test token and `extra`.
fn coordinate(sandbox: &Sandbox, port: u16, segments: &str, extra: &[&str]) -> Running {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["coordinate", "--segments", segments, "--listen", &listen];
    args.extend_from_slice(extra);
    sandbox.spawn_nest(&args, &[("NEST_COORDINATOR_TOKEN", TOKEN)])
}

/// `nest run --coordinator` as segment `segment` (`I/N`), with `token`.
fn segment(sandbox: &Sandbox, port: u16, host: &str, segment: &str, token: &str, flags: &[&str]) -> Running {
    let url = format!("http://127.0.0.1:{port}");
    let dir = sandbox.dir().display().to_string();
    let mut args = vec!["run", "-f", &dir, "-H", host, "--workers", "1", "-y", "--coordinator", &url];
    args.extend_from_slice(&["--segment", segment]);
    args.extend_from_slice(flags);
    sandbox.spawn_nest(&args, &[("NEST_COORDINATOR_TOKEN", token)])
}

/// Waits (at most 30 s) until segment `index` is registered with the coordinator on `port`: a registration of the
/// same index is then refused as a duplicate. The probe gives another segment count, so that it is refused either
/// way and never takes the seat itself (a refused registration changes nothing).
fn wait_until_registered(port: u16, index: u32) {
    use std::io::{Read, Write};
    let body = format!(r#"{{"index":{index},"segments":999,"plan_hash":"probe","host":"probe","run_id":"probe"}}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let head = format!(
                "POST /v1/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.contains("already registered") {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "segment {index} did not register within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

#[test]
fn three_local_segments_add_up_to_one_run_with_one_setup_and_one_teardown() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("globals.rhai", GLOBALS);
    let run = launch(&sandbox, &server.url(), &[], &["-u", "6", "-t", "2s"]).wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    assert_eq!(server.count("GET", "/setup"), 1, "{:?}", server.counts());
    assert_eq!(server.count("GET", "/teardown"), 1, "{:?}", server.counts());
    let report = run.report();
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
    assert_eq!(report.requests("GET", "/work"), server.count("GET", "/work"));
    assert!(server.count("GET", "/work") > 0);
    // segment 0's setup() value reached every segment's VUs.
    for seen in server.seen().iter().filter(|s| s.path == "/work") {
        assert_eq!(seen.header("x-token"), Some("abc"), "{seen:?}");
    }
    let segments = report.0["run"]["segments"].as_array().expect("run.segments");
    let indices: Vec<u64> = segments.iter().map(|s| s["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, [0, 1, 2], "{}", run.context());
    for s in segments {
        let skew = s["start_skew_ms"].as_f64().unwrap();
        assert!(skew.abs() < 1000.0, "every segment started at the common instant: {s}");
    }
    assert!(report.0["run"].get("incomplete").is_none(), "{}", run.context());
    assert_eq!(report.0["users"].as_u64(), Some(6), "the segments' users add up to the plan's");
    assert!(
        run.stdout.contains("[0]") && run.stdout.contains("[2]"),
        "children's output is prefixed\n{}",
        run.context()
    );
}

#[test]
fn a_threshold_breached_on_the_merged_figures_exits_99() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); }\n");
    let run = launch(&sandbox, &server.url(), &["--threshold", "requests > 1000000000"], &["-u", "3", "-t", "1s"])
        .wait(RUN_LIMIT, &sandbox);
    run.assert_code(99);
    let report = run.report();
    assert_eq!(report.total_requests(), server.total(), "{}", run.context());
    assert_eq!(report.0["thresholds"][0]["passed"], false, "{}", run.context());
}

#[test]
fn an_abort_threshold_on_the_merged_figures_stops_every_segment() {
    let server = Server::builder().route(|_| Reply::status(500)).start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); sleep(0.01); }\n");
    let run = launch(&sandbox, &server.url(), &["--abort-threshold", "error_rate < 1%"], &["-u", "3", "-t", "60s"])
        .wait(RUN_LIMIT, &sandbox);
    run.assert_code(99);
    let report = run.report();
    assert!(report.0["duration_s"].as_f64().unwrap() < 30.0, "stopped long before 60 s\n{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "every segment stopped and handed in\n{}", run.context());
    assert_eq!(report.0["run"]["segments"].as_array().map(Vec::len), Some(3), "{}", run.context());
    assert!(report.0["thresholds"][0]["aborted_at_s"].is_number(), "{}", run.context());
    assert!(all(&run).contains("breached"), "{}", run.context());
}

/// The children of a process, by the `--segment` they were started with.
fn child_with_segment(parent: u32, segment: &str) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().filter_map(|p| p.parse().ok()).find(|pid: &u32| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split(|&b| b == 0).any(|arg| arg == segment.as_bytes())
    })
}

#[test]
fn a_killed_segment_makes_the_run_incomplete_and_names_it() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); sleep(0.01); }\n");
    let running = launch(&sandbox, &server.url(), &[], &["-u", "3", "-t", "6s"]);
    assert!(server.wait_for_total(30, Duration::from_secs(30)), "no load within 30 s");
    let victim = child_with_segment(running.pid(), "1/3").expect("segment 1's process");
    assert!(Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap().success());
    let run = running.wait(RUN_LIMIT, &sandbox);
    run.assert_code(4);
    let incomplete = &run.report().0["run"]["incomplete"];
    assert_eq!(incomplete["missing"][0]["index"], 1, "{}", run.context());
    assert_eq!(incomplete["missing"][0]["reason"], "lost", "{}", run.context());
    assert!(incomplete["missing_pct"].as_f64().unwrap() > 30.0, "{incomplete}");
    assert!(run.stdout.contains("segment 1 lost"), "{}", run.context());
    // The survivors' requests are in the report; the lost segment's are not.
    assert!(run.report().total_requests() < server.total(), "{}", run.context());
}

#[test]
fn a_segment_that_never_starts_is_named_by_the_ready_timeout() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); }\n");
    let port = free_port();
    let coordinator = coordinate(&sandbox, port, "3", &["--ready-timeout", "5s"]);
    let zero = segment(&sandbox, port, &server.url(), "0/3", TOKEN, &["-u", "3", "-t", "1s"]);
    let two = segment(&sandbox, port, &server.url(), "2/3", TOKEN, &["-u", "3", "-t", "1s"]);
    let coordinator = coordinator.wait(RUN_LIMIT, &sandbox);
    coordinator.assert_code(4);
    assert!(all(&coordinator).contains("missing segment 1 (never registered)"), "{}", coordinator.context());
    for seg in [zero, two] {
        let run = seg.wait(RUN_LIMIT, &sandbox);
        run.assert_code(4);
        assert!(run.stderr.contains("cancelled"), "{}", run.context());
    }
    assert_eq!(server.total(), 0, "nothing was sent: {:?}", server.counts());
}

#[test]
fn another_plan_a_second_process_for_an_index_and_a_wrong_token_are_refused() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); }\n");
    let port = free_port();
    let coordinator = coordinate(&sandbox, port, "2", &["--ready-timeout", "60s"]);
    let first = segment(&sandbox, port, &server.url(), "0/2", TOKEN, &["-u", "2", "-t", "1s"]);
    wait_until_registered(port, 0);
    let other_plan = segment(&sandbox, port, &server.url(), "1/2", TOKEN, &["-u", "3", "-t", "1s"]);
    let run = other_plan.wait(RUN_LIMIT, &sandbox);
    run.assert_code(5);
    assert!(run.stderr.contains("refused by the coordinator") && run.stderr.contains("plan hash"), "{}", run.context());
    let duplicate = segment(&sandbox, port, &server.url(), "0/2", TOKEN, &["-u", "2", "-t", "1s"]);
    let run = duplicate.wait(RUN_LIMIT, &sandbox);
    run.assert_code(5);
    assert!(run.stderr.contains("segment 0 is already registered"), "{}", run.context());
    let stranger = segment(&sandbox, port, &server.url(), "1/2", "not-the-token-0123456789", &["-u", "2", "-t", "1s"]);
    let run = stranger.wait(RUN_LIMIT, &sandbox);
    run.assert_code(5);
    assert!(run.stderr.contains("NEST_COORDINATOR_TOKEN"), "{}", run.context());
    // Segment 1 never joined: stopping the coordinator cancels the run, and nothing was sent.
    assert!(Command::new("kill").args(["-TERM", &coordinator.pid().to_string()]).status().unwrap().success());
    let coordinator = coordinator.wait(RUN_LIMIT, &sandbox);
    coordinator.assert_code(4);
    // (Segment 0 may still be building its workers, so not ready either.)
    let out = all(&coordinator);
    let named = out.contains("(segment 1 was not ready)") || out.contains("(segments 0, 1 were not ready)");
    assert!(named, "{}", coordinator.context());
    first.wait(RUN_LIMIT, &sandbox).assert_code(4);
    assert_eq!(server.total(), 0, "{:?}", server.counts());
}

#[test]
fn sigterm_to_the_launcher_stops_every_segment_and_still_writes_the_merged_report() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); sleep(0.01); }\n");
    let running = launch(&sandbox, &server.url(), &[], &["-u", "3", "-t", "60s"]);
    assert!(server.wait_for_total(30, Duration::from_secs(30)), "no load within 30 s");
    assert!(Command::new("kill").args(["-TERM", &running.pid().to_string()]).status().unwrap().success());
    let run = running.wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    let report = run.report();
    assert!(report.0["duration_s"].as_f64().unwrap() < 30.0, "{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "every segment stopped and handed in\n{}", run.context());
    assert_eq!(report.0["run"]["segments"].as_array().map(Vec::len), Some(3), "{}", run.context());
}

#[test]
fn a_segment_that_goes_silent_is_lost_after_lost_after_and_the_others_finish() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); sleep(0.01); }\n");
    let port = free_port();
    let json = sandbox.json_path().display().to_string();
    let coordinator = coordinate(&sandbox, port, "2", &["--lost-after", "2s", "--json", &json]);
    let zero = segment(&sandbox, port, &server.url(), "0/2", TOKEN, &["-u", "2", "-t", "5s"]);
    let one = segment(&sandbox, port, &server.url(), "1/2", TOKEN, &["-u", "2", "-t", "5s"]);
    assert!(server.wait_for_total(20, Duration::from_secs(30)), "no load within 30 s");
    // Frozen, segment 1 neither pushes nor exits: only its silence tells.
    assert!(Command::new("kill").args(["-STOP", &one.pid().to_string()]).status().unwrap().success());
    let run = coordinator.wait(RUN_LIMIT, &sandbox);
    assert!(Command::new("kill").args(["-KILL", &one.pid().to_string()]).status().unwrap().success());
    let _ = one.wait(RUN_LIMIT, &sandbox);
    run.assert_code(4);
    assert!(run.stdout.contains("segment 1 lost") && run.stdout.contains("silent for"), "{}", run.context());
    let incomplete = &run.report().0["run"]["incomplete"];
    assert_eq!(incomplete["missing"][0]["index"], 1, "{}", run.context());
    // Segment 0 ran to its end and handed in; its teardown was not held up by the lost one.
    zero.wait(RUN_LIMIT, &sandbox).assert_code(0);
    assert_eq!(run.report().0["run"]["segments"].as_array().map(Vec::len), Some(1), "{}", run.context());
}

#[test]
fn a_coordinator_without_a_segment_or_with_a_start_time_is_a_usage_error() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); }\n");
    let dir = sandbox.dir().display().to_string();
    let base = ["run", "-f", &dir, "-H", &server.url(), "-t", "1s", "-y"];
    let env = [("NEST_COORDINATOR_TOKEN", TOKEN), ("NEST_COORDINATOR", "http://127.0.0.1:9")];
    let run = sandbox.nest(&base, &env);
    run.assert_code(2);
    assert!(run.stderr.contains("--coordinator needs --segment I/N"), "{}", run.context());
    let run = sandbox.nest(&[&base[..], &["--segment", "0/2", "--start-at", "2030-01-01T00:00:00Z"]].concat(), &env);
    run.assert_code(2);
    assert!(run.stderr.contains("--coordinator gives the start"), "{}", run.context());
    assert_eq!(server.total(), 0);
    // An empty NEST_COORDINATOR is unset: a plain run.
    sandbox.nest(&base, &[("NEST_COORDINATOR", " ")]).assert_code(0);
    assert!(server.total() > 0);
}
