//! The one seam between the page's controls and what they steer: a run of this process or a coordinator's split
//! run.
//!
//! The routes never know which: Stop, a new number of users or rate, and a reset of the statistics go through the
//! object-safe [`Steer`] trait. A [`RunHandle`] implements it here; the `nest` binary implements it for a
//! coordinator (which relays each change to every segment at one instant). A change refused by what is steered
//! comes back as a [`ControlError`], whose message the page shows.

use std::sync::Arc;

use nest_core::{ControlError, RunHandle};

/// What the page's controls reach.
pub trait Steer: Send + Sync {
    /// Stops the run gracefully (every segment of a split run).
    fn stop(&self);
    /// Closed model: a new global number of users, reached at `spawn_rate` users per second (`None`: at once).
    fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), ControlError>;
    /// Open model: a new global rate of arrivals, tasks per second.
    fn set_rate(&self, per_second: f64) -> Result<(), ControlError>;
    /// Resets the statistics: the figures count from now on.
    fn reset_stats(&self) -> Result<(), ControlError>;
}

impl Steer for RunHandle {
    fn stop(&self) {
        RunHandle::stop(self);
    }

    fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), ControlError> {
        RunHandle::set_users(self, users, spawn_rate)
    }

    fn set_rate(&self, per_second: f64) -> Result<(), ControlError> {
        RunHandle::set_rate(self, per_second)
    }

    fn reset_stats(&self) -> Result<(), ControlError> {
        RunHandle::reset_stats(self)
    }
}

/// A steer shared with its owner (a test, a process that also steers it otherwise).
impl<T: Steer + ?Sized> Steer for Arc<T> {
    fn stop(&self) {
        (**self).stop();
    }

    fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), ControlError> {
        (**self).set_users(users, spawn_rate)
    }

    fn set_rate(&self, per_second: f64) -> Result<(), ControlError> {
        (**self).set_rate(per_second)
    }

    fn reset_stats(&self) -> Result<(), ControlError> {
        (**self).reset_stats()
    }
}
