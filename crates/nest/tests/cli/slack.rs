//! `nest slack serve` and `--notify`: every refused request runs nothing and never reaches the target; a signed
//! `/nest run` is acknowledged at once, loads the target, and posts one result whose totals are the target's count;
//! a second command is answered busy; `/nest stop` ends a run early and its result is still posted; presets refuse
//! what they do not allow; `--notify` retries a failing webhook and never changes the exit code.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::server::{Reply, Seen, Server};
use crate::support::{RUN_LIMIT, Running, Sandbox};

const SECRET: &str = "test-signing-secret";

/// A port on loopback that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A sandbox with one taskset and a `smoke` preset against `target`, answering to a fake Slack on loopback.
fn project(target: &Server, port: u16) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", "task(1, work);\n\nfn work() { client.get(\"/work\"); sleep(0.05); }\n");
    sandbox.write_config(&format!(
        "taskset_dir: tasksets\nhost: {}\nworkers: 1\nslack:\n  response_url_hosts: [127.0.0.1]\n  \
         report_base_url: http://127.0.0.1:{port}/reports/\n  presets:\n    smoke:\n      settings:\n        \
         users: 2\n        run_time: 30s\n        stop_timeout: 2s\n      overrides:\n        users: 10\n        \
         run_time: 2m\n",
        target.url()
    ));
    sandbox
}

/// `nest slack serve` on `port`, once it accepts connections.
fn serve(sandbox: &Sandbox, port: u16) -> Running {
    let listen = format!("127.0.0.1:{port}");
    let running = sandbox.spawn_nest(&["slack", "serve", "--listen", &listen], &[("SLACK_SIGNING_SECRET", SECRET)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nest slack serve did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

fn now() -> String {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string()
}

/// A slash command's body, as Slack sends it.
fn command(text: &str, response_url: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "unused")
        .append_pair("team_id", "T1")
        .append_pair("channel_id", "C1")
        .append_pair("channel_name", "load")
        .append_pair("user_id", "U1")
        .append_pair("user_name", "roadrunner")
        .append_pair("command", "/nest")
        .append_pair("text", text)
        .append_pair("response_url", response_url)
        .finish()
}

/// The headers Slack would send with `body` at `timestamp`.
fn signed(timestamp: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
        ("X-Slack-Request-Timestamp".into(), timestamp.into()),
        ("X-Slack-Signature".into(), nest_slack::verify::sign(SECRET.as_bytes(), timestamp, body)),
    ]
}

/// POSTs to `/slack/commands`; the status and the body of the answer.
fn post(port: u16, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "POST /slack/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A server refusing a large body may close before reading it all: the answer still counts.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no answer: {answer}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A signed command: the status and the reply's text.
fn send(port: u16, text: &str, response_url: &str) -> (u16, String, Value) {
    let body = command(text, response_url);
    let (status, answer) = post(port, &signed(&now(), body.as_bytes()), body.as_bytes());
    let reply: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    (status, reply["text"].as_str().unwrap_or("").to_owned(), reply)
}

/// The number in the result message's field `name` (`*Requests*\n123`).
fn field(message: &Value, name: &str) -> u64 {
    let fields = message["blocks"].as_array().unwrap().iter().filter_map(|b| b["fields"].as_array()).flatten();
    let text = fields
        .filter_map(|f| f["text"].as_str())
        .find_map(|t| t.strip_prefix(&format!("*{name}*\n")))
        .unwrap_or_else(|| panic!("no field {name} in {message}"));
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn messages(slack: &Server) -> Vec<Value> {
    slack.seen().iter().map(|s: &Seen| serde_json::from_slice(&s.body).unwrap()).collect()
}

fn stop(running: Running, sandbox: &Sandbox) -> String {
    let kill = std::process::Command::new("kill").arg(running.pid().to_string()).status().unwrap();
    assert!(kill.success());
    let run = running.wait(RUN_LIMIT, sandbox);
    assert_eq!(run.code, Some(0), "{}", run.context());
    run.stderr
}

fn results(sandbox: &Sandbox, ext: &str) -> Vec<std::path::PathBuf> {
    let dir = sandbox.root().join(".nest/slack");
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect()
}

#[test]
fn every_refused_request_runs_nothing_and_never_reaches_the_target() {
    let target = Server::start();
    let slack = Server::builder().record().start();
    let port = free_port();
    let sandbox = project(&target, port);
    let running = serve(&sandbox, port);
    let hook = format!("{}/response", slack.url());
    let body = command("run smoke users=2 time=2s", &hook);
    let good = signed(&now(), body.as_bytes());
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        good.iter().map(|(k, v)| (k.clone(), if k == name { value.to_owned() } else { v.clone() })).collect()
    };
    let mut flipped = good[2].1.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(post(port, &with("X-Slack-Signature", &flipped), body.as_bytes()).0, 401, "a flipped byte");
    let unsigned: Vec<_> = good.iter().filter(|(k, _)| k != "X-Slack-Signature").cloned().collect();
    assert_eq!(post(port, &unsigned, body.as_bytes()).0, 401, "no signature");
    let untimed: Vec<_> = good.iter().filter(|(k, _)| k != "X-Slack-Request-Timestamp").cloned().collect();
    assert_eq!(post(port, &untimed, body.as_bytes()).0, 401, "no timestamp");
    let old = (SystemTime::now() - Duration::from_secs(6 * 60)).duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(post(port, &signed(&old.to_string(), body.as_bytes()), body.as_bytes()).0, 401, "6 minutes old");
    assert_eq!(post(port, &with("Content-Type", "application/json"), body.as_bytes()).0, 400, "content type");
    let mut big = command("run smoke", &hook);
    big.push_str(&format!("&pad={}", "a".repeat(70 * 1024)));
    let (status, answer) = post(port, &signed(&now(), big.as_bytes()), big.as_bytes());
    assert_eq!(status, 400, "an oversized body");
    assert!(!answer.contains("64"), "no detail to the caller: {answer}");
    // What a preset does not allow is refused, in words, and runs nothing either.
    for (text, says) in [
        ("run smoke users=11", "from 1 to 10"),
        ("run smoke time=3m", "at most 2m"),
        ("run smoke rate=5", "does not allow `rate`"),
        ("run smoke host=http://example.com", "does not allow `host`"),
        ("run nope", "unknown preset `nope`"),
    ] {
        let (status, reply, json) = send(port, text, &hook);
        assert_eq!(status, 200);
        assert!(reply.contains(says), "{text}: {reply}");
        assert_eq!(json["response_type"], "ephemeral", "{text}");
    }
    // A response_url elsewhere than the allowed hosts is refused too.
    let (_, reply, _) = send(port, "run smoke", "https://example.com/hook");
    assert!(reply.contains("response_url"), "{reply}");
    // The replay of a request already accepted once (a refused override here, which runs nothing) is refused.
    let once = command("run smoke users=99", &hook);
    let headers = signed(&now(), once.as_bytes());
    assert_eq!(post(port, &headers, once.as_bytes()).0, 200);
    assert_eq!(post(port, &headers, once.as_bytes()).0, 401, "a replay");
    let log = stop(running, &sandbox);
    assert_eq!(target.total(), 0, "the target was contacted\n{log}");
    assert_eq!(slack.total(), 0, "a result was posted\n{log}");
    assert!(results(&sandbox, "json").is_empty(), "something ran\n{log}");
    for reason in ["does not match", "missing header", "s away from now", "content type", "larger than", "replayed"] {
        assert!(log.contains(reason), "the reason `{reason}` is logged locally\n{log}");
    }
}

#[test]
fn a_signed_run_is_acknowledged_at_once_posts_one_result_is_busy_meanwhile_and_stops_early() {
    let target = Server::start();
    let slack = Server::builder().record().start();
    let port = free_port();
    let sandbox = project(&target, port);
    let running = serve(&sandbox, port);
    let hook = format!("{}/response", slack.url());

    let body = command("run smoke users=5 time=3s", &hook);
    let headers = signed(&now(), body.as_bytes());
    let asked = Instant::now();
    let (status, answer) = post(port, &headers, body.as_bytes());
    let ack = asked.elapsed();
    assert_eq!(status, 200, "{answer}");
    eprintln!("the run command was acknowledged in {ack:?}");
    assert!(ack < Duration::from_secs(3), "acknowledged after {ack:?}");
    let reply: Value = serde_json::from_str(&answer).unwrap();
    assert!(reply["text"].as_str().unwrap().starts_with("started run `smoke` (users=5, time=3s)"), "{reply}");
    assert_eq!(reply["response_type"], "in_channel");
    let (_, busy, _) = send(port, "run smoke", &hook);
    assert!(busy.starts_with("busy: run `smoke` started by <@U1> at "), "{busy}");
    let (_, status_line, _) = send(port, "status", &hook);
    assert!(status_line.starts_with("running: run `smoke`"), "{status_line}");

    assert!(slack.wait_for_total(1, Duration::from_secs(60)), "no result posted within 60 s");
    let first = messages(&slack).remove(0);
    let requests = field(&first, "Requests");
    assert!(requests > 0, "the target saw no load: {first}");
    assert_eq!(requests, target.total(), "the message's totals are the target's count: {first}");
    assert_eq!(first["response_type"], "in_channel");
    assert!(first["text"].as_str().unwrap().contains("smoke"), "{first}");
    // The report is on disk, linked, and served read-only from the results folder.
    let html = results(&sandbox, "html");
    assert_eq!(html.len(), 1, "{html:?}");
    let name = html[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(first.to_string().contains(&format!("http://127.0.0.1:{port}/reports/{name}")), "{first}");
    let page = get(port, &format!("/reports/{name}"));
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<html"), "{}", &page[..page.len().min(300)]);
    assert!(get(port, "/reports/..%2Fnest.yaml").starts_with("HTTP/1.1 404"));
    assert!(get(port, &format!("/reports/{}", name.replace(".html", ".log"))).starts_with("HTTP/1.1 404"));
    // Replaying the accepted command runs nothing more.
    assert_eq!(post(port, &headers, body.as_bytes()).0, 401);

    // A long run, stopped early: its result is still posted, with the target's count since.
    let before = target.total();
    let (_, started, _) = send(port, "run smoke time=2m", &hook);
    assert!(started.starts_with("started"), "{started}");
    let long = Instant::now();
    assert!(target.wait_for_total(before + 10, Duration::from_secs(60)), "the second run sent no load");
    let (_, stopping, _) = send(port, "stop", &hook);
    assert!(stopping.starts_with("stopping `smoke`"), "{stopping}");
    assert!(slack.wait_for_total(2, Duration::from_secs(60)), "no result after /nest stop");
    assert!(long.elapsed() < Duration::from_secs(60), "the run was not stopped early");
    let second = messages(&slack).remove(1);
    assert_eq!(field(&second, "Requests"), target.total() - before, "{second}");
    let log = stop(running, &sandbox);
    assert_eq!(slack.total(), 2, "exactly one message per run\n{log}");
}

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn serve_refuses_to_start_without_a_signing_secret() {
    let target = Server::start();
    let sandbox = project(&target, free_port());
    let run = sandbox.nest(&["slack", "serve", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert!(run.stderr.contains("no signing secret"), "{}", run.context());
}

#[test]
fn a_bad_preset_is_refused_at_its_place_and_run_preset_runs_it() {
    let target = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", "task(1, work);\n\nfn work() { client.get(\"/work\"); }\n");
    let config = "taskset_dir: tasksets\nslack:\n  presets:\n    smoke:\n      settings:\n        users: many\n";
    sandbox.write_config(config);
    let run = sandbox.nest(&["list", "--preset", "smoke"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert!(
        run.stderr.contains("nest.yaml:6:16: slack.presets.smoke.settings.users: expected a whole number"),
        "{}",
        run.context()
    );
    sandbox.write_config(&format!(
        "taskset_dir: tasksets\nusers: 1\nslack:\n  presets:\n    one:\n      settings:\n        host: {}\n        \
         iterations: 7\n",
        target.url()
    ));
    let json = sandbox.json_path().display().to_string();
    let run = sandbox.nest(&["run", "--preset", "one", "-y", "--json", &json], &[]);
    assert_eq!(run.code, Some(0), "{}", run.context());
    assert_eq!((run.report().total_requests(), target.total()), (7, 7));
    let run = sandbox.nest(&["run", "--preset", "two", "-y"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert!(run.stderr.contains("no preset `two`"), "{}", run.context());
}

#[test]
fn notify_retries_a_failing_webhook_delivers_once_and_keeps_the_exit_code() {
    let target = Server::start();
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let hook = Server::builder()
        .record()
        .route(move |seen| match seen.path.as_str() {
            "/services/T0/B0/secret" if counter.fetch_add(1, Ordering::SeqCst) < 2 => Reply::status(500),
            "/down" => Reply::status(503),
            _ => Reply::ok(),
        })
        .start();
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", "task(1, work);\n\nfn work() { client.get(\"/work\"); }\n");
    let slack = format!("slack:{}/services/T0/B0/secret", hook.url());
    let json_target = format!("{}/ci/results", hook.url());
    let run = sandbox.run(&target.url(), &["--iterations", "9", "--notify", &slack, "--notify", &json_target]);
    assert_eq!(run.code, Some(0), "{}", run.context());
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two failures, then the delivery\n{}", run.context());
    let seen = hook.seen();
    let delivered: Vec<&Seen> = seen.iter().filter(|s| s.path == "/services/T0/B0/secret").collect();
    let message: Value = serde_json::from_slice(&delivered[2].body).unwrap();
    assert_eq!(field(&message, "Requests"), target.total(), "{message}");
    let summary: Value = serde_json::from_slice(&seen.iter().find(|s| s.path == "/ci/results").unwrap().body).unwrap();
    assert_eq!(summary["totals"]["requests"].as_u64(), Some(target.total()), "{summary}");
    assert_eq!(summary["verdict"], "passed", "the default gate: {summary}");
    assert!(run.stderr.contains("after 3 attempts"), "{}", run.context());
    let shown = format!("{}{}", run.stderr, run.report().0["run"]["command"]);
    assert!(!shown.contains("secret") && !shown.contains("/ci/results"), "a webhook URL shown whole: {shown}");

    // A webhook that never answers well: a warning, and still the run's exit code (99, a failed threshold).
    let down = format!("{}/down", hook.url());
    let run = sandbox.run(&target.url(), &["--iterations", "2", "--threshold", "requests > 5", "--notify", &down]);
    assert_eq!(run.code, Some(99), "{}", run.context());
    assert!(run.stderr.contains("warning: could not deliver"), "{}", run.context());
    assert_eq!(hook.count("POST", "/down"), 4, "the attempts of the default policy");
}

#[test]
fn a_scale_command_posts_capacity_at_slo_and_then_its_change_against_the_baseline() {
    let target = Server::start();
    let slack = Server::builder().record().start();
    let port = free_port();
    let sandbox = Sandbox::new();
    sandbox.write("work.rhai", "task(1, work);\n\nfn work() { client.get(\"/work\"); sleep(0.05); }\n");
    sandbox.write_config(&format!(
        "taskset_dir: tasksets\nworkers: 1\nrun_time: 10s\nscale:\n  steps: [1, 2]\n  step_time: 1s\n  settle: 1s\n  \
         slo: [\"p95 < 1s\"]\n  history: out/history.jsonl\nslack:\n  response_url_hosts: [127.0.0.1]\n  presets:\n    \
         cap:\n      settings:\n        host: {}\n",
        target.url()
    ));
    let running = serve(&sandbox, port);
    let hook = format!("{}/response", slack.url());
    for (n, change) in [(1, "no baseline yet"), (2, "against the baseline")] {
        let (status, started, _) = send(port, "scale cap", &hook);
        assert_eq!(status, 200);
        assert!(started.starts_with("started scale `cap`"), "{started}");
        assert!(slack.wait_for_total(n, Duration::from_secs(90)), "no scale result posted");
        let message = messages(&slack).remove(n as usize - 1).to_string();
        assert!(message.contains("Capacity@SLO") && message.contains("p95 < 1s"), "{message}");
        assert!(message.contains(change), "{message}");
        assert_eq!(message.matches(":white_check_mark: ").count() + message.matches(":x: ").count(), 2, "{message}");
    }
    let log = stop(running, &sandbox);
    assert!(target.total() > 0, "{log}");
    let history = std::fs::read_to_string(sandbox.root().join("out/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{log}");
}
