//! The runner and its rendezvous, with a fake behaviour and a scripted rendezvous: the load waits for the order to
//! start, an error sends no load, `teardown()` waits for `load_done`, and the setup value crosses as bytes.
//!
//! Nothing here relies on sleeping long enough: the fake records whether each call came after the test released the
//! rendezvous, so a call before the order is a failure whatever the timing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use nest_core::rendezvous::RendezvousFuture;
use nest_core::stats::{Recorder, Sample};
use nest_core::{
    Behaviour, BehaviourFactory, Call, Error, Outcome, Phase, Plan, Rendezvous, RendezvousError, RunHandle, RunResult,
    Shared, Slot, StartAt, StartOrder, TaskError, TaskSpec, TasksetSpec, WaitTime, WorkerContext, fiber,
};

/// What the fake saw.
#[derive(Default)]
struct Seen {
    /// Task calls, and how many of them came before the test opened the gate.
    calls: AtomicUsize,
    early_calls: AtomicUsize,
    first_call: Mutex<Option<SystemTime>>,
    setups: AtomicUsize,
    teardowns: AtomicUsize,
    /// Teardowns that ran before the gate opened.
    early_teardowns: AtomicUsize,
    /// The setup value each worker received.
    shared: Mutex<Vec<Option<u64>>>,
    /// The test opened the gate (sent the start order, or let `load_done` resolve).
    open: AtomicBool,
}

struct Fake {
    seen: Arc<Seen>,
    recorder: Recorder,
}

impl Behaviour for Fake {
    type Vu = ();
    fn new_vu(&self, _: u64) {}
    fn call(&self, _: &mut (), call: Call) -> Outcome {
        if !matches!(call.slot, Slot::Task(_)) {
            return Outcome::Done;
        }
        if fiber::suspend(tokio::time::sleep(Duration::from_millis(2))).is_err() {
            return Outcome::Cancelled;
        }
        self.seen.first_call.lock().unwrap().get_or_insert_with(SystemTime::now);
        if !self.seen.open.load(Ordering::SeqCst) {
            self.seen.early_calls.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        self.recorder.request("GET", "/", Sample { latency: Duration::from_millis(2), ..Default::default() });
        Outcome::Done
    }
    fn setup(&self) -> Result<Option<Shared>, TaskError> {
        self.seen.setups.fetch_add(1, Ordering::SeqCst);
        Ok(Some(Arc::new(7u64)))
    }
    fn set_shared(&self, shared: Option<Shared>) {
        let value = shared.and_then(|s| s.downcast_ref::<u64>().copied());
        self.seen.shared.lock().unwrap().push(value);
    }
    fn teardown(&self) -> Result<(), TaskError> {
        if !self.seen.open.load(Ordering::SeqCst) {
            self.seen.early_teardowns.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.teardowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Factory(Arc<Seen>);

impl BehaviourFactory for Factory {
    type Behaviour = Fake;
    fn build(&self, worker: &WorkerContext) -> Result<Fake, String> {
        Ok(Fake { seen: self.0.clone(), recorder: worker.recorder.clone() })
    }
    fn encode_shared(&self, shared: &Shared) -> Result<Vec<u8>, String> {
        let value = shared.downcast_ref::<u64>().ok_or("not a u64")?;
        Ok(value.to_le_bytes().to_vec())
    }
    fn decode_shared(&self, bytes: &[u8]) -> Result<Shared, String> {
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| "not 8 bytes")?;
        Ok(Arc::new(u64::from_le_bytes(bytes)))
    }
}

/// A rendezvous the test drives: it reports each call on `calls` and waits on `gates` where told to.
struct Scripted {
    globals: bool,
    shares: bool,
    /// What `start` resolves to; it maps the encoded setup value it was given (the coordinator's relay).
    answer: fn(Option<Vec<u8>>) -> Result<StartOrder, RendezvousError>,
    /// `start` and `load_done` wait for one message each here when `wait_*` is set.
    gate: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<()>>>,
    wait_start: bool,
    wait_done: bool,
    calls: Mutex<mpsc::Sender<&'static str>>,
}

impl Scripted {
    fn new(answer: fn(Option<Vec<u8>>) -> Result<StartOrder, RendezvousError>) -> (Scripted, Remote) {
        let (gate_tx, gate) = tokio::sync::mpsc::unbounded_channel();
        let (calls_tx, calls) = mpsc::channel();
        let rendezvous = Scripted {
            globals: true,
            shares: false,
            answer,
            gate: Mutex::new(Some(gate)),
            wait_start: false,
            wait_done: false,
            calls: Mutex::new(calls_tx),
        };
        (rendezvous, Remote { gate: gate_tx, calls })
    }

    async fn pass_gate(&self) {
        let gate = self.gate.lock().unwrap().take();
        if let Some(mut gate) = gate {
            gate.recv().await;
            *self.gate.lock().unwrap() = Some(gate);
        }
    }
}

/// The test's end of a [`Scripted`].
struct Remote {
    gate: tokio::sync::mpsc::UnboundedSender<()>,
    calls: mpsc::Receiver<&'static str>,
}

impl Rendezvous for Scripted {
    fn runs_globals(&self) -> bool {
        self.globals
    }
    fn shares_setup(&self) -> bool {
        self.shares
    }
    fn start(&self, setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>> {
        let _ = self.calls.lock().unwrap().send("start");
        Box::pin(async move {
            if self.wait_start {
                self.pass_gate().await;
            }
            (self.answer)(setup)
        })
    }
    fn load_done(&self) -> RendezvousFuture<'_, ()> {
        let _ = self.calls.lock().unwrap().send("load_done");
        Box::pin(async move {
            if self.wait_done {
                self.pass_gate().await;
            }
        })
    }
}

fn now(setup: Option<Vec<u8>>) -> Result<StartOrder, RendezvousError> {
    Ok(StartOrder { at: SystemTime::now(), setup })
}

fn plan() -> Plan {
    let taskset = TasksetSpec {
        name: "a".into(),
        weight: 1,
        tasks: vec![TaskSpec::new("t", 1)],
        wait: WaitTime::Constant(Duration::from_millis(5)),
        ..Default::default()
    };
    Plan::builder(vec![taskset]).users(2).workers(2).run_time(Some(Duration::from_millis(200))).build().unwrap()
}

/// Runs the plan on another thread with `rendezvous`; returns the run's join handle.
fn spawn_run(seen: &Arc<Seen>, rendezvous: impl Rendezvous) -> std::thread::JoinHandle<Result<RunResult, Error>> {
    spawn_stoppable(seen, rendezvous, RunHandle::new())
}

fn spawn_stoppable(
    seen: &Arc<Seen>,
    rendezvous: impl Rendezvous,
    handle: RunHandle,
) -> std::thread::JoinHandle<Result<RunResult, Error>> {
    let factory = Arc::new(Factory(seen.clone()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let snapshots = nest_core::snapshot::channel().0;
        rt.block_on(nest_core::run_with_rendezvous(plan(), factory, handle, (), snapshots, Arc::new(rendezvous)))
    })
}

#[test]
fn the_load_waits_for_the_order_to_start() {
    let seen = Arc::new(Seen::default());
    let (mut rendezvous, remote) = Scripted::new(now);
    rendezvous.wait_start = true;
    let run = spawn_run(&seen, rendezvous);
    assert_eq!(remote.calls.recv().unwrap(), "start");
    assert_eq!(seen.setups.load(Ordering::SeqCst), 1, "setup() runs before the rendezvous is asked to start");
    seen.open.store(true, Ordering::SeqCst);
    remote.gate.send(()).unwrap();
    let result = run.join().unwrap().unwrap();
    assert_eq!(seen.early_calls.load(Ordering::SeqCst), 0, "no call before the order to start");
    let calls = seen.calls.load(Ordering::SeqCst) as u64;
    assert!(calls > 0);
    assert_eq!(result.aggregate.total().count, calls);
    assert_eq!(seen.teardowns.load(Ordering::SeqCst), 1);
}

#[test]
fn a_rendezvous_error_sends_no_load_and_skips_teardown() {
    let seen = Arc::new(Seen::default());
    let (rendezvous, _remote) = Scripted::new(|_| Err(RendezvousError::Refused("plan hash differs".into())));
    let error = spawn_run(&seen, rendezvous).join().unwrap().unwrap_err();
    assert!(matches!(&error, Error::Rendezvous(RendezvousError::Refused(m)) if m == "plan hash differs"), "{error}");
    assert_eq!(error.to_string(), "refused by the coordinator: plan hash differs");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(seen.teardowns.load(Ordering::SeqCst), 0);
}

#[test]
fn teardown_waits_until_every_segments_load_is_done() {
    let seen = Arc::new(Seen::default());
    let (mut rendezvous, remote) = Scripted::new(now);
    rendezvous.wait_done = true;
    let run = spawn_run(&seen, rendezvous);
    assert_eq!(remote.calls.recv().unwrap(), "start");
    // The gate only lets `load_done` resolve: every call of the load comes before it.
    seen.open.store(true, Ordering::SeqCst);
    assert_eq!(remote.calls.recv().unwrap(), "load_done");
    seen.open.store(false, Ordering::SeqCst);
    let calls = seen.calls.load(Ordering::SeqCst);
    seen.open.store(true, Ordering::SeqCst);
    remote.gate.send(()).unwrap();
    let result = run.join().unwrap().unwrap();
    assert_eq!(seen.early_teardowns.load(Ordering::SeqCst), 0, "teardown() ran before load_done resolved");
    assert_eq!(seen.teardowns.load(Ordering::SeqCst), 1);
    assert_eq!(seen.calls.load(Ordering::SeqCst), calls, "no load after load_done");
    assert_eq!(result.aggregate.total().count, calls as u64);
}

#[test]
fn a_segment_without_globals_gets_the_value_of_the_order() {
    let seen = Arc::new(Seen::default());
    let (mut rendezvous, _remote) = Scripted::new(|setup| {
        assert_eq!(setup, None, "this process ran no setup()");
        Ok(StartOrder { at: SystemTime::now(), setup: Some(41u64.to_le_bytes().to_vec()) })
    });
    (rendezvous.globals, rendezvous.shares) = (false, true);
    spawn_run(&seen, rendezvous).join().unwrap().unwrap();
    assert_eq!(seen.setups.load(Ordering::SeqCst), 0);
    assert_eq!(seen.teardowns.load(Ordering::SeqCst), 0);
    assert_eq!(*seen.shared.lock().unwrap(), vec![Some(41), Some(41)]);
}

#[test]
fn a_shared_setup_value_is_encoded_and_every_worker_gets_the_orders() {
    let seen = Arc::new(Seen::default());
    // The relay adds one, so the workers' value shows it came through the order, not from this process's setup().
    let (mut rendezvous, _remote) = Scripted::new(|setup| {
        let bytes: [u8; 8] = setup.expect("setup()'s value, encoded").try_into().unwrap();
        let relayed = u64::from_le_bytes(bytes) + 1;
        Ok(StartOrder { at: SystemTime::now(), setup: Some(relayed.to_le_bytes().to_vec()) })
    });
    rendezvous.shares = true;
    spawn_run(&seen, rendezvous).join().unwrap().unwrap();
    assert_eq!(seen.setups.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.shared.lock().unwrap(), vec![Some(8), Some(8)]);
}

#[test]
fn start_at_waits_for_the_instant_and_records_the_skew() {
    let seen = Arc::new(Seen::default());
    let at = SystemTime::now() + Duration::from_millis(400);
    seen.open.store(true, Ordering::SeqCst);
    let result = spawn_run(&seen, StartAt { at, tolerance: Duration::from_secs(2) }).join().unwrap().unwrap();
    let first = seen.first_call.lock().unwrap().expect("calls ran");
    assert!(first >= at, "first call {first:?} before the start {at:?}");
    assert_eq!(result.intended_start, at);
    let skew = result.started_at.duration_since(at).expect("the load starts at or after the instant");
    assert!(skew < Duration::from_millis(400), "started {skew:?} late");
}

#[test]
fn a_late_segment_sends_nothing_and_says_by_how_much() {
    let seen = Arc::new(Seen::default());
    let at = SystemTime::now() - Duration::from_secs(3);
    let tolerance = Duration::from_secs(1);
    let error = spawn_run(&seen, StartAt { at, tolerance }).join().unwrap().unwrap_err();
    let Error::Rendezvous(RendezvousError::Late { by, .. }) = error else { panic!("not late: {error}") };
    assert!(by >= Duration::from_secs(3), "late by {by:?}");
    assert_eq!(seen.setups.load(Ordering::SeqCst), 0, "a late process does not even run setup()");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stop_while_waiting_for_the_start_sends_no_load_and_does_not_wait() {
    let seen = Arc::new(Seen::default());
    let (rendezvous, remote) =
        Scripted::new(|_| Ok(StartOrder { at: SystemTime::now() + Duration::from_secs(60), setup: None }));
    let handle = RunHandle::new();
    let asked = std::time::Instant::now();
    let run = spawn_stoppable(&seen, rendezvous, handle.clone());
    assert_eq!(remote.calls.recv().unwrap(), "start");
    handle.stop();
    let result = run.join().unwrap().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(30), "the stop did not wait for the start");
    // (The stop may land just before the order is taken, or while waiting for its instant: no load either way.)
    assert!(matches!(result.cut, Some(Phase::Start | Phase::Setup)), "{:?}", result.cut);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(result.aggregate.total().count, 0);
    assert_eq!(seen.teardowns.load(Ordering::SeqCst), 1, "setup() ran, so teardown() does");
}
