//! Starting, stopping and collecting a run.
//!
//! The runner starts one thread per worker and waits until every worker has built its behaviour (so a broken
//! script never sends load). It runs the global `setup()` on worker 0, gives every worker one common start instant
//! and the setup's value, then owns the clock: at the end of the run time, or on [`RunHandle::stop`], it asks
//! workers to stop gracefully; after the plan's stop timeout, or on [`RunHandle::kill`], it cancels what is still
//! in flight. A scripted shape is ticked here once a second. When every worker's load is over, `teardown()` runs.
//! Meanwhile the runner is the single aggregator of the statistics the workers send; observers do not run in its
//! loop but watch the [`Snapshot`]s it publishes. Nothing here exits the process: the caller decides what to do with
//! the result.
//!
//! A run goes through named steps, one function each: `ready` (every worker built its behaviour), `setup`, `load`,
//! `teardown` and `drain` (hang up, merge the last reports, seal).
//!
//! A run that is one segment of a split run meets the other processes through a [`Rendezvous`]: it says whether
//! this process runs `setup()` and `teardown()`, hands out the common start instant (the runner waits for it), and
//! holds `teardown()` until every segment's load is over. A lone process uses [`Alone`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::behaviour::{BehaviourFactory, TaskError};
use crate::control::{Command, LoadTarget, RunHandle, ShapeSource, ShapeTick};
use crate::error::Error;
use crate::plan::{Model, Plan};
use crate::rendezvous::{Alone, Rendezvous, StartOrder};
use crate::snapshot::{self, Publisher, RunPhase, Snapshot};
use crate::stats::{Aggregate, PoolRow, Summary, SummaryParts};
use crate::worker::{self, Control, WorkerEvent, Workers};

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The run time elapsed and every VU finished within the stop timeout.
    RunTime,
    /// The load ended by itself: the iterations were all run, the stages or the shape ended.
    Completed,
    /// [`RunHandle::stop`] was called and every VU finished within the stop timeout.
    Stopped,
    /// Calls were cancelled: by [`RunHandle::kill`], or because the stop timeout expired.
    Killed,
}

/// A global hook that a stop cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `setup()`: the stop came before the load started, so no load ran.
    Setup,
    /// The wait for the common start of a split run (`--start-at`, a coordinator): no load ran.
    Start,
    /// `teardown()`: its calls were cancelled when the stop timeout expired (or on a second stop).
    Teardown,
}

impl Phase {
    /// `setup`, `start` or `teardown`, as reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Start => "start",
            Phase::Teardown => "teardown",
        }
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
    /// The global hook a stop came in, if any: the load did not run (setup, or the wait for the start), or teardown
    /// was cancelled.
    pub cut: Option<Phase>,
    /// Why it ended.
    pub end: EndReason,
    /// The wall-clock time the load actually started (see [`RunResult::intended_start`]).
    pub started_at: SystemTime,
    /// The wall-clock time the load was meant to start: the rendezvous' start instant (for a lone process, the
    /// moment it was ready). `started_at` minus this is the start skew.
    pub intended_start: SystemTime,
    /// The most fiber stacks any worker had mapped (the peak of calls in flight per worker).
    pub peak_fibers: usize,
    /// After [`RunHandle::reset_stats`]: the time since the start of the load the statistics count from (the latest
    /// reset's). The aggregate holds only what happened from then on.
    pub counted_from: Option<Duration>,
    /// The plan that ran.
    pub plan: Arc<Plan>,
}

impl RunResult {
    /// The run's whole summary, in one step; `pools` are the data pools' rows (their counters are the caller's).
    /// Its `users` are the plan's, or with a load shape or live changes (known only once it ran) the most active at
    /// once. After a reset of the statistics its duration is the time counted, so its rates are over that time.
    pub fn summary(&self, pools: Vec<PoolRow>) -> Summary {
        let counted_from = self.counted_from.unwrap_or_default();
        let peak = self.aggregate.timeline.values().map(|s| s.users).max().unwrap_or(0);
        let parts = SummaryParts {
            tasksets: &self.plan.tasksets,
            duration_s: self.duration.saturating_sub(counted_from).as_secs_f64(),
            counted_from_s: self.counted_from.map(|d| d.as_secs_f64()),
            started_at: self.started_at.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            // (A segment counts its own users: the merge adds them up to the plan's.)
            users: self.plan.segment_users().max(peak),
            open: self.plan.model.is_open(),
            stopped_in: self.cut.map(Phase::name),
            pools,
        };
        Summary::new(&self.aggregate, parts)
    }
}

/// Runs a plan to its end, with no one watching.
pub async fn run<F: BehaviourFactory>(
    plan: Plan,
    factory: Arc<F>,
    handle: RunHandle,
    shape: impl ShapeSource,
) -> Result<RunResult, Error> {
    run_observed(plan, factory, handle, shape, snapshot::channel().0).await
}

/// Runs a plan to its end, publishing a [`Snapshot`] on `snapshots` at each phase and each second every worker
/// has reported (see [`crate::snapshot`]). The steps, each a function here: ready, setup, load, teardown, drain.
pub async fn run_observed<F: BehaviourFactory>(
    plan: Plan,
    factory: Arc<F>,
    handle: RunHandle,
    shape: impl ShapeSource,
    snapshots: watch::Sender<Arc<Snapshot>>,
) -> Result<RunResult, Error> {
    run_with_rendezvous(plan, factory, handle, shape, snapshots, Arc::new(Alone)).await
}

/// Runs a plan as [`run_observed`] does, meeting the other processes of a split run through `rendezvous`: it
/// decides who runs `setup()` and `teardown()`, when the load starts (an error there sends no load:
/// [`Error::Rendezvous`]), and when `teardown()` may run.
pub async fn run_with_rendezvous<F: BehaviourFactory>(
    plan: Plan,
    factory: Arc<F>,
    handle: RunHandle,
    mut shape: impl ShapeSource,
    snapshots: watch::Sender<Arc<Snapshot>>,
    rendezvous: Arc<dyn Rendezvous>,
) -> Result<RunResult, Error> {
    let plan = Arc::new(plan);
    handle.attach(plan.clone());
    let workers = worker::spawn(&plan, &factory, &handle)?;
    let mut publisher = Publisher::new(snapshots);
    publisher.target = Some(handle.target());
    let aggregate = Aggregate::default();
    let mut run = Run { plan, handle, workers, aggregate, publisher, counted_from: None };
    run.ready().await?;
    if let Some(Err(error)) = run.until_stopped(rendezvous.ready()).await {
        run.workers.join();
        return Err(Error::Rendezvous(error));
    }

    let setup_started = Instant::now();
    let local = if rendezvous.runs_globals() {
        match run.setup().await {
            SetupOutcome::Value(value) => value,
            // Killed in setup(): no load, no teardown.
            SetupOutcome::Cut => {
                return Ok(run.drain(setup_started.elapsed(), EndReason::Killed, Some(Phase::Setup)).await);
            }
            SetupOutcome::Failed(error) => {
                run.workers.join();
                return Err(Error::Setup(error));
            }
            SetupOutcome::Panicked => return Err(Error::WorkerPanicked(0)),
        }
    } else {
        None
    };
    let (order, shared) = match run.meet(&*factory, &*rendezvous, local).await {
        Ok(met) => met,
        Err(error) => {
            run.workers.join();
            return Err(error);
        }
    };
    let setup_cut = run.handle.asked.is_cancelled().then_some(Phase::Setup);

    let load = run.load(shared, &mut shape, order.at).await;
    // A stop before the start left no load to speak of: the run is the time requests were sent, from setup on.
    let duration = if setup_cut.is_some() { setup_started.elapsed() } else { load.start.elapsed() };
    let cut = setup_cut.or(load.waited_out.then_some(Phase::Start));
    let (end, cut) = run.after_load(&*rendezvous, &load, cut).await;
    let mut result = run.drain(duration, end, cut).await;
    if setup_cut.is_none() {
        // (After a stop before the start, the run's time starts with setup(), as `drain` computed it.)
        result.started_at = load.started_at;
        result.intended_start = order.at;
    }
    result.peak_fibers = load.peak_fibers;
    Ok(result)
}

/// One run in progress: the workers, the merged statistics, and the channel observers watch.
struct Run {
    plan: Arc<Plan>,
    handle: RunHandle,
    workers: Workers,
    aggregate: Aggregate,
    publisher: Publisher,
    /// The whole second of the load the statistics count from, after a reset.
    counted_from: Option<u64>,
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

/// What the load step leaves for the next ones.
struct LoadOutcome {
    /// The common start.
    start: Instant,
    /// Its wall-clock time.
    started_at: SystemTime,
    /// Who ended the load, if anyone did before the workers finished by themselves.
    ended_by: Option<EndReason>,
    /// A stop came while waiting for the common start: the load did not run.
    waited_out: bool,
    peak_fibers: usize,
}

impl LoadOutcome {
    /// Why the load ended. (The loop may end on the workers' last report before it saw the stop or the kill that
    /// caused it.)
    fn end(&self, handle: &RunHandle) -> EndReason {
        match self.ended_by {
            _ if handle.kill.is_cancelled() => EndReason::Killed,
            Some(reason) => reason,
            None if handle.asked.is_cancelled() => EndReason::Stopped,
            None => EndReason::Completed,
        }
    }
}

/// The load loop's bookkeeping.
struct LoadState {
    /// The last second each worker reported (`u64::MAX` once its load is done), if it reported one.
    last_second: Vec<Option<u64>>,
    /// Each worker's active VUs at its latest report.
    live_users: Vec<u64>,
    done: usize,
    peak_fibers: usize,
}

impl Run {
    /// Resolves `future`, unless a stop is asked first (`None`).
    async fn until_stopped<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            value = future => Some(value),
            () = self.handle.asked.cancelled() => None,
        }
    }

    /// Hands `setup()`'s value to the rendezvous and waits for the order to start; returns it with the value the
    /// workers get. A stop while waiting starts at once (and the load ends at once).
    async fn meet<F: BehaviourFactory>(
        &self,
        factory: &F,
        rendezvous: &dyn Rendezvous,
        local: Option<crate::behaviour::Shared>,
    ) -> Result<(StartOrder, Option<crate::behaviour::Shared>), Error> {
        let encoded = match &local {
            Some(value) if rendezvous.shares_setup() => Some(factory.encode_shared(value).map_err(Error::SharedValue)?),
            _ => None,
        };
        let order = match self.until_stopped(rendezvous.start(encoded)).await {
            Some(order) => order.map_err(Error::Rendezvous)?,
            None => StartOrder { at: SystemTime::now(), setup: None },
        };
        let shared = match &order.setup {
            Some(bytes) => Some(factory.decode_shared(bytes).map_err(Error::SharedValue)?),
            None => local,
        };
        Ok((order, shared))
    }

    /// After the load: waits until the rendezvous says every segment's load is over (unless killed meanwhile), then
    /// runs `teardown()` if this process runs the globals. Returns why the run ended and the phase a stop cut.
    async fn after_load(
        &mut self,
        rendezvous: &dyn Rendezvous,
        load: &LoadOutcome,
        mut cut: Option<Phase>,
    ) -> (EndReason, Option<Phase>) {
        let mut end = load.end(&self.handle);
        if end == EndReason::Killed {
            return (end, cut);
        }
        let others_done = tokio::select! {
            () = rendezvous.load_done() => true,
            () = self.handle.kill.cancelled() => false,
        };
        // A load that never ran says more than a teardown cut short (hence `get_or_insert`).
        if !others_done || (rendezvous.runs_globals() && !self.teardown(load.start).await) {
            end = EndReason::Killed;
            cut.get_or_insert(Phase::Teardown);
        }
        (end, cut)
    }

    /// Waits until every worker has built its behaviour, so that a broken script never sends load.
    async fn ready(&mut self) -> Result<(), Error> {
        let mut failed = None;
        for _ in 0..self.plan.workers {
            match self.workers.reports.recv().await {
                Some(WorkerEvent::Ready(worker, Err(message))) => {
                    failed.get_or_insert(Error::Worker { worker, message });
                }
                Some(_) => {}
                None => break,
            }
        }
        if let Some(error) = failed {
            self.workers.join();
            return Err(error);
        }
        self.publisher.publish(RunPhase::Ready, Duration::ZERO, &self.aggregate).await;
        Ok(())
    }

    /// Runs `setup()` on worker 0. A stop bounds it like calls in flight: `--stop-timeout` from the stop.
    async fn setup(&mut self) -> SetupOutcome {
        self.publisher.publish(RunPhase::Setup, Duration::ZERO, &self.aggregate).await;
        let (workers, handle, aggregate) = (&mut self.workers, &self.handle, &mut self.aggregate);
        let _ = workers.controls[0].send(Control::Setup);
        let mut deadline = None;
        loop {
            tokio::select! {
                report = workers.reports.recv() => match report {
                    Some(WorkerEvent::SetupDone(Ok(value))) => return SetupOutcome::Value(value),
                    Some(WorkerEvent::SetupDone(Err(_))) if handle.kill.is_cancelled() => return SetupOutcome::Cut,
                    Some(WorkerEvent::SetupDone(Err(error))) => return SetupOutcome::Failed(error),
                    Some(WorkerEvent::Stats(_, delta)) => aggregate.merge(delta),
                    Some(_) => {}
                    None => return SetupOutcome::Panicked,
                },
                () = handle.asked.cancelled(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.plan.stop_timeout);
                }
                () = sleep_until_opt(deadline), if !handle.kill.is_cancelled() => handle.kill(),
            }
        }
    }

    /// Gives every worker the common start and `setup()`'s value, then owns the clock until every worker's load
    /// is over: the run time, a shape, a stop, the stop timeout.
    async fn load(
        &mut self,
        shared: Option<crate::behaviour::Shared>,
        shape: &mut impl ShapeSource,
        at: SystemTime,
    ) -> LoadOutcome {
        // The common start is on the wall clock (it is the same instant in every process); a stop does not wait.
        let mut waited_out = false;
        if let Ok(wait) = at.duration_since(SystemTime::now())
            && !self.handle.asked.is_cancelled()
        {
            waited_out = self.until_stopped(tokio::time::sleep(wait)).await.is_none();
        }
        let start = Instant::now();
        let started_at = SystemTime::now();
        self.publisher.started_at = Some(started_at);
        for control in &self.workers.controls {
            let _ = control.send(Control::Start(start, shared.clone()));
        }
        self.publisher.publish(RunPhase::Load, Duration::ZERO, &self.aggregate).await;
        let tick = |secs: u64| tokio::time::Instant::from_std(start + Duration::from_secs(secs));
        let run_end = self.plan.run_time.map(|t| tokio::time::Instant::from_std(start + t));
        let shaped = matches!(self.plan.model, Model::Closed { shaped: true, .. });
        let mut next_shape = shaped.then_some(0u64);
        let mut grace_end: Option<tokio::time::Instant> = None;
        let mut ended_by: Option<EndReason> = None;
        let workers = self.plan.workers;
        let mut state =
            LoadState { last_second: vec![None; workers], live_users: vec![0; workers], done: 0, peak_fibers: 0 };
        let handle = self.handle.clone();
        while state.done < workers {
            tokio::select! {
                report = self.workers.reports.recv() => match report {
                    Some(report) => self.on_load_report(report, &mut state, start).await,
                    None => break,
                },
                () = sleep_until_opt(run_end), if !handle.stop.is_cancelled() => {
                    ended_by = Some(EndReason::RunTime);
                    handle.end_load();
                }
                () = sleep_until_opt(next_shape.map(tick)), if !handle.stop.is_cancelled() => {
                    let secs = next_shape.unwrap_or(0);
                    next_shape = Some(secs + 1);
                    if let Some(reason) = self.on_shape_tick(shape.tick(Duration::from_secs(secs)), secs) {
                        ended_by = Some(reason);
                    }
                }
                () = handle.stop.cancelled(), if grace_end.is_none() => {
                    ended_by.get_or_insert(EndReason::Stopped);
                    grace_end = Some(tokio::time::Instant::now() + self.plan.stop_timeout);
                }
                () = sleep_until_opt(grace_end), if !handle.kill.is_cancelled() => handle.kill(),
                () = handle.kill.cancelled(), if ended_by != Some(EndReason::Killed) => {
                    ended_by = Some(EndReason::Killed);
                }
                () = handle.steering.queued.notified(), if !handle.stop.is_cancelled() => self.on_commands(start),
            }
        }
        handle.finish();
        LoadOutcome { start, started_at, ended_by, peak_fibers: state.peak_fibers, waited_out }
    }

    /// Merges one worker report of the load; once every worker has reported one more second, publishes.
    async fn on_load_report(&mut self, report: WorkerEvent, state: &mut LoadState, start: Instant) {
        match report {
            WorkerEvent::Stats(w, delta) => {
                state.last_second[w] = Some(delta.second);
                state.live_users[w] = delta.users;
                self.aggregate.live_users = state.live_users.iter().sum();
                self.merge_counted(delta);
                // (`None` until every worker has reported a second.)
                let reported = state.last_second.iter().copied().min().flatten();
                self.aggregate.seal_before(reported.unwrap_or(0));
                if let Some(second) = reported.filter(|&s| s != u64::MAX && s >= self.publisher.seconds) {
                    self.publisher.seconds = second + 1;
                    if self.plan.is_staged() {
                        self.handle.publish_target(LoadTarget::of_plan(&self.plan, start.elapsed()));
                    }
                    self.publisher.publish(RunPhase::Load, start.elapsed(), &self.aggregate).await;
                }
            }
            WorkerEvent::LoadDone(w, delta, fibers) => {
                state.last_second[w] = Some(u64::MAX);
                state.live_users[w] = 0;
                self.aggregate.live_users = state.live_users.iter().sum();
                self.merge_counted(delta);
                state.peak_fibers = state.peak_fibers.max(fibers);
                state.done += 1;
            }
            _ => {}
        }
    }

    /// Merges a delta of the load, unless it is of a second before the latest reset of the statistics.
    fn merge_counted(&mut self, delta: crate::stats::Delta) {
        if self.counted_from.is_none_or(|from| delta.second >= from) {
            self.aggregate.merge(delta);
        }
    }

    /// Applies the changes queued on the handle, stamped with one time since the start (or the time they asked for,
    /// if it is still to come), the same for every worker.
    fn on_commands(&mut self, start: Instant) {
        let now = start.elapsed();
        for command in self.handle.take_commands() {
            match command {
                Command::Load(at, target) => self.retarget(at.map_or(now, |at| at.max(now)), target),
                Command::ResetStats(at) => self.reset_stats(at.map_or(now, |at| at.max(now))),
            }
        }
    }

    /// Relays a new target to every worker, from `at` after the start.
    fn retarget(&self, at: Duration, target: LoadTarget) {
        for control in &self.workers.controls {
            let _ = control.send(Control::Retarget { at, target: target.clone() });
        }
    }

    /// Restarts the statistics at the first whole second from `at` (the timeline's grain: the seconds every worker
    /// reports): what was merged is dropped, and so are the deltas of earlier seconds still to come.
    fn reset_stats(&mut self, at: Duration) {
        let from = at.as_secs() + u64::from(at.subsec_nanos() > 0);
        self.counted_from = Some(from);
        let live_users = self.aggregate.live_users;
        self.aggregate = Aggregate::with_max_points(self.aggregate.max_points());
        self.aggregate.live_users = live_users;
        self.publisher.counted_from = Duration::from_secs(from);
    }

    /// Acts on what the shape says at `secs`; returns why the load ends, if it does.
    fn on_shape_tick(&mut self, tick: ShapeTick, secs: u64) -> Option<EndReason> {
        match tick {
            ShapeTick::Target { users, spawn_rate } => {
                let target = LoadTarget::Users { users, spawn_rate };
                self.handle.publish_target(target.clone());
                self.retarget(Duration::from_secs(secs), target);
                return None;
            }
            ShapeTick::Stop => {}
            ShapeTick::Failed(e) => {
                self.aggregate.errors.insert((e.location, format!("load shape: {}", e.message)), 1);
            }
        }
        self.handle.end_load();
        Some(EndReason::Completed)
    }

    /// Runs `teardown()` on worker 0; returns false when a stop cut it. A stop asked before or during it gives it
    /// `--stop-timeout` from the later of the stop and its start; a second stop cancels it at once.
    async fn teardown(&mut self, start: Instant) -> bool {
        self.publisher.publish(RunPhase::Teardown, start.elapsed(), &self.aggregate).await;
        let (workers, handle, aggregate) = (&mut self.workers, &self.handle, &mut self.aggregate);
        let _ = workers.controls[0].send(Control::Teardown);
        let mut deadline = None;
        loop {
            tokio::select! {
                report = workers.reports.recv() => match report {
                    Some(WorkerEvent::TeardownDone(Err(_))) if handle.kill.is_cancelled() => return false,
                    Some(WorkerEvent::TeardownDone(result)) => {
                        if let Err(e) = result {
                            let key = (e.location, format!("teardown: {}", e.message));
                            *aggregate.errors.entry(key).or_default() += 1;
                        }
                        return true;
                    }
                    Some(WorkerEvent::Stats(_, delta)) => aggregate.merge(delta),
                    Some(_) => {}
                    None => return true,
                },
                () = handle.asked.cancelled(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.plan.stop_timeout);
                }
                () = sleep_until_opt(deadline), if !handle.kill.is_cancelled() => handle.kill(),
            }
        }
    }

    /// Hangs up on the workers, merges what they still send, seals the statistics and publishes the last snapshot.
    async fn drain(mut self, duration: Duration, end: EndReason, cut: Option<Phase>) -> RunResult {
        self.workers.controls.clear();
        while let Some(report) = self.workers.reports.recv().await {
            if let WorkerEvent::Stats(_, delta) = report {
                self.aggregate.merge(delta);
            }
        }
        self.workers.join();
        self.aggregate.seal_before(u64::MAX);
        self.publisher.publish(RunPhase::Drain, duration, &self.aggregate).await;
        let started_at = SystemTime::now() - duration;
        RunResult {
            aggregate: self.aggregate,
            duration,
            cut,
            end,
            started_at,
            intended_start: started_at,
            peak_fibers: 0,
            counted_from: self.counted_from.map(Duration::from_secs),
            plan: self.plan,
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
