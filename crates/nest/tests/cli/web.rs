//! `nest run --web`: the refusals before anything starts, and a real browser (headless Chromium driven through
//! chromedriver with WebDriver) that sets a run up, starts it, raises its users, checks the charts, stops it and
//! fetches its report, while the counting loopback server says what it received.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`: without them it is skipped with a printed
//! reason, unless `NEST_REQUIRE_BROWSER=1` or `NEST_REQUIRE_TOOLS=1` (as `.ci/run` sets) makes that a failure.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::Sandbox;

/// One task: a request to `/hit` carrying the VU's id, then a short think time.
const TASKSET: &str = r#"
wait_time(constant(0.2));
task(1, hit);

fn hit() {
    client.get("/hit", #{ headers: #{ "X-VU": `${vu_id}` } });
}
"#;

#[test]
fn a_non_loopback_web_address_without_credentials_is_refused_before_anything() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let dir = sandbox.dir().display().to_string();
    let url = server.url();
    let args = ["run", "--taskset-dir", &dir, "-H", &url, "--web", "0.0.0.0:0", "--autostart", "-y", "-t", "1s"];
    let run = sandbox.nest(&args, &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("not a loopback address") && run.stderr.contains("NEST_WEB_AUTH"), "{}", run.context());
    // Credentials that are not USER:PASS are refused too, and naming the variable.
    let run = sandbox.nest(&args, &[("NEST_WEB_AUTH", "no-colon")]);
    run.assert_code(2);
    assert!(run.stderr.contains("NEST_WEB_AUTH: web credentials"), "{}", run.context());
    assert_eq!(server.total(), 0, "nothing may be sent");
}

#[test]
fn web_with_autostart_and_yes_runs_to_its_end_and_exits_like_nest_run() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let dir = sandbox.dir().display().to_string();
    let (url, json) = (server.url(), sandbox.json_path().display().to_string());
    let args = ["run", "--taskset-dir", &dir, "-H", &url, "--web", "127.0.0.1:0", "--autostart", "-y", "-t", "2s"];
    let run = sandbox.nest(&[&args[..], &["-u", "2", "--json", &json]].concat(), &[]);
    run.assert_code(0);
    assert!(run.stderr.contains("web UI on http://127.0.0.1:"), "{}", run.context());
    assert!(server.total() > 0);
    assert_eq!(run.report().total_requests(), server.total());
}

/// A `nest` process whose stderr is read line by line (the web UI's address is on it).
struct Nest {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Nest {
    fn start(sandbox: &Sandbox, args: &[&str]) -> Nest {
        let mut command = sandbox.command();
        command.args(args).stderr(Stdio::piped());
        Nest::spawn(command)
    }

    fn spawn(mut command: Command) -> Nest {
        let mut child = command.spawn().expect("start nest");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Nest { child, lines, seen: Vec::new() }
    }

    /// The first stderr line that starts with `prefix`, waiting at most 30 s.
    fn line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no `{prefix}` line from nest within 30 s; stderr:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Sends SIGINT (as Ctrl-C) and waits at most 30 s for the exit code.
    fn interrupt(self) -> Option<i32> {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.exit()
    }

    /// Waits at most 30 s for the exit code.
    fn exit(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("nest did not exit within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a port of its own choosing; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(driver: &PathBuf) -> Driver {
        let child = Command::new(driver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // Owned before any wait, so that a failed wait still ends the process.
        let mut started = Driver { child, port: 0 };
        let (tx, rx) = mpsc::channel();
        let stdout = started.child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        started.port = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("chromedriver did not say its port within 20 s");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').parse().expect("a port");
            }
        };
        started
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and chromedriver, or `None` (skipped, saying why) unless the environment requires them.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let find = |names: &[&str]| {
        names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
    };
    if let (Some(chromium), Some(driver)) = (find(&["chromium", "chromium-browser"]), find(&["chromedriver"])) {
        return Some((chromium, driver));
    }
    let why = "the web UI's browser test needs headless Chromium and chromedriver on PATH: install them with \
               `apt-get update && apt-get install -y chromium chromium-driver` (CI's .ci/run does)";
    let required =
        ["NEST_REQUIRE_BROWSER", "NEST_REQUIRE_TOOLS"].iter().any(|v| std::env::var_os(v).is_some_and(|x| x == "1"));
    assert!(!required, "{why}");
    // Straight to file descriptor 2: libtest captures what passing tests print, and a skip must be seen.
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            let _ = writeln!(std::fs::File::from(fd), "skipped: {why}; set NEST_REQUIRE_BROWSER=1 to fail instead");
        }
    }
    None
}

/// Waits at most `limit` for `ready` to hold, polling every 100 ms; fails with `what` otherwise.
async fn until<F: std::future::Future<Output = bool>>(what: &str, limit: Duration, mut ready: impl FnMut() -> F) {
    let deadline = Instant::now() + limit;
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `script` (a function body) in the page and returns its value.
async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Runs an async `script` whose last argument is the callback.
async fn js_async(client: &Client, script: &str) -> Value {
    client.execute_async(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn set(client: &Client, id: &str, value: &str) {
    let input = client.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    if !value.is_empty() {
        input.send_keys(value).await.unwrap();
    }
}

async fn click(client: &Client, id: &str) {
    client.find(Locator::Id(id)).await.unwrap().click().await.unwrap();
}

/// The distinct `X-VU` values the server has seen.
fn vus(server: &Server) -> BTreeSet<String> {
    server.seen().iter().filter_map(|s| s.vu().map(str::to_owned)).collect()
}

#[test]
fn the_web_ui_in_chromium_starts_raises_charts_stops_and_reports_what_the_server_saw() {
    let Some((chromium, driver)) = browser_tools() else { return };
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let dir = sandbox.dir().display().to_string();
    let (url, json) = (server.url(), sandbox.json_path().display().to_string());
    let args = ["run", "--taskset-dir", &dir, "-H", &url, "--workers", "1", "--web", "127.0.0.1:0", "--json", &json];
    let mut nest = Nest::start(&sandbox, &args);
    let page = nest.line("web UI on ").trim_start_matches("web UI on ").to_owned();
    nest.line("waiting for Start");
    assert_eq!(server.total(), 0, "nothing is sent before Start");

    let driver = Driver::start(&driver);
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(async {
        let capabilities = json!({ "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                     format!("--user-data-dir={}", profile.path().display())],
        }});
        let capabilities = capabilities.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session");
        let report = drive(&client, &page, &server).await;
        if let Some(path) = std::env::var_os("NEST_WEB_SCREENSHOT") {
            std::fs::write(path, client.screenshot().await.unwrap()).unwrap();
        }
        client.close().await.unwrap();
        report
    });
    // Every request the server saw is in the report the page gave, and in the one nest wrote.
    assert_eq!(report["totals"]["requests"].as_u64(), Some(server.total()), "{report}");
    assert_eq!(nest.interrupt(), Some(0));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(written["totals"]["requests"].as_u64(), Some(server.total()));
}

/// The browser's part: returns the JSON report the page offers after the run.
async fn drive(client: &Client, page: &str, server: &Server) -> Value {
    client.goto(page).await.unwrap();
    until("the setup form", Duration::from_secs(20), || async {
        js(client, "return document.getElementById('users').value").await == "1"
    })
    .await;
    assert_eq!(js(client, "return document.getElementById('weight-hit').value").await, "1");
    set(client, "users", "2").await;
    click(client, "start").await;
    until("load from 2 VUs", Duration::from_secs(30), || async { vus(server).len() == 2 }).await;
    until("the page to show the run", Duration::from_secs(30), || async {
        js(client, "return document.getElementById('status').textContent").await == "running"
    })
    .await;
    // Raise the users: the server sees new VUs.
    until("the change form", Duration::from_secs(20), || async {
        js(client, "return !document.getElementById('steer-closed').hidden").await == true
    })
    .await;
    set(client, "new-users", "5").await;
    click(client, "set-users").await;
    until("load from 5 VUs", Duration::from_secs(30), || async { vus(server).len() == 5 }).await;
    until("the users shown", Duration::from_secs(30), || async {
        js(client, "return document.getElementById('users-now').textContent").await == "5"
    })
    .await;
    // The charts have drawn points, and their canvas is not blank.
    click(client, "tab-charts-button").await;
    until("three seconds of chart points", Duration::from_secs(30), || async {
        js(client, "return window.nestCharts ? nestCharts.rps.data[0].length : 0").await.as_u64() >= Some(3)
    })
    .await;
    let drawn = js(
        client,
        "const c = document.querySelector('#chart-rps canvas'); const d = c.getContext('2d')
           .getImageData(0, 0, c.width, c.height).data; let n = 0;
         for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
    )
    .await;
    assert!(drawn.as_u64() > Some(500), "the request chart looks blank: {drawn} pixels drawn");
    let users = js(client, "return nestCharts.users.data[1]").await;
    assert!(users.as_array().unwrap().iter().any(|u| u.as_u64() == Some(5)), "users chart: {users}");
    click(client, "stop").await;
    until("the final report", Duration::from_secs(30), || async {
        js(client, "return document.getElementById('status').textContent").await == "finished"
    })
    .await;
    let text = js_async(
        client,
        "const done = arguments[arguments.length - 1];
         fetch(document.getElementById('dl-json').href).then(r => r.text()).then(done, e => done(String(e)));",
    )
    .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `GET path` from the web UI at `page` (`http://127.0.0.1:PORT/`): the status and the body.
fn get(page: &str, path: &str) -> (u16, String) {
    exchange(page, &format!("GET {path} HTTP/1.1"), "", "")
}

/// `POST path` with the page's token and a JSON `body`: the status and the body.
fn post(page: &str, path: &str, body: &str) -> (u16, String) {
    let html = get(page, "/").1;
    let at = html.find("name=\"nest-token\" content=\"").unwrap() + 27;
    let token = &html[at..at + 48];
    let head = format!("X-Nest-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    exchange(page, &format!("POST {path} HTTP/1.1"), &head, body)
}

/// One HTTP/1.1 exchange with the web UI at `page`: the request line, more headers, the body.
fn exchange(page: &str, line: &str, headers: &str, body: &str) -> (u16, String) {
    use std::io::Read;
    let authority = page.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{line}\r\nHost: {authority}\r\n{headers}Connection: close\r\n\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

#[test]
fn a_start_form_that_changes_a_weight_labels_it_web_and_the_run_keeps_every_worker() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", TASKSET).write("b.rhai", TASKSET);
    let dir = sandbox.dir().display().to_string();
    let (url, json) = (server.url(), sandbox.json_path().display().to_string());
    let args = ["run", "--taskset-dir", &dir, "-H", &url, "--web", "127.0.0.1:0", "-y", "-t", "2s", "-u", "1"];
    let mut nest = Nest::start(&sandbox, &[&args[..], &["--workers", "3", "--json", &json]].concat());
    let page = nest.line("web UI on ").trim_start_matches("web UI on ").to_owned();
    nest.line("waiting for Start");
    // `a` gets a new weight; `b` is sent as it was, as the page sends every weight.
    let (status, body) = post(&page, "/api/start", r#"{"weights": {"a": 3, "b": 1}}"#);
    assert_eq!(status, 204, "{body}");
    assert_eq!(nest.exit(), Some(0), "-y with a run time exits at the end");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mix: Vec<(String, u64, String)> = report["run"]["mix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["name"].as_str().unwrap().into(), r["weight"].as_u64().unwrap(), r["source"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(mix, [("a".into(), 3, "web".into()), ("b".into(), 1, "from_script".into())]);
    // One user at the start, but users can be raised from the page: the run kept its three workers.
    assert_eq!(report["run"]["workers"], 3, "{}", report["run"]);
    assert!(server.total() > 0);
    assert_eq!(report["totals"]["requests"].as_u64(), Some(server.total()));
    // A run that cannot be steered keeps the workers its users need, as before.
    let plain = sandbox.nest(
        &["run", "--taskset-dir", &dir, "-H", &url, "-y", "-t", "1s", "-u", "1", "--workers", "3", "--json", &json],
        &[],
    );
    plain.assert_code(0);
    assert_eq!(plain.report().0["run"]["workers"], 1);
}

fn state(page: &str) -> Value {
    serde_json::from_str(&get(page, "/api/state").1).unwrap()
}

#[test]
fn coordinate_web_shows_the_segments_and_offers_the_merged_report() {
    const TOKEN: &str = "web-test-token-0123456789";
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let refused =
        sandbox.nest(&["coordinate", "--segments", "2", "--web", "0.0.0.0:0"], &[("NEST_COORDINATOR_TOKEN", TOKEN)]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("not a loopback address"), "{}", refused.context());

    let args = ["coordinate", "--segments", "2", "--listen", &listen, "--web", "127.0.0.1:0"];
    let mut coordinator = {
        let mut command = sandbox.command();
        command.args(args).env("NEST_COORDINATOR_TOKEN", TOKEN).stderr(Stdio::piped());
        Nest::spawn(command)
    };
    let page = coordinator.line("web UI on ").trim_start_matches("web UI on ").to_owned();
    let view = state(&page);
    assert_eq!(view["phase"], "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = state(&page)["segments"]["rows"].clone();
        if rows.as_array().is_some_and(|r| r.len() == 2) || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows[0]["state"], "waiting", "{rows}");
    // The two segments join, run and hand in their results.
    let url = format!("http://{listen}");
    let dir = sandbox.dir().display().to_string();
    let segments: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|segment| {
            let args = ["run", "-f", &dir, "-H", &server.url(), "--workers", "1", "-y", "-u", "2", "-t", "5s"];
            let args = [&args[..], &["--coordinator", &url, "--segment", segment]].concat();
            sandbox.spawn_nest(&args, &[("NEST_COORDINATOR_TOKEN", TOKEN)])
        })
        .collect();
    // Once the segments' load runs, the page knows its model (closed) and a change of users reaches both.
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let view = state(&page);
        if view["target"]["model"] == "closed" {
            break view;
        }
        assert!(Instant::now() < deadline, "the page never offered the users control: {view}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(view["target"]["users"], 2, "{view}");
    let (status, body) = post(&page, "/api/rate", r#"{"rate": 5}"#);
    assert_eq!(
        (status, body.as_str()),
        (400, "this run uses the closed model: change its users, not a rate of arrivals")
    );
    let (status, body) = post(&page, "/api/users", r#"{"users": 4}"#);
    assert_eq!(status, 204, "{body}");
    for segment in segments {
        let run = segment.wait(crate::support::RUN_LIMIT, &sandbox);
        run.assert_code(0);
        assert!(run.stderr.contains("the coordinator changes the load: 4 users at once"), "{}", run.context());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let view = state(&page);
        if view["phase"] == "finished" {
            break view;
        }
        assert!(Instant::now() < deadline, "the page never showed the final report: {view}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = view["segments"]["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["state"] == "handed in" && r["host"] != ""), "{rows:?}");
    let (status, body) = get(&page, "/api/report.json");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    // The Skew column is each segment's start skew, as its own report says it at the end.
    for row in rows {
        let index = row["index"].as_u64().unwrap();
        let id = report["run"]["segments"].as_array().unwrap().iter().find(|s| s["index"] == index);
        let reported = id.and_then(|s| s["start_skew_ms"].as_f64()).unwrap_or_else(|| panic!("{report}"));
        let live = row["start_skew_ms"].as_f64().unwrap_or_else(|| panic!("no skew: {row}"));
        assert!((live - reported).abs() < 0.01, "segment {index}: {live} ms live, {reported} ms in the report");
    }
    assert!(server.total() > 0);
    assert_eq!(report["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(coordinator.interrupt(), Some(0));
}
