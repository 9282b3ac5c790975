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
    /// The worker thread each VU was created on, by global id.
    threads: Vec<(u64, String)>,
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
        let mut seen = self.seen.lock().unwrap();
        seen.vus.push(id);
        seen.threads.push((id, std::thread::current().name().unwrap_or_default().to_owned()));
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
                h.set_users(3, Some(10.0)).unwrap();
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
    assert_eq!(*target.borrow_and_update(), LoadTarget::Users { users: 3, spawn_rate: Some(10.0) });
    let last = snapshots.last().unwrap();
    assert_eq!(last.target, Some(LoadTarget::Users { users: 3, spawn_rate: Some(10.0) }));
    // The summary's users are the most that ran at once.
    assert_eq!(result.summary(vec![]).users, 5);
}

#[test]
fn a_steered_run_of_one_user_raised_live_runs_the_new_users_on_every_worker_thread() {
    let plan = Plan::builder(vec![taskset(WaitTime::Constant(Duration::from_millis(5)))])
        .users(1)
        .workers(2)
        .steered(true)
        .run_time(Some(Duration::from_millis(2500)))
        .build()
        .unwrap();
    let mut asked = false;
    let (result, seen, snapshots) = run(plan, Duration::from_millis(5), RunHandle::new(), move |s, h| {
        if s.phase == RunPhase::Load && s.seconds == 1 && !asked {
            asked = true;
            h.set_users(4, None).unwrap();
        }
    });
    let mut threads = seen.threads.clone();
    threads.sort();
    let expected: Vec<(u64, String)> = (0..4).map(|vu| (vu, format!("nest-worker-{}", vu % 2))).collect();
    assert_eq!(threads, expected, "the users added live start on both worker threads, by the lane of their id");
    let users: Vec<u64> =
        snapshots.iter().filter(|s| s.phase == RunPhase::Load && s.seconds > 0).map(|s| s.users).collect();
    assert_eq!(users.first(), Some(&1), "{users:?}");
    assert_eq!(users.last(), Some(&4), "{users:?}");
    assert_eq!(result.summary(vec![]).users, 4);
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

/// An open plan whose arrivals record one request each, 50 ms after their start: far from any second's edge, so
/// which second counts a request does not depend on timing. (Its run time ends 100 ms before a whole second, so
/// that no arrival is due just at its end.)
fn four_a_second(run_time: Duration) -> Plan {
    Plan::builder(vec![taskset(WaitTime::Constant(Duration::ZERO))])
        .open(4.0, 8, Duration::from_secs(1))
        .workers(2)
        .run_time(Some(run_time))
        .build()
        .unwrap()
}

#[test]
fn a_reset_counts_exactly_what_came_after_it() {
    // Reset at 3 s of a 4.9 s run at 4/s: the report counts seconds 3 and 4, 8 requests, of the 20 sent.
    let (result, seen, snapshots) =
        run(four_a_second(Duration::from_millis(4900)), Duration::from_millis(50), RunHandle::new(), |s, h| {
            if s.phase == RunPhase::Load && s.seconds == 0 {
                h.reset_stats_at(Some(Duration::from_secs(3))).unwrap();
            }
        });
    assert_eq!(seen.requests, 20, "the load itself did not change");
    assert_eq!(result.counted_from, Some(Duration::from_secs(3)));
    assert_eq!(result.aggregate.total().count, 8);
    assert!(result.aggregate.timeline.keys().all(|&s| s >= 3), "{:?}", result.aggregate.timeline.keys());
    let in_timeline: u64 = result.aggregate.timeline.values().filter_map(|s| s.total.as_ref()).map(|t| t.count).sum();
    assert_eq!(in_timeline, 8);
    let summary = result.summary(vec![]);
    assert_eq!(summary.counted_from_s, Some(3.0));
    // The duration and the rate are over the time counted, from 3 s to the end.
    assert_eq!(summary.duration_s, (result.duration - Duration::from_secs(3)).as_secs_f64());
    assert_eq!(summary.totals.rps, 8.0 / summary.duration_s);
    // Live, the snapshots say from when the totals count (a reset to come already clears them).
    let last_load = snapshots.iter().rfind(|s| s.phase == RunPhase::Load).unwrap();
    assert_eq!(last_load.counted_from, Duration::from_secs(3));
    assert_eq!(last_load.totals.total().count, 4 * (last_load.seconds - 3), "the seconds it holds, from 3 s");
}

#[test]
fn a_reset_now_counts_from_the_next_whole_second() {
    let (result, seen, snapshots) =
        run(four_a_second(Duration::from_millis(3900)), Duration::from_millis(50), RunHandle::new(), |s, h| {
            if s.phase == RunPhase::Load && s.seconds == 1 {
                h.reset_stats().unwrap();
            }
        });
    assert_eq!(seen.requests, 16);
    // Asked just after the first second was reported (at 1 s and a little): counted from 2 s (3 s on a very slow
    // machine), and exactly the requests of the seconds from then.
    let from = result.counted_from.expect("reset").as_secs();
    assert!((2..=3).contains(&from), "{from}");
    assert_eq!(result.aggregate.total().count, 4 * (4 - from));
    // Live: the first second's requests were counted, then the totals restarted.
    let load: Vec<&Snapshot> = snapshots.iter().filter(|s| s.phase == RunPhase::Load).map(|s| &**s).collect();
    assert!(load.iter().any(|s| s.counted_from.is_zero() && s.totals.total().count == 4), "second 0 was counted");
    let after: Vec<&&Snapshot> = load.iter().filter(|s| !s.counted_from.is_zero()).collect();
    assert!(after.first().is_some_and(|s| s.totals.total().count < 4), "the totals restarted");
    for s in after.iter().filter(|s| s.seconds >= from) {
        assert_eq!(s.totals.total().count, 4 * (s.seconds - from), "at {} s: its seconds from {from} s", s.seconds);
    }
}

#[test]
fn a_load_shape_owns_the_curve() {
    // (No shape given: the shaped plan ends at its first tick; the load's first snapshot comes before it.)
    let plan = Plan::builder(vec![taskset(WaitTime::Constant(Duration::ZERO))]).shaped().workers(1).build().unwrap();
    let answer = Arc::new(Mutex::new(None));
    let mine = answer.clone();
    run(plan, Duration::from_millis(1), RunHandle::new(), move |s, h| {
        if s.phase == RunPhase::Load && s.seconds == 0 {
            *mine.lock().unwrap() = Some(h.set_users(4, None));
        }
    });
    assert_eq!(*answer.lock().unwrap(), Some(Err(ControlError::CurveOwned("load shape"))));
}
