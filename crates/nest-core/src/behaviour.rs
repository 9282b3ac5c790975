//! The seam between the scheduler and the code a VU runs.
//!
//! The scheduler owns time, weights and lifecycles; a [`Behaviour`] owns what a call does. The Rhai binding
//! implements these traits, and tests implement them with plain closures, so the scheduler is tested without a
//! script engine.

use tokio_util::sync::CancellationToken;

use crate::stats::Recorder;
use crate::taskset::Slot;

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
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned normally.
    Done,
    /// It called `interrupt()`: the VU leaves the taskset.
    Interrupted,
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

/// The code of every taskset, as one worker thread runs it. Built on the worker thread, never sent elsewhere.
pub trait Behaviour: 'static {
    /// The per-VU state: its session, its variables.
    type Vu: 'static;

    /// A fresh VU. Called when the VU starts, and again if a call panicked and its state was lost.
    fn new_vu(&self, vu_id: u64) -> Self::Vu;

    /// Runs one slot of one taskset for this VU. This runs on a fiber: it may call [`crate::fiber::suspend`].
    fn call(&self, vu: &mut Self::Vu, taskset: usize, slot: Slot) -> Outcome;

    /// The VU has left the taskset (after `on_stop`, or because the run ended). Release what it held there.
    fn leave(&self, _vu: &mut Self::Vu, _taskset: usize) {}
}

/// Builds one [`Behaviour`] per worker thread. Shared by all threads.
pub trait BehaviourFactory: Send + Sync + 'static {
    /// The behaviour it builds.
    type Behaviour: Behaviour;
    /// Called once on each worker thread, before the run starts.
    fn build(&self, worker: &WorkerContext) -> Result<Self::Behaviour, String>;
}
