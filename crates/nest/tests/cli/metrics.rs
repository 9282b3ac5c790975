//! `--prometheus`: `/metrics` scraped during and after a run against the counting server (the final scrape's
//! `nest_requests_total` is the server's count), the same for `nest coordinate` over two segments, the token and the loopback rule; and a real Prometheus (the
//! Debian `prometheus` package) scraping the run and receiving its remote writes, queried through its HTTP API.
//! Without `prometheus` on PATH that test is skipped with its reason; under `NEST_REQUIRE_TOOLS=1` it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{Reply, Server};
use crate::support::{RUN_LIMIT, Sandbox};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on 127.0.0.1:`port` with extra headers: the status and body, or `None` if nothing answers.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    Some((status, body.to_owned()))
}

/// The samples of an exposition: `name{labels}` as written, and value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("nest_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_owned(), v.parse().unwrap())))
        .collect()
}

fn sum(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.iter().filter(|(k, _)| k.split('{').next() == Some(name)).map(|(_, v)| v).sum()
}

fn taskset(sandbox: &Sandbox) {
    sandbox.write(
        "hit.rhai",
        r#"
task(3, ok);
task(1, bad);

fn ok() { client.get("/ok"); }
fn bad() { client.get("/bad"); }
"#,
    );
}

fn counting_server(delay: Duration) -> Server {
    Server::builder()
        .route(move |seen| match seen.path.as_str() {
            "/bad" => Reply::status(503),
            _ => Reply::ok().delay(delay),
        })
        .start()
}

#[test]
fn the_last_scrape_counts_what_the_server_saw() {
    let server = counting_server(Duration::from_millis(2));
    let sandbox = Sandbox::new();
    taskset(&sandbox);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let args = ["-u", "4", "-t", "3s", "--no-default-gate", "--prometheus", &addr, "--prometheus-linger", "60s"];
    let running = sandbox.spawn(&server.url(), &args);
    let deadline = Instant::now() + RUN_LIMIT;
    let mut during = None;
    let last = loop {
        assert!(Instant::now() < deadline, "no final scrape before the deadline");
        let Some((200, body)) = get(port, "/metrics", &[]) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let s = samples(&body);
        if s.get("nest_run_finished{}") == Some(&1.0) {
            break s;
        }
        if during.is_none() && sum(&s, "nest_requests_total") > 0.0 {
            during = Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let scraped = Instant::now();
    let run = running.wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    assert!(scraped.elapsed() < Duration::from_secs(30), "the final scrape ends the linger: {:?}", scraped.elapsed());
    let during = during.expect("a scrape during the load saw requests");
    let seen = server.total();
    assert!(seen > 0);
    assert_eq!(sum(&last, "nest_requests_total"), seen as f64, "{}", run.context());
    assert_eq!(run.report().total_requests(), seen);
    let bad = r#"nest_requests_total{method="GET",name="/bad",status="503"}"#;
    assert_eq!(last[bad], server.count("GET", "/bad") as f64);
    let failures = r#"nest_request_failures_total{method="GET",name="/bad",reason_kind="status"}"#;
    assert_eq!(last[failures], server.count("GET", "/bad") as f64);
    assert_eq!(sum(&last, "nest_request_duration_seconds_count"), seen as f64);
    assert_eq!(last[r#"nest_tasks_total{taskset="hit",task="ok"}"#], server.count("GET", "/ok") as f64);
    for (key, value) in &during {
        if key.contains("_total") {
            assert!(last[key] >= *value, "{key} went down from {value} to {}", last[key]);
        }
    }
}

/// Scrapes `/metrics` on `port` until it says the run is finished (at most [`RUN_LIMIT`]): the last samples.
fn final_scrape(port: u16) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + RUN_LIMIT;
    let mut seen = None;
    loop {
        assert!(Instant::now() < deadline, "no final scrape before the deadline; the last answer: {seen:?}");
        seen = get(port, "/metrics", &[]);
        if let Some((200, body)) = &seen {
            let s = samples(body);
            if s.get("nest_run_finished{}") == Some(&1.0) {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_coordinators_last_scrape_counts_what_the_server_saw_from_every_segment() {
    const TOKEN: &str = "metrics-test-token-0123456789";
    let server = counting_server(Duration::from_millis(2));
    let sandbox = Sandbox::new();
    taskset(&sandbox);
    let (listen, port) = (format!("127.0.0.1:{}", free_port()), free_port());
    let metrics = format!("127.0.0.1:{port}");
    let json = sandbox.json_path().display().to_string();
    let token = [("NEST_COORDINATOR_TOKEN", TOKEN)];
    let args = ["coordinate", "--segments", "2", "--listen", &listen, "--json", &json];
    let coordinator =
        sandbox.spawn_nest(&[&args[..], &["--prometheus", &metrics, "--prometheus-linger", "60s"]].concat(), &token);
    let (url, dir, host) = (format!("http://{listen}"), sandbox.dir().display().to_string(), server.url());
    let segments: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|segment| {
            let args =
                ["run", "-f", &dir, "-H", &host, "--workers", "1", "-y", "-u", "2", "-t", "2s", "--no-default-gate"];
            sandbox.spawn_nest(&[&args[..], &["--coordinator", &url, "--segment", segment]].concat(), &token)
        })
        .collect();
    let last = final_scrape(port);
    for segment in segments {
        segment.wait(RUN_LIMIT, &sandbox);
    }
    let run = coordinator.wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    let seen = server.total();
    assert!(seen > 0 && server.count("GET", "/bad") > 0, "{:?}", server.counts());
    assert_eq!(sum(&last, "nest_requests_total"), seen as f64, "{last:?}\n{}", run.context());
    assert_eq!(run.report().total_requests(), seen);
    // (The segments' live figures carry no HTTP statuses: a coordinator counts requests by name.)
    let bad = r#"nest_requests_total{method="GET",name="/bad",status="unknown"}"#;
    assert_eq!(last[bad], server.count("GET", "/bad") as f64);
    let failures = r#"nest_request_failures_total{method="GET",name="/bad",reason_kind="status"}"#;
    assert_eq!(last[failures], server.count("GET", "/bad") as f64);
    assert_eq!(sum(&last, "nest_request_duration_seconds_count"), seen as f64);
}

#[test]
fn a_token_guards_the_metrics_and_a_wide_bind_needs_one() {
    let server = counting_server(Duration::ZERO);
    let sandbox = Sandbox::new();
    taskset(&sandbox);
    let wide = sandbox.run(&server.url(), &["-t", "1s", "--prometheus", "0.0.0.0:0"]);
    wide.assert_code(2);
    assert!(wide.stderr.contains("NEST_PROMETHEUS_TOKEN"), "{}", wide.context());
    assert_eq!(server.total(), 0, "refused before any load");

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = sandbox_command(&sandbox, &server.url(), &["-t", "30s", "--prometheus", &addr]);
    command.env("NEST_PROMETHEUS_TOKEN", "s3cret-token");
    let mut child = Guard(command.spawn().unwrap());
    let deadline = Instant::now() + RUN_LIMIT;
    let answer = loop {
        if let Some(answer) = get(port, "/metrics", &[]) {
            break answer;
        }
        assert!(Instant::now() < deadline, "no answer on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer.0, 401, "no token: {answer:?}");
    assert_eq!(get(port, "/metrics", &[("Authorization", "Bearer wrong")]).unwrap().0, 401);
    let (status, body) = get(port, "/metrics", &[("Authorization", "Bearer s3cret-token")]).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE nest_requests counter"), "{body}");
    assert_eq!(get(port, "/other", &[("Authorization", "Bearer s3cret-token")]).unwrap().0, 404);
    child.stop();
}

/// `nest run` with the sandbox's tasksets against `host`, output discarded.
fn sandbox_command(sandbox: &Sandbox, host: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
    command.current_dir(sandbox.root()).arg("run").arg("--taskset-dir").arg(sandbox.dir());
    command.args(["-H", host, "--workers", "1", "-y", "-q"]).args(args);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Guard {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `prometheus` binary, or `None` after printing why the test is skipped (a failure under
/// `NEST_REQUIRE_TOOLS=1`).
fn prometheus() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = "prometheus is not installed (apt-get install prometheus)";
        assert!(std::env::var("NEST_REQUIRE_TOOLS").as_deref() != Ok("1"), "NEST_REQUIRE_TOOLS=1 but {why}");
        println!("skipped: {why}");
    }
    found
}

/// An instant query's single value, if it has one.
fn query(port: u16, promql: &str) -> Option<f64> {
    let q: String = url::form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let (status, body) = get(port, &format!("/api/v1/query?query={q}"), &[])?;
    let body = dechunk(&body);
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(status, 200, "{promql}: {json}");
    let result = json["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// A chunked body's content (Prometheus' API answers in chunks).
fn dechunk(body: &str) -> String {
    if body.trim_start().starts_with('{') {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `promql` until it equals `want`, at most `limit`; the last value seen.
fn wait_for(port: u16, promql: &str, want: f64, limit: Duration) -> Option<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let got = query(port, promql);
        if got == Some(want) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_real_prometheus_scrapes_the_run_and_receives_its_remote_writes() {
    let Some(binary) = prometheus() else { return };
    let server = counting_server(Duration::from_millis(10));
    let sandbox = Sandbox::new();
    taskset(&sandbox);
    let (prom_port, nest_port) = (free_port(), free_port());
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: nest\n    static_configs:\n      - targets: \
         ['127.0.0.1:{nest_port}']\n"
    );
    sandbox.write_root("prometheus.yml", &config);
    let data = sandbox.root().join("prometheus-data");
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={}", sandbox.root().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _prometheus = Guard(command.spawn().expect("start prometheus"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(prom_port, "/-/ready", &[]).is_none_or(|(status, _)| status != 200) {
        assert!(Instant::now() < deadline, "prometheus not ready within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let addr = format!("127.0.0.1:{nest_port}");
    let remote = format!("http://127.0.0.1:{prom_port}/api/v1/write");
    let args = ["-u", "4", "-t", "4s", "--no-default-gate", "--prometheus", &addr, "--prometheus-linger", "30s"];
    let run = sandbox.run(&server.url(), &[&args[..], &["--prometheus-remote-write", &remote]].concat());
    run.assert_code(0);
    assert!(!run.stderr.contains("warning: metrics"), "{}", run.context());
    let seen = server.total();
    assert!(seen > 0);
    assert_eq!(run.report().total_requests(), seen);
    let want = seen as f64;
    let limit = Duration::from_secs(30);
    // Pushed (no job label) and scraped (job="nest"): both hold the final figures.
    let pushed = wait_for(prom_port, r#"sum(nest_requests_total{job=""})"#, want, limit);
    assert_eq!(pushed, Some(want), "remote write; {}", run.context());
    // Once nest has exited, the next scrape fails and Prometheus marks the scraped series stale: their last values
    // are read over a range.
    let scraped = wait_for(prom_port, r#"sum(last_over_time(nest_requests_total{job="nest"}[5m]))"#, want, limit);
    let targets = get(prom_port, "/api/v1/targets", &[]).map(|(_, b)| dechunk(&b));
    assert_eq!(scraped, Some(want), "scrape; targets {targets:?}; {}", run.context());
    let bad = wait_for(
        prom_port,
        r#"sum(nest_requests_total{job="",status="503"})"#,
        server.count("GET", "/bad") as f64,
        limit,
    );
    assert_eq!(bad, Some(server.count("GET", "/bad") as f64));

    let p95_ms = run.report().0["totals"]["latency_ms"]["p95"].as_f64().unwrap();
    let q = r#"histogram_quantile(0.95, sum by (le) (nest_request_duration_seconds_bucket{job=""}))"#;
    let p95 = query(prom_port, q).expect("a p95 from the buckets") * 1000.0;
    let bounds_ms: Vec<f64> = nest_metrics::buckets::BOUNDS.iter().map(|b| b * 1000.0).collect();
    let upper = bounds_ms.iter().position(|&b| b >= p95_ms).expect("p95 below 60 s");
    let lower = if upper == 0 { 0.0 } else { bounds_ms[upper - 1] };
    assert!(
        (lower..=bounds_ms[upper]).contains(&p95),
        "Prometheus' p95 {p95} ms lies outside the bucket ({lower}, {}] of the report's p95 {p95_ms} ms",
        bounds_ms[upper]
    );
}
