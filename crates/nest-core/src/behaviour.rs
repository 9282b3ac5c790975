//! The seam between the scheduler and the code a VU runs.
//!
//! The scheduler owns time, weights and lifecycles; a [`Behaviour`] owns what a call does. The Rhai binding
//! implements these traits, and tests implement them with plain closures, so the scheduler is tested without a
//! script engine.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::stats::Recorder;
use crate::taskset::Slot;

/// The value the global `setup()` returns, handed to every worker (scripts read it as `shared`).
pub type Shared = Arc<dyn Any + Send + Sync>;

/// What a worker hands to its behaviour when it builds it.
#[derive(Clone)]
pub struct WorkerContext {
    /// The worker's index, from 0.
    pub index: usize,
    /// Where the behaviour records requests. Per worker: no locks are shared with other threads.
    pub recorder: Recorder,
    /// Fires when the run starts stopping: finish the current call, start nothing new.
    pub stop: CancellationToken,
    /// Fires when the run must stop now: suspended calls are resumed with `Cancelled`.
    pub kill: CancellationToken,
    /// A seed for this worker's own random choices, derived from the plan's seed.
    pub seed: u64,
    /// The plan's seed, from which [`WorkerContext::vu_seed`] derives.
    pub(crate) plan_seed: u64,
}

impl WorkerContext {
    /// A seed for the behaviour's own random choices for VU `id` (a script's `random()`): from the plan's seed
    /// and the VU's global id only, so VU `id` draws the same values on any worker and in any segment. It is not the
    /// seed of the scheduler's stream for that VU (its task picks and think times), so the two do not repeat each
    /// other.
    pub fn vu_seed(&self, id: u64) -> u64 {
        crate::segment::vu_seed(self.plan_seed ^ 0x5851_F42D_4C95_7F2D, id)
    }
}

/// One call of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The taskset's index in the plan.
    pub taskset: usize,
    /// Which slot of it.
    pub slot: Slot,
    /// Open model: when this task was scheduled to start. The first request of the task counts its corrected
    /// response time from here.
    pub scheduled: Option<Instant>,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned normally.
    Done,
    /// It called `interrupt()`: the VU leaves the taskset, then waits the think time of where it returns to.
    Interrupted,
    /// It called `interrupt(false)`: the VU leaves the taskset and goes on at once, without think time.
    InterruptedNow,
    /// It raised an error, which is counted against the slot with its location.
    Failed(TaskError),
    /// The run was stopped while it waited; nothing is counted.
    Cancelled,
}

/// An error raised by a call: where it happened and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskError {
    /// `file:line:col`, or as close as the language can tell.
    pub location: String,
    /// The error message.
    pub message: String,
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The code of every taskset, as one worker thread runs it. Built on the worker thread, never sent elsewhere.
pub trait Behaviour: 'static {
    /// The per-VU state: its session, its variables.
    type Vu: 'static;

    /// A fresh VU. Called when the VU starts, and again if a call panicked and its state was lost.
    fn new_vu(&self, vu_id: u64) -> Self::Vu;

    /// Runs one slot of one taskset for this VU. This runs on a fiber: it may call [`crate::fiber::suspend`].
    fn call(&self, vu: &mut Self::Vu, call: Call) -> Outcome;

    /// The pause before this VU's next task in a taskset whose wait time is [`WaitTime::Custom`]
    /// (`wait_time(|| ...)`). Runs on a fiber. An error is counted with its location and the VU does not wait.
    ///
    /// [`WaitTime::Custom`]: crate::WaitTime::Custom
    fn wait_time(&self, _vu: &mut Self::Vu, _taskset: usize) -> Result<Duration, TaskError> {
        Ok(Duration::ZERO)
    }

    /// The VU has left the taskset (after `on_stop`, or because the run ended). Release what it held there.
    fn leave(&self, _vu: &mut Self::Vu, _taskset: usize) {}

    /// The run's global setup, once, on one worker, before any VU starts. Runs on a fiber. Its value reaches
    /// every worker through [`Behaviour::set_shared`].
    fn setup(&self) -> Result<Option<Shared>, TaskError> {
        Ok(None)
    }

    /// Receives the setup's value before this worker's VUs start.
    fn set_shared(&self, _shared: Option<Shared>) {}

    /// The run's global teardown, once, on one worker, after every VU has stopped. Runs on a fiber.
    fn teardown(&self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Builds one [`Behaviour`] per worker thread. Shared by all threads.
pub trait BehaviourFactory: Send + Sync + 'static {
    /// The behaviour it builds.
    type Behaviour: Behaviour;
    /// Called once on each worker thread, before the run starts.
    fn build(&self, worker: &WorkerContext) -> Result<Self::Behaviour, String>;

    /// Encodes `setup()`'s value so that another process of a split run can [`BehaviourFactory::decode_shared`]
    /// it. The error says why the value cannot cross processes. By default, no value can.
    fn encode_shared(&self, _shared: &Shared) -> Result<Vec<u8>, String> {
        Err("this behaviour cannot send its setup() value to another process".into())
    }

    /// Decodes a value encoded by [`BehaviourFactory::encode_shared`] (in this process or another).
    fn decode_shared(&self, _bytes: &[u8]) -> Result<Shared, String> {
        Err("this behaviour cannot receive a setup() value from another process".into())
    }
}
