//! The scheduler's contract, tested with a fake behaviour: no script engine, no network.
//!
//! Each test runs a real plan on real worker threads and checks what the behaviour saw (which VUs were created,
//! which slots ran) against what the runner reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::stats::Recorder;
use nest_core::{
    Behaviour, BehaviourFactory, EndReason, Error, Outcome, Plan, RunResult, Slot, StopHandle,
    TaskError, TaskSpec, TasksetSpec, WaitTime, WorkerContext, fiber,
};

/// What every worker's behaviour saw, in one place for the test.
#[derive(Default)]
struct Seen {
    vus: Vec<u64>,
    calls: Vec<(u64, usize, Slot)>,
}

#[derive(Clone, Copy)]
enum TaskKind {
    /// Wait this long on the fiber, then succeed.
    Sleep(Duration),
    /// Wait, then interrupt.
    SleepThenInterrupt(Duration),
    /// Panic.
    Panic,
    /// Fail with an error.
    Fail,
}

struct Fake {
    seen: Arc<Mutex<Seen>>,
    kind: TaskKind,
    recorder: Recorder,
}

impl Behaviour for Fake {
    type Vu = u64;
    fn new_vu(&self, vu_id: u64) -> u64 {
        self.seen.lock().unwrap().vus.push(vu_id);
        vu_id
    }
    fn call(&self, vu: &mut u64, taskset: usize, slot: Slot) -> Outcome {
        let pause = match self.kind {
            TaskKind::Sleep(d) | TaskKind::SleepThenInterrupt(d) => d,
            _ => Duration::ZERO,
        };
        if matches!(slot, Slot::Task(_))
            && !pause.is_zero()
            && fiber::suspend(tokio::time::sleep(pause)).is_err()
        {
            return Outcome::Cancelled;
        }
        self.seen.lock().unwrap().calls.push((*vu, taskset, slot));
        match (self.kind, slot) {
            (_, Slot::OnStart | Slot::OnStop) => Outcome::Done,
            (TaskKind::Sleep(_), _) => {
                self.recorder.request("GET", "/", pause, None);
                Outcome::Done
            }
            (TaskKind::SleepThenInterrupt(_), _) => Outcome::Interrupted,
            (TaskKind::Panic, _) => panic!("task panicked"),
            (TaskKind::Fail, _) => Outcome::Failed(TaskError {
                location: "f.rhai:2:3".into(),
                message: "bad".into(),
            }),
        }
    }
}

struct Factory {
    seen: Arc<Mutex<Seen>>,
    kind: TaskKind,
    fail_build: bool,
}

impl BehaviourFactory for Factory {
    type Behaviour = Fake;
    fn build(&self, worker: &WorkerContext) -> Result<Fake, String> {
        if self.fail_build && worker.index == 1 {
            return Err("script failed to compile".into());
        }
        Ok(Fake {
            seen: self.seen.clone(),
            kind: self.kind,
            recorder: worker.recorder.clone(),
        })
    }
}

fn taskset(name: &str, weight: u32) -> TasksetSpec {
    TasksetSpec {
        name: name.into(),
        weight,
        tasks: vec![TaskSpec {
            name: "t".into(),
            weight: 1,
        }],
        wait: WaitTime::Constant(Duration::from_millis(5)),
        has_on_start: true,
        has_on_stop: true,
    }
}

fn run(plan: Plan, kind: TaskKind, handle: StopHandle) -> (Result<RunResult, Error>, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory {
        seen: seen.clone(),
        kind,
        fail_build: false,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(nest_core::run(plan, factory, handle, |_, _| {}));
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}

fn count(seen: &Seen, slot: Slot) -> BTreeMap<u64, usize> {
    let mut per_vu = BTreeMap::new();
    for &(vu, _, s) in &seen.calls {
        if s == slot {
            *per_vu.entry(vu).or_default() += 1;
        }
    }
    per_vu
}

#[test]
fn every_vu_is_created_once_across_workers() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(7)
        .workers(3)
        .run_time(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let (result, mut seen) = run(
        plan,
        TaskKind::Sleep(Duration::from_millis(2)),
        StopHandle::new(),
    );
    assert_eq!(result.unwrap().end, EndReason::RunTime);
    seen.vus.sort_unstable();
    assert_eq!(seen.vus, (0..7).collect::<Vec<_>>());
}

#[test]
fn a_graceful_stop_finishes_tasks_and_runs_on_stop() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(6)
        .workers(2)
        .run_time(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let (result, seen) = run(
        plan,
        TaskKind::Sleep(Duration::from_millis(40)),
        StopHandle::new(),
    );
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::RunTime);
    let starts = count(&seen, Slot::OnStart);
    assert_eq!(
        starts,
        count(&seen, Slot::OnStop),
        "every VU that entered ran on_stop once"
    );
    assert_eq!(starts.len(), 6);
    assert!(
        starts.values().all(|&n| n == 1),
        "no interrupt, so one entry per VU: {starts:?}"
    );
    // Recorded requests equal the tasks the behaviour completed, and slot counters agree.
    let tasks: usize = count(&seen, Slot::Task(0)).values().sum();
    assert_eq!(result.aggregate.total().count, tasks as u64);
    assert_eq!(result.aggregate.slots[0][0].runs, tasks as u64);
}

#[test]
fn interrupt_re_enters_and_on_start_runs_once_per_entry() {
    let plan = Plan::builder(vec![taskset("a", 1), taskset("b", 1)])
        .users(2)
        .workers(1)
        .run_time(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let (result, seen) = run(
        plan,
        TaskKind::SleepThenInterrupt(Duration::from_millis(3)),
        StopHandle::new(),
    );
    result.unwrap();
    let (starts, tasks, stops) = (
        count(&seen, Slot::OnStart),
        count(&seen, Slot::Task(0)),
        count(&seen, Slot::OnStop),
    );
    assert_eq!(starts, stops);
    for (vu, &n) in &starts {
        assert!(n > 3, "VU {vu} re-entered tasksets: {n}");
        let t = tasks.get(vu).copied().unwrap_or(0);
        assert!(
            t == n || t + 1 == n,
            "one task per entry (the last may be cut by the stop): {t} vs {n}"
        );
    }
    let tasksets: std::collections::BTreeSet<usize> = seen.calls.iter().map(|c| c.1).collect();
    assert_eq!(tasksets.len(), 2, "both tasksets were entered");
}

#[test]
fn the_stop_timeout_cancels_calls_in_flight() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(3)
        .workers(2)
        .run_time(Some(Duration::from_millis(100)))
        .stop_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let (result, seen) = run(
        plan,
        TaskKind::Sleep(Duration::from_secs(3600)),
        StopHandle::new(),
    );
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Killed);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the run did not wait for the hour-long task"
    );
    assert_eq!(
        result.aggregate.total().count,
        0,
        "cancelled calls record nothing"
    );
    assert!(
        count(&seen, Slot::OnStop).is_empty(),
        "a killed VU does not run on_stop"
    );
    assert_eq!(count(&seen, Slot::OnStart).len(), 3);
}

#[test]
fn kill_from_the_handle_ends_the_run() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(2)
        .workers(1)
        .build()
        .unwrap();
    let handle = StopHandle::new();
    let killer = handle.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        killer.kill();
    });
    let (result, _) = run(plan, TaskKind::Sleep(Duration::from_secs(3600)), handle);
    assert_eq!(result.unwrap().end, EndReason::Killed);
}

#[test]
fn panics_and_errors_are_counted_and_the_run_goes_on() {
    for (kind, message) in [
        (TaskKind::Panic, "internal error (panic): task panicked"),
        (TaskKind::Fail, "bad"),
    ] {
        let plan = Plan::builder(vec![taskset("a", 1)])
            .users(2)
            .workers(1)
            .run_time(Some(Duration::from_millis(200)))
            .build()
            .unwrap();
        let (result, seen) = run(plan, kind, StopHandle::new());
        let result = result.unwrap();
        let errors: u64 = result
            .aggregate
            .errors
            .iter()
            .filter(|((_, m), _)| m == message)
            .map(|(_, n)| n)
            .sum();
        let slot = result.aggregate.slots[0][Slot::Task(0).index(&taskset("a", 1))];
        assert!(
            errors > 2,
            "{message}: many calls failed and the VUs kept going ({errors})"
        );
        assert_eq!(slot.errors, errors);
        assert_eq!(slot.runs, errors);
        if matches!(kind, TaskKind::Panic) {
            // A panic loses the VU's state: it is created again for the next call.
            assert!(seen.vus.len() > 2);
        }
    }
}

#[test]
fn a_worker_that_cannot_build_stops_the_run_before_any_call() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(4)
        .workers(2)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory {
        seen: seen.clone(),
        kind: TaskKind::Sleep(Duration::ZERO),
        fail_build: true,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(nest_core::run(plan, factory, StopHandle::new(), |_, _| {}))
        .unwrap_err();
    assert!(matches!(err, Error::Worker { worker: 1, .. }), "{err}");
    assert!(seen.lock().unwrap().calls.is_empty());
    assert!(seen.lock().unwrap().vus.is_empty());
}
