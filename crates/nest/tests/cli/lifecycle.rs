//! The VU lifecycle as the server sees it: hooks per taskset entry, `interrupt()`, and per-VU cookie jars.

use std::collections::BTreeMap;

use crate::server::{Reply, Seen, Server};
use crate::support::Sandbox;

/// Requests per VU (the `X-VU` header) and path.
fn per_vu(seen: &[Seen]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut map: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in seen {
        let vu = s.vu().unwrap_or_else(|| panic!("{} {} without X-VU", s.method, s.path));
        *map.entry(vu.to_owned()).or_default().entry(s.path.clone()).or_default() += 1;
    }
    map
}

fn vu_ids(users: u64) -> Vec<String> {
    (0..users).map(|i| i.to_string()).collect()
}

#[test]
fn on_start_runs_once_per_vu_per_taskset_entry() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "life.rhai",
        r#"
task(1, work);

fn on_start() { client.get("/start", #{ headers: #{ "X-VU": `${vu_id}` } }); }

fn work() {
    client.get("/work", #{ headers: #{ "X-VU": `${vu_id}` } });
    interrupt();
}

fn on_stop() { client.get("/stop", #{ headers: #{ "X-VU": `${vu_id}` } }); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "4", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let by_vu = per_vu(&server.seen());
    assert_eq!(by_vu.keys().cloned().collect::<Vec<_>>(), vu_ids(4), "{by_vu:?}");
    for (vu, paths) in &by_vu {
        let n = |p: &str| paths.get(p).copied().unwrap_or(0);
        let (start, work, stop) = (n("/start"), n("/work"), n("/stop"));
        assert!(start > 1, "VU {vu} entered the taskset only {start} times");
        // The graceful stop runs on_stop after every on_start ...
        assert_eq!(start, stop, "VU {vu}: {paths:?}");
        // ... and a task runs once per entry, except when the stop came right after on_start.
        assert!(work <= start && work + 1 >= start, "VU {vu}: {paths:?}");
    }
    let total = |p: &str| server.count("GET", p);
    assert_eq!(report.runs("life", "on_start"), total("/start"), "{}", run.context());
    assert_eq!(report.runs("life", "work"), total("/work"), "{}", run.context());
    assert_eq!(report.runs("life", "on_stop"), total("/stop"), "{}", run.context());
    assert_eq!(report.total_requests(), server.total());
    assert!(report.errors().is_empty(), "{}", run.context());
}

#[test]
fn interrupt_moves_vus_between_tasksets() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    for name in ["a", "b"] {
        sandbox.write(
            &format!("{name}.rhai"),
            &format!(
                r#"
task(1, visit);

fn visit() {{
    client.get("/{name}", #{{ headers: #{{ "X-VU": `${{vu_id}}` }} }});
    interrupt();
}}
"#
            ),
        );
    }
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let by_vu = per_vu(&server.seen());
    assert_eq!(by_vu.keys().cloned().collect::<Vec<_>>(), vu_ids(2), "{by_vu:?}");
    for (vu, paths) in &by_vu {
        assert!(
            paths.get("/a").is_some_and(|&n| n > 0) && paths.get("/b").is_some_and(|&n| n > 0),
            "VU {vu} did not visit both tasksets: {paths:?}"
        );
    }
    assert_eq!(report.runs("a", "visit"), server.count("GET", "/a"), "{}", run.context());
    assert_eq!(report.runs("b", "visit"), server.count("GET", "/b"), "{}", run.context());
    assert!(report.errors().is_empty(), "{}", run.context());
}

#[test]
fn cookies_persist_per_vu() {
    let server = Server::builder()
        .record()
        .route(|seen| match seen.path.as_str() {
            "/login" => Reply::ok().set_cookie(format!("vu={}; Path=/", seen.vu().unwrap_or("none"))),
            _ => Reply::ok(),
        })
        .start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "session.rhai",
        r#"
task(1, me);

fn on_start() { client.get("/login", #{ headers: #{ "X-VU": `${vu_id}` } }); }

fn me() { client.get("/me", #{ headers: #{ "X-VU": `${vu_id}` } }); }
"#,
    );
    let run = sandbox.run(&server.url(), &["-u", "4", "-t", "2s"]);
    run.assert_code(0);
    let report = run.report();
    let seen = server.seen();

    // One login per VU (nothing interrupts), each from a fresh jar.
    let logins: Vec<&Seen> = seen.iter().filter(|s| s.path == "/login").collect();
    let mut login_vus: Vec<&str> = logins.iter().map(|s| s.vu().unwrap()).collect();
    login_vus.sort_unstable();
    assert_eq!(login_vus, vu_ids(4), "{}", run.context());
    for login in &logins {
        assert_eq!(login.header("cookie"), None, "{login:?}");
    }

    let mut matches: BTreeMap<&str, u64> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for s in seen.iter().filter(|s| s.path == "/me") {
        let vu = s.vu().expect("X-VU");
        if s.cookie("vu") == Some(vu) {
            *matches.entry(vu).or_default() += 1;
        } else {
            mismatches.push((vu.to_owned(), s.header("cookie").map(str::to_owned)));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} /me requests without their VU's cookie, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    assert_eq!(
        matches.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        vu_ids(4),
        "every VU sent its cookie: {matches:?}"
    );
    assert_eq!(report.requests("GET", "/me"), server.count("GET", "/me"));
    assert_eq!(report.runs("session", "on_start"), 4, "{}", run.context());
}
