//! Stopping on a signal: a SIGINT, SIGTERM or SIGHUP mid-run is a graceful stop that still writes the JSON report,
//! and a stop while `setup()` or `teardown()` waits on a stalled server is honoured within `--stop-timeout`.

use std::process::Command;
use std::time::Duration;

use crate::server::{Reply, Server};
use crate::support::{RUN_LIMIT, Sandbox};

/// A closed terminal or a dropped SSH session sends SIGHUP: the same graceful stop as SIGTERM, summary and report.
#[test]
fn sighup_is_a_graceful_stop_with_a_report() {
    let server = Server::builder().route(|_| Reply::ok().delay(Duration::from_millis(30))).start();
    let sandbox = Sandbox::new();
    sandbox.write("slow.rhai", "task(1, slow);\n\nfn slow() { client.get(\"/slow\"); }\n");
    let running = sandbox.spawn(&server.url(), &["-u", "4", "-t", "60s"]);
    assert!(server.wait_for_total(20, Duration::from_secs(30)), "nest sent only {} requests in 30 s", server.total());
    let kill = Command::new("kill").args(["-HUP", &running.pid().to_string()]).status().expect("run kill");
    assert!(kill.success());
    let run = running.wait(RUN_LIMIT, &sandbox);
    assert_ne!(run.code, None, "killed by SIGHUP instead of stopping\n{}", run.context());
    assert!(run.stderr.contains("stopping"), "{}", run.context());
    assert!(run.stdout.contains("/slow"), "the summary is printed\n{}", run.context());
    let report = run.report();
    assert_eq!(report.total_requests(), server.count("GET", "/slow"), "{}", run.context());
    assert!(report.0["duration_s"].as_f64().expect("duration_s") < 60.0);
}

#[test]
fn sigint_mid_run_still_writes_the_json_report() {
    // Slow replies, so that requests are in flight when the signal comes.
    let server = Server::builder().route(|_| Reply::ok().delay(Duration::from_millis(30))).start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "slow.rhai",
        r#"
task(1, slow);

fn slow() { client.get("/slow"); }
"#,
    );
    let running = sandbox.spawn(&server.url(), &["-u", "4", "-t", "60s"]);
    assert!(server.wait_for_total(20, Duration::from_secs(30)), "nest sent only {} requests in 30 s", server.total());
    let kill = Command::new("kill").args(["-INT", &running.pid().to_string()]).status().expect("run kill");
    assert!(kill.success());
    let run = running.wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    assert!(run.stderr.contains("stopping"), "{}", run.context());
    let report = run.report();
    // Requests in flight at the signal finished and were counted on both sides.
    let seen = server.count("GET", "/slow");
    assert!(seen >= 20);
    assert_eq!(report.total_requests(), seen, "{}", run.context());
    assert_eq!(server.total(), seen);
    assert_eq!(report.total_failures(), 0, "{}", run.context());
    assert_eq!(report.runs("slow", "slow"), seen);
    let duration = report.0["duration_s"].as_f64().expect("duration_s");
    assert!(duration < 60.0, "duration_s {duration}");
    // Written atomically: nothing but the report is left in its folder.
    let out = sandbox.json_path().parent().unwrap().to_path_buf();
    let files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, ["r.json"]);
}

/// A server that never answers `/stall` (within any test), and answers everything else at once.
fn stalling_server() -> Server {
    Server::builder()
        .route(|seen| if seen.path == "/stall" { Reply::ok().delay(Duration::from_secs(120)) } else { Reply::ok() })
        .start()
}

fn interrupt(running: &crate::support::Running) {
    let kill = Command::new("kill").args(["-INT", &running.pid().to_string()]).status().expect("run kill");
    assert!(kill.success());
}

/// One Ctrl-C while `setup()` waits on a stalled server: `--stop-timeout` later its call is cancelled, the load
/// never starts, and the report says so with the setup's time as the duration.
#[test]
fn a_stop_during_a_stalled_setup_honours_the_stop_timeout() {
    let server = stalling_server();
    let sandbox = Sandbox::new();
    sandbox.write(
        "stall.rhai",
        "task(1, work);\n\nfn setup() { client.get(\"/stall\"); }\n\nfn work() { client.get(\"/work\"); }\n",
    );
    let started = std::time::Instant::now();
    let running = sandbox.spawn(&server.url(), &["-u", "2", "-t", "60s", "--stop-timeout", "1s"]);
    assert!(server.wait_for_total(1, Duration::from_secs(30)), "setup() never called the server");
    interrupt(&running);
    // Before the fix this waited for the request timeout (60 s) whatever the stop timeout.
    let run = running.wait(Duration::from_secs(30), &sandbox);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_ne!(run.code, Some(101), "{}", run.context());
    assert!(run.stderr.contains("stopped during setup()"), "{}", run.context());
    assert_eq!(server.count("GET", "/work"), 0, "the load did not start: {:?}", server.counts());
    let report = run.report();
    assert_eq!(report.0["stopped_in"], "setup", "{}", run.context());
    // The cancelled call is not counted, so no request and no rate out of nothing.
    assert_eq!(report.total_requests(), 0, "{}", run.context());
    assert_eq!(report.0["totals"]["rps"].as_f64(), Some(0.0));
    let duration = report.0["duration_s"].as_f64().expect("duration_s");
    assert!(duration >= 1.0, "the setup ran at least the stop timeout: duration_s {duration}");
}

/// The same for `teardown()`: the load's figures are kept, the teardown call is cancelled after the stop timeout.
#[test]
fn a_stop_during_a_stalled_teardown_honours_the_stop_timeout() {
    let server = stalling_server();
    let sandbox = Sandbox::new();
    sandbox.write(
        "stall.rhai",
        "task(1, work);\n\nfn work() { client.get(\"/work\"); sleep(0.05); }\n\nfn teardown() { client.get(\"/stall\"); }\n",
    );
    let running = sandbox.spawn(&server.url(), &["-u", "2", "-t", "1s", "--stop-timeout", "1s"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.count("GET", "/stall") == 0 {
        assert!(std::time::Instant::now() < deadline, "teardown() never called the server: {:?}", server.counts());
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&running);
    let run = running.wait(Duration::from_secs(30), &sandbox);
    assert_ne!(run.code, Some(101), "{}", run.context());
    assert!(run.stderr.contains("stopped during teardown()"), "{}", run.context());
    let report = run.report();
    assert_eq!(report.0["stopped_in"], "teardown", "{}", run.context());
    let work = server.count("GET", "/work");
    assert!(work > 0);
    assert_eq!(report.requests("GET", "/work"), work, "{}", run.context());
    assert_eq!(report.total_requests(), work, "the cancelled teardown call is not counted");
    let duration = report.0["duration_s"].as_f64().expect("duration_s");
    assert!((1.0..5.0).contains(&duration), "the load's time, teardown excluded: duration_s {duration}");
}
