//! Nested tasksets, `interrupt(false)`, `wait_time(|| ...)` and the deterministic first taskset, as the server sees
//! them.

use std::collections::{BTreeMap, BTreeSet};

use crate::server::{Seen, Server};
use crate::support::{Sandbox, line_col};

/// Per VU (the `X-VU` header), the paths it requested, in order (a VU sends one request at a time).
fn walks(seen: &[Seen]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in seen {
        let vu = s.vu().unwrap_or_else(|| panic!("{} {} without X-VU", s.method, s.path));
        map.entry(vu.to_owned()).or_default().push(s.path.clone());
    }
    map
}

/// A task body that requests `path` with the VU's id.
fn get(path: &str) -> String {
    format!("client.get(\"{path}\", #{{ headers: #{{ \"X-VU\": `${{vu_id}}` }} }});")
}

/// [`get`], with the time it was sent (`now()`, in seconds) in `X-At`.
fn get_timed(path: &str) -> String {
    format!("client.get(\"{path}\", #{{ headers: #{{ \"X-VU\": `${{vu_id}}`, \"X-At\": `${{now()}}` }} }});")
}

/// Seconds between one VU's consecutive requests, from their `X-At` headers (one VU sends one at a time), sorted.
fn gaps(seen: &[Seen], vu: &str) -> Vec<f64> {
    let at: Vec<f64> = seen
        .iter()
        .filter(|s| s.vu() == Some(vu))
        .map(|s| s.header("x-at").expect("X-At").parse().expect("X-At is a number"))
        .collect();
    let mut gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The median of sorted `gaps`: below half a think time, most pauses were skipped; a slow moment cannot move it.
fn median(gaps: &[f64]) -> f64 {
    assert!(!gaps.is_empty(), "fewer than two requests");
    gaps[gaps.len() / 2]
}

#[test]
fn twenty_users_at_3_to_1_start_15_and_5_at_the_server() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    for (name, weight) in [("a", 3), ("b", 1)] {
        let body = get(&format!("/{name}"));
        sandbox.write(
            &format!("{name}.rhai"),
            &format!("weight({weight});\nwait_time(constant(0.1));\ntask(1, hit);\nfn hit() {{ {body} }}\n"),
        );
    }
    // Every VU must have sent a request before the end: 5 s leaves a busy machine time to start all 20.
    let run = sandbox.run(&server.url(), &["-u", "20", "-t", "5s"]);
    run.assert_code(0);
    let mut vus: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in server.seen() {
        vus.entry(s.path.clone()).or_default().insert(s.vu().expect("X-VU").to_owned());
    }
    // Without interrupt() every VU stays in its first taskset: the split is exact, not drawn.
    assert_eq!(vus["/a"].len(), 15, "{vus:?}");
    assert_eq!(vus["/b"].len(), 5, "{vus:?}");
    assert!(vus["/a"].is_disjoint(&vus["/b"]));
    assert_eq!(run.report().total_requests(), server.total());
    // The mix table says so before the run.
    let row = |name: &str| {
        let line = run.stderr.lines().find(|l| l.starts_with(&format!("{name} "))).expect("mix row").to_owned();
        line.split_whitespace().take(4).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(row("a"), ["a", "3", "75.0%", "15"], "{}", run.context());
    assert_eq!(row("b"), ["b", "1", "25.0%", "5"], "{}", run.context());
}

#[test]
fn nested_visits_follow_the_weights_and_interrupts_climb_one_level() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write(
        "parent.rhai",
        &format!(
            "wait_time(constant(0.002));\ntask(1, p);\ntask(3, \"shop/child\");\n\
             fn on_start() {{ {} }}\nfn p() {{ {} }}\nfn on_stop() {{ {} }}\n",
            get("/p_start"),
            get("/p"),
            get("/p_stop")
        ),
    );
    // The child leaves after its second task in each visit.
    sandbox.write(
        "shop/child.rhai",
        &format!(
            "wait_time(constant(0.002));\ntask(1, c);\n\
             fn on_start() {{ user.n = 0; {} }}\n\
             fn c() {{ user.n += 1; {} if user.n >= 2 {{ interrupt(); }} }}\n\
             fn on_stop() {{ {} }}\n",
            get("/c_start"),
            get("/c"),
            get("/c_stop")
        ),
    );
    let run = sandbox.run(&server.url(), &["-u", "4", "-t", "2s"]);
    run.assert_code(0);
    let walks = walks(&server.seen());
    assert_eq!(walks.len(), 4, "{walks:?}");
    for (vu, walk) in &walks {
        // The child is only a nested taskset: every VU starts in the parent, and never leaves it before the end.
        assert_eq!(walk[0], "/p_start", "VU {vu}");
        assert_eq!(walk.iter().filter(|p| *p == "/p_start").count(), 1, "VU {vu}: {walk:?}");
        assert_eq!(walk.last().map(String::as_str), Some("/p_stop"), "VU {vu}");
        for (i, pair) in walk.windows(2).enumerate() {
            match pair[0].as_str() {
                // After the child's interrupt the VU is back in the parent, whose loop goes on.
                "/c_stop" => assert!(["/p", "/c_start", "/p_stop"].contains(&pair[1].as_str()), "VU {vu}: {pair:?}"),
                // The stop may come right after the child's on_start: then it leaves the child, then the parent.
                "/c_start" => assert!(pair[1] == "/c" || i + 3 == walk.len(), "VU {vu}: {walk:?}"),
                // Two tasks per visit: the second one interrupts (the stop may cut a visit short).
                "/c" if walk[i.saturating_sub(1)] == "/c_start" => {
                    assert!(["/c", "/c_stop"].contains(&pair[1].as_str()), "VU {vu}: {pair:?}")
                }
                "/c" => assert_eq!(pair[1], "/c_stop", "VU {vu}: {walk:?}"),
                _ => {}
            }
        }
    }
    let (p, visits) = (server.count("GET", "/p"), server.count("GET", "/c_start"));
    let n = (p + visits) as f64;
    assert!(n >= 100.0, "too few picks for a ratio: {p} + {visits}");
    let sd = (n * 0.75 * 0.25).sqrt();
    assert!((visits as f64 - 0.75 * n).abs() < 4.0 * sd, "visits {visits} of {n}");
    // Each taskset's tasks are reported under its own name; the nested task counts one run per visit.
    let report = run.report();
    assert_eq!(report.runs("parent", "shop/child"), visits, "{}", run.context());
    assert_eq!(report.runs("parent", "p"), p);
    assert_eq!(report.runs("shop/child", "c"), server.count("GET", "/c"));
    assert_eq!(report.runs("shop/child", "on_stop"), server.count("GET", "/c_stop"));
    assert_eq!(report.total_requests(), server.total());
    assert!(run.stderr.contains("(nested taskset)"), "{}", run.context());
}

/// The sorted gaps between the requests of one VU, for 2 s, to a child that interrupts at once (`interrupt(wait)`)
/// under a parent that thinks 0.2 s after each task.
fn visits_with(interrupt: &str) -> Vec<f64> {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("parent.rhai", "wait_time(constant(0.2));\ntask(1, \"kid\");\n");
    sandbox.write("kid.rhai", &format!("task(1, k);\nfn k() {{ {} {interrupt}; }}\n", get_timed("/k")));
    let run = sandbox.run(&server.url(), &["-u", "1", "-t", "2s"]);
    run.assert_code(0);
    assert_eq!(run.report().runs("parent", "kid"), server.count("GET", "/k"), "{}", run.context());
    gaps(&server.seen(), "0")
}

#[test]
fn interrupt_false_returns_to_the_parent_without_its_think_time() {
    // The parent's think time follows every visit that ends with interrupt(): no two requests closer than 0.2 s.
    let waiting = visits_with("interrupt()");
    assert!(waiting.first().is_some_and(|&gap| gap >= 0.199), "gaps with think time: {waiting:?}");
    // interrupt(false) skips it: most visits follow each other at once.
    let at_once = visits_with("interrupt(false)");
    assert!(median(&at_once) < 0.1, "gaps without think time: {at_once:?}");
}

#[test]
fn a_wait_time_closure_reads_the_vu_and_bad_values_are_errors_at_its_place() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    let source = format!(
        "let base = 0.0;\nwait_time(|| if vu_id == 2 {{ -1 }} else {{ base + user.think }});\ntask(1, hit);\n\
         fn on_start() {{ user.think = if vu_id == 0 {{ 0.25 }} else {{ 0.0 }}; }}\nfn hit() {{ {} }}\n",
        get_timed("/hit")
    );
    sandbox.write("w.rhai", &source);
    let run = sandbox.run(&server.url(), &["-u", "3", "-t", "2s"]);
    assert_ne!(run.code, Some(101), "{}", run.context());
    let seen = server.seen();
    let walks = walks(&seen);
    let hits = |vu: &str| walks.get(vu).map_or(0, Vec::len);
    // VU 0 thinks 0.25 s after each task (its own closure value); VU 1 thinks 0 s.
    let (slow, fast) = (gaps(&seen, "0"), gaps(&seen, "1"));
    assert!(slow.first().is_some_and(|&gap| gap >= 0.249), "VU 0's gaps: {slow:?}");
    assert!(median(&fast) < 0.1, "VU 1's gaps: {fast:?}");
    // VU 2's closure returns -1: an error at the wait_time() call for each pause, and the VU goes on.
    let (line, col) = line_col(&source, "wait_time(");
    let at = format!("{}:{line}:{col}", sandbox.path_of("w.rhai"));
    let errors = run.report().errors();
    let bad = errors.iter().find(|e| e.location == at).unwrap_or_else(|| panic!("no error at {at}: {errors:?}"));
    assert!(bad.message.contains("wait_time() closure's result: -1.0 is not a duration"), "{bad:?}");
    assert!(bad.count + 1 >= hits("2") as u64 && hits("2") >= 3, "{bad:?} for {} tasks", hits("2"));
    assert!(median(&gaps(&seen, "2")) < 0.1, "an invalid pause is no pause: {:?}", gaps(&seen, "2"));
    assert_eq!(run.report().total_requests(), server.total());
}

#[test]
fn nested_cycles_and_unknown_names_are_load_errors_at_their_place() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let a = "task(1, work);\ntask(1, \"b\");\nfn work() {}\n";
    sandbox.write("a.rhai", a).write("b.rhai", "task(1, \"a\");\n");
    let run = sandbox.run(&server.url(), &["-u", "1", "-t", "1s"]);
    run.assert_code(2);
    let (line, col) = line_col(a, "task(1, \"b\")");
    let expected = format!("{}:{line}:{col}: nested tasksets form a cycle: a -> b -> a", sandbox.path_of("a.rhai"));
    assert!(run.stderr.contains(&expected), "{expected}\n{}", run.context());

    let sandbox = Sandbox::new();
    let parent = "task(1, \"shop/chld\");\n";
    sandbox.write("parent.rhai", parent).write("shop/child.rhai", "task(1, c);\nfn c() {}\n");
    let run = sandbox.run(&server.url(), &["-u", "1", "-t", "1s"]);
    run.assert_code(2);
    let expected = format!(
        "{}:1:1: task(1, \"shop/chld\"): no `fn shop/chld()` in this file and no taskset named `shop/chld`; did you \
         mean `shop/child`?",
        sandbox.path_of("parent.rhai")
    );
    assert!(run.stderr.contains(&expected), "{expected}\n{}", run.context());
    assert_eq!(server.total(), 0);
}
