//! Changing a run while it goes on, through the runner: the handle's checks (what is refused, and why), a new
//! target of users relayed to every worker (new VUs created, retired ones running `on_stop`), and a reset of the
//! statistics counting exactly what happened after it. (The user count and the arrivals over time after each
//! change are tested on the workers' loops with paused time, in `src/control/tests.rs`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_core::stats::{Recorder, Sample};
use nest_core::{
    Behaviour, BehaviourFactory, Call, ControlError, LoadTarget, Outcome, Plan, RunHandle, RunPhase, RunResult, Slot,
    Snapshot, Stage, TaskSpec, TasksetSpec, WaitTime, WorkerContext, fiber,
};

/// Every VU created and every `on_stop`, by global id, over all workers.
#[derive(Default)]
struct Seen {
    vus: Vec<u64>,
    stops: Vec<u64>,
    requests: u64,
}

/// Each task waits `pause` on the fiber, then records one request.
struct Fake {
    seen: Arc<Mutex<Seen>>,
    recorder: Recorder,
    pause: Duration,
}

impl Behaviour for Fake {
    type Vu = u64;
    fn new_vu(&self, id: u64) -> u64 {
        self.seen.lock().unwrap().vus.push(id);
        id
    }
    fn call(&self, vu: &mut u64, call: Call) -> Outcome {
        match call.slot {
            Slot::OnStop => self.seen.lock().unwrap().stops.push(*vu),
            Slot::OnStart => {}
            Slot::Task(_) => {
                if fiber::suspend(tokio::time::sleep(self.pause)).is_err() {
                    return Outcome::Cancelled;
                }
                self.recorder.request("GET", "/", Sample { latency: self.pause, ..Default::default() });
                self.seen.lock().unwrap().requests += 1;
            }
        }
        Outcome::Done
    }
}

struct Factory {
    seen: Arc<Mutex<Seen>>,
    pause: Duration,
}

impl BehaviourFactory for Factory {
    type Behaviour = Fake;
    fn build(&self, worker: &WorkerContext) -> Result<Fake, String> {
        Ok(Fake { seen: self.seen.clone(), recorder: worker.recorder.clone(), pause: self.pause })
    }
}

fn taskset(wait: WaitTime) -> TasksetSpec {
    TasksetSpec {
        name: "a".into(),
        weight: 1,
        tasks: vec![TaskSpec::new("t", 1)],
        wait,
        has_on_stop: true,
        ..Default::default()
    }
}

/// Runs `plan` with a subscriber that hands each snapshot to `on` with the run's handle; returns the result, what
/// the behaviours saw and every snapshot.
fn run(
    plan: Plan,
    pause: Duration,
    handle: RunHandle,
    mut on: impl FnMut(&Snapshot, &RunHandle) + Send + 'static,
) -> (RunResult, Seen, Vec<Arc<Snapshot>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let factory = Arc::new(Factory { seen: seen.clone(), pause });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (result, snapshots) = rt.block_on(async {
        let (tx, mut rx) = nest_core::snapshot::channel();
        let steer = handle.clone();
        let watcher = tokio::spawn(async move {
            let mut snapshots = Vec::new();
            while rx.changed().await.is_ok() {
                let snapshot = rx.borrow_and_update().clone();
                on(&snapshot, &steer);
                snapshots.push(snapshot);
            }
            snapshots
        });
        let result = nest_core::run_observed(plan, factory, handle, (), tx).await;
        (result.unwrap(), watcher.await.unwrap())
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen, snapshots)
}

fn closed(users: u64, run_time: Duration) -> Plan {
    Plan::builder(vec![taskset(WaitTime::Constant(Duration::from_millis(5)))])
        .users(users)
        .workers(2)
        .run_time(Some(run_time))
        .build()
        .unwrap()
}

#[test]
fn more_users_start_and_fewer_retire_the_newest_with_on_stop() {
    let handle = RunHandle::new();
    let mut target = handle.target();
    let mut asked = 0;
    let (result, seen, snapshots) =
        run(closed(2, Duration::from_millis(3500)), Duration::from_millis(5), handle, move |s, h| {
            if s.phase == RunPhase::Load && s.seconds == 1 && asked == 0 {
                asked = 1;
                h.set_users(5, None).unwrap();
            }
            if s.phase == RunPhase::Load && s.seconds == 2 && asked == 1 {
                asked = 2;
                h.set_users(3, Some(100.0)).unwrap();
            }
        });
    let mut vus = seen.vus.clone();
    vus.sort_unstable();
    assert_eq!(vus, [0, 1, 2, 3, 4], "three more users, with the next global ids, over both workers");
    // The two newest retired first, each running on_stop; then the three left stopped at the end of the run.
    assert_eq!(seen.stops[..2], [4, 3], "{:?}", seen.stops);
    let mut rest = seen.stops[2..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, [0, 1, 2]);
    let users: Vec<u64> =
        snapshots.iter().filter(|s| s.phase == RunPhase::Load && s.seconds > 0).map(|s| s.users).collect();
    assert_eq!(users.first(), Some(&2), "{users:?}");
    assert!(users.contains(&5), "the live count saw the five users: {users:?}");
    assert_eq!(users.last(), Some(&3), "{users:?}");
    assert_eq!(*target.borrow_and_update(), LoadTarget::Users { users: 3, spawn_rate: Some(100.0) });
    let last = snapshots.last().unwrap();
    assert_eq!(last.target, Some(LoadTarget::Users { users: 3, spawn_rate: Some(100.0) }));
    // The summary's users are the most that ran at once.
    assert_eq!(result.summary(vec![]).users, 5);
}

#[test]
fn changes_the_plan_cannot_take_are_refused_with_a_reason() {
    let fresh = RunHandle::new();
    assert_eq!(fresh.set_users(3, None), Err(ControlError::NotStarted));
    assert_eq!(fresh.reset_stats(), Err(ControlError::NotStarted));

    // Stages own the curve: refused, but the statistics may still be reset.
    let stages = vec![Stage { duration: Duration::from_millis(1500), target: 2.0 }];
    let staged = Plan::builder(vec![taskset(WaitTime::Constant(Duration::from_millis(5)))])
        .stages(Some(stages))
        .workers(1)
        .build()
        .unwrap();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mine = answers.clone();
    let handle = RunHandle::new();
    let (result, _, snapshots) = run(staged, Duration::from_millis(5), handle.clone(), move |s, h| {
        if s.phase == RunPhase::Load && s.seconds == 1 {
            let mut answers = mine.lock().unwrap();
            answers.push(h.set_users(10, None).map_err(|e| e.to_string()));
            answers.push(h.set_rate(10.0).map_err(|e| e.to_string()));
            answers.push(h.reset_stats().map_err(|e| e.to_string()));
        }
    });
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 3);
    let refused = answers[0].clone().unwrap_err();
    assert!(refused.contains("stages") && refused.contains("refused"), "{refused}");
    assert!(answers[1].clone().unwrap_err().contains("closed model"), "{:?}", answers[1]);
    assert_eq!(answers[2], Ok(()));
    assert!(result.counted_from.is_some());
    // The target follows the stages' curve.
    let targets: Vec<_> = snapshots.iter().filter(|s| s.phase == RunPhase::Load).map(|s| s.target.clone()).collect();
    assert!(targets.contains(&Some(LoadTarget::Users { users: 2, spawn_rate: None })), "{targets:?}");
    // Once the run is over, nothing changes any more.
    assert_eq!(handle.set_users(1, None), Err(ControlError::Over));
    assert_eq!(handle.reset_stats(), Err(ControlError::Over));
}

#[test]
fn values_and_models_are_checked_before_anything_is_relayed() {
    let plan = Plan::builder(vec![taskset(WaitTime::Constant(Duration::ZERO))])
        .open(5.0, 4, Duration::from_secs(1))
        .workers(1)
        .run_time(Some(Duration::from_millis(1200)))
        .build()
        .unwrap();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mine = answers.clone();
    let handle = RunHandle::new();
    let initial = handle.target();
    run(plan, Duration::from_millis(1), handle, move |s, h| {
        if s.phase == RunPhase::Load && s.seconds == 0 {
            let mut answers = mine.lock().unwrap();
            answers.push(h.set_users(3, None));
            answers.push(h.set_rate(f64::NAN));
            answers.push(h.set_rate(-1.0));
            answers.push(h.set_rate(0.0));
        }
    });
    let answers = answers.lock().unwrap().clone();
    assert!(matches!(answers[0], Err(ControlError::WrongModel { model: "open", .. })), "{answers:?}");
    assert!(matches!(&answers[1], Err(ControlError::Invalid(m)) if m.contains("NaN")), "{answers:?}");
    assert!(matches!(&answers[2], Err(ControlError::Invalid(m)) if m.contains(">= 0")), "{answers:?}");
    assert_eq!(answers[3], Ok(()), "a rate of 0 pauses the arrivals");
    assert_eq!(*initial.borrow(), LoadTarget::Rate { per_second: 0.0 });

    let closed_handle = RunHandle::new();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mine = answers.clone();
    run(closed(1, Duration::from_millis(1200)), Duration::from_millis(1), closed_handle, move |s, h| {
        if s.phase == RunPhase::Load && s.seconds == 0 {
            let mut answers = mine.lock().unwrap();
            answers.push(h.set_users(2, Some(0.0)).map_err(|e| e.to_string()));
            answers.push(h.set_users(u64::MAX / 4, None).map_err(|e| e.to_string()));
        }
    });
    let answers = answers.lock().unwrap().clone();
    assert!(answers[0].clone().unwrap_err().contains("spawn rate"), "{answers:?}");
    assert!(answers[1].clone().unwrap_err().contains("ulimit -n"), "the open-file check refuses: {answers:?}");
}
