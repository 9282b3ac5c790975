//! Starting, stopping and collecting a run.
//!
//! The runner starts one thread per worker, waits until every worker has built its behaviour (so a broken script
//! never sends load), gives them one common start instant, then owns the clock: at the end of the run time, or on
//! [`StopHandle::stop`], it asks workers to stop gracefully; after the plan's stop timeout, or on
//! [`StopHandle::kill`], it cancels what is still in flight. Meanwhile it is the single aggregator of the
//! statistics the workers send. Nothing here exits the process: the caller decides what to do with the result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::behaviour::BehaviourFactory;
use crate::error::Error;
use crate::plan::Plan;
use crate::stats::Aggregate;
use crate::worker::{self, Report, WorkerSetup};

/// Stops a run from outside (a signal handler, a test). Cheap to clone and `Send`.
#[derive(Clone, Debug, Default)]
pub struct StopHandle {
    stop: CancellationToken,
    kill: CancellationToken,
}

impl StopHandle {
    /// A handle for one run.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }
    /// Stops gracefully: no new tasks; calls in flight may finish within the stop timeout; `on_stop` runs.
    pub fn stop(&self) {
        self.stop.cancel();
    }
    /// Stops now: calls in flight are cancelled. The statistics gathered so far are still returned.
    pub fn kill(&self) {
        self.stop.cancel();
        self.kill.cancel();
    }
    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The run time elapsed and every VU finished within the stop timeout.
    RunTime,
    /// [`StopHandle::stop`] was called and every VU finished within the stop timeout.
    Stopped,
    /// Calls were cancelled: by [`StopHandle::kill`], or because the stop timeout expired.
    Killed,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunResult {
    /// Everything recorded, merged.
    pub aggregate: Aggregate,
    /// From the common start to the end of the last worker.
    pub duration: Duration,
    /// Why it ended.
    pub end: EndReason,
    /// The most fiber stacks any worker had mapped (the peak of calls in flight per worker).
    pub peak_fibers: usize,
}

/// Runs a plan to its end. `observe` sees the merged statistics and the elapsed time after each worker report.
pub async fn run<F: BehaviourFactory>(
    plan: Plan,
    factory: Arc<F>,
    handle: StopHandle,
    mut observe: impl FnMut(&Aggregate, Duration),
) -> Result<RunResult, Error> {
    let plan = Arc::new(plan);
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut starts = Vec::with_capacity(plan.workers);
    let mut threads = Vec::with_capacity(plan.workers);
    for index in 0..plan.workers {
        let (start_tx, start) = oneshot::channel();
        let setup = WorkerSetup {
            index,
            plan: plan.clone(),
            factory: factory.clone(),
            stop: handle.stop.child_token(),
            kill: handle.kill.child_token(),
            start,
            reports: reports_tx.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("nest-worker-{index}"))
            .spawn(move || worker::main(setup))
            .map_err(Error::Spawn)?;
        starts.push(start_tx);
        threads.push(thread);
    }
    drop(reports_tx);

    let mut aggregate = Aggregate::default();
    let mut failed = None;
    for _ in 0..plan.workers {
        match reports.recv().await {
            Some(Report::Ready(_, Ok(()))) => {}
            Some(Report::Ready(worker, Err(message))) => {
                failed.get_or_insert(Error::Worker { worker, message });
            }
            Some(_) => unreachable!("workers report ready before anything else"),
            None => break,
        }
    }
    if let Some(error) = failed {
        drop(starts); // workers see their start channel closed and exit
        join(threads);
        return Err(error);
    }

    let start = Instant::now();
    for tx in starts {
        let _ = tx.send(start);
    }
    let run_end = plan
        .run_time
        .map(|t| tokio::time::Instant::from_std(start + t));
    let mut grace_end: Option<tokio::time::Instant> = None;
    let mut end = EndReason::Stopped;
    let mut done = 0;
    let mut peak_fibers = 0;
    while done < plan.workers {
        tokio::select! {
            report = reports.recv() => match report {
                Some(Report::Stats(delta)) => {
                    aggregate.merge(delta);
                    observe(&aggregate, start.elapsed());
                }
                Some(Report::Done(delta, fibers)) => {
                    aggregate.merge(delta);
                    peak_fibers = peak_fibers.max(fibers);
                    done += 1;
                    observe(&aggregate, start.elapsed());
                }
                Some(Report::Ready(..)) => {}
                None => break,
            },
            () = sleep_until_opt(run_end), if grace_end.is_none() && !handle.stop.is_cancelled() => {
                end = EndReason::RunTime;
                handle.stop();
            }
            () = handle.stop.cancelled(), if grace_end.is_none() => {
                grace_end = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            () = sleep_until_opt(grace_end), if !handle.kill.is_cancelled() => handle.kill(),
            () = handle.kill.cancelled(), if end != EndReason::Killed => end = EndReason::Killed,
        }
    }
    let duration = start.elapsed();
    join(threads);
    Ok(RunResult {
        aggregate,
        duration,
        end,
        peak_fibers,
    })
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn join(threads: Vec<std::thread::JoinHandle<()>>) {
    for thread in threads {
        // A worker that panicked outside any script call has already reported what it could.
        let _ = thread.join();
    }
}
