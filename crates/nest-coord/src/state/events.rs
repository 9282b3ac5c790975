//! What the run's rules answer besides their state: the [`Event`]s the operator hears of, and why a request is
//! refused ([`Refusal`] for a registration, [`Stranger`] for a request from no segment of the run).
//!
//! They are [`super::State`]'s vocabulary, kept apart so that the rules read on their own; their texts are what the
//! coordinator prints and what a refused segment exits with.

use std::time::SystemTime;

use super::Lost;

/// Something the coordinator's operator should hear of.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A segment joined.
    Registered {
        /// Its index.
        index: u32,
        /// Its host.
        host: String,
    },
    /// Every segment is ready: the load starts at this instant.
    Started {
        /// The common start.
        at: SystemTime,
    },
    /// A segment was lost.
    Lost(Lost),
    /// An abort threshold was breached on the merged figures: every segment is told to stop.
    Aborted {
        /// The threshold.
        expr: String,
        /// Seconds after the start.
        at_s: f64,
    },
    /// A segment handed in its result.
    Result {
        /// Its index.
        index: u32,
    },
    /// The run was cancelled before its start.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// A segment refused the latest change of load (its plan cannot take it).
    Refused {
        /// Its index.
        index: u32,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Registered { index, host } => write!(f, "segment {index} registered from {host}"),
            Event::Started { at } => {
                let ms = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
                write!(f, "every segment is ready: the load starts at {:.3} (unix seconds)", ms as f64 / 1000.0)
            }
            Event::Lost(l) => write!(f, "segment {} lost at {:.1}s: {}", l.index, l.at_s, l.reason),
            Event::Aborted { expr, at_s } => {
                write!(f, "threshold `{expr}` breached at {at_s:.0}s: stopping every segment")
            }
            Event::Result { index } => write!(f, "segment {index} handed in its result"),
            Event::Cancelled { reason } => write!(f, "run cancelled: {reason}"),
            Event::Refused { index, reason } => write!(f, "segment {index} refused the change of load: {reason}"),
        }
    }
}

/// Why a registration was refused (answered 409; the segment exits "refused").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The index is not in 0..N.
    #[error("segment index {index} is out of range: this run has {segments} segments (0 to {})", segments - 1)]
    OutOfRange {
        /// The index asked for.
        index: u32,
        /// N.
        segments: u32,
    },
    /// The segment was started with another N.
    #[error("segment {index} was started with {given} segments, but this run has {segments}")]
    OtherCount {
        /// Its index.
        index: u32,
        /// Its N.
        given: u32,
        /// The run's N.
        segments: u32,
    },
    /// The index is taken.
    #[error("segment {index} is already registered (from {host}): a second process for one index is refused")]
    Duplicate {
        /// The index.
        index: u32,
        /// Where the first came from.
        host: String,
    },
    /// Another plan.
    #[error(
        "segment {index} has plan hash {given}, but segment {first} has {expected}: every segment must run the \
         same scripts, mix and load settings"
    )]
    PlanHash {
        /// The index.
        index: u32,
        /// Its hash.
        given: String,
        /// The run's hash.
        expected: String,
        /// The segment that set the run's hash.
        first: u32,
    },
    /// The run is no longer taking segments.
    #[error("the run is over or cancelled: {0}")]
    Closed(String),
    /// A field is empty or too long.
    #[error("{0}")]
    Invalid(String),
}

/// A request from no registered segment of this run (answered 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Stranger(pub String);
