//! The coordinator over real HTTP on loopback, driven by fake segments: what each request changes, and what it
//! must not.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use nest_coord::client::{Client, ClientError, Session};
use nest_coord::finish::{Verdict, conclude};
use nest_coord::protocol::{Live, Register};
use nest_coord::server::{Coordinator, Handle};
use nest_coord::state::{End, Event, Settings};
use nest_coord::token::Token;
use nest_core::stats::{Aggregate, Failure, FailureKind, Recorder, Sample, TimelineRow};
use nest_report::model::{Report, RunInfo};
use nest_report::thresholds::Threshold;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const TOKEN: &str = "test-token-0123456789";

struct Running {
    addr: SocketAddr,
    handle: Handle,
    snapshots: nest_core::Snapshots,
    end: JoinHandle<(End, Vec<Event>)>,
}

async fn start(settings: Settings) -> Running {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let coordinator = Coordinator::bind(any, Token::new(TOKEN).unwrap(), settings, "run-x".into()).await.unwrap();
    let (addr, handle, snapshots) = (coordinator.local_addr(), coordinator.handle(), coordinator.snapshots());
    let end = tokio::spawn(async move {
        let mut events = Vec::new();
        let end = coordinator.run(|e| events.push(e)).await.unwrap();
        (end, events)
    });
    Running { addr, handle, snapshots, end }
}

fn session(addr: SocketAddr, index: u32, segments: u32, plan_hash: &str) -> Session {
    let client = Client::new(&format!("http://{addr}"), Token::new(TOKEN).unwrap()).unwrap();
    let register = Register {
        index,
        segments,
        plan_hash: plan_hash.into(),
        host: format!("host-{index}"),
        run_id: format!("seg-{index}"),
    };
    Session::new(client, register)
}

/// A segment's report: `requests` successful GET /a of 1 ms, `failed` failed ones.
fn report(requests: u64, failed: u64) -> Report {
    let r = Recorder::new();
    for i in 0..requests + failed {
        let failure = (i >= requests).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
        r.request("GET", "/a", Sample { latency: Duration::from_millis(1), failure, ..Default::default() });
    }
    let mut agg = Aggregate::default();
    agg.merge(r.take());
    agg.seal_before(u64::MAX);
    let summary = nest_core::stats::Summary::new(
        &agg,
        nest_core::stats::SummaryParts {
            tasksets: &[],
            duration_s: 1.0,
            started_at: 0.0,
            counted_from_s: None,
            users: 1,
            open: false,
            stopped_in: None,
            pools: Vec::new(),
        },
    );
    let run = RunInfo {
        nest_version: "test".into(),
        command: "nest run".into(),
        host: "http://127.0.0.1:1".into(),
        load: "closed".into(),
        workers: 1,
        run_time_s: Some(1.0),
        iterations: None,
        mix: Vec::new(),
        identity: None,
        segments: Vec::new(),
        incomplete: None,
        stats_reset: None,
    };
    Report { summary, run, thresholds: Vec::new() }
}

/// Raw HTTP: the status of a POST with these headers and body.
async fn status_of(addr: SocketAddr, route: &str, auth: Option<&str>, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /v1/{route} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413, 401) before reading the whole body and close: a failed write is fine then.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn three_segments_meet_share_setup_and_merge_exactly() {
    let run = start(Settings::new(3)).await;
    let sessions: Vec<Session> = (0..3).map(|i| session(run.addr, i, 3, "plan-a")).collect();
    for s in &sessions {
        assert_eq!(s.register(Duration::ZERO).await.unwrap().run_id, "run-x");
    }
    let waiting: Vec<_> =
        sessions[1..].iter().cloned().map(|s| tokio::spawn(async move { s.ready(None).await })).collect();
    let zero = sessions[0].ready(Some(b"setup-value".to_vec())).await.unwrap();
    assert!(zero.at > SystemTime::now() - Duration::from_secs(1));
    assert_eq!(zero.setup.as_deref(), Some(&b"setup-value"[..]));
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap(), zero, "every segment gets the same start and setup() value");
    }

    // Segment 0's teardown waits for the others' load.
    let zero_session = sessions[0].clone();
    let teardown = tokio::spawn(async move { zero_session.load_done().await });
    sessions[1].load_done().await.unwrap();
    assert!(!teardown.is_finished(), "segment 2's load still runs");
    sessions[2].load_done().await.unwrap();
    teardown.await.unwrap().unwrap();

    for (i, s) in sessions.iter().enumerate() {
        s.upload(&report(10 * (i as u64 + 1), 0)).await.unwrap();
    }
    let (end, events) = run.end.await.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Started { .. })));
    let conclusion = conclude(end, &Settings::new(3)).unwrap();
    assert_eq!(conclusion.verdict, Verdict::Passed);
    let merged = conclusion.report.unwrap();
    assert_eq!(merged.summary.totals.requests, 10 + 20 + 30);
}

#[tokio::test]
async fn refusals_name_the_reason() {
    // (Cancelled at the end, the coordinator waits up to --lost-after for the registered segments to hear of it.)
    let run = start(Settings { lost_after: Duration::from_millis(300), ..Settings::new(2) }).await;
    session(run.addr, 0, 2, "plan-a").register(Duration::ZERO).await.unwrap();
    let refused = |r: Result<_, ClientError>| match r {
        Err(ClientError::Refused(m)) => m,
        other => panic!("not refused: {other:?}"),
    };
    let m = refused(session(run.addr, 1, 2, "plan-b").register(Duration::ZERO).await);
    assert!(m.contains("plan hash plan-b") && m.contains("segment 0 has plan-a"), "{m}");
    let m = refused(session(run.addr, 2, 2, "plan-a").register(Duration::ZERO).await);
    assert!(m.contains("index 2 is out of range") && m.contains("0 to 1"), "{m}");
    let m = refused(session(run.addr, 0, 2, "plan-a").register(Duration::ZERO).await);
    assert!(m.contains("segment 0 is already registered (from host-0)"), "{m}");
    let m = refused(session(run.addr, 1, 3, "plan-a").register(Duration::ZERO).await);
    assert!(m.contains("started with 3 segments, but this run has 2"), "{m}");
    // None of them took the seat: segment 1 still joins.
    session(run.addr, 1, 2, "plan-a").register(Duration::ZERO).await.unwrap();
    run.handle.stop_all("test over");
    assert!(matches!(run.end.await.unwrap().0, End::Cancelled { .. }));
}

#[tokio::test]
async fn strangers_without_the_token_change_nothing() {
    let run = start(Settings::new(1)).await;
    let body = serde_json::to_vec(&Register {
        index: 0,
        segments: 1,
        plan_hash: "p".into(),
        host: "evil".into(),
        run_id: "r".into(),
    })
    .unwrap();
    assert_eq!(status_of(run.addr, "register", None, &body).await, 401);
    assert_eq!(status_of(run.addr, "register", Some("Bearer wrong-token-0123456789"), &body).await, 401);
    assert_eq!(status_of(run.addr, "register", Some(TOKEN), &body).await, 401, "not a bearer token");
    let bearer = format!("Bearer {TOKEN}");
    let wrong = Client::new(&format!("http://{}", run.addr), Token::new("wrong-token-0123456789").unwrap()).unwrap();
    let err = wrong.post::<_, serde_json::Value>("result", &serde_json::json!({})).await.unwrap_err();
    assert!(matches!(&err, ClientError::Refused(m) if m.contains("NEST_COORDINATOR_TOKEN")), "{err:?}");

    // The seat is still free: the real segment joins and becomes ready.
    let real = session(run.addr, 0, 1, "p");
    real.register(Duration::ZERO).await.unwrap();
    // With the token, a request for a segment nobody registered, or with another run id, is refused too.
    let live = |index, run_id: &str| {
        serde_json::to_vec(&serde_json::json!({"index": index, "run_id": run_id, "seq": 1, "users": 1})).unwrap()
    };
    assert_eq!(status_of(run.addr, "live", Some(&bearer), &live(0, "another")).await, 403);
    assert_eq!(status_of(run.addr, "live", Some(&bearer), &live(7, "seg-0")).await, 403);
    assert_eq!(status_of(run.addr, "live", Some(&bearer), b"{not json").await, 400);
    let start = real.ready(None).await.unwrap();
    // A push whose histogram does not decode is refused as invalid (400), not taken, and stops no one.
    let broken = serde_json::json!({"index": 0, "run_id": "seg-0", "seq": 1, "users": 1, "rows": [{
        "method": "GET", "name": "/a", "count": 1, "failures": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0,
        "latency": {"sum_us": 1, "min_us": 1, "max_us": 1, "histogram": "not a histogram"}}]});
    assert_eq!(status_of(run.addr, "live", Some(&bearer), &serde_json::to_vec(&broken).unwrap()).await, 400);
    assert!(start.setup.is_none());
    // No one can stop it: there is no stop route, and a stranger's push is refused before it is read.
    assert_eq!(status_of(run.addr, "stop", Some(&bearer), b"{}").await, 404);
    assert_eq!(status_of(run.addr, "live", None, &live(0, "seg-0")).await, 401);
    let heartbeat = Live {
        member: real.member().clone(),
        seq: 1,
        users: 1,
        rows: vec![],
        checks: vec![],
        script_errors: 0,
        counted_from_s: 0,
        refused: None,
        start_skew_ms: None,
        target: None,
    };
    assert_eq!(real.push(&heartbeat).await.unwrap().stop, None);
    real.upload(&report(3, 0)).await.unwrap();
    let (end, _) = run.end.await.unwrap();
    let End::Ran { results, lost, .. } = end else { panic!("the run ran") };
    assert_eq!((results.len(), lost.len()), (1, 0));
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let run = start(Settings::new(1)).await;
    let bearer = format!("Bearer {TOKEN}");
    let big = vec![b' '; nest_coord::protocol::limits::SMALL + 1];
    assert_eq!(status_of(run.addr, "register", Some(&bearer), &big).await, 413);
    let big = vec![b' '; nest_coord::protocol::limits::LIVE + 1];
    assert_eq!(status_of(run.addr, "live", Some(&bearer), &big).await, 413);
    // Without the token, not even the size is looked at.
    assert_eq!(status_of(run.addr, "live", None, &big).await, 401);
    run.handle.stop_all("test over");
    run.end.await.unwrap();
}

#[tokio::test]
async fn the_ready_timeout_names_the_missing_segments() {
    let settings = Settings {
        ready_timeout: Duration::from_millis(500),
        lost_after: Duration::from_millis(300),
        ..Settings::new(3)
    };
    let run = start(settings).await;
    let zero = session(run.addr, 0, 3, "p");
    zero.register(Duration::ZERO).await.unwrap();
    session(run.addr, 1, 3, "p").register(Duration::ZERO).await.unwrap();
    let err = zero.ready(None).await.unwrap_err();
    let ClientError::Cancelled(reason) = err else { panic!("cancelled, not {err:?}") };
    assert!(reason.contains("segment 2 (never registered)") && reason.contains("segment 1 (registered, not ready)"));
    let (end, _) = run.end.await.unwrap();
    let End::Cancelled { missing, .. } = &end else { panic!("cancelled") };
    assert_eq!(missing, &[1, 2]);
    let c = conclude(end, &Settings::new(3)).unwrap();
    assert_eq!(c.verdict, Verdict::Incomplete);
    assert!(c.report.is_none());
}

#[tokio::test]
async fn a_silent_segment_is_lost_and_the_run_is_incomplete() {
    let settings = Settings { lost_after: Duration::from_millis(400), ..Settings::new(2) };
    let run = start(settings.clone()).await;
    let (a, b) = (session(run.addr, 0, 2, "p"), session(run.addr, 1, 2, "p"));
    a.register(Duration::ZERO).await.unwrap();
    b.register(Duration::ZERO).await.unwrap();
    let b_ready = tokio::spawn({
        let b = b.clone();
        async move { b.ready(None).await }
    });
    a.ready(None).await.unwrap();
    b_ready.await.unwrap().unwrap();
    // Segment 1 goes silent; segment 0's teardown is released once it is lost.
    a.load_done().await.unwrap();
    // A lost segment cannot come back with figures or results.
    let heartbeat = Live {
        member: b.member().clone(),
        seq: 1,
        users: 1,
        rows: vec![],
        checks: vec![],
        script_errors: 0,
        counted_from_s: 0,
        refused: None,
        start_skew_ms: None,
        target: None,
    };
    assert!(matches!(b.push(&heartbeat).await, Err(ClientError::Refused(m)) if m.contains("declared lost")));
    assert!(matches!(b.upload(&report(1, 0)).await, Err(ClientError::Refused(m)) if m.contains("lost")));
    a.upload(&report(5, 0)).await.unwrap();
    let (end, events) = run.end.await.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Lost(l) if l.index == 1 && l.reason.contains("silent"))));
    let c = conclude(end, &settings).unwrap();
    assert_eq!(c.verdict, Verdict::Incomplete);
    assert_eq!(c.report.as_ref().unwrap().summary.totals.requests, 5);
    let lines = c.incomplete_lines().join("\n");
    assert!(lines.contains("segment 1 lost") && lines.contains("1 of 2 segments missing, 50.0%"), "{lines}");
}

#[tokio::test]
async fn an_abort_threshold_on_the_merged_figures_stops_every_segment() {
    let threshold = Threshold::parse("error_rate < 10%").unwrap().with_abort(true, Duration::ZERO);
    let settings = Settings { thresholds: vec![threshold], ..Settings::new(2) };
    let run = start(settings.clone()).await;
    let s: Vec<Session> = (0..2).map(|i| session(run.addr, i, 2, "p")).collect();
    for x in &s {
        x.register(Duration::ZERO).await.unwrap();
    }
    let one = tokio::spawn({
        let x = s[1].clone();
        async move { x.ready(None).await }
    });
    let start_at = s[0].ready(None).await.unwrap().at;
    one.await.unwrap().unwrap();
    tokio::time::sleep(start_at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    // Each segment alone has 8% failures; merged, 10 of 100 fail: breached only on the whole.
    let row = |ok: u64, failed: u64| {
        let mut agg = Aggregate::default();
        let r = Recorder::new();
        for i in 0..ok + failed {
            let failure = (i >= ok).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
            r.request("GET", "/a", Sample { latency: Duration::from_millis(1), failure, ..Default::default() });
        }
        agg.merge(r.take());
        TimelineRow::of("GET", "/a", &agg.requests[&("/a".to_owned(), "GET".to_owned())])
    };
    let push = |x: &Session, rows| Live {
        member: x.member().clone(),
        seq: 1,
        users: 1,
        rows,
        checks: vec![],
        script_errors: 0,
        counted_from_s: 0,
        refused: None,
        start_skew_ms: None,
        target: None,
    };
    assert_eq!(s[0].push(&push(&s[0], vec![row(46, 4)])).await.unwrap().stop, None, "8% < 10%");
    s[1].push(&push(&s[1], vec![row(44, 6)])).await.unwrap();
    // The clock checks the thresholds; a later push carries the stop. (Bounded wait on the condition.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seq = 2;
    let stop = loop {
        let mut p = push(&s[0], vec![]);
        p.seq = seq;
        seq += 1;
        if let Some(stop) = s[0].push(&p).await.unwrap().stop {
            break stop;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stop within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(stop.contains("error_rate < 10%"), "{stop}");
    s[0].upload(&report(45, 5)).await.unwrap();
    s[1].upload(&report(44, 6)).await.unwrap();
    let (end, events) = run.end.await.unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Aborted { .. })));
    let c = conclude(end, &settings).unwrap();
    assert!(matches!(c.verdict, Verdict::Failed { failed: 1, .. }), "{:?}", c.verdict);
    assert!(c.report.unwrap().thresholds[0].aborted_at_s.is_some());
}

#[tokio::test]
async fn the_operator_changes_the_load_and_resets_the_statistics_of_every_segment() {
    let settings = Settings::new(2);
    let run = start(settings.clone()).await;
    let s: Vec<Session> = (0..2).map(|i| session(run.addr, i, 2, "p")).collect();
    for x in &s {
        x.register(Duration::ZERO).await.unwrap();
    }
    let target = nest_core::LoadTarget::Users { users: 40, spawn_rate: Some(5.0) };
    assert_eq!(run.handle.set_users(40, Some(5.0)), Err(nest_core::ControlError::NotStarted));
    let one = tokio::spawn({
        let x = s[1].clone();
        async move { x.ready(None).await }
    });
    let start_at = s[0].ready(None).await.unwrap().at;
    one.await.unwrap().unwrap();
    tokio::time::sleep(start_at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let row = |n: u64| {
        let r = Recorder::new();
        for _ in 0..n {
            r.request("GET", "/a", Sample { latency: Duration::from_millis(1), ..Default::default() });
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        TimelineRow::of("GET", "/a", &agg.requests[&("/a".to_owned(), "GET".to_owned())])
    };
    let push = |x: &Session, seq, rows, counted_from_s, refused: Option<&str>| Live {
        member: x.member().clone(),
        seq,
        users: 1,
        rows,
        checks: vec![],
        script_errors: 0,
        counted_from_s,
        refused: refused.map(str::to_owned),
        start_skew_ms: None,
        target: None,
    };
    let before = s[0].push(&push(&s[0], 1, vec![row(5)], 0, None)).await.unwrap();
    assert_eq!((before.steer, before.reset), (None, None), "nothing to change yet");

    // Bad values are refused at once; a good one reaches both segments, for one instant ahead.
    assert!(matches!(run.handle.set_rate(f64::NAN), Err(nest_core::ControlError::Invalid(_))));
    run.handle.set_users(40, Some(5.0)).unwrap();
    let a = s[0].push(&push(&s[0], 2, vec![], 0, None)).await.unwrap().steer.expect("the change");
    let b = s[1].push(&push(&s[1], 1, vec![], 0, None)).await.unwrap().steer.expect("the change");
    assert_eq!(a, b, "the same change, the same instant, for every segment");
    assert_eq!(a.target, target);
    let lead = nest_coord::steer::LEAD.as_millis() as u64;
    let elapsed = SystemTime::now().duration_since(start_at).unwrap().as_millis() as u64;
    assert!((lead..=lead + elapsed).contains(&a.at_ms), "{} ms, {elapsed} ms into the load", a.at_ms);

    // A reset: from a whole second ahead; the live figures restart, and rows counted before it are dropped.
    run.handle.reset_stats().unwrap();
    let reset = s[0].push(&push(&s[0], 3, vec![row(7)], 0, None)).await.unwrap().reset.expect("the reset");
    assert!(reset.at_s * 1000 >= lead, "{reset:?}");
    s[1].push(&push(&s[1], 2, vec![row(3)], reset.at_s, Some("the load follows its stages"))).await.unwrap();
    // The operator's view: from the reset on, only the 3 requests pushed as counted from it.
    let mut snapshots = run.snapshots.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if !snapshot.counted_from.is_zero() {
            assert_eq!(snapshot.counted_from, Duration::from_secs(reset.at_s));
            assert_eq!(snapshot.target, Some(target.clone()));
            let count = snapshot.totals.total().count;
            assert!(count == 0 || count == 3, "{count}: the rows from before the reset were dropped");
            if count == 3 {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no snapshot after the reset within 5 s");
        let _ = tokio::time::timeout(Duration::from_millis(500), snapshots.changed()).await;
    }

    let zero = s[0].clone();
    let teardown = tokio::spawn(async move { zero.load_done().await });
    s[1].load_done().await.unwrap();
    teardown.await.unwrap().unwrap();
    assert_eq!(run.handle.set_users(1, None), Err(nest_core::ControlError::Over), "every load is over");
    s[0].upload(&report(1, 0)).await.unwrap();
    s[1].upload(&report(1, 0)).await.unwrap();
    let (_, events) = run.end.await.unwrap();
    let refused: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Refused { .. })).collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert!(refused[0].to_string().contains("segment 1 refused the change of load: the load follows its stages"));
}

#[tokio::test]
async fn the_segments_skew_and_model_reach_the_operator() {
    let run = start(Settings::new(2)).await;
    let s: Vec<Session> = (0..2).map(|i| session(run.addr, i, 2, "p")).collect();
    for x in &s {
        x.register(Duration::ZERO).await.unwrap();
    }
    let seats = run.handle.seats();
    assert_eq!((seats[0].state, seats[0].start_skew_ms), ("registered", None));
    let one = tokio::spawn({
        let x = s[1].clone();
        async move { x.ready(None).await }
    });
    let start_at = s[0].ready(None).await.unwrap().at;
    one.await.unwrap().unwrap();
    assert_eq!(s[0].start_at(), Some(start_at), "the session keeps the common start for its live feed");
    tokio::time::sleep(start_at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let closed = nest_core::LoadTarget::Users { users: 10, spawn_rate: None };
    let push = |x: &Session, seq, start_skew_ms, target: Option<nest_core::LoadTarget>| Live {
        member: x.member().clone(),
        seq,
        users: 5,
        rows: vec![],
        checks: vec![],
        script_errors: 0,
        counted_from_s: 0,
        refused: None,
        start_skew_ms,
        target,
    };
    // Before any segment said what its load is, a change of either model is handed out.
    run.handle.set_rate(3.0).unwrap();
    s[0].push(&push(&s[0], 1, Some(12.5), Some(closed.clone()))).await.unwrap();
    s[1].push(&push(&s[1], 1, None, None)).await.unwrap();
    let seats = run.handle.seats();
    assert_eq!((seats[0].state, seats[0].start_skew_ms), ("running", Some(12.5)));
    assert_eq!(seats[1].start_skew_ms, None, "segment 1 did not say yet");
    // A later push without it keeps the skew; segment 1's own shows too.
    s[0].push(&push(&s[0], 2, None, None)).await.unwrap();
    s[1].push(&push(&s[1], 2, Some(-0.25), None)).await.unwrap();
    let skews: Vec<_> = run.handle.seats().iter().map(|x| x.start_skew_ms).collect();
    assert_eq!(skews, [Some(12.5), Some(-0.25)]);
    // Segment 0 said its load is a number of users: a rate is refused at once, with the words of a single run.
    let refused = run.handle.set_rate(5.0).unwrap_err();
    assert!(matches!(refused, nest_core::ControlError::WrongModel { model: "closed", .. }), "{refused}");
    run.handle.set_users(20, Some(2.0)).unwrap();
    // The merged snapshots (one a second) say what the segments' load is steered to, rather than what was handed
    // out (20 users, not yet applied, and before that the rate of 3 that segment 0 never took).
    let mut snapshots = run.snapshots.clone();
    let seq = snapshots.borrow().seq;
    let snapshot = tokio::time::timeout(Duration::from_secs(5), snapshots.wait_for(|s| s.seq > seq))
        .await
        .expect("a merged snapshot within 5 s")
        .unwrap()
        .clone();
    assert_eq!(snapshot.target, Some(closed));
    assert_eq!(snapshot.started_at, Some(start_at));

    let zero = s[0].clone();
    let teardown = tokio::spawn(async move { zero.load_done().await });
    s[1].load_done().await.unwrap();
    teardown.await.unwrap().unwrap();
    for x in &s {
        x.upload(&report(1, 0)).await.unwrap();
    }
    run.end.await.unwrap();
}
