//! One worker thread: a `current_thread` tokio runtime with a `LocalSet`, its own behaviour (its own script engine),
//! and the VUs pinned to it.
//!
//! Thread-per-core with nothing shared on the hot path measured fastest (see `shared/design/execution-model.md`).
//! VU `i` lives on worker `i mod workers` and starts at `i / spawn_rate` seconds after the common start instant, so
//! the spawn schedule is the same whatever the worker count.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinSet, LocalSet};
use tokio_util::sync::CancellationToken;

use crate::behaviour::{BehaviourFactory, WorkerContext};
use crate::fiber::FiberPool;
use crate::plan::Plan;
use crate::stats::{Delta, Recorder};
use crate::vu::{self, Shared};
use crate::weights::WeightedTable;

/// Idle fiber stacks a worker keeps for reuse.
const MAX_IDLE_STACKS: usize = 4096;

/// Messages from a worker to the runner.
pub(crate) enum Report {
    /// The worker built its behaviour (or failed to).
    Ready(usize, Result<(), String>),
    /// Statistics since the last report.
    Stats(Delta),
    /// Final statistics; the worker is done. Carries the peak number of fiber stacks it used.
    Done(Delta, usize),
}

/// Everything a worker thread starts with.
pub(crate) struct WorkerSetup<F> {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub factory: Arc<F>,
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub start: oneshot::Receiver<Instant>,
    pub reports: mpsc::UnboundedSender<Report>,
}

/// The body of a worker thread.
pub(crate) fn main<F: BehaviourFactory>(setup: WorkerSetup<F>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = setup.reports.send(Report::Ready(
                setup.index,
                Err(format!("could not start a runtime: {e}")),
            ));
            return;
        }
    };
    LocalSet::new().block_on(&runtime, run(setup));
}

async fn run<F: BehaviourFactory>(setup: WorkerSetup<F>) {
    let WorkerSetup {
        index,
        plan,
        factory,
        stop,
        kill,
        start,
        reports,
    } = setup;
    let recorder = Recorder::new();
    let context = WorkerContext {
        index,
        recorder: recorder.clone(),
        stop: stop.clone(),
        kill: kill.clone(),
    };
    let behaviour = match factory.build(&context) {
        Ok(b) => b,
        Err(message) => {
            let _ = reports.send(Report::Ready(index, Err(message)));
            return;
        }
    };
    let _ = reports.send(Report::Ready(index, Ok(())));
    let Ok(start) = start.await else { return };
    let start = tokio::time::Instant::from_std(start);

    let tasks = plan
        .tasksets
        .iter()
        .map(|ts| {
            let weights: Vec<u32> = ts.tasks.iter().map(|t| t.weight).collect();
            (ts.weight > 0)
                .then(|| WeightedTable::new(&weights))
                .flatten()
        })
        .collect();
    let shared = Rc::new(Shared {
        behaviour,
        tasksets: plan.taskset_table(),
        tasks,
        pool: FiberPool::new(plan.stack_size, MAX_IDLE_STACKS),
        plan: plan.clone(),
        recorder: recorder.clone(),
        stop: stop.clone(),
        kill,
    });

    let flushing = CancellationToken::new();
    let flusher = tokio::task::spawn_local({
        let (recorder, reports, flushing) = (recorder.clone(), reports.clone(), flushing.clone());
        async move {
            let mut tick =
                tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => { let _ = reports.send(Report::Stats(recorder.take())); }
                    () = flushing.cancelled() => break,
                }
            }
        }
    });

    tokio::time::sleep_until(start).await;
    let mut vus = JoinSet::new();
    let step = plan.workers;
    for vu_id in (index as u64..plan.users).step_by(step) {
        if let Some(rate) = plan.spawn_rate {
            let at = start + Duration::from_secs_f64(vu_id as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = stop.cancelled() => break,
            }
        }
        if stop.is_cancelled() {
            break;
        }
        vus.spawn_local(vu::run(shared.clone(), vu_id));
    }
    while let Some(joined) = vus.join_next().await {
        if let Err(e) = joined {
            // A panic in the loop itself (not in a script call, which the fiber catches) is a bug in nest: count it
            // where people look, and let the other VUs go on.
            recorder.error("nest (internal)", &format!("a VU loop failed: {e}"));
        }
    }
    flushing.cancel();
    let _ = flusher.await;
    let _ = reports.send(Report::Done(recorder.take(), shared.pool.stacks_created()));
}
