//! A script's random values come from its VU's global id and the plan's seed: VU `j` draws the same `rand`,
//! `random` and `choice` values whichever worker runs it and whichever segment of a split load it is in.

use std::collections::BTreeSet;
use std::time::Duration;

use nest_core::{Plan, RunResult, Segment};
use nest_rhai::Catalog;

mod common;

/// Each VU reports its first three draws once, as an error message `VU: draws` (no HTTP, nothing sent).
const DRAWS: &str = r#"
wait_time(constant(0.002));
task(1, t);
fn t() {
    if !("drawn" in user) {
        user.drawn = true;
        throw `${vu_id}: ${rand(0, 1000000000)} ${random()} ${choice([1, 2, 3, 4, 5, 6, 7, 8, 9])}`;
    }
}
"#;

const USERS: u64 = 12;

fn run(dir: &std::path::Path, workers: usize, segment: Segment) -> RunResult {
    let catalog = Catalog::load(dir).unwrap();
    let plan = Plan::builder(catalog.specs())
        .users(USERS)
        .workers(workers)
        .seed(42)
        // One worker per process: every VU runs its first task before any runs a second one.
        .iterations(Some(3 * USERS))
        .run_time(Some(Duration::from_secs(20)))
        .segment(segment)
        .build()
        .unwrap();
    common::execute(plan, common::factory(&catalog))
}

fn draws(result: &RunResult) -> BTreeSet<String> {
    result.aggregate.errors.keys().map(|(_, message)| message.clone()).collect()
}

#[test]
fn a_vu_draws_the_same_random_values_in_any_segment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("draws.rhai"), DRAWS).unwrap();
    let whole = draws(&run(dir.path(), 1, Segment::WHOLE));
    assert_eq!(whole.len() as u64, USERS, "one line per VU: {whole:?}");
    let distinct: BTreeSet<&str> = whole.iter().map(|line| line.split_once(": ").unwrap().1).collect();
    assert_eq!(distinct.len() as u64, USERS, "every VU has its own stream: {whole:?}");
    for n in [2u32, 3] {
        let mut union = BTreeSet::new();
        for i in 0..n {
            let part = draws(&run(dir.path(), 1, Segment::new(i, n).unwrap()));
            for line in &part {
                let id: u64 = line.split_once(':').unwrap().0.trim().parse().unwrap();
                assert_eq!(id % u64::from(n), u64::from(i), "VU {id} is in segment {i}/{n}");
            }
            union.extend(part);
        }
        assert_eq!(union, whole, "{n} segments draw what one process draws");
    }
}
