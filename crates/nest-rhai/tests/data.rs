//! `data` in scripts: claimed rows are maps that go back on release, on leaving the taskset, and when the VU stops;
//! a claim that times out returns `()`; wrong names are load errors with their place.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::folder;
use nest_core::{Plan, RunResult};
use nest_data::{DataRegistry, DataSet, Segment};
use nest_rhai::Catalog;

mod common;

/// `users` (`rows` rows: name, password) and `items` (a JSON array of objects).
fn registry(rows: usize) -> Arc<DataRegistry> {
    let mut csv = String::from("name,password\n");
    for i in 0..rows {
        csv.push_str(&format!("user{i},pw{i}\n"));
    }
    let mut data = DataRegistry::new();
    data.insert("users", Arc::new(DataSet::from_csv("users.csv", csv.as_bytes()).unwrap()), Segment::WHOLE);
    let items = r#"[{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}]"#;
    data.insert("items", Arc::new(DataSet::from_json("items.json", items.as_bytes()).unwrap()), Segment::WHOLE);
    data.insert("none", Arc::new(DataSet::from_csv("none.csv", "name\n".as_bytes()).unwrap()), Segment::WHOLE);
    Arc::new(data)
}

fn run(dir: &Path, data: &Arc<DataRegistry>, plan: Plan) -> RunResult {
    let catalog = Catalog::load(dir).unwrap();
    catalog.check_data(data).unwrap();
    common::execute(plan, common::factory(&catalog).with_data(data.clone()))
}

fn plan(dir: &Path, users: u64, iterations: Option<u64>, run_time: Duration) -> Plan {
    let specs = Catalog::load(dir).unwrap().specs();
    Plan::builder(specs)
        .users(users)
        .workers(2)
        .iterations(iterations)
        .run_time(Some(run_time))
        .stop_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn errors(result: &RunResult) -> Vec<String> {
    result.aggregate.errors.keys().map(|(location, message)| format!("{location}: {message}")).collect()
}

#[test]
fn a_claimed_row_is_a_map_and_goes_back_on_release() {
    let dir = folder(&[(
        "work.rhai",
        r#"
        task(1, work);
        fn work() {
            let row = data.claim("users");
            sleep(0.001);                // hold it while other VUs run: they wait in line
            if type_of(row) != "map" || !row.name.starts_with("user") || row.password != `pw${row.name.sub_string(4)}` {
                throw `bad row ${row}`;
            }
            if data.len("users") != 4 || data.len("none") != 0 { throw "len"; }
            let item = data.next("items");
            if type_of(item.id) != "i64" || type_of(item.tags) != "array" { throw `bad item ${item}`; }
            if ![1, 2].contains(data.random("items").id) { throw "random"; }
            row.note = "extra keys are fine";
            data.release("users", row);
            data.release("users", ());   // a claim that timed out: nothing to give back
        }
        "#,
    )]);
    let data = registry(4);
    let result = run(dir.path(), &data, plan(dir.path(), 8, Some(200), Duration::from_secs(30)));
    assert!(errors(&result).is_empty(), "{:?}", errors(&result));
    let stats = data.get("users").unwrap().stats();
    assert_eq!((stats.claims, stats.releases, stats.timeouts), (200, 200, 0));
    assert_eq!(stats.max_held, 4, "8 VUs share 4 rows: {stats:?}");
    assert!(stats.waits > 0, "{stats:?}");
}

#[test]
fn rows_still_held_go_back_when_the_vu_leaves_the_taskset() {
    let dir = folder(&[(
        "hold.rhai",
        r#"
        task(1, work);
        fn on_start() { user.row = data.claim("users"); }
        fn work() { if rand(0, 2) == 0 { interrupt(); } }
        "#,
    )]);
    let data = registry(3);
    let result = run(dir.path(), &data, plan(dir.path(), 6, Some(300), Duration::from_secs(30)));
    assert!(errors(&result).is_empty(), "{:?}", errors(&result));
    let stats = data.get("users").unwrap().stats();
    assert!(stats.claims > 3, "rows were claimed again after VUs left: {stats:?}");
    assert_eq!(stats.claims, stats.releases, "{stats:?}");
    assert_eq!(data.get("users").unwrap().held(), 0);
}

#[test]
fn a_claim_that_times_out_returns_unit() {
    let dir = folder(&[(
        "hog.rhai",
        r#"
        wait_time(constant(0.01));
        task(1, work);
        fn on_start() {
            user.row = data.claim("users", #{ timeout: 0.02 });
            if user.row == () { interrupt(); }   // pool exhausted: try again later
        }
        fn work() { }                            // the holder never releases nor leaves
        "#,
    )]);
    let data = registry(1);
    let result = run(dir.path(), &data, plan(dir.path(), 2, None, Duration::from_millis(500)));
    assert!(errors(&result).is_empty(), "{:?}", errors(&result));
    let stats = data.get("users").unwrap().stats();
    assert!(stats.timeouts >= 1 && stats.waits >= stats.timeouts, "{stats:?}");
    assert_eq!(stats.claims, stats.releases, "the holder gave its row back when the run stopped: {stats:?}");
}

#[test]
fn vus_cancelled_while_holding_or_waiting_give_every_row_back() {
    let dir = folder(&[(
        "stuck.rhai",
        r#"
        task(1, work);
        fn on_start() { user.row = data.claim("users"); }
        fn work() { data.claim("users"); }       // waits for a second row that never comes
        "#,
    )]);
    let data = registry(2);
    let mut plan = plan(dir.path(), 4, None, Duration::from_millis(200));
    plan.stop_timeout = Duration::from_millis(100);
    let result = run(dir.path(), &data, plan);
    assert_eq!(result.end, nest_core::EndReason::Killed, "the stuck calls were cancelled");
    let pool = data.get("users").unwrap();
    let stats = pool.stats();
    // Rows freed by the cancelled may still reach a waiter being cancelled too: it gives them back as well.
    assert!(stats.claims >= 2, "{stats:?}");
    assert_eq!((stats.releases, pool.held(), pool.waiting()), (stats.claims, 0, 0), "{stats:?}");
}

#[test]
fn misuse_is_a_script_error_that_says_what_to_do() {
    let dir = folder(&[(
        "bad.rhai",
        r#"
        task(1, twice);
        task(1, unknown);
        task(1, empty);
        task(1, option);
        fn twice() { let r = data.claim("users"); data.release("users", r); data.release("users", r); }
        fn unknown() { data.claim("us" + "erz"); }
        fn empty() { data.next(`no${"ne"}`); }
        fn option() { data.claim("users", #{ wait: 1 }); }
        "#,
    )]);
    let data = registry(2);
    let result = run(dir.path(), &data, plan(dir.path(), 2, Some(80), Duration::from_secs(30)));
    let errors = errors(&result).join("\n");
    for expected in [
        "this VU holds no such row of `users`",
        "data.claim(\"userz\"): no data set named `userz` (declared: items, none, users;",
        "data.next(\"none\"): the data set `none` has no row",
        "unknown option `wait` for data.claim",
    ] {
        assert!(errors.contains(expected), "missing `{expected}` in:\n{errors}");
    }
    assert_eq!(data.get("users").unwrap().held(), 0);
}

#[test]
fn undeclared_and_empty_pools_are_load_errors_with_their_place() {
    let dir = folder(&[
        ("a.rhai", "task(1, t);\nfn t() {\n    let u = data.claim(\"userz\");\n    data.len(\"none\");\n}\n"),
        ("b.rhai", "task(1, t);\nfn t() { data.next(\"none\"); data.claim(\"users\"); }\n"),
    ]);
    let catalog = Catalog::load(dir.path()).unwrap();
    let errors = catalog.check_data(&registry(2)).unwrap_err().to_string();
    let a = dir.path().join("a.rhai").display().to_string();
    let b = dir.path().join("b.rhai").display().to_string();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 2, "{errors}");
    assert!(
        lines[0].starts_with(&format!(
            "{a}:3:13: data.claim(\"userz\"): no data set named `userz` (declared: items, none, users)"
        )),
        "{errors}"
    );
    assert_eq!(lines[1], format!("{b}:2:10: data.next(\"none\"): the data set `none` (none.csv) has no row"));
    assert!(catalog.check_data(&DataRegistry::new()).unwrap_err().to_string().contains("(no data is declared)"));
}

#[test]
fn a_script_variable_named_data_is_the_scripts_own() {
    let dir = folder(&[(
        "own.rhai",
        r#"
        task(1, work);
        fn plus_one(data) { data + 1 }
        fn work() {
            let data = 5;                      // shadows the pools, as any local variable would
            if data != 5 || plus_one(1) != 2 { throw `data is ${type_of(data)}`; }
        }
        "#,
    )]);
    let data = registry(1);
    let result = run(dir.path(), &data, plan(dir.path(), 1, Some(3), Duration::from_secs(10)));
    assert!(errors(&result).is_empty(), "{:?}", errors(&result));
}
