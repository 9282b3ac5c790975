//! Careless scripts: values that grow without bound, durations no clock can hold, weights of the wrong kind, names
//! defined nowhere, and functions named like built-ins. Each is refused at load with its place, or fails its task
//! with its place while the run goes on and ends on time.

use std::path::Path;
use std::time::{Duration, Instant};

use common::folder;
use nest_core::RunResult;
use nest_rhai::{Catalog, LoadOptions, ScriptLimits};

mod common;

/// The load errors of `source` (as `a.rhai`), each as `line:col: message` with the folder stripped.
fn load_errors(source: &str) -> Vec<String> {
    let dir = folder(&[("a.rhai", source)]);
    let errors = Catalog::load(dir.path()).expect_err("the script loads").0;
    let prefix = format!("{}:", dir.path().join("a.rhai").display());
    errors.iter().map(|e| e.to_string().trim_start_matches(&prefix).to_owned()).collect()
}

/// Runs every taskset of `dir` with one VU for `iterations` tasks (at most 20 s), without HTTP.
fn run(dir: &Path, options: LoadOptions, iterations: u64) -> RunResult {
    common::run_one_vu(dir, options, iterations, Duration::from_secs(20))
}

/// The script errors of a run as `location: message`, with their counts.
fn script_errors(result: &RunResult) -> Vec<(String, u64)> {
    result.aggregate.errors.iter().map(|((location, message), n)| (format!("{location}: {message}"), *n)).collect()
}

#[test]
fn a_memory_bomb_fails_its_task_at_its_place_and_the_run_ends() {
    let source = "task(1, bomb);\nfn bomb() {\n    let s = \"x\";\n    for i in 0..40 { s += s; }\n}\n";
    let dir = folder(&[("a.rhai", source)]);
    let started = Instant::now();
    let result = run(dir.path(), LoadOptions::default(), 3);
    // Without the limit the third doubling past 16 MiB alone takes gigabytes; with it, three tries take moments.
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    // Rhai does not place limit errors: they are blamed on the task's `fn`.
    let place = format!("{}:2:1", dir.path().join("a.rhai").display());
    let errors = script_errors(&result);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].0.starts_with(&format!("{place}: a string grew larger than max_string_size")), "{errors:?}");
    assert_eq!(errors[0].1, 3);
}

#[test]
fn the_size_limits_are_settings() {
    let source = "task(1, grow);\nfn grow() {\n    let a = [1];\n    for i in 0..10 { a += a; }\n    let m = #{};\n    \
                  for i in 0..100 { let one = #{}; one[`k${i}`] = i; m.mixin(one); }\n}\n";
    let dir = folder(&[("a.rhai", source)]);
    assert!(script_errors(&run(dir.path(), LoadOptions::default(), 1)).is_empty());
    let arrays = ScriptLimits { max_array_size: 50, ..ScriptLimits::default() };
    let errors = script_errors(&run(dir.path(), LoadOptions { limits: arrays, ..LoadOptions::default() }, 1));
    assert!(errors[0].0.contains("an array grew larger than max_array_size"), "{errors:?}");
    let maps = ScriptLimits { max_map_size: 50, ..ScriptLimits::default() };
    let errors = script_errors(&run(dir.path(), LoadOptions { limits: maps, ..LoadOptions::default() }, 1));
    assert!(errors[0].0.contains("a map grew larger than max_map_size"), "{errors:?}");
}

#[test]
fn durations_at_the_top_level_are_checked_with_their_place() {
    let not_a_duration = "is not a duration: give a number of seconds from 0 to 31536000 (365 days)";
    for (declaration, col, call) in [
        ("wait_time(constant(1e300));", 11, "constant()"),
        ("wait_time(between(0, 1e300));", 11, "between()"),
        ("wait_time(constant_pacing(-1));", 11, "constant_pacing()"),
        ("wait_time(constant(1.0 / 0.0));", 11, "constant()"),
    ] {
        let errors = load_errors(&format!("task(1, t);\n{declaration}\nfn t() {{}}\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(&format!("2:{col}: {call}: ")), "{errors:?}");
        assert!(errors[0].ends_with(not_a_duration), "{errors:?}");
    }
    assert_eq!(
        load_errors("task(1, t);\nwait_time(constant_throughput(1e-300));\nfn t() {}\n"),
        vec![
            "2:11: constant_throughput(1e-300): n is a number of tasks per second of at least 3.171e-8 (one task a year)"
        ]
    );
}

#[test]
fn durations_at_run_time_fail_the_call_with_its_place() {
    let source = r#"
task(1, nap);
task(1, slow);
task(1, claim);
fn nap() { sleep(1e300); }
fn slow() { client.get("http://127.0.0.1:9/", #{ timeout: 1e300 }); }
fn claim() { data.claim("users", #{ timeout: -1 }); }
"#;
    let dir = folder(&[("a.rhai", source)]);
    let started = Instant::now();
    let result = run(dir.path(), LoadOptions::default(), 30);
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let file = dir.path().join("a.rhai").display().to_string();
    let errors: Vec<String> = script_errors(&result).into_iter().map(|(e, _)| e).collect();
    let expected = [
        format!("{file}:5:12: sleep(1e300): 1e300 is not a duration"),
        format!("{file}:6:20: option `timeout` of a GET request: 1e300 is not a duration"),
        format!("{file}:7:19: data.claim option `timeout`: -1.0 is not a duration"),
    ];
    for e in &expected {
        assert!(errors.iter().any(|got| got.starts_with(e.as_str())), "no `{e}` in {errors:#?}");
    }
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(result.aggregate.requests.values().map(|r| r.count).sum::<u64>(), 0);
}

#[test]
fn weights_of_the_wrong_kind_say_what_is_allowed() {
    assert_eq!(
        load_errors("weight(4294967296);\ntask(1, t);\nfn t() {}\n"),
        vec![
            "1:1: weight(4294967296): a taskset weight is a whole number from 0 to 4294967295 (0 disables the taskset)"
        ]
    );
    assert_eq!(
        load_errors("weight(1.5);\ntask(1, t);\nfn t() {}\n"),
        vec!["1:1: weight(1.5): a taskset weight is a whole number from 0 to 4294967295 (0 disables the taskset)"]
    );
    assert_eq!(
        load_errors("task(1.5, t);\nfn t() {}\n"),
        vec!["1:1: task(1.5, t): a task weight is a whole number from 1 to 4294967295"]
    );
    assert_eq!(
        load_errors("task(4294967296, t);\nfn t() {}\n"),
        vec!["1:1: task(4294967296, t): a task weight is a whole number from 1 to 4294967295"]
    );
    assert_eq!(
        load_errors("task(2, 7);\nfn t() {}\n"),
        vec![
            "1:1: task(2, 7): the second argument names the task's function, e.g. `task(3, browse)`, or a nested taskset, e.g. `task(3, \"shop/details\")`"
        ]
    );
}

#[test]
fn the_static_check_knows_the_whole_api_and_the_imports() {
    let common = "fn login(name) { client.post(\"/login\", #{ json: #{ user: name } }).json().token }\n";
    let valid = r#"
import "_common" as common;
const PAGES = 3;
weight(2);
wait_time(between(0.5, 1.5));
tags(["shop"]);
task(3, browse);
task(1, "leave");
fn on_start() { user.token = common::login(`u${vu_id}`); }
fn browse() {
    let r = client.get("/items", #{ query: #{ page: rand(1, global::PAGES) }, expect: [200, 404] });
    if r.status == 200 && r.json().len() == 0 { r.fail("empty"); }
    log(`${r.status} ${r.elapsed_ms} ${r.headers} ${r.body.len()} ${uuid()} ${now()} ${random()}`);
    let item = choice([1, 2]);
    let who = env("USER") ?? "someone";
    sleep(0);
}
fn leave() { interrupt(); }
"#;
    let dir = folder(&[("_common.rhai", common), ("a.rhai", valid)]);
    let catalog = Catalog::load(dir.path()).unwrap();
    assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);

    let broken =
        "import \"_common\" as common;\ntask(1, t);\nfn t() {\n    common::lgin(\"x\");\n    client.gett(\"/\");\n}\n";
    let dir = folder(&[("_common.rhai", common), ("a.rhai", broken)]);
    let errors: Vec<String> = Catalog::load(dir.path()).unwrap_err().0.iter().map(|e| e.to_string()).collect();
    let file = dir.path().join("a.rhai").display().to_string();
    assert_eq!(
        errors,
        vec![
            format!(
                "{file}:4:13: `common::lgin(..)`: the module `common` has no function `lgin`: did you mean `login`?"
            ),
            format!("{file}:5:12: method `gett` exists on no type: did you mean `get`?"),
        ]
    );
}

#[test]
fn without_strict_the_findings_are_warnings() {
    let source = "task(1, t);\nfn t() {\n    helpr();\n}\nfn helper() {}\n";
    let dir = folder(&[("a.rhai", source)]);
    let strict = Catalog::load(dir.path()).unwrap_err();
    let message =
        "function `helpr` is not defined in this file, its imports or the taskset API: did you mean `helper`?";
    assert_eq!(strict.0[0].to_string(), format!("{}:3:5: {message}", dir.path().join("a.rhai").display()));
    let lenient = Catalog::load_with(dir.path(), LoadOptions { strict: false, ..LoadOptions::default() }).unwrap();
    assert_eq!(lenient.warnings, strict.0);
}

#[test]
fn a_function_named_like_a_builtin_is_a_warning_at_its_place() {
    let source = "task(1, t);\n\nfn json() { 1 }\nfn t() { }\n";
    let dir = folder(&[("a.rhai", source)]);
    let catalog = Catalog::load(dir.path()).unwrap();
    let warnings: Vec<String> = catalog.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        vec![format!(
            "{}:3:1: `fn json` has the name of a built-in function or method: calls like `json(..)` and `x.json(..)` \
             may now run this function instead; rename it",
            dir.path().join("a.rhai").display()
        )]
    );
}

#[test]
fn a_locust_assignment_at_the_top_level_gets_a_hint() {
    assert_eq!(
        load_errors("wait_time = between(1, 2);\ntask(1, t);\nfn t() {}\n"),
        vec!["1:1: Variable not found: wait_time: `wait_time` is a function call in nest: `wait_time(between(1, 2));`"]
    );
}

#[test]
fn imported_modules_are_checked_once_in_their_own_file() {
    let module = "const PATH = \"/login\";\nfn login(name) {\n    client.post(global::PATH, #{ json: #{ user: nmae } })\n}\n\
                  fn bearer(token) { #{ Authorization: `Bearer ${token}` } }\n";
    let user = "import \"_auth\" as auth;\ntask(1, t);\nfn t() { auth::login(\"a\"); }\n";
    let dir = folder(&[("_auth.rhai", module), ("a.rhai", user), ("b.rhai", user)]);
    let errors: Vec<String> = Catalog::load(dir.path()).unwrap_err().0.iter().map(|e| e.to_string()).collect();
    let file = dir.path().join("_auth.rhai").display().to_string();
    assert_eq!(errors, vec![format!("{file}:3:49: variable `nmae` is not defined: did you mean `name`?")]);
}
