//! Nested tasksets, `interrupt(false)`, custom wait times and the deterministic first taskset, tested with a
//! scripted fake behaviour: no script engine, no network.
//!
//! The fake records every call per VU in order, so the tests can check the walk a VU made through the tasksets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::{
    Behaviour, BehaviourFactory, Call, Outcome, Plan, RunHandle, RunResult, Slot, SmoothRoundRobin, TaskError,
    TaskSpec, TasksetSpec, WaitTime, WorkerContext,
};

/// What a leaf task call returns, by (taskset, task) and the VU's call count there.
type Script = dyn Fn(usize, usize, u64) -> Outcome + Send + Sync;
/// The custom wait time, by VU id; an `Err` is a failing closure.
type Wait = dyn Fn(u64) -> Result<Duration, TaskError> + Send + Sync;

#[derive(Default)]
struct Log {
    /// Per VU, every call in order: (taskset, slot).
    calls: BTreeMap<u64, Vec<(usize, Slot)>>,
    waits: u64,
}

struct Fake {
    log: Arc<Mutex<Log>>,
    script: Arc<Script>,
    wait: Option<Arc<Wait>>,
}

impl Behaviour for Fake {
    type Vu = (u64, BTreeMap<(usize, usize), u64>);
    fn new_vu(&self, vu_id: u64) -> Self::Vu {
        (vu_id, BTreeMap::new())
    }
    fn call(&self, vu: &mut Self::Vu, call: Call) -> Outcome {
        self.log.lock().unwrap().calls.entry(vu.0).or_default().push((call.taskset, call.slot));
        match call.slot {
            Slot::Task(task) => {
                let n = vu.1.entry((call.taskset, task)).or_default();
                *n += 1;
                (self.script)(call.taskset, task, *n)
            }
            _ => Outcome::Done,
        }
    }
    fn wait_time(&self, vu: &mut Self::Vu, _taskset: usize) -> Result<Duration, TaskError> {
        assert!(nest_core::fiber::in_fiber(), "a custom wait time is computed on a fiber");
        self.log.lock().unwrap().waits += 1;
        (self.wait.as_ref().expect("only custom wait times ask"))(vu.0)
    }
}

struct Factory(Arc<Mutex<Log>>, Arc<Script>, Option<Arc<Wait>>);

impl BehaviourFactory for Factory {
    type Behaviour = Fake;
    fn build(&self, _: &WorkerContext) -> Result<Fake, String> {
        Ok(Fake { log: self.0.clone(), script: self.1.clone(), wait: self.2.clone() })
    }
}

fn run(plan: Plan, script: Arc<Script>, wait: Option<Arc<Wait>>) -> (RunResult, Log) {
    let log = Arc::new(Mutex::new(Log::default()));
    let factory = Arc::new(Factory(log.clone(), script, wait));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(nest_core::run(plan, factory, RunHandle::new(), ())).unwrap();
    let log = std::mem::take(&mut *log.lock().unwrap());
    (result, log)
}

fn spec(name: &str, weight: u32, tasks: Vec<TaskSpec>, wait: WaitTime) -> TasksetSpec {
    TasksetSpec { name: name.into(), weight, tasks, wait, has_on_start: true, has_on_stop: true, ..Default::default() }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_tasksets_are_split_exactly_by_weight() {
    let a = spec("a", 3, vec![TaskSpec::new("t", 1)], WaitTime::Constant(ms(5)));
    let b = spec("b", 1, vec![TaskSpec::new("t", 1)], WaitTime::Constant(ms(5)));
    let plan = Plan::builder(vec![a, b]).users(20).workers(2).run_time(Some(ms(300))).build().unwrap();
    let rr = plan.first_tasksets();
    let (_, log) = run(plan, Arc::new(|_, _, _| Outcome::Done), None);
    let mut per_taskset: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for (vu, calls) in &log.calls {
        // Without interrupt() a VU stays in its first taskset, which is a function of its id alone.
        let tasksets: BTreeSet<usize> = calls.iter().map(|c| c.0).collect();
        assert_eq!(tasksets, BTreeSet::from([rr.at(*vu)]), "VU {vu}");
        per_taskset.entry(calls[0].0).or_default().insert(*vu);
    }
    assert_eq!(per_taskset[&0].len(), 15);
    assert_eq!(per_taskset[&1].len(), 5);
    assert_eq!(SmoothRoundRobin::new(&[3, 1]).unwrap().counts(20), [15, 5]);
}

/// A parent whose tasks are a leaf (weight 1) and the nested `child` (weight 3, weight 0 at the top level).
fn parent_and_child(parent_wait: WaitTime, child_wait: WaitTime) -> Vec<TasksetSpec> {
    let parent = spec("p", 1, vec![TaskSpec::new("leaf", 1), TaskSpec::nested("child", 3)], parent_wait);
    let child = spec("child", 0, vec![TaskSpec::new("u", 1)], child_wait);
    vec![parent, child]
}

#[test]
fn nested_visits_follow_the_weights_and_interrupts_climb_one_level() {
    let plan = Plan::builder(parent_and_child(WaitTime::Constant(ms(1)), WaitTime::Constant(ms(1))))
        .users(4)
        .workers(2)
        .run_time(Some(ms(800)))
        .build()
        .unwrap();
    // The child interrupts on every second call of its task; the parent never does.
    let script = |ts, _, n| if ts == 1 && n % 2 == 0 { Outcome::Interrupted } else { Outcome::Done };
    let (result, log) = run(plan, Arc::new(script), None);
    let (mut leaves, mut visits) = (0u64, 0u64);
    for (vu, calls) in &log.calls {
        assert_eq!(calls[0], (0, Slot::OnStart), "VU {vu} starts in the parent");
        assert_eq!(calls.iter().filter(|c| **c == (0, Slot::OnStop)).count(), 1, "VU {vu} left the parent once");
        assert_eq!(calls.last(), Some(&(0, Slot::OnStop)), "VU {vu}: the stop leaves the child, then the parent");
        for (i, pair) in calls.windows(2).enumerate() {
            match pair[0] {
                // After the child's on_stop the VU is back in the parent: its next call is the parent's.
                (1, Slot::OnStop) => assert!(
                    matches!(pair[1], (0, Slot::Task(0)) | (1, Slot::OnStart) | (0, Slot::OnStop)),
                    "VU {vu}: {pair:?}"
                ),
                // A visit starts with the child's task, unless the run stopped right after its on_start: then the
                // VU leaves the child and the parent, and those are its last two calls.
                (1, Slot::OnStart) if i + 3 == calls.len() => {
                    assert!(matches!(pair[1], (1, Slot::Task(0)) | (1, Slot::OnStop)), "VU {vu}: {pair:?}")
                }
                (1, Slot::OnStart) => assert_eq!(pair[1], (1, Slot::Task(0)), "VU {vu}"),
                _ => {}
            }
        }
        leaves += calls.iter().filter(|c| **c == (0, Slot::Task(0))).count() as u64;
        visits += calls.iter().filter(|c| **c == (1, Slot::OnStart)).count() as u64;
    }
    // The parent's nested task is counted under its name, once per visit.
    assert_eq!(result.aggregate.slots[0][1].runs, visits);
    assert_eq!(result.aggregate.slots[1][2].runs, visits, "child on_start");
    let n = (leaves + visits) as f64;
    assert!(n >= 100.0, "too few picks for a ratio: {leaves} + {visits}");
    let sd = (n * 0.75 * 0.25).sqrt();
    assert!((visits as f64 - 0.75 * n).abs() < 4.0 * sd, "visits {visits} of {n}");
}

fn visits_in(outcome: Outcome) -> u64 {
    // The parent's only task is the child; the child interrupts at once. The parent waits 100 ms after each visit
    // unless the child used interrupt(false).
    let mut tasksets = parent_and_child(WaitTime::Constant(ms(100)), WaitTime::Constant(Duration::ZERO));
    tasksets[0].tasks[0].weight = 0;
    let plan = Plan::builder(tasksets).users(1).workers(1).run_time(Some(ms(500))).build().unwrap();
    let (_, log) = run(plan, Arc::new(move |_, _, _| outcome.clone()), None);
    log.calls[&0].iter().filter(|c| **c == (1, Slot::OnStart)).count() as u64
}

#[test]
fn interrupt_false_returns_to_the_parent_without_waiting() {
    let waiting = visits_in(Outcome::Interrupted);
    // 500 ms at 100 ms of think time per visit: at most 6 visits (the first starts at once).
    assert!((1..=6).contains(&waiting), "{waiting} visits with think time");
    let at_once = visits_in(Outcome::InterruptedNow);
    assert!(at_once >= 50, "{at_once} visits without think time");
}

#[test]
fn a_custom_wait_time_is_asked_per_task_and_its_errors_are_counted() {
    let ts = spec("a", 1, vec![TaskSpec::new("t", 1)], WaitTime::Custom);
    let plan = Plan::builder(vec![ts]).users(2).workers(1).run_time(Some(ms(500))).build().unwrap();
    // VU 0 thinks 100 ms; VU 1's closure fails every time (and so does not wait).
    let wait: Arc<Wait> = Arc::new(|vu| match vu {
        0 => Ok(ms(100)),
        _ => Err(TaskError { location: "a.rhai:1:11".into(), message: "bad wait".into() }),
    });
    let (result, log) = run(plan, Arc::new(|_, _, _| Outcome::Done), Some(wait));
    let tasks = |vu: u64| log.calls[&vu].iter().filter(|c| c.1 == Slot::Task(0)).count() as u64;
    assert!((1..=6).contains(&tasks(0)), "VU 0 thought 100 ms between tasks: {}", tasks(0));
    assert!(tasks(1) >= 50, "VU 1 did not wait: {}", tasks(1));
    let errors = result.aggregate.errors[&("a.rhai:1:11".to_owned(), "bad wait".to_owned())];
    assert!(errors >= tasks(1) - 1 && errors <= tasks(1), "{errors} errors for {} tasks", tasks(1));
    assert!(log.waits >= errors + tasks(0) - 1);
}

#[test]
fn the_open_model_runs_one_leaf_task_per_start_in_the_innermost_taskset() {
    let mut tasksets = parent_and_child(WaitTime::Constant(ms(1)), WaitTime::Constant(ms(1)));
    tasksets[0].tasks[0].weight = 0;
    let plan = Plan::builder(tasksets)
        .open(200.0, 4, Duration::from_secs(5))
        .iterations(Some(60))
        .workers(1)
        .run_time(Some(Duration::from_secs(20)))
        .build()
        .unwrap();
    // The child interrupts on every third call: each VU stays in it for three starts.
    let (result, log) =
        run(plan, Arc::new(|_, _, n| if n % 3 == 0 { Outcome::Interrupted } else { Outcome::Done }), None);
    let all: Vec<&(usize, Slot)> = log.calls.values().flatten().collect();
    assert_eq!(all.iter().filter(|c| c.1 == Slot::Task(0)).count(), 60, "one leaf task per start");
    let entries = all.iter().filter(|c| **c == &(1, Slot::OnStart)).count();
    let exits = all.iter().filter(|c| **c == &(1, Slot::OnStop)).count();
    assert_eq!(entries, exits, "every VU left the child by the end");
    assert!(entries >= 20, "a VU stays in the child until it interrupts: {entries} entries for 60 tasks");
    assert_eq!(all.iter().filter(|c| **c == &(0, Slot::OnStart)).count(), log.calls.len(), "the parent, once per VU");
    assert_eq!(result.aggregate.slots[0][1].runs as usize, entries);
}
