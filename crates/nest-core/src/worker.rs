//! One worker thread: a `current_thread` tokio runtime with a `LocalSet`, its own behaviour (its own script engine),
//! and the VUs pinned to it.
//!
//! Thread-per-core with nothing shared on the hot path measured fastest (see `shared/design/execution-model.md`).
//! The runner drives each worker through phases with [`Control`] messages (setup, start, retarget, teardown,
//! exit); the worker answers with [`WorkerEvent`]s and, once a second, its statistics.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, BehaviourFactory, Shared, TaskError, WorkerContext};
use crate::control::LoadTarget;
use crate::fiber::FiberPool;
use crate::plan::{Model, Plan};
use crate::stats::{Delta, Recorder};
use crate::vu::{Order, VuCommon};
use crate::{closed, open};

/// Idle fiber stacks a worker keeps for reuse; more are unmapped when they come back, so a burst of calls in
/// flight does not pin its stacks' memory for the rest of the run.
const MAX_IDLE_STACKS: usize = 256;

/// Messages from the runner to a worker.
pub(crate) enum Control {
    /// Run the global setup (worker 0 only).
    Setup,
    /// Start the load at this instant, with the setup's value.
    Start(Instant, Option<Shared>),
    /// A new load (from a scripted shape or the [`crate::RunHandle`]), from `at` after the start.
    Retarget { at: Duration, target: LoadTarget },
    /// Run the global teardown (worker 0 only).
    Teardown,
}

/// Messages from a worker to the runner.
pub(crate) enum WorkerEvent {
    /// The worker built its behaviour (or failed to).
    Ready(usize, Result<(), String>),
    /// The global setup finished.
    SetupDone(Result<Option<Shared>, TaskError>),
    /// Statistics of the worker since its last report.
    Stats(usize, Delta),
    /// The worker's load is over: every VU has stopped. Carries the peak number of fiber stacks it used.
    LoadDone(usize, Delta, usize),
    /// The global teardown finished.
    TeardownDone(Result<(), TaskError>),
}

/// Everything a worker thread starts with.
pub(crate) struct WorkerSetup<F> {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub factory: Arc<F>,
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub reports: mpsc::UnboundedSender<WorkerEvent>,
    /// The run's `--iterations` budget, shared by every worker.
    pub tickets: Option<Arc<std::sync::atomic::AtomicU64>>,
}

/// The body of a worker thread.
pub(crate) fn main<F: BehaviourFactory>(setup: WorkerSetup<F>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = setup.reports.send(WorkerEvent::Ready(setup.index, Err(format!("could not start a runtime: {e}"))));
            return;
        }
    };
    LocalSet::new().block_on(&runtime, run(setup));
}

async fn run<F: BehaviourFactory>(setup: WorkerSetup<F>) {
    let WorkerSetup { index, plan, factory, stop, kill, mut control, reports, tickets } = setup;
    let recorder = Recorder::new();
    // Segments' workers get distinct streams too (segment 0's are those of a run that is not split).
    let worker = (u64::from(plan.segment.index) << 32) | (index as u64 + 1);
    let seed = plan.seed ^ worker.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let context = WorkerContext {
        index,
        recorder: recorder.clone(),
        stop: stop.clone(),
        kill: kill.clone(),
        seed,
        plan_seed: plan.seed,
    };
    let behaviour = match factory.build(&context) {
        Ok(b) => b,
        Err(message) => {
            let _ = reports.send(WorkerEvent::Ready(index, Err(message)));
            return;
        }
    };
    let _ = reports.send(WorkerEvent::Ready(index, Ok(())));
    let common = Rc::new(VuCommon {
        behaviour,
        tasksets: plan.taskset_table(),
        first: plan.first_tasksets(),
        orders: plan.tasksets.iter().map(Order::of).collect(),
        pool: FiberPool::new(plan.stack_size, MAX_IDLE_STACKS),
        tickets: tickets.filter(|_| !plan.model.is_open()),
        active: Cell::new(0),
        plan: plan.clone(),
        recorder: recorder.clone(),
        stop,
        kill,
    });
    while let Some(message) = control.recv().await {
        match message {
            Control::Setup => {
                let result = global_hook(&common, |b| b.setup()).await;
                let _ = reports.send(WorkerEvent::SetupDone(result));
            }
            Control::Start(at, value) => {
                common.behaviour.set_shared(value);
                let delta = load(&common, index, tokio::time::Instant::from_std(at), &mut control, &reports).await;
                let _ = reports.send(WorkerEvent::LoadDone(index, delta, common.pool.stacks_created()));
            }
            Control::Teardown => {
                let result = global_hook(&common, |b| b.teardown()).await;
                let _ = reports.send(WorkerEvent::TeardownDone(result));
            }
            Control::Retarget { .. } => {}
        }
    }
    // The runner hung up: send what setup or teardown recorded.
    let rest = recorder.take();
    if !rest.is_empty() {
        let _ = reports.send(WorkerEvent::Stats(index, rest));
    }
}

/// Runs a global hook on a fiber; a crash becomes an error.
async fn global_hook<B: Behaviour, T: 'static>(
    common: &Rc<VuCommon<B>>,
    hook: fn(&B) -> Result<T, TaskError>,
) -> Result<T, TaskError> {
    let on_fiber = common.clone();
    match common.pool.run(move || hook(&on_fiber.behaviour), &common.kill).await {
        Ok(result) => result,
        Err(e) => Err(TaskError { location: "nest (internal)".into(), message: e.to_string() }),
    }
}

/// Runs this worker's share of the load, flushing statistics every second. Returns the last delta.
async fn load<B: Behaviour>(
    common: &Rc<VuCommon<B>>,
    index: usize,
    start: tokio::time::Instant,
    control: &mut mpsc::UnboundedReceiver<Control>,
    reports: &mpsc::UnboundedSender<WorkerEvent>,
) -> Delta {
    let flushing = CancellationToken::new();
    // The second being recorded: what is not flushed yet belongs to it, even when the load ends just past its end,
    // before its tick (the run time's end and the tick fall on the same instant).
    let recording = Rc::new(std::cell::Cell::new(0u64));
    let flusher = tokio::task::spawn_local({
        let (common, reports, flushing, recording) =
            (common.clone(), reports.clone(), flushing.clone(), recording.clone());
        async move {
            let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let mut delta = common.recorder.take();
                        delta.second = recording.get();
                        delta.users = common.active.get();
                        let _ = reports.send(WorkerEvent::Stats(index, delta));
                        recording.set(recording.get() + 1);
                    }
                    () = flushing.cancelled() => break,
                }
            }
        }
    });
    tokio::time::sleep_until(start).await;
    match &common.plan.model {
        Model::Closed { users, shaped } => {
            closed::run(common.clone(), users.clone(), *shaped, index, start, control).await;
        }
        Model::Open { arrivals, max_users, max_delay } => {
            let pool = open::Pool { max_users: *max_users, max_delay: *max_delay };
            open::run(common.clone(), arrivals.clone(), pool, index, start, control).await;
        }
    }
    flushing.cancel();
    let _ = flusher.await;
    let mut delta = common.recorder.take();
    delta.second = recording.get();
    delta.users = common.active.get();
    delta
}
