//! The one owner of merged results.
//!
//! Workers send [`Delta`]s over a channel; the aggregator adds them up here. Nothing else writes to these totals,
//! so no locks are needed and the merge is exact: counters add, histograms add bucket by bucket.

use std::collections::{BTreeMap, HashMap};

use super::timeline::MAX_POINTS;
use super::{CheckCounts, Delta, FailureKind, MetricValue, RequestCounts, Second, SlotCounts};

/// Everything recorded in a run so far, merged across workers.
#[derive(Debug, Default)]
pub struct Aggregate {
    /// Request groups keyed by (name, method), in report order.
    pub requests: BTreeMap<(String, String), RequestCounts>,
    /// Failed requests by (method, name, reason): their kind and count.
    pub failures: BTreeMap<(String, String, String), (FailureKind, u64)>,
    /// Script errors by (location, message).
    pub errors: HashMap<(String, String), u64>,
    /// Slot counters: `slots[taskset][slot index]`.
    pub slots: Vec<Vec<SlotCounts>>,
    /// Task starts dropped (open model).
    pub dropped: u64,
    /// Per-second figures, by second since the start; at most [`MAX_POINTS`] of them (see [`Aggregate::step`]).
    pub timeline: BTreeMap<u64, Second>,
    /// Active VUs now: the sum of every worker's latest report, kept by the runner during the load (the timeline's
    /// users are complete only once a second is sealed, up to two seconds later).
    pub live_users: u64,
    /// Seconds per timeline point (0 reads as 1): doubles each time the timeline would exceed [`MAX_POINTS`].
    step: u64,
    /// Every sealed second before this one is folded into its point.
    folded_before: u64,
    /// The script's checks by name.
    pub checks: BTreeMap<String, CheckCounts>,
    /// The script's custom metrics by name.
    pub metrics: BTreeMap<String, MetricValue>,
}

impl Aggregate {
    /// Adds one worker's delta.
    pub fn merge(&mut self, delta: Delta) {
        // A late delta (setup or teardown) for a second already folded: seal and fold it again.
        self.folded_before = self.folded_before.min(delta.second);
        let second = self.timeline.entry(delta.second).or_default();
        second.users += delta.users;
        second.dropped += delta.dropped;
        self.dropped += delta.dropped;
        for (name, methods) in delta.requests {
            for (method, counts) in methods {
                second.add(&name, &method, &counts);
                match self.requests.get_mut(&(name.to_string(), method.to_string())) {
                    Some(total) => total.merge(&counts),
                    None => {
                        self.requests.insert((name.to_string(), method.into()), counts);
                    }
                }
            }
        }
        for (key, (kind, n)) in delta.failures {
            self.failures.entry(key).or_insert((kind, 0)).1 += n;
        }
        for (key, n) in delta.errors {
            *self.errors.entry(key).or_default() += n;
        }
        for (name, c) in delta.checks {
            let mine = self.checks.entry(name.into()).or_default();
            mine.passes += c.passes;
            mine.fails += c.fails;
        }
        for (name, value) in delta.metrics {
            match self.metrics.get_mut(&*name) {
                Some(mine) => mine.merge(&value),
                None => {
                    self.metrics.insert(name.into(), value);
                }
            }
        }
        if self.slots.len() < delta.slots.len() {
            self.slots.resize_with(delta.slots.len(), Vec::new);
        }
        for (mine, theirs) in self.slots.iter_mut().zip(delta.slots) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), SlotCounts::default());
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.runs += t.runs;
                m.errors += t.errors;
                m.pacing_missed += t.pacing_missed;
            }
        }
    }

    /// Seals every second before `second`: no worker will report them again. Keeps the timeline within
    /// [`MAX_POINTS`] by merging points (see the `timeline` module).
    pub fn seal_before(&mut self, second: u64) {
        for (_, s) in self.timeline.range_mut(self.folded_before..second) {
            if !s.sealed {
                s.seal();
            }
        }
        self.fold(self.folded_before, second);
        // (Bounded: points still open cannot be merged, and there are only ever a few.)
        while self.timeline.len() > MAX_POINTS && self.step() < 1 << 40 {
            self.step = self.step.max(1) * 2;
            self.fold(0, second);
        }
    }

    /// Seconds per timeline point: 1 for the first [`MAX_POINTS`] seconds, then 2, 4...
    pub fn step(&self) -> u64 {
        self.step.max(1)
    }

    /// Folds the sealed seconds of `from..before` into the point of their step.
    fn fold(&mut self, from: u64, before: u64) {
        let step = self.step();
        let keys: Vec<u64> =
            self.timeline.range(from..before).filter(|(t, s)| s.sealed && *t % step != 0).map(|(t, _)| *t).collect();
        for t in keys {
            let Some(second) = self.timeline.remove(&t) else { continue };
            let start = t / step * step;
            match self.timeline.get_mut(&start) {
                Some(point) if point.sealed => point.absorb(second),
                // The point's first second is still open (it cannot be: it is earlier): keep this one as it is.
                Some(_) => {
                    self.timeline.insert(t, second);
                }
                None => {
                    self.timeline.insert(start, second);
                }
            }
        }
        self.folded_before = self.folded_before.max(before);
    }

    /// A copy of the totals so far without the timeline, which grows with the run: what a live snapshot holds
    /// (see [`crate::Snapshot`]).
    pub fn without_timeline(&self) -> Aggregate {
        Aggregate {
            requests: self.requests.clone(),
            failures: self.failures.clone(),
            errors: self.errors.clone(),
            slots: self.slots.clone(),
            dropped: self.dropped,
            live_users: self.live_users,
            checks: self.checks.clone(),
            metrics: self.metrics.clone(),
            ..Aggregate::default()
        }
    }

    /// All request groups merged into one.
    pub fn total(&self) -> RequestCounts {
        let mut total = RequestCounts::default();
        for counts in self.requests.values() {
            total.merge(counts);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Recorder, Sample};
    use std::time::Duration;

    #[test]
    fn merging_deltas_equals_recording_everything_in_one() {
        let (a, b, all) = (Recorder::new(), Recorder::new(), Recorder::new());
        for i in 1..=500u64 {
            let r = if i % 2 == 0 { &a } else { &b };
            let sample = Sample { latency: Duration::from_micros(i * 37), ..Default::default() };
            r.request("GET", "/x", sample);
            all.request("GET", "/x", sample);
        }
        a.slot(0, 0, Some(("f:1:1", "m")));
        b.slot(0, 0, Some(("f:1:1", "m")));
        let mut merged = Aggregate::default();
        merged.merge(a.take());
        merged.merge(b.take());
        let mut single = Aggregate::default();
        single.merge(all.take());
        let key = ("/x".to_owned(), "GET".to_owned());
        let (m, s) = (&merged.requests[&key].latency, &single.requests[&key].latency);
        assert_eq!((m.sum_us, m.min_us, m.max_us), (s.sum_us, s.min_us, s.max_us));
        assert_eq!(m.histogram, s.histogram, "histograms merge bucket for bucket");
        assert_eq!(merged.errors[&("f:1:1".into(), "m".into())], 2);
        assert_eq!(merged.slots[0][0], SlotCounts { runs: 2, errors: 2, pacing_missed: 0 });
    }

    #[test]
    fn the_timeline_keeps_each_second_and_seals_it() {
        let r = Recorder::new();
        let mut agg = Aggregate::default();
        for (second, n) in [(0u64, 3u64), (1, 5), (1, 2)] {
            for _ in 0..n {
                r.request("GET", "/x", Sample { latency: Duration::from_millis(10), ..Default::default() });
            }
            let mut d = r.take();
            d.second = second;
            d.users = 4;
            agg.merge(d);
        }
        agg.seal_before(1);
        assert!(!agg.timeline[&0].is_open());
        assert_eq!(agg.timeline[&0].rows[0].count, 3);
        assert!(agg.timeline[&1].is_open(), "second 1 may still get reports");
        agg.seal_before(2);
        assert_eq!(agg.timeline[&1].rows[0].count, 7);
        assert_eq!(agg.timeline[&1].users, 8);
        assert_eq!(agg.timeline[&1].rows[0].p50, 10.0);
        assert_eq!(agg.total().count, 10);
    }

    #[test]
    fn a_long_timeline_is_bounded_and_keeps_every_request() {
        let r = Recorder::new();
        let mut agg = Aggregate::default();
        let seconds = MAX_POINTS as u64 * 3 + 17;
        for second in 0..seconds {
            r.request("GET", "/x", Sample { latency: Duration::from_millis(10), ..Default::default() });
            let mut d = r.take();
            d.second = second;
            d.users = 1 + second % 7;
            agg.merge(d);
            agg.seal_before(second);
            assert!(agg.timeline.len() <= MAX_POINTS + 1, "{} points at second {second}", agg.timeline.len());
        }
        agg.seal_before(u64::MAX);
        assert_eq!(agg.step(), 4, "3 hours at most 3600 points: 4 s a point");
        let counted: u64 = agg.timeline.values().map(|s| s.rows[0].count).sum();
        assert_eq!(counted, seconds, "no request lost by merging");
        let covered: u64 = agg.timeline.values().map(|s| s.seconds.max(1)).sum();
        assert_eq!(covered, seconds, "every second is in exactly one point");
        assert!(agg.timeline.iter().all(|(t, s)| t % 4 == 0 && s.rows[0].count == s.seconds.max(1)));
        assert_eq!(agg.timeline.values().map(|s| s.users).max(), Some(7));
    }
}
