//! The server's state: the page's phase, the run it follows, the chart history, and the views it pushes.
//!
//! One task follows the run's snapshot channel (it never runs inside the runner's loop) and turns each snapshot
//! into a [`View`], serialised once and shared by every open page through a `watch` channel. The reports the page
//! downloads are built here too: from the newest snapshot and the seconds seen so far while the run goes on, the
//! final report after.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use nest_core::snapshot::{RunPhase, Snapshot, Snapshots};
use nest_core::stats::{Summary, SummaryParts};
use nest_core::{ControlError, TasksetSpec};
use nest_report::model::{Report, RunInfo};
use nest_report::thresholds::{self, Observed, Threshold, Verdict};

use crate::guard::Guard;
use crate::seconds::Seconds;
use crate::setup::{Setup, StartOrder, StartRequest};
use crate::steer::Steer;
use crate::view::{self, Live, Phase, Point, RECENT_POINTS, Segments, Target, View};

/// What the server needs to know of a run to show it and to build its report at any moment.
#[derive(Debug, Clone)]
pub struct LiveContext {
    /// The plan's tasksets (the report's task rows name them).
    pub tasksets: Vec<TasksetSpec>,
    /// What was run, for the report.
    pub run: RunInfo,
    /// The thresholds, evaluated live and in the reports.
    pub thresholds: Vec<Threshold>,
    /// The default gate applies (no threshold configured).
    pub gate: bool,
    /// The planned users (the most at once).
    pub users: u64,
    /// The open model.
    pub open: bool,
    /// The run time, for the time left.
    pub run_time: Option<Duration>,
}

/// What the page's controls reach, and whether the page offers to change the load.
pub(crate) struct Controls {
    /// A run of this process, or a coordinator's split run.
    pub(crate) steer: Arc<dyn Steer>,
    /// The page shows the users or rate controls (not with stages or a shape, whose curve owns the load).
    pub(crate) steerable: bool,
}

/// The run being followed.
struct Run {
    controls: Controls,
    /// The previous snapshot's elapsed time and totals, for the chart points of snapshots without a sealed second
    /// (a coordinator's merged figures).
    previous: Option<(Duration, u64, u64)>,
    context: LiveContext,
    snapshot: Option<Arc<Snapshot>>,
    /// The sealed seconds seen so far, for the timeline of a report downloaded mid-run.
    seconds: Seconds,
}

/// Everything the page shows, behind one lock (held only to copy or replace values, never across an await).
struct State {
    phase: Phase,
    run: Option<Run>,
    live: Option<Live>,
    target: Option<Target>,
    points: Vec<Point>,
    verdicts: Vec<Verdict>,
    segments: Option<Segments>,
    report: Option<Arc<Report>>,
}

/// The state shared by the routes and the follower task.
pub(crate) struct Shared {
    pub(crate) guard: Guard,
    pub(crate) setup: Setup,
    starts: mpsc::Sender<StartOrder>,
    state: Mutex<State>,
    views: watch::Sender<Arc<String>>,
    /// The page's Stop button stopped the run.
    pub(crate) stopped: std::sync::atomic::AtomicBool,
}

/// Why a control request could not be done.
pub(crate) enum Refused {
    /// The page is not in the phase the request needs (409).
    Phase(&'static str),
    /// The request is wrong (400).
    Invalid(String),
}

impl Shared {
    pub(crate) fn new(guard: Guard, setup: Setup, starts: mpsc::Sender<StartOrder>) -> Shared {
        let state = State {
            phase: Phase::Waiting,
            run: None,
            live: None,
            target: None,
            points: Vec::new(),
            verdicts: Vec::new(),
            segments: None,
            report: None,
        };
        let views = watch::channel(Arc::default()).0;
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let shared = Shared { guard, setup, starts, state: Mutex::new(state), views, stopped };
        shared.publish(&shared.lock());
        shared
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serialises the view of `state` and hands it to every page.
    fn publish(&self, state: &State) {
        let from = state.points.len().saturating_sub(RECENT_POINTS);
        let view = View {
            phase: state.phase,
            setup: &self.setup,
            live: state.live.as_ref(),
            points: &state.points[from..],
            verdicts: &state.verdicts,
            target: if state.phase == Phase::Running { state.target.clone() } else { None },
            segments: state.segments.as_ref(),
            can_reset: state.phase == Phase::Running && state.run.is_some(),
        };
        let json = serde_json::to_string(&view).unwrap_or_default();
        self.views.send_replace(Arc::new(json));
    }

    /// The newest view, and a subscription to the next ones.
    pub(crate) fn views(&self) -> watch::Receiver<Arc<String>> {
        self.views.subscribe()
    }

    /// Every chart point so far, as JSON.
    pub(crate) fn history(&self) -> String {
        serde_json::to_string(&self.lock().points).unwrap_or_default()
    }

    /// The Start button: checked here, then the caller builds the plan and answers.
    pub(crate) async fn start(&self, request: StartRequest) -> Result<(), Refused> {
        if self.lock().phase != Phase::Waiting {
            return Err(Refused::Phase("the run has already started"));
        }
        self.setup.check(&request).map_err(Refused::Invalid)?;
        let (reply, answer) = oneshot::channel();
        self.starts
            .try_send(StartOrder { request, reply })
            .map_err(|_| Refused::Phase("a start is already being processed"))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(Refused::Invalid(why)),
            Err(_) => Err(Refused::Phase("nest is shutting down")),
        }
    }

    /// Applies `f` to what the controls steer, when a run is going on.
    pub(crate) fn steer(&self, f: impl FnOnce(&dyn Steer) -> Result<(), ControlError>) -> Result<(), Refused> {
        let steer = self.steering()?;
        f(&*steer).map_err(|e| match e {
            ControlError::NotStarted | ControlError::Over => Refused::Phase(phase_message(&e)),
            other => Refused::Invalid(other.to_string()),
        })
    }

    /// Stops the run (every segment of a coordinated one).
    pub(crate) fn stop(&self) -> Result<(), Refused> {
        self.steering()?.stop();
        self.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// What the controls steer, while a run goes on. (Called outside the lock: a coordinator takes its own.)
    fn steering(&self) -> Result<Arc<dyn Steer>, Refused> {
        let state = self.lock();
        match (&state.phase, &state.run) {
            (Phase::Running, Some(run)) => Ok(run.controls.steer.clone()),
            (Phase::Waiting, _) => Err(Refused::Phase("the run has not started")),
            _ => Err(Refused::Phase("the run is over")),
        }
    }

    pub(crate) fn running(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        controls: Controls,
        snapshots: Snapshots,
        context: LiveContext,
    ) {
        {
            let mut state = self.lock();
            state.phase = Phase::Running;
            state.run = Some(Run { controls, previous: None, context, snapshot: None, seconds: Seconds::default() });
            self.publish(&state);
        }
        runtime.spawn(follow(self.clone(), snapshots));
    }

    pub(crate) fn finished(&self, report: Report) {
        let mut state = self.lock();
        state.phase = Phase::Finished;
        state.verdicts = report.thresholds.clone();
        state.report = Some(Arc::new(report));
        self.publish(&state);
    }

    pub(crate) fn set_segments(&self, segments: Segments) {
        let mut state = self.lock();
        state.segments = Some(segments);
        self.publish(&state);
    }

    /// One more snapshot of the run.
    fn observe(&self, snapshot: Arc<Snapshot>) {
        let mut state = self.lock();
        let Some(run) = state.run.as_mut() else { return };
        let live = view::live(&snapshot, run.context.run_time);
        let verdicts = if run.context.thresholds.is_empty() || snapshot.phase < RunPhase::Load {
            Vec::new()
        } else {
            let observed = Observed::from_aggregate(&snapshot.totals, snapshot.elapsed);
            thresholds::evaluate_observed(&run.context.thresholds, &observed, &[])
        };
        let total = snapshot.totals.total();
        let now = (snapshot.elapsed, total.count, total.failures);
        let point = view::point(&snapshot).or_else(|| view::point_between(run.previous, now, &snapshot));
        run.previous = Some(now);
        run.seconds.observe(&snapshot);
        let target = view::target(&snapshot).filter(|_| run.controls.steerable);
        run.snapshot = Some(snapshot);
        state.live = Some(live);
        state.target = target;
        if state.phase == Phase::Running {
            state.verdicts = verdicts;
        }
        if let Some(point) = point
            && state.points.last().is_none_or(|last| last.t < point.t)
        {
            state.points.push(point);
        }
        self.publish(&state);
    }

    /// The report to download: the final one, or one built from the newest snapshot.
    pub(crate) fn report(&self) -> Result<Arc<Report>, Refused> {
        let state = self.lock();
        if let Some(report) = &state.report {
            return Ok(report.clone());
        }
        let Some(Run { context, snapshot: Some(snapshot), seconds, .. }) = &state.run else {
            return Err(Refused::Phase("there is no report before the run starts"));
        };
        let mut report = report_of(context, snapshot);
        report.summary.timeline = seconds.points();
        Ok(Arc::new(report))
    }
}

/// The message of a control refused for the run's phase.
fn phase_message(error: &ControlError) -> &'static str {
    match error {
        ControlError::NotStarted => "the load has not started yet",
        _ => "the run is over (or stopping): its load can no longer change",
    }
}

/// The report of the run so far. Its totals are those of the snapshot; the caller adds the per-second history the
/// follower kept (the snapshot holds none).
fn report_of(context: &LiveContext, snapshot: &Snapshot) -> Report {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let parts = SummaryParts {
        tasksets: &context.tasksets,
        // After a reset of the statistics, the rates are over the time counted, as in the final report.
        duration_s: snapshot.elapsed.saturating_sub(snapshot.counted_from).as_secs_f64(),
        started_at: now.saturating_sub(snapshot.elapsed).as_secs_f64(),
        counted_from_s: (!snapshot.counted_from.is_zero()).then_some(snapshot.counted_from.as_secs_f64()),
        users: context.users.max(snapshot.users),
        open: context.open,
        stopped_in: None,
        pools: Vec::new(),
    };
    let summary = Summary::new(&snapshot.totals, parts);
    Report::new(summary, context.run.clone(), &context.thresholds, &[], context.gate)
}

/// Follows the run's snapshots until the run is over.
async fn follow(shared: Arc<Shared>, mut snapshots: Snapshots) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.seq > 0 {
            shared.observe(snapshot);
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}
