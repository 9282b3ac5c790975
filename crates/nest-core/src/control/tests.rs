//! The workers' loops under live changes, with paused time: the active users and the arrivals over time after each
//! change, exactly. Each test runs every worker of a plan on one paused runtime (the lanes are those of real
//! workers) and sends every worker the same `Retarget` at the same instant, as the runner relays a handle's change.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, Call, Outcome};
use crate::control::LoadTarget;
use crate::plan::Plan;
use crate::stats::Recorder;
use crate::taskset::{Slot, TaskSpec, TasksetSpec, WaitTime};
use crate::vu::VuCommon;
use crate::worker::{self, Control};

/// What a VU did, when (seconds since the start, to the millisecond), on which worker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    TaskStarted { vu: u64, worker: usize },
    TaskEnded { vu: u64, at: f64 },
    OnStop { vu: u64, at: f64 },
    Arrival { worker: usize, at: f64 },
}

struct Fake {
    log: Rc<RefCell<Vec<Event>>>,
    worker: usize,
    start: Instant,
    pause: Duration,
}

impl Fake {
    fn now(&self) -> f64 {
        (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
    }
}

impl Behaviour for Fake {
    type Vu = u64;
    fn new_vu(&self, id: u64) -> u64 {
        id
    }
    fn call(&self, vu: &mut u64, call: Call) -> Outcome {
        match call.slot {
            Slot::OnStop => self.log.borrow_mut().push(Event::OnStop { vu: *vu, at: self.now() }),
            Slot::OnStart => {}
            Slot::Task(_) => {
                if call.scheduled.is_some() {
                    self.log.borrow_mut().push(Event::Arrival { worker: self.worker, at: self.now() });
                }
                self.log.borrow_mut().push(Event::TaskStarted { vu: *vu, worker: self.worker });
                if crate::fiber::suspend(tokio::time::sleep(self.pause)).is_err() {
                    return Outcome::Cancelled;
                }
                self.log.borrow_mut().push(Event::TaskEnded { vu: *vu, at: self.now() });
            }
        }
        Outcome::Done
    }
}

/// Every worker of a plan, running its load on this (paused) runtime.
struct Lanes {
    commons: Vec<Rc<VuCommon<Fake>>>,
    controls: Vec<mpsc::UnboundedSender<Control>>,
    loads: Vec<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
    start: Instant,
    log: Rc<RefCell<Vec<Event>>>,
}

impl Lanes {
    fn start(plan: Plan, pause: Duration) -> Lanes {
        let plan = Arc::new(plan);
        let (stop, kill) = (CancellationToken::new(), CancellationToken::new());
        let start = Instant::now();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut lanes = Lanes { commons: vec![], controls: vec![], loads: vec![], stop, start, log };
        for index in 0..plan.workers {
            let fake = Fake { log: lanes.log.clone(), worker: index, start, pause };
            let tokens = [lanes.stop.child_token(), kill.child_token()];
            let common = Rc::new(worker::common(fake, plan.clone(), Recorder::new(), tokens, None));
            let (tx, mut control) = mpsc::unbounded_channel();
            let (reports, _) = mpsc::unbounded_channel();
            let mine = common.clone();
            lanes.loads.push(tokio::task::spawn_local(async move {
                worker::load(&mine, index, start, &mut control, &reports).await;
            }));
            lanes.commons.push(common);
            lanes.controls.push(tx);
        }
        lanes
    }

    /// Waits until `secs` after the start.
    async fn at(&self, secs: f64) {
        tokio::time::sleep_until(self.start + Duration::from_secs_f64(secs)).await;
    }

    /// Active users over all workers, `secs` after the start.
    async fn users_at(&self, secs: f64) -> u64 {
        self.at(secs).await;
        self.commons.iter().map(|c| c.active.get()).sum()
    }

    /// At `secs`, every worker gets the same new target from then.
    async fn change(&self, secs: f64, target: LoadTarget) {
        self.at(secs).await;
        let at = Duration::from_secs_f64(secs);
        for control in &self.controls {
            control.send(Control::Retarget { at, target: target.clone() }).unwrap();
        }
    }

    /// Stops at `secs` and waits for every worker's load to end.
    async fn stop_at(self, secs: f64) -> Vec<Event> {
        self.at(secs).await;
        self.stop.cancel();
        for load in self.loads {
            load.await.unwrap();
        }
        self.log.take()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn taskset() -> TasksetSpec {
    TasksetSpec {
        name: "a".into(),
        weight: 1,
        tasks: vec![TaskSpec::new("t", 1)],
        wait: WaitTime::Constant(Duration::from_millis(5)),
        has_on_stop: true,
        ..Default::default()
    }
}

#[test]
fn users_follow_each_change_up_at_a_rate_down_at_a_rate_and_all_at_once() {
    let plan = Plan::builder(vec![taskset()]).users(2).workers(2).seed(1).build().unwrap();
    let events = block_on(async {
        let lanes = Lanes::start(plan, Duration::from_millis(100));
        assert_eq!(lanes.users_at(0.05).await, 2);
        // Up to 6 at 4 users/s: one at once, then one every 250 ms.
        lanes.change(1.0, LoadTarget::Users { users: 6, spawn_rate: Some(4.0) }).await;
        let mut up = vec![];
        for t in [1.1, 1.3, 1.6, 1.8, 3.0] {
            up.push(lanes.users_at(t).await);
        }
        assert_eq!(up, [3, 4, 5, 6, 6]);
        // Down to 2 at 2 users/s: each retired user first finishes its task (100 ms at most).
        lanes.change(4.0, LoadTarget::Users { users: 2, spawn_rate: Some(2.0) }).await;
        let mut down = vec![];
        for t in [4.2, 4.7, 5.2, 5.7, 6.5] {
            down.push(lanes.users_at(t).await);
        }
        assert_eq!(down, [5, 4, 3, 2, 2]);
        // All at once, to none: the workers wait for more instead of ending; then three again.
        lanes.change(7.0, LoadTarget::Users { users: 0, spawn_rate: None }).await;
        assert_eq!(lanes.users_at(7.2).await, 0);
        lanes.change(8.0, LoadTarget::Users { users: 3, spawn_rate: None }).await;
        assert_eq!(lanes.users_at(8.2).await, 3);
        lanes.stop_at(9.0).await
    });
    let stops: Vec<(u64, f64)> =
        events.iter().filter_map(|e| if let Event::OnStop { vu, at } = *e { Some((vu, at)) } else { None }).collect();
    // The newest first, one every 500 ms, each after its task in flight ended.
    let retired: Vec<u64> = stops.iter().filter(|s| (4.0..6.0).contains(&s.1)).map(|s| s.0).collect();
    assert_eq!(retired, [5, 4, 3, 2], "{stops:?}");
    for (i, &(vu, at)) in stops.iter().filter(|s| (4.0..6.0).contains(&s.1)).enumerate() {
        let asked = 4.0 + 0.5 * i as f64;
        assert!((asked..asked + 0.11).contains(&at), "VU {vu} stopped at {at}, asked at {asked}");
        let ended = events.contains(&Event::TaskEnded { vu, at });
        let thinking = at == asked;
        assert!(ended || thinking, "VU {vu} ran on_stop at {at} after its task, or at once if it was thinking");
    }
    let all_at_once: Vec<u64> = stops.iter().filter(|s| (7.0..7.2).contains(&s.1)).map(|s| s.0).collect();
    assert_eq!(all_at_once.len(), 2, "both users left at 7 s: {stops:?}");
}

#[test]
fn a_steered_run_of_one_user_spreads_users_raised_live_over_every_worker() {
    let plan = Plan::builder(vec![taskset()]).users(1).workers(2).steered(true).seed(1).build().unwrap();
    assert_eq!(plan.workers, 2, "a steered run keeps its workers, though one user needs one");
    let (events, per_worker) = block_on(async {
        let lanes = Lanes::start(plan, Duration::from_millis(100));
        let mut before = vec![];
        for t in [0.05, 0.5, 0.95] {
            before.push(lanes.users_at(t).await);
        }
        assert_eq!(before, [1, 1, 1]);
        assert_eq!(lanes.commons[1].active.get(), 0, "worker 1 waits without a VU");
        // Up to 6 at 4 users/s: one at once, then one every 250 ms, the odd ids on worker 1.
        lanes.change(1.0, LoadTarget::Users { users: 6, spawn_rate: Some(4.0) }).await;
        let mut up = vec![];
        for t in [1.1, 1.3, 1.6, 1.8, 2.1, 3.0] {
            up.push(lanes.users_at(t).await);
        }
        assert_eq!(up, [2, 3, 4, 5, 6, 6]);
        let per_worker: Vec<u64> = lanes.commons.iter().map(|c| c.active.get()).collect();
        (lanes.stop_at(3.5).await, per_worker)
    });
    assert_eq!(per_worker, [3, 3]);
    // What the behaviours saw: each VU ran its tasks on the worker owning its id, and every VU ran.
    let mut ran = std::collections::BTreeMap::<u64, std::collections::BTreeSet<usize>>::new();
    for e in &events {
        if let Event::TaskStarted { vu, worker } = *e {
            ran.entry(vu).or_default().insert(worker);
        }
    }
    let expected: std::collections::BTreeMap<u64, std::collections::BTreeSet<usize>> =
        (0..6).map(|vu| (vu, [(vu % 2) as usize].into())).collect();
    assert_eq!(ran, expected);
}

#[test]
fn a_new_rate_gives_that_many_arrivals_a_second_split_exactly_between_the_lanes() {
    let plan = Plan::builder(vec![taskset()]).open(10.0, 50, Duration::from_secs(1)).workers(2).build().unwrap();
    let events = block_on(async {
        let lanes = Lanes::start(plan, Duration::from_millis(10));
        lanes.change(2.0, LoadTarget::Rate { per_second: 100.0 }).await;
        // A rate of 0 pauses the arrivals without ending the workers' loops.
        lanes.change(4.0, LoadTarget::Rate { per_second: 0.0 }).await;
        lanes.change(6.0, LoadTarget::Rate { per_second: 5.0 }).await;
        lanes.stop_at(8.0).await
    });
    let mut per_second = [0u64; 8];
    let mut per_worker = [0u64; 2];
    for e in &events {
        if let Event::Arrival { worker, at } = *e
            && at < 8.0
        {
            per_second[at as usize] += 1;
            per_worker[worker] += 1;
        }
    }
    // The arrival at 4.0 s was due under 100/s (the 220th), the one a change of rate keeps; after the pause, the
    // first comes 1/rate after the new rate (6.2 s).
    assert_eq!(per_second, [10, 10, 100, 100, 1, 0, 4, 5]);
    assert_eq!(per_worker, [115, 115], "each lane takes every other arrival of the one schedule");
}
