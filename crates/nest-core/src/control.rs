//! Steering a run from outside while it goes on: stop, kill, a new load, a reset of the statistics.
//!
//! A [`RunHandle`] is made before the run and handed to the runner; signal handlers, observers, a web UI and a
//! coordinator keep clones. Stops are cancellation tokens the workers watch. Changes of load are checked here, at
//! once, against the plan the runner attached (so a caller gets a [`ControlError`] it can show), then queued for the
//! runner, which stamps each with one instant since the load's start and relays it to every worker: the same
//! change at the same time on every lane keeps the split of one global schedule exact. What the load is steered to
//! is published on a `watch` channel of [`LoadTarget`]s for displays. Scripted shapes ([`ShapeSource`]) steer the
//! closed model the same way, once a second, and own its curve while they do.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::behaviour::TaskError;
use crate::plan::{Model, Plan};
use crate::segment::Lane;

/// What the load is being steered to.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadTarget {
    /// Closed model: this many users over all segments, reached at `spawn_rate` users per second.
    Users {
        /// Users wanted, over all segments.
        users: u64,
        /// Users started or stopped per second (`None`: all at once).
        spawn_rate: Option<f64>,
    },
    /// Open model: tasks started per second, over all segments.
    Rate {
        /// Tasks per second.
        per_second: f64,
    },
}

impl LoadTarget {
    /// What `plan` steers to at `at` after the start by itself (its curve; for a shape, nothing before its first tick).
    pub(crate) fn of_plan(plan: &Plan, at: Duration) -> LoadTarget {
        match &plan.model {
            Model::Closed { users, shaped: false } if !plan.is_staged() => {
                LoadTarget::Users { users: users.peak(), spawn_rate: users.first_rate() }
            }
            Model::Closed { users, .. } => LoadTarget::Users { users: users.count_at(at), spawn_rate: None },
            Model::Open { arrivals, .. } => LoadTarget::Rate { per_second: arrivals.rate_at(at) },
        }
    }
}

/// Why a change of load or a reset was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The change belongs to the other load model.
    #[error("this run uses the {model} model: {hint}")]
    WrongModel {
        /// `closed` or `open`.
        model: &'static str,
        /// What can be changed instead.
        hint: &'static str,
    },
    /// Stages or a load shape own the curve of this plan.
    #[error("the load of this run follows its {0}, which own its curve: a live change is refused")]
    CurveOwned(&'static str),
    /// The runner has not been given this handle's run yet.
    #[error("the run has not started yet")]
    NotStarted,
    /// The load is over or stopping.
    #[error("the run is over (or stopping): its load can no longer change")]
    Over,
    /// A value that makes no sense (NaN, negative, zero rate of spawning...).
    #[error("{0}")]
    Invalid(String),
    /// This machine cannot hold that many users; the message says how to raise the limit.
    #[error("{0}")]
    Limit(String),
}

/// A change queued for the runner. `at` is the time since the load's start it takes effect (`None`: when the
/// runner sees it); a time already past takes effect when the runner sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// A new load target.
    Load(Option<Duration>, LoadTarget),
    /// Reset the statistics.
    ResetStats(Option<Duration>),
}

/// Steers a run from outside (a signal handler, an observer, a web UI, a coordinator, a test). Cheap to clone and
/// `Send`. One handle steers one run.
#[derive(Clone, Debug, Default)]
pub struct RunHandle {
    pub(crate) stop: CancellationToken,
    pub(crate) kill: CancellationToken,
    /// A stop asked from outside (not the end of the run time): it also bounds `setup()` and `teardown()`.
    pub(crate) asked: CancellationToken,
    pub(crate) steering: Arc<Steering>,
}

/// The part of the handle that changes load: what the runner attached, the queue, the published target.
#[derive(Debug)]
pub(crate) struct Steering {
    state: Mutex<SteerState>,
    /// Rings when a command is queued (a permit waits if the runner is busy).
    pub(crate) queued: Notify,
    target: watch::Sender<LoadTarget>,
}

#[derive(Debug, Default)]
struct SteerState {
    plan: Option<Arc<Plan>>,
    over: bool,
    queue: Vec<Command>,
}

impl Default for Steering {
    fn default() -> Steering {
        Steering {
            state: Mutex::default(),
            queued: Notify::new(),
            target: watch::channel(LoadTarget::Users { users: 0, spawn_rate: None }).0,
        }
    }
}

impl RunHandle {
    /// A handle for one run.
    pub fn new() -> RunHandle {
        RunHandle::default()
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
    pub(crate) fn end_load(&self) {
        self.stop.cancel();
    }
    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Closed model: a new global target of users (over all segments; each worker and segment takes its lane's
    /// share), reached at `spawn_rate` users per second (`None`: all at once). Added users start in id order; the
    /// newest leave first, each finishing its current task and running `on_stop`.
    pub fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), ControlError> {
        self.steer(None, LoadTarget::Users { users, spawn_rate })
    }
    /// Open model: a new global arrival rate, tasks per second, from now on (0 pauses the arrivals).
    pub fn set_rate(&self, per_second: f64) -> Result<(), ControlError> {
        self.steer(None, LoadTarget::Rate { per_second })
    }
    /// Resets the statistics: the totals, the per-name tables and the timeline count from now (from the next whole
    /// second of the load, the timeline's grain; see [`crate::Snapshot::counted_from`]).
    pub fn reset_stats(&self) -> Result<(), ControlError> {
        self.reset_stats_at(None)
    }

    /// As [`RunHandle::set_users`] or [`RunHandle::set_rate`], from `at` after the load's common start: the
    /// processes of a split run apply a coordinator's change at one instant, so their lanes stay one schedule.
    pub fn steer(&self, at: Option<Duration>, target: LoadTarget) -> Result<(), ControlError> {
        let mut state = self.state()?;
        let plan = state.plan.clone().ok_or(ControlError::NotStarted)?;
        check(&plan, &target)?;
        state.queue.push(Command::Load(at, target.clone()));
        drop(state);
        self.steering.target.send_replace(target);
        self.steering.queued.notify_one();
        Ok(())
    }
    /// As [`RunHandle::reset_stats`], from `at` after the load's common start (see [`RunHandle::steer`]).
    pub fn reset_stats_at(&self, at: Option<Duration>) -> Result<(), ControlError> {
        let mut state = self.state()?;
        if state.plan.is_none() {
            return Err(ControlError::NotStarted);
        }
        state.queue.push(Command::ResetStats(at));
        drop(state);
        self.steering.queued.notify_one();
        Ok(())
    }

    /// What the load is being steered to now (updated by the calls above and by the plan's own curve), for displays.
    pub fn target(&self) -> watch::Receiver<LoadTarget> {
        self.steering.target.subscribe()
    }

    /// The queue, if the run is not over.
    fn state(&self) -> Result<MutexGuard<'_, SteerState>, ControlError> {
        let state = self.steering.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.over || self.stop.is_cancelled() {
            return Err(ControlError::Over);
        }
        Ok(state)
    }

    /// The runner starts `plan` with this handle: changes are checked against it from now on.
    pub(crate) fn attach(&self, plan: Arc<Plan>) {
        self.steering.target.send_replace(LoadTarget::of_plan(&plan, Duration::ZERO));
        let mut state = self.steering.state.lock().unwrap_or_else(|e| e.into_inner());
        state.plan = Some(plan);
    }

    /// The load is over: changes are refused from now on; returns none of those still queued.
    pub(crate) fn finish(&self) {
        let mut state = self.steering.state.lock().unwrap_or_else(|e| e.into_inner());
        state.over = true;
        state.queue.clear();
    }

    /// The changes queued since the last call, in order.
    pub(crate) fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut self.steering.state.lock().unwrap_or_else(|e| e.into_inner()).queue)
    }

    /// Publishes what the plan's own curve (stages, a shape) steers to now.
    pub(crate) fn publish_target(&self, target: LoadTarget) {
        self.steering.target.send_if_modified(|now| {
            let changed = *now != target;
            *now = target;
            changed
        });
    }
}

/// Whether `plan` accepts `target` now: the right model, a curve no one else owns, sane values, and (for more users
/// than the plan's) this machine's limits for this process's share.
fn check(plan: &Plan, target: &LoadTarget) -> Result<(), ControlError> {
    let open = plan.model.is_open();
    match target {
        LoadTarget::Users { .. } if open => {
            return Err(ControlError::WrongModel {
                model: "open",
                hint: "change its rate of arrivals (tasks per second), not its users",
            });
        }
        LoadTarget::Rate { .. } if !open => {
            return Err(ControlError::WrongModel { model: "closed", hint: "change its users, not a rate of arrivals" });
        }
        _ => {}
    }
    if plan.is_staged() {
        return Err(ControlError::CurveOwned("stages"));
    }
    if !plan.is_steerable() {
        return Err(ControlError::CurveOwned("load shape"));
    }
    match *target {
        LoadTarget::Users { users, spawn_rate } => {
            if let Some(rate) = spawn_rate
                && !(rate.is_finite() && rate > 0.0)
            {
                return Err(ControlError::Invalid(format!(
                    "the spawn rate must be a positive number of users per second, not {rate}"
                )));
            }
            let share = Lane::of_segment(plan.segment).count_below(users);
            if share > plan.segment_users() {
                crate::limits::check(share).map_err(|e| ControlError::Limit(e.to_string()))?;
            }
        }
        LoadTarget::Rate { per_second } => {
            if !(per_second.is_finite() && per_second >= 0.0) {
                return Err(ControlError::Invalid(format!(
                    "the rate must be a number of tasks per second >= 0, not {per_second}"
                )));
            }
        }
    }
    Ok(())
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

/// The load shape a shaped plan follows: asked once a second (from 0) for the users wanted now.
pub trait ShapeSource {
    /// The users wanted `elapsed` after the start.
    fn tick(&mut self, _elapsed: Duration) -> ShapeTick {
        ShapeTick::Stop
    }
}

/// No shape: a shaped plan stops at once.
impl ShapeSource for () {}

/// A shape lent for a run.
impl<T: ShapeSource + ?Sized> ShapeSource for &mut T {
    fn tick(&mut self, elapsed: Duration) -> ShapeTick {
        (**self).tick(elapsed)
    }
}
