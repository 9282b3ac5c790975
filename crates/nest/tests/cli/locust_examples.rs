//! The translations of Locust's examples in docs/examples/locust/, as the "Coming from Locust" page shows them: each
//! folder loads (`nest list -f FOLDER`), and runs briefly against `--demo` with the result its Locust original
//! would give: requests of the expected names, no script error, failures only where the example makes them.
//!
//! The demo target runs inside nest, so these tests read nest's JSON report; the server-side counts are covered
//! by the other tests of this binary.

use std::path::PathBuf;

use crate::support::{Report, Run, Sandbox};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/locust")
}

fn example(name: &str) -> String {
    examples_dir().join(name).display().to_string()
}

/// 10 users: the load of most runs below.
const USERS: &[&str] = &["-u", "10"];

/// Runs `nest run -f EXAMPLE --demo` for 3 s on 2 workers with a fixed seed and `load` (the users, or a shape), and
/// returns the run.
fn run_example(name: &str, load: &[&str]) -> (Run, Sandbox) {
    let sandbox = Sandbox::new();
    let dir = example(name);
    let mut args: Vec<String> = ["run", "-f", &dir, "--demo", "-t", "3s", "--seed", "7", "-y", "--workers", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(load.iter().map(|s| s.to_string()));
    args.extend(sandbox.json_args());
    let run = sandbox.nest(&args, &[]);
    assert_ne!(run.code, Some(101), "nest crashed\n{}", run.context());
    assert!(run.report().errors().is_empty(), "script errors in {name}\n{}", run.context());
    (run, sandbox)
}

/// The sum of the task runs of a report (hooks excluded): every task of these examples sends at least one request.
fn task_runs(report: &Report) -> u64 {
    report.tasks().iter().filter(|t| !t.task.starts_with("on_")).map(|t| t.runs).sum()
}

#[test]
fn every_example_loads_with_nest_list() {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "seven Locust examples: {names:?}");
    let sandbox = Sandbox::new();
    for name in names {
        let list = sandbox.nest(&["list", "-f", &example(&name)], &[]);
        assert_eq!(list.code, Some(0), "{name} does not load\n{}", list.context());
    }
}

#[test]
fn basic_runs_its_three_pages_and_expects_the_404() {
    let (run, _s) = run_example("basic", USERS);
    let report = run.report();
    assert!(report.requests("GET", "/") + report.requests("GET", "/items") > 0, "{}", run.context());
    assert_eq!(report.total_failures(), 0, "the 404 page is expected\n{}", run.context());
    assert_eq!(task_runs(report), report.total_requests(), "{}", run.context());
}

#[test]
fn dynamic_user_credentials_logs_each_user_in_once() {
    let (run, _s) = run_example("dynamic_user_credentials", USERS);
    let report = run.report();
    assert_eq!(report.requests("POST", "/login"), 10, "one login per user\n{}", run.context());
    assert_eq!(report.runs("user_behaviour", "on_start"), 10, "{}", run.context());
    assert!(report.requests("GET", "/whoami") > 0, "{}", run.context());
    // /whoami answers 401 without the session cookie of the login.
    assert_eq!(report.total_failures(), 0, "{}", run.context());
    let pool = &report.0["pools"].as_array().unwrap()[0];
    assert_eq!((pool["name"].as_str(), pool["claims"].as_u64()), (Some("credentials"), Some(10)), "{pool}");
}

#[test]
fn sequential_runs_its_tasks_in_order() {
    let (run, _s) = run_example("sequential", USERS);
    let report = run.report();
    let runs = ["index_page", "load_page", "load_sub_page"].map(|t| report.runs("browse_shop", t));
    assert!(runs[0] >= 10, "every user starts with the index page: {runs:?}\n{}", run.context());
    assert!(runs[0] >= runs[1] && runs[1] >= runs[2], "in order: {runs:?}");
    assert!(runs[0] - runs[2] <= 20, "at most two steps ahead per user: {runs:?}");
    assert_eq!(report.requests("GET", "/items?page"), runs[1], "{}", run.context());
    assert_eq!(report.total_failures(), 0, "{}", run.context());
}

#[test]
fn response_validations_checks_pass_against_the_demo() {
    let (run, _s) = run_example("response_validations", USERS);
    let report = run.report();
    let logins = report.requests("POST", "/login");
    assert!(logins > 0, "{}", run.context());
    assert_eq!(report.requests("POST", "/checkout"), report.requests("POST", "/cart"), "{}", run.context());
    assert_eq!(report.total_failures(), 0, "every validation holds on the demo\n{}", run.context());
    assert_eq!(report.runs("good_user", "t"), logins, "{}", run.context());
}

#[test]
fn custom_shape_starts_with_its_first_stage() {
    let shape = examples_dir().join("custom_shape/_shape.rhai").display().to_string();
    let (run, _s) = run_example("custom_shape", &["--shape", &shape]);
    let report = run.report();
    let users: Vec<u64> =
        report.0["timeline"].as_array().unwrap().iter().map(|s| s["users"].as_u64().unwrap()).collect();
    // The first stage: 10 users, started 10 a second; the load shape replaces -u.
    assert_eq!(users.iter().max(), Some(&10), "{users:?}\n{}", run.context());
    assert!(report.requests("GET", "/") > 0, "{}", run.context());
}

#[test]
fn nested_inline_tasksets_enter_and_leave_the_inner_taskset() {
    let (run, _s) = run_example("nested_inline_tasksets", USERS);
    let report = run.report();
    assert!(report.requests("GET", "/") > 0, "the inner taskset ran\n{}", run.context());
    assert!(report.requests("GET", "/items") > 0, "the outer task ran\n{}", run.context());
    assert_eq!(report.total_failures(), 0, "{}", run.context());
}

#[test]
fn custom_wait_function_runs_both_user_classes() {
    let (run, _s) = run_example("custom_wait_function", USERS);
    let report = run.report();
    let per_taskset = |name: &str| report.tasks().iter().filter(|t| t.taskset == name).map(|t| t.runs).sum::<u64>();
    assert!(per_taskset("website_user") > 0 && per_taskset("strict_website_user") > 0, "{}", run.context());
    assert_eq!(report.total_failures(), 0, "{}", run.context());
}
