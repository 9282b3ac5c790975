//! Starting, stopping and collecting a run.
//!
//! The runner starts one thread per worker and waits until every worker has built its behaviour (so a broken
//! script never sends load). It runs the global `setup()` on worker 0, gives every worker one common start instant
//! and the setup's value, then owns the clock: at the end of the run time, or on [`StopHandle::stop`], it asks
//! workers to stop gracefully; after the plan's stop timeout, or on [`StopHandle::kill`], it cancels what is still
//! in flight. A scripted shape is ticked here once a second. When every worker's load is over, `teardown()` runs.
//! Meanwhile the runner is the single aggregator of the statistics the workers send. Nothing here exits the
//! process: the caller decides what to do with the result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{BehaviourFactory, TaskError};
use crate::error::Error;
use crate::plan::{Model, Plan};
use crate::stats::Aggregate;
use crate::worker::{self, Control, Report, WorkerSetup};

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
    /// The load ended by itself: the iterations were all run, the stages or the shape ended.
    Completed,
    /// [`StopHandle::stop`] was called and every VU finished within the stop timeout.
    Stopped,
    /// Calls were cancelled: by [`StopHandle::kill`], or because the stop timeout expired.
    Killed,
}

/// What a scripted load shape says at a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum ShapeTick {
    /// Move to this many users at this rate (all at once if `None`).
    Target {
        /// Users wanted.
        users: u64,
        /// Users started or stopped per second.
        spawn_rate: Option<f64>,
    },
    /// The shape is over: stop the run.
    Stop,
    /// The shape failed; the run stops and the error is reported.
    Failed(TaskError),
}

/// What the caller hooks into a run.
pub trait RunHooks {
    /// Sees the merged statistics and the elapsed time after each worker report.
    fn observe(&mut self, _aggregate: &Aggregate, _elapsed: Duration) {}
    /// Asked once a second (from 0) in a shaped plan: the users wanted now.
    fn shape(&mut self, _elapsed: Duration) -> ShapeTick {
        ShapeTick::Stop
    }
}

/// No hooks: run without observing.
impl RunHooks for () {}

/// Hooks lent for a run, so the caller can read what they gathered afterwards.
impl<T: RunHooks + ?Sized> RunHooks for &mut T {
    fn observe(&mut self, aggregate: &Aggregate, elapsed: Duration) {
        (**self).observe(aggregate, elapsed)
    }
    fn shape(&mut self, elapsed: Duration) -> ShapeTick {
        (**self).shape(elapsed)
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunResult {
    /// Everything recorded, merged, with the timeline sealed.
    pub aggregate: Aggregate,
    /// From the common start to the end of the last worker's load (setup and teardown excluded).
    pub duration: Duration,
    /// Why it ended.
    pub end: EndReason,
    /// The wall-clock time of the common start.
    pub started_at: std::time::SystemTime,
    /// The most fiber stacks any worker had mapped (the peak of calls in flight per worker).
    pub peak_fibers: usize,
}

struct Workers {
    controls: Vec<mpsc::UnboundedSender<Control>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Workers {
    fn join(self) {
        drop(self.controls);
        for thread in self.threads {
            // A worker that panicked outside any script call has already reported what it could.
            let _ = thread.join();
        }
    }
}

/// Runs a plan to its end.
pub async fn run<F: BehaviourFactory>(
    plan: Plan,
    factory: Arc<F>,
    handle: StopHandle,
    mut hooks: impl RunHooks,
) -> Result<RunResult, Error> {
    let plan = Arc::new(plan);
    let mut workers = spawn(&plan, &factory, &handle)?;
    let mut aggregate = Aggregate::default();

    let mut failed = None;
    for _ in 0..plan.workers {
        match workers.reports.recv().await {
            Some(Report::Ready(worker, Err(message))) => {
                failed.get_or_insert(Error::Worker { worker, message });
            }
            Some(_) => {}
            None => break,
        }
    }
    if let Some(error) = failed {
        workers.join();
        return Err(error);
    }

    let _ = workers.controls[0].send(Control::Setup);
    let shared = loop {
        match workers.reports.recv().await {
            Some(Report::SetupDone(Ok(value))) => break value,
            Some(Report::SetupDone(Err(error))) => {
                workers.join();
                return Err(Error::Setup(error));
            }
            Some(Report::Stats(_, delta)) => aggregate.merge(delta),
            Some(_) => {}
            None => return Err(Error::WorkerPanicked(0)),
        }
    };

    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    for control in &workers.controls {
        let _ = control.send(Control::Start(start, shared.clone()));
    }
    let tick = |secs: u64| tokio::time::Instant::from_std(start + Duration::from_secs(secs));
    let run_end = plan.run_time.map(|t| tokio::time::Instant::from_std(start + t));
    let shaped = matches!(plan.model, Model::Closed { shaped: true, .. });
    let mut next_shape = shaped.then_some(0u64);
    let mut grace_end: Option<tokio::time::Instant> = None;
    // Who ended the load, if anyone did before the workers finished by themselves.
    let mut ended_by: Option<EndReason> = None;
    let mut last_second = vec![0u64; plan.workers];
    let mut live_users = vec![0u64; plan.workers];
    let mut done = 0;
    let mut peak_fibers = 0;
    while done < plan.workers {
        tokio::select! {
            report = workers.reports.recv() => match report {
                Some(Report::Stats(w, delta)) => {
                    last_second[w] = delta.second;
                    live_users[w] = delta.users;
                    aggregate.live_users = live_users.iter().sum();
                    aggregate.merge(delta);
                    aggregate.seal_before(last_second.iter().copied().min().unwrap_or(0));
                    hooks.observe(&aggregate, start.elapsed());
                }
                Some(Report::LoadDone(w, delta, fibers)) => {
                    last_second[w] = u64::MAX;
                    live_users[w] = 0;
                    aggregate.live_users = live_users.iter().sum();
                    aggregate.merge(delta);
                    peak_fibers = peak_fibers.max(fibers);
                    done += 1;
                    hooks.observe(&aggregate, start.elapsed());
                }
                Some(_) => {}
                None => break,
            },
            () = sleep_until_opt(run_end), if !handle.stop.is_cancelled() => {
                ended_by = Some(EndReason::RunTime);
                handle.stop();
            }
            () = sleep_until_opt(next_shape.map(tick)), if !handle.stop.is_cancelled() => {
                let secs = next_shape.unwrap_or(0);
                next_shape = Some(secs + 1);
                match hooks.shape(Duration::from_secs(secs)) {
                    ShapeTick::Target { users, spawn_rate } => {
                        let at = Duration::from_secs(secs);
                        for control in &workers.controls {
                            let _ = control.send(Control::Retarget { at, users, spawn_rate });
                        }
                    }
                    ShapeTick::Stop => {
                        ended_by = Some(EndReason::Completed);
                        handle.stop();
                    }
                    ShapeTick::Failed(e) => {
                        aggregate.errors.insert((e.location, format!("load shape: {}", e.message)), 1);
                        ended_by = Some(EndReason::Completed);
                        handle.stop();
                    }
                }
            }
            () = handle.stop.cancelled(), if grace_end.is_none() => {
                ended_by.get_or_insert(EndReason::Stopped);
                grace_end = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            () = sleep_until_opt(grace_end), if !handle.kill.is_cancelled() => handle.kill(),
            () = handle.kill.cancelled(), if ended_by != Some(EndReason::Killed) => ended_by = Some(EndReason::Killed),
        }
    }
    let duration = start.elapsed();
    let end = ended_by.unwrap_or(EndReason::Completed);

    if end != EndReason::Killed {
        let _ = workers.controls[0].send(Control::Teardown);
        loop {
            match workers.reports.recv().await {
                Some(Report::TeardownDone(result)) => {
                    if let Err(e) = result {
                        *aggregate.errors.entry((e.location, format!("teardown: {}", e.message))).or_default() += 1;
                    }
                    break;
                }
                Some(Report::Stats(_, delta)) => aggregate.merge(delta),
                Some(_) => {}
                None => break,
            }
        }
    }
    drop(workers.controls);
    while let Some(report) = workers.reports.recv().await {
        if let Report::Stats(_, delta) = report {
            aggregate.merge(delta);
        }
    }
    for thread in workers.threads {
        let _ = thread.join();
    }
    aggregate.seal_before(u64::MAX);
    hooks.observe(&aggregate, duration);
    Ok(RunResult { aggregate, duration, end, started_at, peak_fibers })
}

fn spawn<F: BehaviourFactory>(plan: &Arc<Plan>, factory: &Arc<F>, handle: &StopHandle) -> Result<Workers, Error> {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let mut controls = Vec::with_capacity(plan.workers);
    let mut threads = Vec::with_capacity(plan.workers);
    let tickets = plan.iterations.map(|n| Arc::new(std::sync::atomic::AtomicU64::new(n)));
    for index in 0..plan.workers {
        let (control_tx, control) = mpsc::unbounded_channel();
        let setup = WorkerSetup {
            index,
            plan: plan.clone(),
            factory: factory.clone(),
            stop: handle.stop.child_token(),
            kill: handle.kill.child_token(),
            control,
            reports: reports_tx.clone(),
            tickets: tickets.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("nest-worker-{index}"))
            .spawn(move || worker::main(setup))
            .map_err(Error::Spawn)?;
        controls.push(control_tx);
        threads.push(thread);
    }
    Ok(Workers { controls, threads, reports })
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
