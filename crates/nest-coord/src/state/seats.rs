//! The seats of a coordinated run: one per segment index, what the coordinator remembers of each segment, and
//! what displays see of it.
//!
//! [`super::State`] holds the rules; this file holds the per-segment record they read and write (who registered
//! from where, its presence, readiness, the figures and the start skew of its latest live push, its result or its
//! loss) and turns it into a [`SeatStatus`] for the web UI's segments tab.

use std::time::{Duration, Instant};

use nest_core::LoadTarget;
use nest_report::model::Report;

use super::Stranger;
use crate::protocol::{CheckTotal, Live, Member, Register};

/// A segment the run went on without.
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    /// Its index.
    pub index: u32,
    /// Seconds after the common start it was declared lost (0 before the start).
    pub at_s: f64,
    /// When, in Unix seconds.
    pub at_unix: f64,
    /// Why (silent, exited).
    pub reason: String,
}

/// One registered segment.
#[derive(Debug)]
pub(super) struct Seat {
    pub(super) run_id: String,
    pub(super) host: String,
    pub(super) last_seen: Instant,
    /// Requests of it being answered now (a long poll is presence).
    pub(super) pending: u32,
    pub(super) ready: bool,
    pub(super) load_done: bool,
    pub(super) result: Option<Report>,
    pub(super) lost: Option<Lost>,
    pub(super) last_seq: u64,
    /// It was answered that the run is cancelled.
    pub(super) told: bool,
    pub(super) users: u64,
    pub(super) checks: Vec<CheckTotal>,
    pub(super) script_errors: u64,
    /// Its load's start minus the common start, ms, as its live pushes say (once its load started).
    pub(super) start_skew_ms: Option<f64>,
    /// What its load is steered to, as its latest live push says: the run's model.
    pub(super) target: Option<LoadTarget>,
}

impl Seat {
    /// The seat of the segment that registered with `r` at `now`.
    pub(super) fn new(r: &Register, now: Instant) -> Seat {
        Seat {
            run_id: r.run_id.clone(),
            host: r.host.clone(),
            last_seen: now,
            pending: 0,
            ready: false,
            load_done: false,
            result: None,
            lost: None,
            last_seq: 0,
            told: false,
            users: 0,
            checks: Vec::new(),
            script_errors: 0,
            start_skew_ms: None,
            target: None,
        }
    }

    /// Takes what a new live push says of the segment itself (its rows are the run's figures, not the seat's).
    pub(super) fn take(&mut self, l: &mut Live) {
        self.last_seq = l.seq;
        self.users = l.users;
        self.checks = std::mem::take(&mut l.checks);
        self.script_errors = l.script_errors;
        self.start_skew_ms = l.start_skew_ms.or(self.start_skew_ms);
        self.target = l.target.take().or(self.target.take());
    }

    /// Its load is over: it said so, handed in its result, or was lost.
    pub(super) fn load_over(&self) -> bool {
        self.load_done || self.lost.is_some() || self.result.is_some()
    }

    /// What displays see of seat `index` at `now` (`started`: the barrier opened).
    pub(super) fn status(&self, index: u32, started: bool, now: Instant) -> SeatStatus {
        let state = match self {
            s if s.lost.is_some() => "lost",
            s if s.result.is_some() => "handed in",
            s if s.load_done => "load done",
            s if s.ready && started => "running",
            s if s.ready => "ready",
            _ => "registered",
        };
        SeatStatus {
            index,
            host: Some(self.host.clone()),
            state,
            users: self.users,
            start_skew_ms: self.start_skew_ms,
            last_seen: Some(now.saturating_duration_since(self.last_seen)),
        }
    }
}

/// One segment as the coordinator sees it (see [`super::State::seats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeatStatus {
    /// Its index.
    pub index: u32,
    /// The host it registered from (none before it registers).
    pub host: Option<String>,
    /// `waiting` (not registered), `registered`, `ready`, `running`, `load done`, `handed in` or `lost`.
    pub state: &'static str,
    /// Its active VUs, as its last live push said.
    pub users: u64,
    /// Its load's start minus the common start, ms, as it said (once its load started).
    pub start_skew_ms: Option<f64>,
    /// Since the coordinator last heard from it.
    pub last_seen: Option<Duration>,
}

impl SeatStatus {
    /// Seat `index`, which no segment took yet.
    pub(super) fn waiting(index: u32) -> SeatStatus {
        SeatStatus { index, host: None, state: "waiting", users: 0, start_skew_ms: None, last_seen: None }
    }
}

/// The seat of `m`, if `m` registered with this run and was not lost.
pub(super) fn member<'a>(seats: &'a mut [Option<Seat>], m: &Member) -> Result<&'a mut Seat, Stranger> {
    let seat = seats
        .get_mut(m.index as usize)
        .and_then(Option::as_mut)
        .ok_or_else(|| Stranger(format!("segment {} is not registered in this run", m.index)))?;
    if seat.run_id != m.run_id {
        return Err(Stranger(format!("segment {} registered with another run id", m.index)));
    }
    if seat.lost.is_some() {
        return Err(Stranger(format!("segment {} was declared lost: the run went on without it", m.index)));
    }
    Ok(seat)
}

/// The segments not ready, in words: `segments 1 and 2 (never registered)`.
pub(super) fn missing(seats: &[Option<Seat>]) -> String {
    let (mut never, mut unready) = (Vec::new(), Vec::new());
    for (i, seat) in seats.iter().enumerate() {
        match seat {
            None => never.push(i.to_string()),
            Some(s) if !s.ready => unready.push(i.to_string()),
            Some(_) => {}
        }
    }
    let mut parts = Vec::new();
    if !never.is_empty() {
        parts.push(format!("segment {} (never registered)", never.join(", ")));
    }
    if !unready.is_empty() {
        parts.push(format!("segment {} (registered, not ready)", unready.join(", ")));
    }
    parts.join("; ")
}
