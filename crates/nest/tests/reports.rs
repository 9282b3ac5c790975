//! The report files, end to end: `nest run --json --csv --html --junit` against a loopback server that fails some
//! requests, then each format checked against the JSON (and the JSON against its schema), `nest report`
//! re-rendering the same bytes, and the HTML opened in headless Chromium.
//!
//! Each test runs nest in its own temp dir against its own server on 127.0.0.1, port 0. The browser test needs
//! Debian's `chromium` on PATH: without it, it is skipped with a printed reason, so that `cargo test --workspace`
//! passes on a bare machine, unless `NEST_REQUIRE_BROWSER=1` (or `NEST_REQUIRE_TOOLS=1`) is set, as `.ci/run`
//! does after installing it: then a missing browser fails the test.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A safety net on every child process: far above what any of them needs.
const LIMIT: Duration = Duration::from_secs(90);

/// The thresholds of every run: the global error rate fails (GET /b fails a quarter of its requests).
const THRESHOLDS: [&str; 3] = ["p95 < 10s", "error_rate < 1%", "GET /a: p99 < 10s"];

const SCRIPT: &str = r#"
wait_time(constant(0.04));
task(3, a);
task(1, b);
task(1, oops);

fn a() { client.get("/a"); }
fn b() { client.get("/b"); }
fn oops() { throw "kaput"; }
"#;

/// A loopback HTTP server: `/b` answers 500 to every fourth request, everything else 200.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let b_seen = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let b_seen = b_seen.clone();
                        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let fail = req.uri().path() == "/b" && b_seen.fetch_add(1, Ordering::SeqCst) % 4 == 3;
                            let mut response =
                                hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("ok")));
                            if fail {
                                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                            }
                            async move { Ok::<_, Infallible>(response) }
                        });
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(tcp);
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Server { addr, stop: Some(stop), thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// Runs a command to its end, at most [`LIMIT`] (then kills it and fails the test).
fn run(command: &mut Command) -> Output {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let err = std::thread::spawn(move || pipes.1.read_to_end(&mut e).map(|_| e));
        let _ = pipes.0.read_to_end(&mut o);
        (o, err.join().unwrap().unwrap_or_default())
    });
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = out.join().unwrap();
    Output { status, stdout, stderr }
}

fn nest(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
    command.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEST_") {
            command.env_remove(key);
        }
    }
    command
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One finished run with every report file, in its own temp dir.
struct Fixture {
    dir: tempfile::TempDir,
    json: Value,
}

impl Fixture {
    fn run() -> Fixture {
        let server = Server::start();
        let dir = tempfile::Builder::new().prefix("nest-reports-").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tasksets")).unwrap();
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("tasksets/mix.rhai"), SCRIPT).unwrap();
        let mut command = nest(dir.path());
        command.args([
            "run",
            "--taskset-dir",
            "tasksets",
            "-H",
            &server.url(),
            "-u",
            "4",
            "-t",
            "4s",
            "--workers",
            "2",
        ]);
        command.args([
            "-y",
            "--json",
            "out/r.json",
            "--csv",
            "out/run",
            "--html",
            "out/r.html",
            "--junit",
            "out/j.xml",
        ]);
        for t in THRESHOLDS {
            command.args(["--threshold", t]);
        }
        let output = run(&mut command);
        assert_eq!(output.status.code(), Some(99), "a threshold fails: {}", text(&output));
        let json: Value = serde_json::from_slice(&std::fs::read(dir.path().join("out/r.json")).unwrap()).unwrap();
        assert!(json["totals"]["requests"].as_u64().unwrap() >= 100, "too few requests: {}", text(&output));
        Fixture { dir, json }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn csv(&self, relative: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
        let mut reader = csv::Reader::from_path(self.path(relative)).unwrap();
        let head: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let rows = reader
            .records()
            .map(|r| head.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect())
            .collect();
        (head, rows)
    }

    fn request(&self, method: &str, name: &str) -> &Value {
        let rows = self.json["requests"].as_array().unwrap();
        rows.iter().find(|r| r["method"] == method && r["name"] == name).unwrap_or_else(|| panic!("{method} {name}"))
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

const PERCENTILES: &str = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

/// Locust keeps two significant digits above 100 ms and whole ms below.
fn close_to_locust(csv: &str, json: f64) -> bool {
    let v: f64 = csv.parse().unwrap_or_else(|_| panic!("`{csv}` is not a number"));
    (v - json).abs() <= (json * 0.06).max(1.0)
}

#[test]
fn csv_files_are_locust_compatible_and_agree_with_the_json() {
    let fx = Fixture::run();
    let (head, stats) = fx.csv("out/run_stats.csv");
    assert_eq!(
        head.join(","),
        format!(
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
             Max Response Time,Average Content Size,Requests/s,Failures/s,{PERCENTILES}"
        )
    );
    let names: Vec<(&str, &str)> = stats.iter().map(|r| (r["Type"].as_str(), r["Name"].as_str())).collect();
    assert_eq!(names, [("GET", "/a"), ("GET", "/b"), ("", "Aggregated")]);
    for row in &stats {
        let json =
            if row["Name"] == "Aggregated" { &fx.json["totals"] } else { fx.request(&row["Type"], &row["Name"]) };
        assert_eq!(row["Request Count"], json["requests"].to_string(), "{row:?}");
        assert_eq!(row["Failure Count"], json["failures"].to_string(), "{row:?}");
        let l = &json["latency_ms"];
        for (column, key) in [("50%", "p50"), ("90%", "p90"), ("95%", "p95"), ("99%", "p99"), ("100%", "max")] {
            assert!(close_to_locust(&row[column], f(&l[key])), "{column} {} vs {key} {}", row[column], l[key]);
        }
        assert!(close_to_locust(&row["Median Response Time"], f(&l["p50"])), "{row:?}");
        assert_eq!(row["Average Response Time"].parse::<f64>().unwrap(), f(&l["mean"]));
        assert_eq!(row["Max Response Time"].parse::<f64>().unwrap(), f(&l["max"]));
        let percentiles: Vec<i64> = PERCENTILES.split(',').map(|c| row[c].parse().unwrap()).collect();
        assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "{percentiles:?}");
    }
    // The server fails every fourth GET /b, and nest counted every request it sent.
    let b = &stats[1];
    assert_eq!(b["Failure Count"].parse::<u64>().unwrap(), b["Request Count"].parse::<u64>().unwrap() / 4);

    let (head, history) = fx.csv("out/run_stats_history.csv");
    assert_eq!(
        head.join(","),
        format!(
            "Timestamp,User Count,Type,Name,Requests/s,Failures/s,{PERCENTILES},Total Request Count,\
             Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,\
             Total Max Response Time,Total Average Content Size"
        )
    );
    let timeline = fx.json["timeline"].as_array().unwrap();
    assert_eq!(history.len(), timeline.len(), "a row per second");
    let started = f(&fx.json["started_at"]);
    let mut total = 0;
    for (row, second) in history.iter().zip(timeline) {
        assert_eq!(row["Timestamp"], ((started + f(&second["t"])).floor() as i64).to_string());
        assert_eq!((row["Type"].as_str(), row["Name"].as_str()), ("", "Aggregated"));
        assert_eq!(row["User Count"], second["users"].to_string());
        total += second["total"]["count"].as_u64().unwrap_or(0);
        assert_eq!(row["Total Request Count"], total.to_string(), "running totals");
    }
    let last = history.last().unwrap();
    assert_eq!(last["Total Request Count"], stats[2]["Request Count"]);
    assert_eq!(last["Total Failure Count"], stats[2]["Failure Count"]);
    assert_eq!(last["Total Median Response Time"], stats[2]["Median Response Time"]);

    let (head, failures) = fx.csv("out/run_failures.csv");
    assert_eq!(head, ["Method", "Name", "Error", "Occurrences"]);
    let rows: Vec<Vec<&str>> = failures.iter().map(|r| head.iter().map(|h| r[h].as_str()).collect()).collect();
    assert_eq!(rows, [vec!["GET", "/b", "HTTP 500", b["Failure Count"].as_str()]]);

    let (head, exceptions) = fx.csv("out/run_exceptions.csv");
    assert_eq!(head, ["Count", "Message", "Traceback", "Nodes"]);
    let error = &fx.json["errors"][0];
    let location = error["location"].as_str().unwrap();
    assert_eq!(exceptions.len(), 1);
    let e = &exceptions[0];
    assert_eq!(e["Count"], error["count"].to_string());
    assert_eq!(e["Message"], format!("{location}: kaput"));
    assert_eq!((e["Traceback"].as_str(), e["Nodes"].as_str()), (location, "local"));
    assert!(location.contains("mix.rhai:"), "{location}");
}

/// The suite's (tests, failures), and (classname, name, failure message) of each test case.
type JUnit = ((u64, u64), Vec<(String, String, Option<String>)>);

fn junit(xml: &str) -> JUnit {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut suite, mut cases) = ((0, 0), Vec::new());
    let attr = |e: &BytesStart<'_>, key: &str| -> String {
        let a = e.try_get_attribute(key).unwrap().unwrap_or_else(|| panic!("no {key}"));
        a.unescape_value().unwrap().into_owned()
    };
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}")) {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => suite = (attr(&e, "tests").parse().unwrap(), attr(&e, "failures").parse().unwrap()),
                b"testcase" => {
                    attr(&e, "time").parse::<f64>().unwrap();
                    cases.push((attr(&e, "classname"), attr(&e, "name"), None));
                }
                b"failure" => cases.last_mut().unwrap().2 = Some(attr(&e, "message")),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (suite, cases)
}

#[test]
fn junit_has_a_case_per_threshold_and_per_request_name() {
    let fx = Fixture::run();
    let ((tests, failures), cases) = junit(&fx.read("out/j.xml"));
    let names: Vec<(&str, &str, bool)> = cases.iter().map(|c| (c.0.as_str(), c.1.as_str(), c.2.is_some())).collect();
    assert_eq!(
        names,
        [
            ("thresholds", "p95 < 10s", false),
            ("thresholds", "error_rate < 1%", true),
            ("thresholds", "GET /a: p99 < 10s", false),
            ("requests", "GET /a", false),
            ("requests", "GET /b", true),
        ]
    );
    assert_eq!((tests, failures), (5, 2));
    let b = fx.request("GET", "/b");
    let message = cases[4].2.as_deref().unwrap();
    let expected = format!("{} of {} requests failed", b["failures"], b["requests"]);
    assert!(message.starts_with(&expected) && message.ends_with("above `error_rate < 1%`"), "{message}");
    assert_eq!(cases[1].2.as_deref(), fx.json["thresholds"][1]["message"].as_str());
}

#[test]
fn nest_report_rerenders_the_same_bytes_and_exits_0() {
    let fx = Fixture::run();
    let mut command = nest(fx.dir.path());
    command.args(["report", "out/r.json", "--html", "again.html", "--csv", "again", "--junit", "again.xml"]);
    command.args(["--json", "again.json"]);
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(0), "a failed threshold does not change the exit code: {}", text(&output));
    let pairs = [
        ("out/r.html", "again.html"),
        ("out/j.xml", "again.xml"),
        ("out/run_stats.csv", "again_stats.csv"),
        ("out/run_stats_history.csv", "again_stats_history.csv"),
        ("out/run_failures.csv", "again_failures.csv"),
        ("out/run_exceptions.csv", "again_exceptions.csv"),
        ("out/r.json", "again.json"),
    ];
    for (first, again) in pairs {
        assert!(fx.read(first) == fx.read(again), "{again} differs from {first}");
    }

    // Without a format it prints the summary.
    let output = run(nest(fx.dir.path()).args(["report", "out/r.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Response time, ms") && stdout.contains("FAIL  error_rate < 1%"), "{stdout}");

    // Unreadable or foreign files: exit 2 and a message that says what is wrong.
    std::fs::write(fx.path("other.json"), r#"{"hello": 1}"#).unwrap();
    for (file, says) in [("missing.json", "cannot read missing.json"), ("other.json", "not a nest JSON report")] {
        let output = run(nest(fx.dir.path()).args(["report", file, "--html", "x.html"]));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains(says), "{}", text(&output));
        assert!(!fx.path("x.html").exists());
    }
}

#[test]
fn nest_merge_adds_two_runs_exactly_and_refuses_other_plans() {
    let fx = Fixture::run();
    // Two segments of one plan: the same figures, the second started a second later. (A failed threshold of the
    // fixture fails on the merged figures too: exit 99, after the report is written.)
    let mut first = fx.json.clone();
    first["run"]["identity"]["segment"] = serde_json::json!({"index": 0, "count": 2});
    std::fs::write(fx.path("first.json"), serde_json::to_vec(&first).unwrap()).unwrap();
    let mut second = first.clone();
    second["started_at"] = serde_json::json!(f(&fx.json["started_at"]) + 1.0);
    second["run"]["identity"]["segment"] = serde_json::json!({"index": 1, "count": 2});
    std::fs::write(fx.path("second.json"), serde_json::to_vec(&second).unwrap()).unwrap();
    let args = ["merge", "first.json", "second.json", "first.json", "--json", "m.json"];
    let output = run(nest(fx.dir.path()).args(args));
    assert_eq!(output.status.code(), Some(99), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: first.json is the same report as first.json: ignored"), "{stderr}");
    let merged: Value = serde_json::from_slice(&std::fs::read(fx.path("m.json")).unwrap()).unwrap();
    let requests = fx.json["totals"]["requests"].as_u64().unwrap();
    assert_eq!(merged["totals"]["requests"].as_u64(), Some(2 * requests));
    assert_eq!(merged["totals"]["failures"].as_u64(), Some(2 * fx.json["totals"]["failures"].as_u64().unwrap()));
    // The same samples twice: every percentile is the same as one run's.
    assert_eq!(merged["totals"]["latency_ms"], fx.json["totals"]["latency_ms"]);
    assert_eq!(merged["users"].as_u64(), Some(2 * fx.json["users"].as_u64().unwrap()));
    assert_eq!(merged["thresholds"].as_array().unwrap().len(), THRESHOLDS.len());
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
    let errors: Vec<String> = validator.iter_errors(&merged).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the merged report matches the schema: {errors:#?}");

    let mut other = second.clone();
    other["run"]["host"] = serde_json::json!("http://127.0.0.1:1");
    std::fs::write(fx.path("other.json"), serde_json::to_vec(&other).unwrap()).unwrap();
    let mut again = second.clone();
    again["run"]["identity"]["segment"] = serde_json::json!({"index": 0, "count": 2});
    std::fs::write(fx.path("again.json"), serde_json::to_vec(&again).unwrap()).unwrap();
    for (file, says) in [
        ("other.json", "other.json was not run with the same plan as first.json: the hosts differ"),
        ("again.json", "again.json and first.json both hold segment 0/2, with different results"),
    ] {
        let output = run(nest(fx.dir.path()).args(["merge", "first.json", file, "--html", "x.html"]));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(String::from_utf8_lossy(&output.stderr).contains(says), "{}", text(&output));
        assert!(!fx.path("x.html").exists());
    }
}

#[test]
fn the_json_report_matches_its_schema() {
    let fx = Fixture::run();
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
    let errors: Vec<String> = validator.iter_errors(&fx.json).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(fx.json["timeline"].as_array().unwrap().len() >= 4);
    assert_eq!(fx.json["thresholds"].as_array().unwrap().len(), THRESHOLDS.len());
    // The command is shell-quoted, so it can be pasted back; the HTML shows the same words.
    let command = fx.json["run"]["command"].as_str().unwrap();
    assert!(command.contains(" --threshold 'p95 < 10s' --threshold 'error_rate < 1%' "), "{command}");
    assert!(fx.read("out/r.html").contains("--threshold &apos;p95 &lt; 10s&apos;"), "the HTML lost the quotes");
}

/// Headless Chromium; `None` (the test is skipped, saying why) when it is not on PATH, or a failed test when
/// `NEST_REQUIRE_BROWSER=1` or `NEST_REQUIRE_TOOLS=1` asks for it.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()));
    if found.is_some() {
        return found;
    }
    let why = "the HTML report test needs headless Chromium, which is not on PATH: install it with \
               `apt-get update && apt-get install -y chromium chromium-driver` (CI's .ci/run does)";
    let required =
        ["NEST_REQUIRE_BROWSER", "NEST_REQUIRE_TOOLS"].iter().any(|v| std::env::var_os(v).is_some_and(|x| x == "1"));
    assert!(!required, "{why}");
    // Straight to file descriptor 2: libtest captures what passing tests print, and a skip must be seen.
    let line = format!("skipped: {why}; set NEST_REQUIRE_BROWSER=1 to fail instead");
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            let _ = writeln!(std::fs::File::from(fd), "{line}");
        }
    }
    #[cfg(not(unix))]
    eprintln!("{line}");
    None
}

fn browser(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]);
    command.args(["--disable-component-update", "--disable-sync", "--no-first-run"]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// An element of an HTML document: its attributes (unescaped) and its text up to the next tag.
type Element = (BTreeMap<String, String>, String);

/// The `<tag ...>` elements of `html`, in order.
fn elements(html: &str, tag: &str) -> Vec<Element> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
    };
    let mut out = Vec::new();
    for part in html.split(&format!("<{tag} ")).skip(1) {
        let end = part.find('>').unwrap();
        let mut attrs = BTreeMap::new();
        let mut rest = &part[..end];
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim().rsplit(' ').next().unwrap().to_owned();
            let close = rest[eq + 2..].find('"').unwrap();
            attrs.insert(key, unescape(&rest[eq + 2..eq + 2 + close]));
            rest = &rest[eq + 2 + close + 1..];
        }
        let text = &part[end + 1..];
        out.push((attrs, unescape(&text[..text.find('<').unwrap_or(text.len())])));
    }
    out
}

/// Checks the statistics table of the dumped DOM against the JSON; returns how many cells were checked.
fn check_stats_table(dom: &str, fx: &Fixture) -> usize {
    let table = &dom[dom.find("data-table=\"raw\"").expect("the stats table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let mut checked = 0;
    // The first part is the table's own tag, the second the header row.
    for tr in table.split("<tr").skip(2) {
        let (row, _) = &elements(&format!("<tr{tr}"), "tr")[0];
        let json = match row.contains_key("data-row") {
            true => &fx.json["totals"],
            false => fx.request(&row["data-method"], &row["data-name"]),
        };
        for (cell, shown) in elements(tr, "td").iter().filter(|(a, _)| a.contains_key("data-metric")) {
            let metric = cell["data-metric"].as_str();
            if metric == "avg_size" {
                // The average body size: bytes / requests, shown with its unit (`2 B`, `1.5 KiB`).
                let expected = f(&json["bytes"]) / f(&json["requests"]);
                assert_eq!(cell["data-value"].parse::<f64>().unwrap(), expected, "avg_size of {row:?}");
                assert!(shown.ends_with(" B") || shown.ends_with("iB"), "`{shown}` for avg_size");
                checked += 1;
                continue;
            }
            let expected = f(match metric {
                "requests" | "failures" | "rps" => &json[metric],
                latency => &json["latency_ms"][latency],
            });
            assert_eq!(cell["data-value"].parse::<f64>().unwrap(), expected, "{metric} of {row:?}");
            let shown: f64 = shown.parse().unwrap_or_else(|_| panic!("`{shown}` for {metric}"));
            assert!((shown - expected).abs() <= expected * 0.005 + 0.01, "{metric}: {shown} vs {expected}");
            checked += 1;
        }
    }
    checked
}

/// Decodes a PNG into (width, height, RGB pixels).
fn decode_png(path: &Path) -> (usize, usize, Vec<(i32, i32, i32)>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()].chunks(channels).map(|p| (p[0] as i32, p[1] as i32, p[2] as i32)).collect();
    (info.width as usize, info.height as usize, pixels)
}

#[test]
fn the_html_report_renders_in_chromium_with_the_jsons_numbers() {
    let Some(chrome) = chromium() else { return };
    let fx = Fixture::run();
    let url = format!("file://{}", fx.path("out/r.html").display());
    let profile = tempfile::tempdir().unwrap();
    let output = run(browser(&chrome, profile.path()).args(["--dump-dom", &url]));
    assert!(output.status.success(), "{}", text(&output));
    let dom = String::from_utf8(output.stdout).unwrap();

    // Every chart is there, drawn from the timeline.
    let seconds = fx.json["timeline"].as_array().unwrap().len();
    let charts: Vec<String> = elements(&dom, "svg").into_iter().map(|(a, _)| a["data-chart"].clone()).collect();
    assert_eq!(charts, ["rps", "failures", "users", "p50", "p95", "p99"]);
    let lines = elements(&dom, "polyline");
    for (attrs, _) in &lines {
        let points = attrs["points"].split(' ').count();
        assert_eq!(points.to_string(), attrs["data-points"]);
        assert!(points >= 3, "{attrs:?}");
    }
    let rps = lines.iter().find(|(a, _)| a["data-series"] == "requests/s").unwrap();
    assert_eq!(rps.0["points"].split(' ').count(), seconds);
    let names: Vec<&str> =
        lines.iter().map(|(a, _)| a["data-series"].as_str()).filter(|s| s.starts_with("GET ")).collect();
    assert_eq!(names, ["GET /a", "GET /b", "GET /a", "GET /b", "GET /a", "GET /b"], "busiest first, per chart");

    // The tables hold the JSON's numbers: exactly in data-value, rounded as the terminal does in the text.
    assert_eq!(check_stats_table(&dom, &fx), 3 * 12, "GET /a, GET /b and the total, 12 figures each");
    let verdicts: Vec<(String, String)> = elements(&dom, "tr")
        .into_iter()
        .filter_map(|(a, _)| Some((a.get("data-threshold")?.clone(), a["data-passed"].clone())))
        .collect();
    let expected: Vec<(String, String)> =
        THRESHOLDS.iter().zip(["true", "false", "true"]).map(|(t, p)| (t.to_string(), p.to_string())).collect();
    assert_eq!(verdicts, expected);

    // The charts are not blank: the screenshot holds their line colours, in quantity.
    let png = profile.path().join("shot.png");
    let shot = format!("--screenshot={}", png.display());
    let output = run(browser(&chrome, profile.path()).args([shot.as_str(), "--window-size=1280,2000", &url]));
    assert!(output.status.success() && png.exists(), "{}", text(&output));
    let (width, height, pixels) = decode_png(&png);
    assert_eq!((width, height), (1280, 2000));
    let near = |p: &(i32, i32, i32), hex: u32| {
        let c = ((hex >> 16) as i32, ((hex >> 8) & 0xff) as i32, (hex & 0xff) as i32);
        (p.0 - c.0).abs() + (p.1 - c.1).abs() + (p.2 - c.2).abs() < 40
    };
    // The charts sit below the header, in the upper part of the page.
    let charts = &pixels[200 * width..1400 * width];
    let count = |hex| charts.iter().filter(|p| near(p, hex)).count();
    let (blue, orange, green) = (count(0x4e79a7), count(0xf28e2b), count(0x59a14f));
    assert!(blue > 300 && orange > 300 && green > 300, "line pixels: blue {blue}, orange {orange}, green {green}");
    let colours: std::collections::HashSet<_> = charts.iter().collect();
    assert!(colours.len() > 50, "{} distinct colours", colours.len());
}
