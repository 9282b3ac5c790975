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
    /// A stop asked from outside (not the end of the run time): it also bounds `setup()` and `teardown()`.
    asked: CancellationToken,
}

impl StopHandle {
    /// A handle for one run.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }
    /// Stops gracefully: no new tasks; calls in flight may finish within the stop timeout; `on_stop` runs.
    pub fn stop(&self) {
        self.asked.cancel();
        self.stop.cancel();
    }
    /// Stops now: calls in flight are cancelled. The statistics gathered so far are still returned.
    pub fn kill(&self) {
        self.stop();
        self.kill.cancel();
    }
    /// The load is over (run time, iterations, shape): no new tasks, but `teardown()` is not hurried.
    fn end_load(&self) {
        self.stop.cancel();
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

/// A global hook that a stop cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `setup()`: the stop came before the load started, so no load ran.
    Setup,
    /// `teardown()`: its calls were cancelled when the stop timeout expired (or on a second stop).
    Teardown,
}

impl Phase {
    /// `setup` or `teardown`, as reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Teardown => "teardown",
        }
    }
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
    /// From the common start to the end of the last worker's load (setup and teardown excluded), or, when a stop
    /// came during `setup()` (see [`RunResult::cut`]), from the start of `setup()`: the time requests were sent.
    pub duration: Duration,
    /// The global hook a stop came in, if any: the load did not run (setup), or teardown was cancelled.
    pub cut: Option<Phase>,
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

    let setup_started = Instant::now();
    let shared = match setup(&mut workers, &plan, &handle, &mut aggregate).await {
        SetupOutcome::Value(value) => value,
        // Killed in setup(): no load, no teardown.
        SetupOutcome::Cut => {
            let duration = setup_started.elapsed();
            let end = EndReason::Killed;
            return Ok(finish(workers, aggregate, duration, end, Some(Phase::Setup), &mut hooks).await);
        }
        SetupOutcome::Failed(error) => {
            workers.join();
            return Err(Error::Setup(error));
        }
        SetupOutcome::Panicked => return Err(Error::WorkerPanicked(0)),
    };
    let cut = handle.asked.is_cancelled().then_some(Phase::Setup);

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
                handle.end_load();
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
                        handle.end_load();
                    }
                    ShapeTick::Failed(e) => {
                        aggregate.errors.insert((e.location, format!("load shape: {}", e.message)), 1);
                        ended_by = Some(EndReason::Completed);
                        handle.end_load();
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
    // A stop during setup() left no load to speak of: the run is the time requests were sent, from setup on.
    let duration = if cut.is_some() { setup_started.elapsed() } else { start.elapsed() };
    // The loop may end on the workers' last report before it saw the stop or the kill that caused it.
    let mut end = match ended_by {
        _ if handle.kill.is_cancelled() => EndReason::Killed,
        Some(reason) => reason,
        None if handle.asked.is_cancelled() => EndReason::Stopped,
        None => EndReason::Completed,
    };
    let setup_cut = cut.is_some();
    let mut cut = cut;
    if end != EndReason::Killed && !teardown(&mut workers, &plan, &handle, &mut aggregate).await {
        end = EndReason::Killed;
        // A load that never ran says more than a teardown cut short.
        cut.get_or_insert(Phase::Teardown);
    }
    let mut result = finish(workers, aggregate, duration, end, cut, &mut hooks).await;
    if !setup_cut {
        // (After a stop in setup(), the run's time starts with setup(), as `finish` computed it.)
        result.started_at = started_at;
    }
    result.peak_fibers = peak_fibers;
    Ok(result)
}

/// How `setup()` ended.
enum SetupOutcome {
    /// It returned (a value for `shared`, or none).
    Value(Option<crate::behaviour::Shared>),
    /// A stop cut it: the stop timeout expired after a stop, or a second stop came.
    Cut,
    /// It failed by itself.
    Failed(TaskError),
    /// Worker 0 is gone.
    Panicked,
}

/// Runs `setup()` on worker 0. A stop bounds it like calls in flight: `--stop-timeout` from the stop.
async fn setup(workers: &mut Workers, plan: &Plan, handle: &StopHandle, aggregate: &mut Aggregate) -> SetupOutcome {
    let _ = workers.controls[0].send(Control::Setup);
    let mut deadline = None;
    loop {
        tokio::select! {
            report = workers.reports.recv() => match report {
                Some(Report::SetupDone(Ok(value))) => return SetupOutcome::Value(value),
                Some(Report::SetupDone(Err(_))) if handle.kill.is_cancelled() => return SetupOutcome::Cut,
                Some(Report::SetupDone(Err(error))) => return SetupOutcome::Failed(error),
                Some(Report::Stats(_, delta)) => aggregate.merge(delta),
                Some(_) => {}
                None => return SetupOutcome::Panicked,
            },
            () = handle.asked.cancelled(), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            () = sleep_until_opt(deadline), if !handle.kill.is_cancelled() => handle.kill(),
        }
    }
}

/// Runs `teardown()` on worker 0; returns false when a stop cut it. A stop asked before or during it gives it
/// `--stop-timeout` from the later of the stop and its start; a second stop cancels it at once.
async fn teardown(workers: &mut Workers, plan: &Plan, handle: &StopHandle, aggregate: &mut Aggregate) -> bool {
    let _ = workers.controls[0].send(Control::Teardown);
    let mut deadline = None;
    loop {
        tokio::select! {
            report = workers.reports.recv() => match report {
                Some(Report::TeardownDone(Err(_))) if handle.kill.is_cancelled() => return false,
                Some(Report::TeardownDone(result)) => {
                    if let Err(e) = result {
                        *aggregate.errors.entry((e.location, format!("teardown: {}", e.message))).or_default() += 1;
                    }
                    return true;
                }
                Some(Report::Stats(_, delta)) => aggregate.merge(delta),
                Some(_) => {}
                None => return true,
            },
            () = handle.asked.cancelled(), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + plan.stop_timeout);
            }
            () = sleep_until_opt(deadline), if !handle.kill.is_cancelled() => handle.kill(),
        }
    }
}

/// Hangs up on the workers, merges what they still send, and seals the statistics.
async fn finish(
    workers: Workers,
    mut aggregate: Aggregate,
    duration: Duration,
    end: EndReason,
    cut: Option<Phase>,
    hooks: &mut impl RunHooks,
) -> RunResult {
    let Workers { controls, threads, mut reports } = workers;
    drop(controls);
    while let Some(report) = reports.recv().await {
        if let Report::Stats(_, delta) = report {
            aggregate.merge(delta);
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    aggregate.seal_before(u64::MAX);
    hooks.observe(&aggregate, duration);
    let started_at = std::time::SystemTime::now() - duration;
    RunResult { aggregate, duration, cut, end, started_at, peak_fibers: 0 }
}

fn spawn<F: BehaviourFactory>(plan: &Arc<Plan>, factory: &Arc<F>, handle: &StopHandle) -> Result<Workers, Error> {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let mut controls = Vec::with_capacity(plan.workers);
    let mut threads = Vec::with_capacity(plan.workers);
    let tickets = plan.segment_iterations().map(|n| Arc::new(std::sync::atomic::AtomicU64::new(n)));
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
