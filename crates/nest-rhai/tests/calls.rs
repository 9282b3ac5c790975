//! How each call of a task runs: Rhai's state is kept from one call of a VU to the next (for speed), and none of
//! that may show. The call-depth and operation limits count from each call's start, `exit()` ends a call as done,
//! a failed call does not spoil the next, and imports made inside a task work on every call.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::folder;
use nest_core::RunResult;
use nest_rhai::{LoadOptions, MAX_OPERATIONS};

mod common;

/// Runs every taskset of `dir` with one VU for `iterations` tasks (at most 60 s), without HTTP.
fn run(dir: &Path, iterations: u64) -> RunResult {
    common::run_one_vu(dir, LoadOptions::default(), iterations, Duration::from_secs(60))
}

/// The script errors of a run as `message`, with their counts.
fn errors(result: &RunResult) -> Vec<(String, u64)> {
    let mut errors: Vec<_> = result.aggregate.errors.iter().map(|((_, message), n)| (message.clone(), *n)).collect();
    errors.sort();
    errors
}

/// Calls of the first taskset's task `index` that ran to an end, and of those the ones that failed.
fn runs(result: &RunResult, index: usize) -> (u64, u64) {
    let slot = result.aggregate.slots[0][index];
    (slot.runs, slot.errors)
}

#[test]
fn a_task_may_nest_as_deep_on_every_call_and_no_deeper() {
    // `hit` is one level, `down(n)` n more: 63 nested calls below the task fit in the limit of 64, 64 do not.
    for (depth, fails) in [(63, false), (64, true)] {
        let source =
            format!("task(1, hit);\nfn hit() {{ down({depth}); }}\nfn down(n) {{ if n > 1 {{ down(n - 1); }} }}\n");
        let dir = folder(&[("a.rhai", &source)]);
        let result = run(dir.path(), 3);
        assert_eq!(runs(&result, 0), (3, if fails { 3 } else { 0 }), "depth {depth}: {:?}", errors(&result));
        if fails {
            assert!(errors(&result)[0].0.contains("too many nested function calls"), "{:?}", errors(&result));
        }
    }
}

#[test]
fn the_operation_limit_counts_from_the_start_of_each_call() {
    let body = |spins: u64| format!("fn spin() {{ let n = 0; while n < {spins} {{ n += 1; }} }}\n");
    // Rhai's operations per turn of the loop, counted on a plain engine.
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut engine = rhai::Engine::new();
    let seen = counted.clone();
    engine.on_progress(move |ops| {
        seen.store(ops, std::sync::atomic::Ordering::Relaxed);
        None
    });
    engine.run(&format!("{}spin();", body(1000))).unwrap();
    let per_turn = counted.load(std::sync::atomic::Ordering::Relaxed) / 1000;
    // Each call spends about 60% of the limit: two calls together would pass it.
    let spins = MAX_OPERATIONS * 6 / 10 / per_turn;
    let source = format!("task(1, spin);\n{}", body(spins));
    let dir = folder(&[("a.rhai", &source)]);
    let result = run(dir.path(), 2);
    assert_eq!(runs(&result, 0), (2, 0), "{:?}", errors(&result));
}

#[test]
fn exit_ends_a_call_as_done_and_a_failed_call_does_not_spoil_the_next() {
    let source = r#"
task(1, step);
fn step() {
    user.n = (user.n ?? 0) + 1;
    if user.n % 3 == 1 { exit(); }
    if user.n % 3 == 2 { throw "boom"; }
    check(user.n, #{ third: |n| n % 3 == 0 });
}
"#;
    let dir = folder(&[("a.rhai", source)]);
    let result = run(dir.path(), 9);
    assert_eq!(runs(&result, 0), (9, 3), "{:?}", errors(&result));
    assert_eq!(errors(&result), vec![("boom".to_owned(), 3)]);
    let third = &result.aggregate.checks["third"];
    assert_eq!((third.passes, third.fails), (3, 0), "{third:?}");
}

#[test]
fn imports_inside_a_task_work_on_every_call() {
    let common = "fn twice(x) { x * 2 }\n";
    let source = r#"
task(1, use_it);
fn use_it() {
    import "_common" as c;
    user.sum = (user.sum ?? 0) + c::twice(1);
    check(user.sum, #{ sum: |s| s % 2 == 0 });
}
"#;
    let dir = folder(&[("_common.rhai", common), ("a.rhai", source)]);
    let result = run(dir.path(), 5);
    assert_eq!(runs(&result, 0), (5, 0), "{:?}", errors(&result));
    let sum = &result.aggregate.checks["sum"];
    assert_eq!((sum.passes, sum.fails), (5, 0), "{sum:?}");
}
