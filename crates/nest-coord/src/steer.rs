//! Changing the load of a split run while it goes on: the coordinator's half.
//!
//! The operator (a web UI, through [`crate::server::Handle`]) sets the users, the rate, or resets the statistics
//! of the whole run. The coordinator knows only the plan's hash, so it checks what it can (the values, that the
//! load runs), stamps the change [`LEAD`] ahead on the common timeline, and hands it out in every live answer with
//! a sequence number. Each segment applies it with its own `RunHandle` at that instant (each takes its share of the
//! global target), so the lanes of all segments stay one schedule; a segment whose plan refuses it (stages, a
//! shape) says so in its next push, which becomes an [`crate::state::Event::Refused`]. A change of the other model
//! is refused at once: the segments' pushes say what their load is steered to, hence the run's model.

use std::time::Duration;

use nest_core::{ControlError, LoadTarget};

use crate::protocol::{PUSH_EVERY, ResetAt, Steer};

/// How far ahead of now a change takes effect: every segment hears of it first (they push every second).
pub const LEAD: Duration = Duration::from_secs(2 * PUSH_EVERY.as_secs());

/// Refuses a change of the other model than the segments run (the coordinator learns it from their live pushes),
/// in the words a single run uses.
pub(crate) fn same_model(running: &LoadTarget, asked: &LoadTarget) -> Result<(), ControlError> {
    match (running, asked) {
        (LoadTarget::Rate { .. }, LoadTarget::Users { .. }) => Err(ControlError::WrongModel {
            model: "open",
            hint: "change its rate of arrivals (tasks per second), not its users",
        }),
        (LoadTarget::Users { .. }, LoadTarget::Rate { .. }) => {
            Err(ControlError::WrongModel { model: "closed", hint: "change its users, not a rate of arrivals" })
        }
        _ => Ok(()),
    }
}

/// The latest change and reset handed out.
#[derive(Debug, Default)]
pub(crate) struct Steering {
    seq: u64,
    pub(crate) target: Option<Steer>,
    pub(crate) reset: Option<ResetAt>,
}

impl Steering {
    /// A new target, `elapsed` into the load: from [`LEAD`] later.
    pub(crate) fn set(&mut self, elapsed: Duration, target: LoadTarget) -> Result<(), ControlError> {
        target.check_values()?;
        self.seq += 1;
        let at_ms = u64::try_from((elapsed + LEAD).as_millis()).unwrap_or(u64::MAX);
        self.target = Some(Steer { seq: self.seq, at_ms, target });
        Ok(())
    }

    /// A reset, `elapsed` into the load: the statistics count from the first whole second [`LEAD`] later, which it
    /// returns.
    pub(crate) fn reset(&mut self, elapsed: Duration) -> u64 {
        self.seq += 1;
        let at = elapsed + LEAD;
        let at_s = at.as_secs() + u64::from(at.subsec_nanos() > 0);
        self.reset = Some(ResetAt { seq: self.seq, at_s });
        at_s
    }

    /// The second the statistics count from (0 unless reset).
    pub(crate) fn counted_from(&self) -> u64 {
        self.reset.map_or(0, |r| r.at_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_stamped_ahead_and_numbered() {
        let mut s = Steering::default();
        let target = LoadTarget::Users { users: 10, spawn_rate: Some(2.0) };
        s.set(Duration::from_millis(1500), target.clone()).unwrap();
        assert_eq!(s.target, Some(Steer { seq: 1, at_ms: 3500, target }));
        assert_eq!(s.reset(Duration::from_millis(1500)), 4, "the first whole second from 3.5 s");
        assert_eq!(s.reset, Some(ResetAt { seq: 2, at_s: 4 }));
        assert!(s.set(Duration::ZERO, LoadTarget::Rate { per_second: f64::NAN }).is_err());
        assert_eq!(s.target.as_ref().map(|t| t.seq), Some(1), "a refused change hands nothing out");
    }
}
