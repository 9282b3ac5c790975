//! Stopping on a signal: a SIGINT mid-run is a graceful stop that still writes the JSON report.

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
