//! The live snapshot: what a run looks like now, published for observers that must not slow the aggregation.
//!
//! The runner is the single aggregator of the workers' statistics, and observers (the live view, `abort`
//! thresholds, later a web UI, a metrics exporter or a coordinator) do not run inside its loop. Instead, each time
//! every worker has reported one more second of load, and at each change of [`RunPhase`], the runner publishes an
//! immutable [`Snapshot`] on a `tokio::sync::watch` channel. A subscriber reads the newest one when it is ready:
//! a slow subscriber skips snapshots and never holds the runner up. An observer that wants the run stopped calls
//! the [`crate::RunHandle`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::control::LoadTarget;
use crate::stats::Aggregate;
pub use crate::stats::Interval;

/// Where a run is, in the order a run goes through them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunPhase {
    /// Before `setup()`: every worker has built its behaviour (the channel's first value also says `Ready`).
    #[default]
    Ready,
    /// `setup()` runs on worker 0.
    Setup,
    /// The load runs.
    Load,
    /// `teardown()` runs on worker 0.
    Teardown,
    /// The workers are gone and the statistics sealed: the run's last snapshot, with its final totals.
    Drain,
}

impl RunPhase {
    /// `ready`, `setup`, `load`, `teardown` or `drain`.
    pub fn name(self) -> &'static str {
        match self {
            RunPhase::Ready => "ready",
            RunPhase::Setup => "setup",
            RunPhase::Load => "load",
            RunPhase::Teardown => "teardown",
            RunPhase::Drain => "drain",
        }
    }
}

/// What a run looks like at one moment. It never changes once published: observers share it as `Arc<Snapshot>`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Where the run is.
    pub phase: RunPhase,
    /// Grows by one with each snapshot published (0 is the channel's first, empty value).
    pub seq: u64,
    /// Time since the load's common start (zero before it). In [`RunPhase::Drain`], the run's duration, as
    /// [`crate::RunResult::duration`] says it.
    pub elapsed: Duration,
    /// Whole seconds of load that every worker has reported: their figures are all in `totals`.
    pub seconds: u64,
    /// Active VUs now, over all workers (as [`Aggregate::live_users`]).
    pub users: u64,
    /// Everything recorded so far, merged; without the timeline, which grows with the run (see `last`).
    pub totals: Aggregate,
    /// The latest sealed second, if one is: one second however long the run, even once the kept timeline has
    /// merged its seconds into wider points (see [`Aggregate::last_second`]).
    pub last: Option<Interval>,
    /// Zero unless the statistics were reset ([`crate::RunHandle::reset_stats`]); then the time since the load's
    /// start of the latest reset (a whole second): `totals` and `last` count from then.
    pub counted_from: Duration,
    /// What the load is being steered to (see [`crate::RunHandle::target`]).
    pub target: Option<LoadTarget>,
    /// The wall-clock time the load actually started (`None` before it): a segment's start skew is this minus
    /// the common start it was given (as [`crate::RunResult::started_at`] and `intended_start` at the end).
    pub started_at: Option<SystemTime>,
}

/// A subscription to a run's snapshots (clone it for another subscriber).
pub type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// A channel for one run's snapshots: give the sender to [`crate::run_observed`] and subscribe with the receiver.
/// It starts with an empty [`RunPhase::Ready`] snapshot, `seq` 0.
pub fn channel() -> (watch::Sender<Arc<Snapshot>>, Snapshots) {
    watch::channel(Arc::new(Snapshot::default()))
}

/// The runner's end of the channel.
pub(crate) struct Publisher {
    tx: watch::Sender<Arc<Snapshot>>,
    seq: u64,
    /// Whole seconds every worker has reported so far.
    pub(crate) seconds: u64,
    /// See [`Snapshot::counted_from`].
    pub(crate) counted_from: Duration,
    /// The run's target, from its handle.
    pub(crate) target: Option<watch::Receiver<LoadTarget>>,
    /// See [`Snapshot::started_at`].
    pub(crate) started_at: Option<SystemTime>,
}

impl Publisher {
    pub(crate) fn new(tx: watch::Sender<Arc<Snapshot>>) -> Publisher {
        Publisher { tx, seq: 0, seconds: 0, counted_from: Duration::ZERO, target: None, started_at: None }
    }

    /// Publishes what `aggregate` holds now, then lets the subscribers on this runtime look at it before the
    /// runner goes on (so they see every phase). Costs nothing when no one subscribes.
    pub(crate) async fn publish(&mut self, phase: RunPhase, elapsed: Duration, aggregate: &Aggregate) {
        // Subscribers come from an existing receiver or from this sender: with none left, none can come.
        if self.tx.receiver_count() == 0 {
            return;
        }
        self.seq += 1;
        let last = aggregate.last_second.clone();
        let snapshot = Snapshot {
            phase,
            seq: self.seq,
            elapsed,
            seconds: self.seconds,
            users: aggregate.live_users,
            totals: aggregate.without_timeline(),
            last,
            counted_from: self.counted_from,
            target: self.target.as_ref().map(|t| t.borrow().clone()),
            started_at: self.started_at,
        };
        self.tx.send_replace(Arc::new(snapshot));
        tokio::task::yield_now().await;
    }
}
