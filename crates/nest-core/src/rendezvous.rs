//! How the processes of a split run meet: one start instant, one `setup()` value, one end.
//!
//! A run split into segments (`--segment I/N`) is N processes that must start their load at the same instant and,
//! when a coordinator joins them, share the value of one global `setup()` and run `teardown()` once, after every
//! segment's load. The runner does not know how the processes talk (nest-core knows no HTTP): it asks a
//! [`Rendezvous`] at three points. [`Alone`] is a process on its own (start now); [`StartAt`] is an offline
//! segment with a common start time (`--start-at`), which waits for it and refuses to start late; the coordinator's
//! client (in the binary's libraries) implements the trait over HTTP.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// A boxed future borrowed from the rendezvous.
pub type RendezvousFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The order to start: when, and with which `setup()` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOrder {
    /// The common start instant, on the wall clock. In the past means "now".
    pub at: SystemTime,
    /// The value of the one global `setup()`, encoded by [`crate::BehaviourFactory::encode_shared`], for the
    /// processes that did not run it. `None`: no value crosses processes (each uses its own `setup()`'s, if any).
    pub setup: Option<Vec<u8>>,
}

/// Why a process may not start its load. None of these sends any load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RendezvousError {
    /// The process was ready only after the start instant plus the tolerance.
    #[error("late: ready {} after the start time (tolerance {})", fmt_duration(*by), fmt_duration(*tolerance))]
    Late {
        /// How long after the start instant the process was ready.
        by: Duration,
        /// The tolerance it missed.
        tolerance: Duration,
    },
    /// The coordinator refused this process (a different plan, an index out of range, a duplicate, a bad token).
    #[error("refused by the coordinator: {0}")]
    Refused(String),
    /// The run was cancelled before it started (for example, other segments never became ready).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The coordinator could not be reached or answered nonsense.
    #[error("coordinator: {0}")]
    Unreachable(String),
}

/// A duration as a person reads it: `1.234 s` or `12 ms`.
fn fmt_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) { format!("{:.3} s", d.as_secs_f64()) } else { format!("{} ms", d.as_millis()) }
}

/// How one process of a run meets the others. The runner calls it; it decides nothing about the load itself.
///
/// The order of calls: [`Rendezvous::ready`] once every local worker has built its behaviour (before `setup()`),
/// then `setup()` if [`Rendezvous::runs_globals`], then [`Rendezvous::start`], the load, [`Rendezvous::load_done`],
/// and `teardown()` if [`Rendezvous::runs_globals`]. An error from `ready` or `start` ends the run before any load.
pub trait Rendezvous: Send + Sync + 'static {
    /// Whether this process runs the global `setup()` and `teardown()`: true for a lone process, for an offline
    /// segment (each runs its own, as nothing can carry the value), and for segment 0 of a coordinated run.
    fn runs_globals(&self) -> bool;

    /// Whether `setup()`'s value crosses processes: when true, the runner encodes it for [`Rendezvous::start`] and
    /// every process (this one too) decodes the value of the [`StartOrder`]. False by default.
    fn shares_setup(&self) -> bool {
        false
    }

    /// Every local worker is ready; `setup()` has not run. An error here ends the run before `setup()` sends
    /// anything (a late process, a registration refused). Resolves at once by default.
    fn ready(&self) -> RendezvousFuture<'_, Result<(), RendezvousError>> {
        Box::pin(async { Ok(()) })
    }

    /// Called once every local worker is ready, and after `setup()` when [`Rendezvous::runs_globals`] (with its
    /// value encoded when [`Rendezvous::shares_setup`]). Resolves to the common start and the encoded setup value
    /// to hand the workers, or to an error: then no load is sent.
    fn start(&self, setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>>;

    /// This process's load is over; resolves when `teardown()` may run (every segment's load ended or was lost).
    fn load_done(&self) -> RendezvousFuture<'_, ()>;
}

/// A process on its own: it starts as soon as it is ready and runs its own `setup()` and `teardown()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Rendezvous for Alone {
    fn runs_globals(&self) -> bool {
        true
    }
    fn start(&self, _setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>> {
        Box::pin(async { Ok(StartOrder { at: SystemTime::now(), setup: None }) })
    }
    fn load_done(&self) -> RendezvousFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// An offline segment with a common start time (`--start-at`): it waits until `at`, and a process ready only after
/// `at + tolerance` is [`RendezvousError::Late`] and sends nothing. It runs its own `setup()` and `teardown()`.
#[derive(Debug, Clone, Copy)]
pub struct StartAt {
    /// The common start.
    pub at: SystemTime,
    /// How late a process may be ready and still start (at once).
    pub tolerance: Duration,
}

impl StartAt {
    /// Late if `now` is after `at + tolerance`.
    fn check(&self, now: SystemTime) -> Result<(), RendezvousError> {
        match now.duration_since(self.at) {
            Ok(by) if by > self.tolerance => Err(RendezvousError::Late { by, tolerance: self.tolerance }),
            _ => Ok(()),
        }
    }
}

impl Rendezvous for StartAt {
    fn runs_globals(&self) -> bool {
        true
    }
    fn ready(&self) -> RendezvousFuture<'_, Result<(), RendezvousError>> {
        let checked = self.check(SystemTime::now());
        Box::pin(async move { checked })
    }
    fn start(&self, _setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>> {
        // (Checked again: `setup()` may have made the process late.) The runner waits for `at` itself.
        let checked = self.check(SystemTime::now());
        let at = self.at;
        Box::pin(async move { checked.map(|()| StartOrder { at, setup: None }) })
    }
    fn load_done(&self) -> RendezvousFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_at_is_late_only_past_the_tolerance() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let rv = StartAt { at, tolerance: Duration::from_secs(2) };
        assert_eq!(rv.check(at - Duration::from_secs(5)), Ok(()));
        assert_eq!(rv.check(at + Duration::from_secs(2)), Ok(()));
        let late = rv.check(at + Duration::from_millis(2_500)).unwrap_err();
        assert_eq!(late, RendezvousError::Late { by: Duration::from_millis(2_500), tolerance: Duration::from_secs(2) });
        assert_eq!(late.to_string(), "late: ready 2.500 s after the start time (tolerance 2.000 s)");
    }
}
