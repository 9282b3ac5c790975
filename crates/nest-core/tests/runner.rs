//! The scheduler's contract, tested with a fake behaviour: no script engine, no network.
//!
//! Each test runs a real plan on real worker threads and checks what the behaviour saw (which VUs were created,
//! which slots ran) against what the runner reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::Snapshot;
use nest_core::stats::{Recorder, Sample};
use nest_core::{
    Behaviour, BehaviourFactory, Call, EndReason, Error, Outcome, Plan, RunHandle, RunPhase, RunResult, ShapeSource,
    ShapeTick, Shared, Slot, Stage, TaskError, TaskSpec, TasksetSpec, WaitTime, WorkerContext, fiber,
};

/// What every worker's behaviour saw, in one place for the test.
#[derive(Default)]
struct Seen {
    vus: Vec<u64>,
    calls: Vec<(u64, usize, Slot)>,
    /// The setup value each worker received.
    shared: Vec<Option<u64>>,
    /// How many calls had been made when teardown ran.
    teardown_after: Option<usize>,
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
    with_setup: bool,
}

impl Behaviour for Fake {
    type Vu = u64;
    fn new_vu(&self, vu_id: u64) -> u64 {
        self.seen.lock().unwrap().vus.push(vu_id);
        vu_id
    }
    fn call(&self, vu: &mut u64, call: Call) -> Outcome {
        let (taskset, slot) = (call.taskset, call.slot);
        let pause = match self.kind {
            TaskKind::Sleep(d) | TaskKind::SleepThenInterrupt(d) => d,
            _ => Duration::ZERO,
        };
        if matches!(slot, Slot::Task(_)) && !pause.is_zero() && fiber::suspend(tokio::time::sleep(pause)).is_err() {
            return Outcome::Cancelled;
        }
        self.seen.lock().unwrap().calls.push((*vu, taskset, slot));
        match (self.kind, slot) {
            (_, Slot::OnStart | Slot::OnStop) => Outcome::Done,
            (TaskKind::Sleep(_), _) => {
                let corrected = call.scheduled.map(|s| s.elapsed());
                self.recorder.request("GET", "/", Sample { latency: pause, corrected, ..Default::default() });
                Outcome::Done
            }
            (TaskKind::SleepThenInterrupt(_), _) => Outcome::Interrupted,
            (TaskKind::Panic, _) => panic!("task panicked"),
            (TaskKind::Fail, _) => Outcome::Failed(TaskError { location: "f.rhai:2:3".into(), message: "bad".into() }),
        }
    }
    fn setup(&self) -> Result<Option<Shared>, TaskError> {
        if !self.with_setup {
            return Ok(None);
        }
        // Setup may wait on I/O like any call: it runs on a fiber.
        fiber::suspend(tokio::time::sleep(Duration::from_millis(5)))
            .map_err(|_| TaskError { location: "setup".into(), message: "cancelled".into() })?;
        Ok(Some(Arc::new(42u64)))
    }
    fn set_shared(&self, shared: Option<Shared>) {
        let value = shared.and_then(|s| s.downcast_ref::<u64>().copied());
        self.seen.lock().unwrap().shared.push(value);
    }
    fn teardown(&self) -> Result<(), TaskError> {
        let mut seen = self.seen.lock().unwrap();
        seen.teardown_after = Some(seen.calls.len());
        Ok(())
    }
}

struct Factory {
    seen: Arc<Mutex<Seen>>,
    kind: TaskKind,
    fail_build: bool,
    with_setup: bool,
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
            with_setup: self.with_setup,
        })
    }
}

fn taskset(name: &str, weight: u32) -> TasksetSpec {
    TasksetSpec {
        name: name.into(),
        weight,
        tasks: vec![TaskSpec::new("t", 1)],
        wait: WaitTime::Constant(Duration::from_millis(5)),
        has_on_start: true,
        has_on_stop: true,
        ..Default::default()
    }
}

fn run(plan: Plan, kind: TaskKind, handle: RunHandle) -> (Result<RunResult, Error>, Seen) {
    run_with(plan, kind, handle, false, ())
}

fn run_with(
    plan: Plan,
    kind: TaskKind,
    handle: RunHandle,
    with_setup: bool,
    hooks: impl ShapeSource,
) -> (Result<RunResult, Error>, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory { seen: seen.clone(), kind, fail_build: false, with_setup });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(nest_core::run(plan, factory, handle, hooks));
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
    let (result, mut seen) = run(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new());
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
    let (result, seen) = run(plan, TaskKind::Sleep(Duration::from_millis(40)), RunHandle::new());
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::RunTime);
    let starts = count(&seen, Slot::OnStart);
    assert_eq!(starts, count(&seen, Slot::OnStop), "every VU that entered ran on_stop once");
    assert_eq!(starts.len(), 6);
    assert!(starts.values().all(|&n| n == 1), "no interrupt, so one entry per VU: {starts:?}");
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
    let (result, seen) = run(plan, TaskKind::SleepThenInterrupt(Duration::from_millis(3)), RunHandle::new());
    result.unwrap();
    let (starts, tasks, stops) = (count(&seen, Slot::OnStart), count(&seen, Slot::Task(0)), count(&seen, Slot::OnStop));
    assert_eq!(starts, stops);
    for (vu, &n) in &starts {
        assert!(n > 3, "VU {vu} re-entered tasksets: {n}");
        let t = tasks.get(vu).copied().unwrap_or(0);
        assert!(t == n || t + 1 == n, "one task per entry (the last may be cut by the stop): {t} vs {n}");
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
    let (result, seen) = run(plan, TaskKind::Sleep(Duration::from_secs(3600)), RunHandle::new());
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Killed);
    assert!(started.elapsed() < Duration::from_secs(60), "the run did not wait for the hour-long task");
    assert_eq!(result.aggregate.total().count, 0, "cancelled calls record nothing");
    assert!(count(&seen, Slot::OnStop).is_empty(), "a killed VU does not run on_stop");
    assert_eq!(count(&seen, Slot::OnStart).len(), 3);
}

#[test]
fn kill_from_the_handle_ends_the_run() {
    let plan = Plan::builder(vec![taskset("a", 1)]).users(2).workers(1).build().unwrap();
    let handle = RunHandle::new();
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
    for (kind, message) in [(TaskKind::Panic, "internal error (panic): task panicked"), (TaskKind::Fail, "bad")] {
        let plan = Plan::builder(vec![taskset("a", 1)])
            .users(2)
            .workers(1)
            // A budget of calls, not a run time: a panic's cost (a backtrace under RUST_BACKTRACE=1) must not decide
            // how many calls fit.
            .iterations(Some(12))
            .run_time(Some(Duration::from_secs(60)))
            .build()
            .unwrap();
        let (result, seen) = run(plan, kind, RunHandle::new());
        let result = result.unwrap();
        let errors: u64 = result.aggregate.errors.iter().filter(|((_, m), _)| m == message).map(|(_, n)| n).sum();
        let slot = result.aggregate.slots[0][Slot::Task(0).index(&taskset("a", 1))];
        assert_eq!(errors, 12, "{message}: every call failed and the VUs kept going");
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
    let plan = Plan::builder(vec![taskset("a", 1)]).users(4).workers(2).build().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory {
        seen: seen.clone(),
        kind: TaskKind::Sleep(Duration::ZERO),
        fail_build: true,
        with_setup: false,
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(nest_core::run(plan, factory, RunHandle::new(), ())).unwrap_err();
    assert!(matches!(err, Error::Worker { worker: 1, .. }), "{err}");
    assert!(seen.lock().unwrap().calls.is_empty());
    assert!(seen.lock().unwrap().vus.is_empty());
}

fn tasks_run(seen: &Seen) -> usize {
    seen.calls.iter().filter(|c| matches!(c.2, Slot::Task(_))).count()
}

#[test]
fn iterations_run_exactly_that_many_tasks_in_the_closed_model() {
    let plan = Plan::builder(vec![taskset("a", 1)]).users(5).workers(2).iterations(Some(37)).build().unwrap();
    let (result, seen) = run(plan, TaskKind::Sleep(Duration::from_millis(1)), RunHandle::new());
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Completed, "the run ends by itself");
    assert_eq!(tasks_run(&seen), 37);
    assert_eq!(result.aggregate.total().count, 37);
    assert_eq!(count(&seen, Slot::OnStart), count(&seen, Slot::OnStop), "VUs leave with on_stop");
}

#[test]
fn the_open_model_runs_iterations_with_corrected_latency() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .open(400.0, 8, Duration::from_secs(5))
        .workers(2)
        .iterations(Some(40))
        .build()
        .unwrap();
    let (result, seen) = run(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new());
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Completed);
    assert_eq!(tasks_run(&seen), 40);
    let total = result.aggregate.total();
    assert_eq!(total.count, 40);
    let corrected = total.corrected.expect("the open model records corrected latency");
    assert!(corrected.max_us >= total.latency.max_us, "a response never arrives before it is sent");
    assert!(seen.vus.len() <= 8, "the pool stays within --max-users: {}", seen.vus.len());
    assert_eq!(count(&seen, Slot::OnStart), count(&seen, Slot::OnStop), "pooled VUs leave with on_stop");
}

#[test]
fn the_open_model_drops_starts_that_wait_too_long() {
    // One VU, tasks of 50 ms, 100 starts per second: most starts find no free VU within 20 ms.
    let plan = Plan::builder(vec![taskset("a", 1)])
        .open(100.0, 1, Duration::from_millis(20))
        .workers(2)
        .run_time(Some(Duration::from_millis(600)))
        .build()
        .unwrap();
    assert_eq!(plan.workers, 1, "a pool of one VU needs one worker");
    let (result, seen) = run(plan, TaskKind::Sleep(Duration::from_millis(50)), RunHandle::new());
    let result = result.unwrap();
    let started = tasks_run(&seen) as u64;
    assert!(result.aggregate.dropped > 10, "dropped {}", result.aggregate.dropped);
    // Every scheduled start either ran or was dropped (the last few may be cut by the stop).
    assert!(started + result.aggregate.dropped <= 61 && started + result.aggregate.dropped >= 50);
    let dropped_in_timeline: u64 = result.aggregate.timeline.values().map(|s| s.dropped).sum();
    assert_eq!(dropped_in_timeline, result.aggregate.dropped);
}

#[test]
fn stages_move_the_number_of_users() {
    let stages = vec![
        Stage { duration: Duration::from_millis(300), target: 4.0 },
        Stage { duration: Duration::from_millis(400), target: 4.0 },
        Stage { duration: Duration::from_millis(300), target: 1.0 },
    ];
    let plan = Plan::builder(vec![taskset("a", 1)]).stages(Some(stages)).workers(2).build().unwrap();
    let (result, mut seen) = run(plan, TaskKind::Sleep(Duration::from_millis(5)), RunHandle::new());
    assert_eq!(result.unwrap().end, EndReason::RunTime);
    seen.vus.sort_unstable();
    assert_eq!(seen.vus, vec![0, 1, 2, 3], "four users at the peak");
    let stops = count(&seen, Slot::OnStop);
    assert_eq!(stops.len(), 4, "the ramp down and the end both run on_stop: {stops:?}");
}

#[test]
fn setup_reaches_every_worker_and_teardown_runs_after_the_load() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(3)
        .workers(2)
        .run_time(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let (result, seen) = run_with(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new(), true, ());
    result.unwrap();
    assert_eq!(seen.shared, vec![Some(42), Some(42)], "each worker got the setup value once");
    assert_eq!(seen.teardown_after, Some(seen.calls.len()), "teardown ran after every call");
}

/// Runs with one subscriber task on the runner's runtime, which hands each snapshot it sees to `on` (with the
/// run's stop handle); returns the snapshots seen with the result.
fn run_watching(
    plan: Plan,
    kind: TaskKind,
    handle: RunHandle,
    with_setup: bool,
    mut on: impl FnMut(&Snapshot, &RunHandle) + Send + 'static,
) -> (Result<RunResult, Error>, Vec<Arc<Snapshot>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory { seen, kind, fail_build: false, with_setup });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = nest_core::snapshot::channel();
        let stop = handle.clone();
        let watcher = tokio::spawn(async move {
            let mut snapshots = Vec::new();
            while rx.changed().await.is_ok() {
                let snapshot = rx.borrow_and_update().clone();
                on(&snapshot, &stop);
                snapshots.push(snapshot);
            }
            snapshots
        });
        let result = nest_core::run_observed(plan, factory, handle, (), tx).await;
        (result, watcher.await.unwrap())
    })
}

#[test]
fn a_subscriber_sees_every_phase_and_one_snapshot_per_reported_second() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(3)
        .workers(2)
        .run_time(Some(Duration::from_millis(3500)))
        .build()
        .unwrap();
    let (result, snapshots) =
        run_watching(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new(), true, |_, _| {});
    let result = result.unwrap();
    let seqs: Vec<u64> = snapshots.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (1..=snapshots.len() as u64).collect::<Vec<_>>(), "none was skipped");
    let mut phases: Vec<RunPhase> = snapshots.iter().map(|s| s.phase).collect();
    phases.dedup();
    let order = [RunPhase::Ready, RunPhase::Setup, RunPhase::Load, RunPhase::Teardown, RunPhase::Drain];
    assert_eq!(phases, order);
    // One load snapshot at the start, then one per second every worker reported, each second once.
    let load: Vec<&Snapshot> = snapshots.iter().filter(|s| s.phase == RunPhase::Load).map(|s| &**s).collect();
    let seconds: Vec<u64> = load.iter().map(|s| s.seconds).collect();
    assert!(seconds.len() >= 4, "a 3.5 s run reports 1, 2 and 3 s: {seconds:?}");
    assert_eq!(seconds, (0..seconds.len() as u64).collect::<Vec<_>>());
    let counts: Vec<u64> = load.iter().map(|s| s.totals.total().count).collect();
    assert!(counts.windows(2).skip(1).all(|w| w[0] < w[1]), "the totals grow each second: {counts:?}");
    let users: Vec<u64> = load[1..].iter().map(|s| s.users).collect();
    assert!(users.iter().all(|&n| n == 3), "the three VUs start at once: {users:?}");
    assert!(load.iter().all(|s| s.totals.timeline.is_empty()), "a snapshot does not copy the timeline");
    assert!(load.last().and_then(|s| s.last.as_ref()).is_some_and(|i| i.total.is_some()), "a sealed second");
    let all: Vec<u64> = snapshots.iter().map(|s| s.totals.total().count).collect();
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "{all:?}");
    let last = snapshots.last().unwrap();
    assert_eq!(last.totals.total().count, result.aggregate.total().count, "the drain holds the final totals");
    assert_eq!((last.users, last.elapsed), (0, result.duration));
    // The load's actual start: unknown before it, then the result's own on every later snapshot.
    let before = snapshots.iter().filter(|s| s.phase < RunPhase::Load);
    assert!(before.clone().count() > 0 && before.into_iter().all(|s| s.started_at.is_none()));
    let after = snapshots.iter().filter(|s| s.phase >= RunPhase::Load);
    assert!(after.into_iter().all(|s| s.started_at == Some(result.started_at)), "the load's start");
}

#[test]
fn a_subscriber_can_stop_the_run() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(2)
        .workers(2)
        .run_time(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let (result, snapshots) =
        run_watching(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new(), false, |s, stop| {
            if s.phase == RunPhase::Load && s.totals.total().count > 0 {
                stop.stop();
            }
        });
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Stopped);
    assert!(result.duration < Duration::from_secs(10), "stopped after the first second: {:?}", result.duration);
    let load = snapshots.iter().filter(|s| s.phase == RunPhase::Load && s.seconds > 0).count();
    assert!((1..=2).contains(&load), "the stop came at the first reported second: {load} load snapshots");
}

#[test]
fn a_setup_cut_short_goes_from_setup_to_drain() {
    let plan = Plan::builder(vec![taskset("a", 1)]).users(2).run_time(Some(Duration::from_secs(30))).build().unwrap();
    // Killed during setup(): the subscriber sees no load and no teardown.
    let (result, snapshots) =
        run_watching(plan, TaskKind::Sleep(Duration::from_millis(2)), RunHandle::new(), true, |s, stop| {
            if s.phase == RunPhase::Setup {
                stop.kill();
            }
        });
    let phases: Vec<RunPhase> = snapshots.iter().map(|s| s.phase).collect();
    let result = result.unwrap();
    assert_eq!((result.cut, result.end), (Some(nest_core::Phase::Setup), EndReason::Killed), "{phases:?}");
    assert_eq!(phases, [RunPhase::Ready, RunPhase::Setup, RunPhase::Drain]);
}

#[test]
fn live_users_are_known_from_the_first_reported_second_before_any_second_is_sealed() {
    let plan = Plan::builder(vec![taskset("a", 1)])
        .users(5)
        .workers(2)
        .run_time(Some(Duration::from_millis(2500)))
        .build()
        .unwrap();
    let (result, snapshots) =
        run_watching(plan, TaskKind::Sleep(Duration::from_millis(20)), RunHandle::new(), false, |_, _| {});
    result.unwrap();
    let first = snapshots.iter().find(|s| s.phase == RunPhase::Load && s.seconds == 1).expect("second 0 reported");
    // Every worker reported second 0, which is not sealed yet: all five VUs (started at once) are counted.
    assert!(first.last.is_none(), "no second is sealed after the first report");
    assert_eq!(first.users, 5);
    assert_eq!(snapshots.last().map(|s| (s.phase, s.users)), Some((RunPhase::Drain, 0)), "no VU is active at the end");
}

struct Steps(Vec<ShapeTick>);

impl ShapeSource for Steps {
    fn tick(&mut self, _elapsed: Duration) -> ShapeTick {
        if self.0.is_empty() { ShapeTick::Stop } else { self.0.remove(0) }
    }
}

#[test]
fn a_shape_drives_the_users_and_ends_the_run() {
    let plan = Plan::builder(vec![taskset("a", 1)]).shaped().workers(2).build().unwrap();
    let steps =
        Steps(vec![ShapeTick::Target { users: 1, spawn_rate: None }, ShapeTick::Target { users: 3, spawn_rate: None }]);
    let (result, mut seen) = run_with(plan, TaskKind::Sleep(Duration::from_millis(5)), RunHandle::new(), false, steps);
    let result = result.unwrap();
    assert_eq!(result.end, EndReason::Completed);
    assert!(result.duration >= Duration::from_secs(2), "the shape was asked at 0 s, 1 s and 2 s");
    seen.vus.sort_unstable();
    assert_eq!(seen.vus, vec![0, 1, 2]);
}
