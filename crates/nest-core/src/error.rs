//! The errors the scheduler can return before or while it runs.
//!
//! Failures of the system under test are not errors here: they are data, counted in the statistics. These variants
//! are the reasons a run could not start or could not finish.

use std::io;

/// An error that stops a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plan is not runnable (no enabled taskset, zero users, a bad rate...). The message says which setting.
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// A resource limit of this machine is too low for the plan. The message says how to raise it.
    #[error("{0}")]
    Limit(String),
    /// A worker thread could not be started.
    #[error("could not start worker thread: {0}")]
    Spawn(#[source] io::Error),
    /// A worker could not build its behaviour (for example, its copy of a script failed to compile).
    #[error("worker {worker} failed to start: {message}")]
    Worker {
        /// The worker's index.
        worker: usize,
        /// What went wrong.
        message: String,
    },
    /// The global `setup()` failed: no load was sent.
    #[error("setup() failed: {0}")]
    Setup(crate::TaskError),
    /// The other processes of a split run could not be met: late, refused, cancelled. No load was sent.
    #[error("{0}")]
    Rendezvous(#[from] crate::RendezvousError),
    /// `setup()`'s value could not be encoded for, or decoded from, the other processes of a split run.
    #[error("setup(): its value cannot cross processes: {0}")]
    SharedValue(String),
    /// A worker thread panicked outside of any script call.
    #[error("worker {0} panicked")]
    WorkerPanicked(usize),
}
