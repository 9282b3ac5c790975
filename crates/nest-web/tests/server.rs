//! The web UI's server over loopback: its safety (binding, credentials, the token, Origin and Host checks, capped
//! bodies), the Start exchange, the event stream and the downloads. Each test starts its own server on port 0 and
//! speaks plain HTTP/1.1 to it over a `TcpStream`; the run is a fake snapshot channel and a real `RunHandle`, whose
//! state says whether a refused request changed anything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use nest_core::stats::{Aggregate, RequestCounts};
use nest_core::{LoadTarget, RunHandle, RunPhase, Snapshot};
use nest_report::model::{MixRow, RunInfo, Source};
use nest_web::{Credentials, LiveContext, LoadSetup, Setup, WebError, WebUi};

fn setup() -> Setup {
    let row = MixRow {
        name: "shop".into(),
        weight: 1,
        share_pct: 100.0,
        source: Source::FromScript,
        wait: String::new(),
        on_start: false,
        on_stop: false,
        tasks: Vec::new(),
        users: None,
        nested_in: Default::default(),
    };
    Setup {
        mix: vec![row],
        load: LoadSetup::Closed { users: 2, spawn_rate: None },
        host: "http://127.0.0.1:9".into(),
        run_time_s: Some(10.0),
        iterations: None,
    }
}

fn context() -> LiveContext {
    LiveContext {
        tasksets: Vec::new(),
        run: RunInfo {
            nest_version: "test".into(),
            command: "nest run --web".into(),
            host: "http://127.0.0.1:9".into(),
            load: "2 users".into(),
            workers: 1,
            run_time_s: Some(10.0),
            iterations: None,
            mix: Vec::new(),
            identity: None,
            segments: Vec::new(),
            incomplete: None,
            stats_reset: None,
        },
        thresholds: vec![nest_report::thresholds::Threshold::parse("error_rate < 10%").unwrap()],
        gate: false,
        users: 2,
        open: false,
        run_time: Some(Duration::from_secs(10)),
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// One HTTP/1.1 exchange: the status and the body.
fn exchange(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get(web: &WebUi, path: &str, extra: &str) -> (u16, String) {
    let addr = web.addr();
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}{extra}"), "")
}

fn post(web: &WebUi, path: &str, extra: &str, body: &str) -> (u16, String) {
    let addr = web.addr();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json{extra}");
    exchange(addr, &head, body)
}

/// The token the page embeds.
fn token(web: &WebUi) -> String {
    let (status, page) = get(web, "/", "");
    assert_eq!(status, 200);
    let start = page.find("name=\"nest-token\" content=\"").unwrap() + 27;
    page[start..start + 48].to_owned()
}

fn phase(web: &WebUi) -> String {
    let (_, body) = get(web, "/api/state", "");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    state["phase"].as_str().unwrap().to_owned()
}

/// A snapshot of `requests` requests of which `failures` failed, in the load phase, with a sealed second.
fn snapshot(seq: u64, requests: u64, failures: u64) -> Arc<Snapshot> {
    let mut totals = Aggregate::default();
    let counts = RequestCounts { count: requests, failures, ..RequestCounts::default() };
    totals.requests.insert(("/items".into(), "GET".into()), counts);
    let last = nest_core::stats::Interval {
        start: seq - 1,
        seconds: 1,
        users: 2,
        dropped: 0,
        rows: Vec::new(),
        total: Some(nest_core::stats::TimelineTotal {
            count: requests,
            failures,
            mean: 1.0,
            min: 1.0,
            max: 1.0,
            bytes: 0,
            percentiles: vec![1.0; 11],
        }),
    };
    Arc::new(Snapshot {
        phase: RunPhase::Load,
        seq,
        elapsed: Duration::from_secs(seq),
        seconds: seq,
        users: 2,
        totals,
        last: Some(last),
        counted_from: Duration::ZERO,
        target: Some(LoadTarget::Users { users: 2, spawn_rate: None }),
        started_at: None,
    })
}

#[test]
fn a_non_loopback_address_without_credentials_is_refused() {
    let error = WebUi::start("0.0.0.0:0".parse().unwrap(), None, setup()).err().expect("refused");
    assert!(matches!(error, WebError::Unprotected { .. }), "{error}");
    assert!(error.to_string().contains("NEST_WEB_AUTH"), "{error}");
    let auth = Credentials::parse("ann:secret").unwrap();
    assert!(WebUi::start("0.0.0.0:0".parse().unwrap(), Some(auth), setup()).is_ok());
}

#[test]
fn wrong_credentials_get_401_and_right_ones_the_page() {
    let web = WebUi::start(local(), Some(Credentials::parse("ann:secret").unwrap()), setup()).unwrap();
    let (status, _) = get(&web, "/", "");
    assert_eq!(status, 401);
    // ann:wrong, then ann:secret.
    let (status, _) = get(&web, "/api/state", "\r\nAuthorization: Basic YW5uOndyb25n");
    assert_eq!(status, 401);
    let (status, _) = get(&web, "/api/report.json", "\r\nAuthorization: Basic YW5uOndyb25n");
    assert_eq!(status, 401);
    let (status, body) = get(&web, "/api/state", "\r\nAuthorization: Basic YW5uOnNlY3JldA==");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_foreign_host_is_refused_without_credentials() {
    let web = WebUi::start(local(), None, setup()).unwrap();
    let (status, _) = exchange(web.addr(), "GET / HTTP/1.1\r\nHost: rebound.example:8089", "");
    assert_eq!(status, 403);
}

#[test]
fn start_without_the_token_or_from_another_origin_changes_nothing() {
    let web = Arc::new(WebUi::start(local(), None, setup()).unwrap());
    let token = token(&web);
    let own = format!("http://{}", web.addr());
    let refused = [
        String::new(),
        "\r\nX-Nest-Token: 0000".to_owned(),
        format!("\r\nX-Nest-Token: {token}\r\nOrigin: http://evil.example"),
        format!("\r\nX-Nest-Token: {token}\r\nSec-Fetch-Site: cross-site"),
    ];
    for extra in &refused {
        let (status, _) = post(&web, "/api/start", extra, r#"{"users": 5}"#);
        assert_eq!(status, 403, "{extra:?}");
        assert_eq!(phase(&web), "waiting");
    }
    // A bad form is a 400 with a clear message, and no order reaches nest.
    let good = format!("\r\nX-Nest-Token: {token}\r\nOrigin: {own}");
    let (status, body) = post(&web, "/api/start", &good, r#"{"users": 0}"#);
    assert_eq!((status, body.contains("at least 1")), (400, true), "{body}");
    let (status, body) = post(&web, "/api/start", &good, r#"{"host": "http://elsewhere"}"#);
    assert_eq!((status, body.contains("unknown field")), (400, true), "{body}");
    let huge = format!(r#"{{"weights": {{"shop": 1}}, "pad": "{}"}}"#, "x".repeat(20_000));
    let (status, _) = post(&web, "/api/start", &good, &huge);
    assert_eq!(status, 413);
    // Only a valid order reaches nest, which answers it.
    let nest = {
        let web = web.clone();
        std::thread::spawn(move || {
            let order = web.next_start().unwrap();
            let request = order.request.clone();
            order.accept();
            request
        })
    };
    let (status, body) = post(&web, "/api/start", &good, r#"{"users": 5, "weights": {"shop": 3}}"#);
    assert_eq!(status, 204, "{body}");
    let request = nest.join().unwrap();
    assert_eq!((request.users, request.weights["shop"]), (Some(5), 3));
}

#[test]
fn a_refused_plan_is_a_400_and_the_page_keeps_waiting() {
    let web = Arc::new(WebUi::start(local(), None, setup()).unwrap());
    let token = token(&web);
    let nest = {
        let web = web.clone();
        std::thread::spawn(move || web.next_start().unwrap().refuse("--max-users belongs to the open model".into()))
    };
    let (status, body) = post(&web, "/api/start", &format!("\r\nX-Nest-Token: {token}"), r#"{"users": 5}"#);
    nest.join().unwrap();
    assert_eq!((status, body.as_str()), (400, "--max-users belongs to the open model"));
    assert_eq!(phase(&web), "waiting");
}

#[test]
fn stop_needs_the_token_and_reaches_the_run() {
    let web = WebUi::start(local(), None, setup()).unwrap();
    let token = token(&web);
    let (status, _) = post(&web, "/api/stop", &format!("\r\nX-Nest-Token: {token}"), "");
    assert_eq!(status, 409, "nothing to stop before the run");
    let handle = RunHandle::new();
    let (_publish, snapshots) = nest_core::snapshot::channel();
    web.running(handle.clone(), snapshots, context());
    let (status, _) = post(&web, "/api/stop", "", "");
    assert_eq!(status, 403);
    let (status, _) = post(&web, "/api/stop", &format!("\r\nX-Nest-Token: {token}\r\nOrigin: http://evil.example"), "");
    assert_eq!(status, 403);
    assert!(!handle.is_stopping(), "a refused stop changed the run");
    // A change of users or a reset without the token changes nothing either; with it, it reaches the handle,
    // which says that its run has not started (no runner holds it here).
    let before = handle.target().borrow().clone();
    for (path, body) in [("/api/users", r#"{"users": 9}"#), ("/api/rate", r#"{"rate": 9}"#), ("/api/reset", "")] {
        let (status, _) = post(&web, path, "\r\nOrigin: http://127.0.0.1:1", body);
        assert_eq!(status, 403, "{path}");
        let (status, _) = post(&web, path, &format!("\r\nX-Nest-Token: {token}\r\nOrigin: null"), body);
        assert_eq!(status, 403, "{path} from an opaque origin");
        let (status, text) = post(&web, path, &format!("\r\nX-Nest-Token: {token}"), body);
        assert_eq!((status, text.as_str()), (409, "the load has not started yet"), "{path}");
    }
    assert_eq!(*handle.target().borrow(), before);
    let (status, text) = post(&web, "/api/users", &format!("\r\nX-Nest-Token: {token}"), r#"{"users": -1}"#);
    assert_eq!(status, 400, "{text}");
    let (status, _) = post(&web, "/api/stop", &format!("\r\nX-Nest-Token: {token}"), "");
    assert_eq!(status, 204);
    assert!(handle.is_stopping());
}

#[test]
fn the_event_stream_delivers_the_snapshots() {
    let web = WebUi::start(local(), None, setup()).unwrap();
    let (publish, snapshots) = nest_core::snapshot::channel();
    web.running(RunHandle::new(), snapshots, context());
    publish.send_replace(snapshot(1, 10, 0));
    let mut stream = TcpStream::connect(web.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: {}\r\n\r\n", web.addr()).unwrap();
    let mut lines = BufReader::new(stream).lines();
    let mut next_view = || loop {
        let line = lines.next().expect("the stream ended").expect("no event within 10 s");
        if let Some(json) = line.strip_prefix("data: ")
            && json.starts_with("{\"phase\"")
        {
            return serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    };
    let first = next_view();
    assert_eq!(first["live"]["requests"], 10);
    // The next snapshot reaches the open stream, with its chart point and the live verdict.
    publish.send_replace(snapshot(2, 30, 6));
    let view = loop {
        let view = next_view();
        if view["live"]["requests"] == 30 {
            break view;
        }
    };
    assert_eq!(view["live"]["run_phase"], "load");
    assert_eq!(view["live"]["rows"][0]["fails"], 6);
    assert_eq!(view["points"].as_array().unwrap().last().unwrap()["rps"], 30.0);
    assert_eq!(view["verdicts"][0]["passed"], false, "20% errors breach error_rate < 10%");
    assert_eq!(view["target"], serde_json::json!({"model": "closed", "users": 2, "spawn_rate": null}));
    // A report of the run so far can be downloaded at any moment.
    let (status, body) = get(&web, "/api/report.json", "");
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["requests"][0]["requests"], 30);
    for path in ["/api/report.html", "/api/report.xml", "/api/report.csv?file=stats"] {
        let (status, body) = get(&web, path, "");
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("/items"), "{path}: {body}");
    }
    assert_eq!(get(&web, "/api/report.csv?file=nope", "").0, 404);
}

/// A coordinator's controls, as the page sees them: every call is recorded, and the answer is the one given.
#[derive(Default)]
struct FakeCoordinator {
    calls: std::sync::Mutex<Vec<String>>,
    refuse: Option<nest_core::ControlError>,
}

impl nest_web::Steer for FakeCoordinator {
    fn stop(&self) {
        self.calls.lock().unwrap().push("stop".into());
    }
    fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), nest_core::ControlError> {
        self.calls.lock().unwrap().push(format!("users {users} {spawn_rate:?}"));
        self.refuse.clone().map_or(Ok(()), Err)
    }
    fn set_rate(&self, per_second: f64) -> Result<(), nest_core::ControlError> {
        self.calls.lock().unwrap().push(format!("rate {per_second}"));
        self.refuse.clone().map_or(Ok(()), Err)
    }
    fn reset_stats(&self) -> Result<(), nest_core::ControlError> {
        self.calls.lock().unwrap().push("reset".into());
        Ok(())
    }
}

/// Waits for a view of `web` for which `ok` holds (the follower task publishes it soon after a snapshot).
fn wait_for_view(web: &WebUi, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(web, "/api/state", "");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        if ok(&view) {
            return view;
        }
        assert!(std::time::Instant::now() < deadline, "no such view within 10 s: {view}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_coordinated_run_is_steered_from_the_page_and_strangers_change_nothing() {
    let fixed = LoadSetup::Fixed { description: "2 segments".into() };
    let web = WebUi::start(local(), None, Setup { load: fixed, mix: Vec::new(), ..setup() }).unwrap();
    let token = token(&web);
    let coordinator = Arc::new(FakeCoordinator::default());
    let (publish, snapshots) = nest_core::snapshot::channel();
    web.coordinating(coordinator.clone(), snapshots, context());
    // The merged snapshot carries the segments' target: the page offers the users control and the reset.
    publish.send_replace(snapshot(1, 10, 0));
    let view = wait_for_view(&web, |v| v["live"]["requests"] == 10);
    assert_eq!(view["target"], serde_json::json!({"model": "closed", "users": 2, "spawn_rate": null}));
    assert_eq!(view["can_reset"], true);
    // Without the token, or from another origin, nothing reaches the coordinator.
    let strangers = ["".to_owned(), format!("\r\nX-Nest-Token: {token}\r\nOrigin: http://evil.example")];
    for extra in &strangers {
        for (path, body) in [("/api/users", r#"{"users": 9}"#), ("/api/rate", r#"{"rate": 9}"#), ("/api/reset", "")] {
            assert_eq!(post(&web, path, extra, body).0, 403, "{path} {extra:?}");
        }
        assert_eq!(post(&web, "/api/stop", extra, "").0, 403);
    }
    assert!(coordinator.calls.lock().unwrap().is_empty(), "{:?}", coordinator.calls);
    // With them, each control reaches it.
    let ok = format!("\r\nX-Nest-Token: {token}");
    let (status, body) = post(&web, "/api/users", &ok, r#"{"users": 40, "spawn_rate": 5}"#);
    assert_eq!(status, 204, "{body}");
    assert_eq!(post(&web, "/api/rate", &ok, r#"{"rate": 7.5}"#).0, 204);
    assert_eq!(post(&web, "/api/reset", &ok, "").0, 204);
    assert_eq!(post(&web, "/api/stop", &ok, "").0, 204);
    assert_eq!(*coordinator.calls.lock().unwrap(), ["users 40 Some(5.0)", "rate 7.5", "reset", "stop"]);
    assert!(web.stopped_from_page());
}

#[test]
fn a_change_the_coordinator_refuses_comes_back_with_its_reason() {
    let web = WebUi::start(local(), None, setup()).unwrap();
    let token = token(&web);
    let refuse = nest_core::ControlError::WrongModel { model: "open", hint: "change its rate" };
    let (_publish, snapshots) = nest_core::snapshot::channel();
    web.coordinating(FakeCoordinator { refuse: Some(refuse), ..Default::default() }, snapshots, context());
    let (status, body) = post(&web, "/api/users", &format!("\r\nX-Nest-Token: {token}"), r#"{"users": 3}"#);
    assert_eq!((status, body.as_str()), (400, "this run uses the open model: change its rate"));
    let over = FakeCoordinator { refuse: Some(nest_core::ControlError::Over), ..Default::default() };
    let web = WebUi::start(local(), None, setup()).unwrap();
    let token = self::token(&web);
    web.coordinating(over, nest_core::snapshot::channel().1, context());
    let (status, body) = post(&web, "/api/rate", &format!("\r\nX-Nest-Token: {token}"), r#"{"rate": 3}"#);
    assert_eq!((status, body.as_str()), (409, "the run is over (or stopping): its load can no longer change"));
}

#[test]
fn a_report_downloaded_mid_run_has_every_sealed_second_seen_so_far() {
    let web = WebUi::start(local(), None, setup()).unwrap();
    let (publish, snapshots) = nest_core::snapshot::channel();
    web.running(RunHandle::new(), snapshots, context());
    // Four seconds of 10, 20, 30 and 40 requests (the totals grow by as many); each seen before the next.
    for seq in 1..=4u64 {
        let mut snapshot = Arc::into_inner(snapshot(seq, seq * (seq + 1) * 5, 0)).unwrap();
        if let Some(total) = snapshot.last.as_mut().and_then(|l| l.total.as_mut()) {
            total.count = seq * 10;
        }
        publish.send_replace(Arc::new(snapshot));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = get(&web, "/api/state", "");
            let state: serde_json::Value = serde_json::from_str(&body).unwrap();
            if state["live"]["requests"] == seq * (seq + 1) * 5 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "snapshot {seq} never shown: {state}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (status, body) = get(&web, "/api/report.json", "");
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["totals"]["requests"], 100, "10 + 20 + 30 + 40");
    let points: Vec<(u64, u64)> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["t"].as_u64().unwrap(), p["total"]["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(points, [(0, 10), (1, 20), (2, 30), (3, 40)]);
    // The history file has them too.
    let (status, csv) = get(&web, "/api/report.csv?file=stats_history", "");
    assert_eq!(status, 200);
    assert_eq!(csv.lines().filter(|l| l.contains("Aggregated")).count(), 4, "{csv}");
}
