//! The per-second history of a run as the live follower sees it, so that a report downloaded mid-run has its
//! timeline so far (the JSON `timeline`, the HTML charts, `stats_history.csv`).
//!
//! A snapshot carries the run's totals but not its timeline, which grows with the run; it carries the newest sealed
//! second (`Snapshot::last`). The follower keeps each one here, in the timeline of an [`Aggregate`], so that the
//! history is bounded exactly as the runner's is: past [`nest_core::stats::MAX_POINTS`] points, neighbours merge
//! two by two into wider points, their counts and histograms added exactly (nest-core's `stats/timeline.rs`). A
//! second the follower did not see (a snapshot it skipped) is missing here; the final report has every second.
//! After a reset of the statistics the history starts again, as the run's does.

use std::time::Duration;

use nest_core::Snapshot;
use nest_core::stats::{Aggregate, Interval, Second, TimelinePoint};

/// The sealed seconds seen so far, folded as the runner folds its timeline.
#[derive(Debug, Default)]
pub(crate) struct Seconds {
    /// Only its timeline is used: it owns the folding.
    kept: Aggregate,
    /// The reset of the statistics the seconds count from (see `Snapshot::counted_from`).
    counted_from: Duration,
    /// The first second a new point may start at: the end of the newest one kept.
    next: u64,
}

impl Seconds {
    /// A history of at most `max_points` points (at least 2), for tests of the folding.
    #[cfg(test)]
    fn with_max_points(max_points: usize) -> Seconds {
        Seconds { kept: Aggregate::with_max_points(max_points), ..Seconds::default() }
    }

    /// Keeps the newest sealed second of `snapshot`, if it is one not kept yet.
    pub(crate) fn observe(&mut self, snapshot: &Snapshot) {
        if snapshot.counted_from != self.counted_from {
            let kept = Aggregate::with_max_points(self.kept.max_points());
            *self = Seconds { kept, counted_from: snapshot.counted_from, next: 0 };
        }
        let Some(last) = snapshot.last.as_ref().filter(|l| l.start >= self.next) else { return };
        self.kept.timeline.insert(last.start, Second::of_interval(last));
        self.next = last.start + last.seconds.max(1);
        self.kept.seal_before(self.next);
    }

    /// The points so far, as a report's timeline.
    pub(crate) fn points(&self) -> Vec<TimelinePoint> {
        let point = |(&t, second): (&u64, &Second)| {
            let Interval { seconds, users, dropped, rows, total, .. } = Interval::of(t, second);
            TimelinePoint { t, seconds, users, dropped, requests: rows, total }
        };
        self.kept.timeline.iter().map(point).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nest_core::stats::{Recorder, Sample, TimelineRow};

    use super::*;

    /// A snapshot whose newest sealed second is `second`, with `requests` requests of 10 ms.
    fn snapshot(second: u64, requests: u64, counted_from: u64) -> Arc<Snapshot> {
        let recorder = Recorder::new();
        for _ in 0..requests {
            recorder.request("GET", "/x", Sample { latency: Duration::from_millis(10), ..Sample::default() });
        }
        let mut merged = Aggregate::default();
        merged.merge(recorder.take());
        let counts = merged.total();
        let rows = vec![TimelineRow::of("GET", "/x", &counts)];
        let total = nest_core::stats::TimelineTotal::of(&counts);
        let last = Interval { start: second, seconds: 1, users: 2, dropped: 0, rows, total };
        Arc::new(Snapshot { last: Some(last), counted_from: Duration::from_secs(counted_from), ..Snapshot::default() })
    }

    fn counts(points: &[TimelinePoint]) -> Vec<(u64, u64, u64)> {
        points.iter().map(|p| (p.t, p.seconds, p.requests.iter().map(|r| r.count).sum())).collect()
    }

    #[test]
    fn each_sealed_second_seen_is_a_point_once() {
        let mut seconds = Seconds::default();
        for s in 0..5 {
            seconds.observe(&snapshot(s, s + 1, 0));
            // A snapshot of a new phase repeats the newest second: it is kept once.
            seconds.observe(&snapshot(s, s + 1, 0));
        }
        let points = seconds.points();
        assert_eq!(counts(&points), [(0, 1, 1), (1, 1, 2), (2, 1, 3), (3, 1, 4), (4, 1, 5)]);
        assert_eq!(points[4].total.as_ref().map(|t| t.count), Some(5));
        assert_eq!(points[4].users, 2);
    }

    #[test]
    fn past_the_bound_neighbours_merge_exactly_as_the_runners_timeline() {
        let mut seconds = Seconds::with_max_points(4);
        for s in 0..8 {
            seconds.observe(&snapshot(s, 1 << s, 0));
        }
        let points = seconds.points();
        assert_eq!(counts(&points), [(0, 2, 3), (2, 2, 12), (4, 2, 48), (6, 2, 192)]);
        let total = points[3].total.as_ref().unwrap();
        assert_eq!((total.count, total.min, total.max), (192, 10.0, 10.0), "histograms added, not averaged");
        // A point still filling (the 9th second joins the 5th point) is in the history already.
        seconds.observe(&snapshot(8, 5, 0));
        assert_eq!(counts(&seconds.points()).last(), Some(&(8, 1, 5)));
    }

    #[test]
    fn a_reset_of_the_statistics_starts_the_history_again() {
        let mut seconds = Seconds::default();
        for s in 0..3 {
            seconds.observe(&snapshot(s, 7, 0));
        }
        seconds.observe(&snapshot(4, 2, 4));
        assert_eq!(counts(&seconds.points()), [(4, 1, 2)]);
    }
}
