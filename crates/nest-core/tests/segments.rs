//! Segments run for real: each segment of a plan, run on its own, does its share, and together they do what the
//! whole plan does in one process: the same VUs (by global id) with the same first tasksets and random streams,
//! and exactly the `--iterations` budget.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::stats::{Recorder, Sample};
use nest_core::{
    Behaviour, BehaviourFactory, Call, EndReason, Outcome, Plan, PlanBuilder, RunHandle, RunResult, Segment, Slot,
    TaskSpec, TasksetSpec, WaitTime, WorkerContext,
};

/// What one run's behaviours saw: the VUs created, and each VU's calls in order.
#[derive(Default)]
struct Seen {
    vus: Vec<u64>,
    calls: BTreeMap<u64, Vec<(usize, Slot)>>,
}

struct Fake {
    seen: Arc<Mutex<Seen>>,
    recorder: Recorder,
}

impl Behaviour for Fake {
    type Vu = u64;
    fn new_vu(&self, id: u64) -> u64 {
        self.seen.lock().unwrap().vus.push(id);
        id
    }
    fn call(&self, vu: &mut u64, call: Call) -> Outcome {
        self.seen.lock().unwrap().calls.entry(*vu).or_default().push((call.taskset, call.slot));
        if matches!(call.slot, Slot::Task(_)) {
            self.recorder.request("GET", "/", Sample { latency: Duration::from_micros(100), ..Default::default() });
        }
        Outcome::Done
    }
}

struct Factory(Arc<Mutex<Seen>>);

impl BehaviourFactory for Factory {
    type Behaviour = Fake;
    fn build(&self, worker: &WorkerContext) -> Result<Fake, String> {
        Ok(Fake { seen: self.0.clone(), recorder: worker.recorder.clone() })
    }
}

fn run(plan: Plan) -> (RunResult, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(nest_core::run(plan, Arc::new(Factory(seen.clone())), RunHandle::new(), ())).unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}

/// Two tasksets (3:1) of two tasks picked at random, with `on_start`, and a short think time.
fn tasksets() -> Vec<TasksetSpec> {
    let ts = |name: &str, weight| TasksetSpec {
        name: name.into(),
        weight,
        tasks: vec![TaskSpec::new("x", 1), TaskSpec::new("y", 2)],
        wait: WaitTime::Constant(Duration::from_millis(2)),
        has_on_start: true,
        ..Default::default()
    };
    vec![ts("a", 3), ts("b", 1)]
}

fn tasks(seen: &Seen) -> u64 {
    seen.calls.values().flatten().filter(|(_, slot)| matches!(slot, Slot::Task(_))).count() as u64
}

/// Runs every segment of `builder`'s plan split `n` ways, each on its own; returns each segment's plan and run.
fn run_segments(builder: &PlanBuilder, n: u32) -> Vec<(Plan, RunResult, Seen)> {
    (0..n)
        .map(|i| {
            let plan = builder.clone().segment(Segment::new(i, n).unwrap()).build().unwrap();
            let (result, seen) = run(plan.clone());
            (plan, result, seen)
        })
        .collect()
}

#[test]
fn the_segments_of_a_closed_run_create_each_vu_once_and_share_the_iterations_exactly() {
    const USERS: u64 = 10;
    const ITERATIONS: u64 = 37;
    let builder = Plan::builder(tasksets()).users(USERS).iterations(Some(ITERATIONS)).workers(2).seed(11);
    for n in 1..=4u32 {
        let mut owner = vec![0u32; USERS as usize];
        let mut total = 0;
        for (plan, result, seen) in run_segments(&builder, n) {
            assert_eq!(result.end, EndReason::Completed, "segment {}", plan.segment);
            for &id in &seen.vus {
                assert_eq!(id % u64::from(n), u64::from(plan.segment.index), "VU {id} runs in segment j mod {n}");
                owner[id as usize] += 1;
            }
            // The segment ran exactly its share of the budget, and its report counts exactly what it ran.
            assert_eq!(Some(tasks(&seen)), plan.segment_iterations(), "segment {}", plan.segment);
            assert_eq!(result.aggregate.total().count, tasks(&seen));
            total += tasks(&seen);
        }
        assert!(owner.iter().all(|&o| o == 1), "{n} segments: each VU created once: {owner:?}");
        assert_eq!(total, ITERATIONS, "{n} segments: the budget is run exactly");
    }
}

#[test]
fn a_vu_starts_in_the_same_taskset_and_picks_the_same_tasks_in_any_segment() {
    const USERS: u64 = 12;
    // One worker per process: every VU enters its first taskset and takes a task before any takes a second one.
    let builder = Plan::builder(tasksets()).users(USERS).iterations(Some(3 * USERS)).workers(1).seed(5);
    let (whole, alone) = run(builder.clone().build().unwrap());
    assert_eq!(whole.end, EndReason::Completed);
    let first = builder.clone().build().unwrap().first_tasksets();
    for n in [2u32, 3, 5] {
        let mut seen_vus = 0;
        for (plan, _, seen) in run_segments(&builder, n) {
            for (id, calls) in &seen.calls {
                let whole_calls = &alone.calls[id];
                assert_eq!(calls[0], (first.at(*id), Slot::OnStart), "VU {id} starts in its global first taskset");
                // Its random task picks come from its global id: the same sequence as in the whole run.
                let common = calls.len().min(whole_calls.len());
                assert!(common >= 2, "VU {id} ran a task in both runs: {calls:?} / {whole_calls:?}");
                assert_eq!(calls[..common], whole_calls[..common], "VU {id} in segment {}", plan.segment);
                seen_vus += 1;
            }
        }
        assert_eq!(seen_vus, USERS, "{n} segments");
    }
}

#[test]
fn the_segments_of_an_open_run_start_every_arrival_once() {
    const ITERATIONS: u64 = 40;
    let builder = Plan::builder(tasksets())
        .open(4_000.0, ITERATIONS, Duration::from_secs(60))
        .iterations(Some(ITERATIONS))
        .workers(2)
        .seed(3);
    for n in 1..=4u32 {
        let (mut total, mut pooled) = (0, Vec::new());
        for (plan, result, seen) in run_segments(&builder, n) {
            assert_eq!(result.end, EndReason::Completed, "segment {}", plan.segment);
            assert_eq!(result.aggregate.dropped, 0, "segment {}: a VU was free for every start", plan.segment);
            // Segment i starts the arrivals k < 40 with k mod n = i.
            let share = (0..ITERATIONS).filter(|k| k % u64::from(n) == u64::from(plan.segment.index)).count();
            assert_eq!(tasks(&seen), share as u64, "segment {}", plan.segment);
            assert_eq!(result.aggregate.total().count, tasks(&seen));
            for &id in &seen.vus {
                assert_eq!(id % u64::from(n), u64::from(plan.segment.index), "pooled VU {id} in segment j mod {n}");
                assert!(id < ITERATIONS, "pooled VU {id} is within --max-users");
            }
            total += tasks(&seen);
            pooled.extend(seen.vus);
        }
        assert_eq!(total, ITERATIONS, "{n} segments");
        let count = pooled.len();
        pooled.sort_unstable();
        pooled.dedup();
        assert_eq!(pooled.len(), count, "{n} segments: no VU id is used twice");
    }
}
