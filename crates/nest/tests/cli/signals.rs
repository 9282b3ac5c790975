//! Stopping on a signal: a SIGINT, SIGTERM or SIGHUP mid-run is a graceful stop that still writes the JSON report,
//! and a stop while `setup()` or `teardown()` waits on a stalled server is honoured within `--stop-timeout`. A
//! terminal that really closes (its writes fail from then on) is one of them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// util-linux `script` on PATH, or `false` after printing why the test is skipped (a failure with
/// `NEST_REQUIRE_TOOLS=1`, as in CI).
fn have_script() -> bool {
    let found = Command::new("script").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        let why = "util-linux `script` is not installed (`apt-get install -y bsdutils`)";
        assert!(std::env::var("NEST_REQUIRE_TOOLS").as_deref() != Ok("1"), "NEST_REQUIRE_TOOLS=1 but {why}");
        eprintln!("skipped: {why}");
    }
    found
}

fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// nest run in a real terminal (a PTY made by `script`), whose far end is then closed for good: the kernel sends
/// SIGHUP and every later write to the terminal fails. nest must still stop within `--stop-timeout` and write the
/// report with the requests the server saw. Before the fix the stop message panicked in the signal watcher, the run
/// went on to its 60 s, and the failed summary print then skipped the report.
#[test]
fn a_really_closed_terminal_stops_the_run_and_the_report_is_written() {
    if !have_script() {
        return;
    }
    let server = Server::builder().route(|_| Reply::ok().delay(Duration::from_millis(30))).start();
    let sandbox = Sandbox::new();
    sandbox.write("slow.rhai", "task(1, slow);\n\nfn slow() { client.get(\"/slow\"); }\n");
    let (dir, json, pid_file) =
        (sandbox.dir().display().to_string(), sandbox.json_path(), sandbox.root().join("nest.pid"));
    let url = server.url();
    let nest = [env!("CARGO_BIN_EXE_nest"), "run", "--taskset-dir", &dir, "-H", &url, "--workers", "2", "-y"];
    let rest = ["-u", "4", "-t", "60s", "--stop-timeout", "2s", "--json", json.to_str().unwrap()];
    let words: Vec<String> = nest.iter().chain(&rest).map(|w| sh_quote(w)).collect();
    // `exec`: nest itself is the terminal's session leader, the process the hangup is sent to.
    let line = format!("echo $$ > {}; exec {}", sh_quote(pid_file.to_str().unwrap()), words.join(" "));
    let mut terminal = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(sandbox.root())
        .env("TERM", "xterm")
        .env_remove("NEST_THRESHOLDS")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script");
    let ready = server.wait_for_total(20, Duration::from_secs(30));
    let pid = std::fs::read_to_string(&pid_file).expect("nest's pid").trim().to_owned();
    assert!(ready, "nest sent only {} requests in 30 s", server.total());
    // Killing `script` closes the terminal's master end: a real hangup, as when a terminal window is closed.
    terminal.kill().expect("kill script");
    terminal.wait().unwrap();
    let hung_up = Instant::now();
    while alive(&pid) && hung_up.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_after = hung_up.elapsed();
    if alive(&pid) {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("nest still runs {stopped_after:?} after its terminal closed");
    }
    assert!(stopped_after < Duration::from_secs(12), "stopped {stopped_after:?} after the hangup (stop timeout 2 s)");
    let text = std::fs::read_to_string(&json).expect("the JSON report is written after a hangup");
    let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let seen = server.count("GET", "/slow");
    assert_eq!(report["totals"]["requests"].as_u64(), Some(seen), "the report counts what the server saw");
    assert_eq!(server.total(), seen);
    assert!(report["duration_s"].as_f64().expect("duration_s") < 30.0, "stopped early, not at the run time");
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
