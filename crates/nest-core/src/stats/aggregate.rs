//! The one owner of merged results.
//!
//! Workers send [`Delta`]s over a channel; the aggregator adds them up here. Nothing else writes to these totals,
//! so no locks are needed and the merge is exact: counters add, histograms add bucket by bucket.

use std::collections::{BTreeMap, HashMap};

use super::timeline::MAX_POINTS;
use super::{CheckCounts, Delta, FailureKind, Interval, MetricValue, RequestCounts, Second, SlotCounts};

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
    /// Per-second figures, by second since the start; at most [`Aggregate::max_points`] of them (see
    /// [`Aggregate::step`]).
    pub timeline: BTreeMap<u64, Second>,
    /// The newest sealed second as it was sealed, before the timeline folded it into a wider point: what the live
    /// view shows, one second at a time however long the run.
    pub last_second: Option<Interval>,
    /// Active VUs now: the sum of every worker's latest report, kept by the runner during the load (the timeline's
    /// users are complete only once a second is sealed, up to two seconds later).
    pub live_users: u64,
    /// Seconds per timeline point (0 reads as 1): doubles each time the timeline would exceed its bound.
    step: u64,
    /// The most points the timeline holds (0 reads as [`MAX_POINTS`]).
    max_points: usize,
    /// Every sealed second before this one is folded into its point.
    folded_before: u64,
    /// The script's checks by name.
    pub checks: BTreeMap<String, CheckCounts>,
    /// The script's custom metrics by name.
    pub metrics: BTreeMap<String, MetricValue>,
}

impl Aggregate {
    /// An empty aggregate whose timeline holds at most `max_points` points (at least 2) instead of [`MAX_POINTS`]:
    /// for tests and measurements of the timeline's compaction.
    pub fn with_max_points(max_points: usize) -> Aggregate {
        Aggregate { max_points: max_points.max(2), ..Aggregate::default() }
    }

    /// The most points the timeline holds: [`MAX_POINTS`] unless built [`Aggregate::with_max_points`].
    pub fn max_points(&self) -> usize {
        if self.max_points == 0 { MAX_POINTS } else { self.max_points }
    }

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

    /// Seals every second before `second`: no worker will report them again. Keeps the newest one as
    /// [`Aggregate::last_second`], and the timeline within [`Aggregate::max_points`] by merging points (see the
    /// `timeline` module).
    pub fn seal_before(&mut self, second: u64) {
        for (_, s) in self.timeline.range_mut(self.folded_before..second) {
            if !s.sealed || s.is_open() {
                s.seal();
            }
        }
        let step = self.step();
        let complete = |t: u64| second == u64::MAX || t + step <= second;
        if let Some((&start, s)) = self.timeline.range_mut(self.folded_before..second).rev().find(|(_, s)| s.sealed) {
            // A point that starts at this second and that no later second can join (every point while the width is
            // 1 s) is encoded now, once, and copied for the live view, rather than encoded for each.
            if start % step == 0 && complete(start) {
                s.finish();
            }
            self.last_second = Some(Interval::of(start, s));
        }
        self.fold(self.folded_before, second);
        // (Bounded: points still open cannot be merged, and there are only ever a few.)
        while self.timeline.len() > self.max_points() && self.step() < 1 << 40 {
            self.step = self.step.max(1) * 2;
            self.fold(0, second);
        }
        // Points no later second can join are encoded, once.
        let step = self.step();
        for (&t, point) in self.timeline.range_mut(..second) {
            if point.sealed && (second == u64::MAX || t + step <= second) {
                point.finish();
            }
        }
    }

    /// Seconds per timeline point: 1 for the first [`Aggregate::max_points`] seconds, then 2, 4...
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
            let (start, end) = (t / step * step, t + second.seconds.max(1));
            match self.timeline.get_mut(&start) {
                Some(point) if point.sealed => {
                    let end = end.max(start + point.seconds.max(1));
                    point.absorb(second);
                    // (Seconds with no report at all are covered too: nothing happened in them.)
                    point.seconds = end - start;
                }
                // The point's first second is still open (it cannot be: it is earlier): keep this one as it is.
                Some(_) => {
                    self.timeline.insert(t, second);
                }
                None => {
                    let mut point = second;
                    point.seconds = end - start;
                    self.timeline.insert(start, point);
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
    use crate::stats::{Failure, Latency, Recorder, Sample};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
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
    fn the_live_copy_of_the_newest_second_is_its_timeline_point() {
        let r = Recorder::new();
        let mut agg = Aggregate::default();
        for second in 0..3u64 {
            for i in 0..=second {
                r.request("GET", "/x", Sample { latency: Duration::from_millis(10 + i), ..Default::default() });
                r.request("GET", "/y", Sample { latency: Duration::from_millis(20 + i), ..Default::default() });
            }
            let mut d = r.take();
            d.second = second;
            agg.merge(d);
            agg.seal_before(second + 1);
            assert!(agg.timeline[&second].is_final(), "second {second} is encoded once sealed");
            let last = agg.last_second.clone().unwrap();
            assert_eq!(last, Interval::of(second, &agg.timeline[&second]), "second {second}");
            assert_eq!((last.start, last.seconds, last.rows.len()), (second, 1, 2));
            assert_eq!(last.total.as_ref().map(|t| t.count), Some(2 * (second + 1)));
            let median = (20 + second / 2) as f64;
            assert!((last.rows[1].p50 - median).abs() < 0.05, "second {second}: /y's median {}", last.rows[1].p50);
        }
    }

    #[test]
    fn a_late_report_for_a_sealed_point_is_added_to_it() {
        let r = Recorder::new();
        let mut agg = Aggregate::default();
        for n in [3, 2] {
            for _ in 0..n {
                r.request("GET", "/x", Sample { latency: Duration::from_millis(10), ..Default::default() });
            }
            let mut d = r.take();
            d.second = 0;
            agg.merge(d);
            agg.seal_before(1);
        }
        agg.seal_before(u64::MAX);
        assert_eq!(agg.timeline.len(), 1);
        assert_eq!(agg.timeline[&0].rows[0].count, 5, "the late report's requests are in the timeline too");
        assert!(agg.timeline[&0].is_final());
    }

    #[test]
    fn a_long_timeline_is_bounded_and_keeps_every_request() {
        assert_eq!(Aggregate::default().max_points(), MAX_POINTS);
        let r = Recorder::new();
        let max_points = 60;
        let mut agg = Aggregate::with_max_points(max_points);
        let seconds = max_points as u64 * 3 + 17;
        for second in 0..seconds {
            r.request("GET", "/x", Sample { latency: Duration::from_millis(10), ..Default::default() });
            let mut d = r.take();
            d.second = second;
            d.users = 1 + second % 7;
            agg.merge(d);
            agg.seal_before(second);
            assert!(agg.timeline.len() <= max_points + 1, "{} points at second {second}", agg.timeline.len());
            let last = agg.last_second.as_ref().filter(|_| second > 0);
            assert!(last.is_none_or(|l| (l.start, l.seconds) == (second - 1, 1)), "{last:?} at second {second}");
        }
        agg.seal_before(u64::MAX);
        assert_eq!(agg.step(), 4, "3 times the bound at most 60 points: 4 s a point");
        let counted: u64 = agg.timeline.values().map(|s| s.rows[0].count).sum();
        assert_eq!(counted, seconds, "no request lost by merging");
        let covered: u64 = agg.timeline.values().map(|s| s.seconds.max(1)).sum();
        assert_eq!(covered, seconds, "every second is in exactly one point");
        assert!(agg.timeline.iter().all(|(t, s)| t % 4 == 0 && s.rows[0].count == s.seconds.max(1)));
        assert_eq!(agg.timeline.values().map(|s| s.users).max(), Some(7));
    }

    /// What one second of the property test recorded, by (name, method), kept apart from the aggregate.
    type Originals = BTreeMap<u64, (u64, u64, BTreeMap<(String, String), RequestCounts>)>;

    /// Records random seconds (some with no report at all, some with no request) into `agg` and returns what
    /// each second recorded: (users, dropped, counts).
    fn record_random(agg: &mut Aggregate, rng: &mut SmallRng, seconds: u64) -> Originals {
        let r = Recorder::new();
        let mut originals = Originals::new();
        for second in 0..seconds {
            if rng.random_bool(0.1) {
                agg.seal_before(second);
                continue;
            }
            let mut counts: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
            for _ in 0..rng.random_range(0..6) {
                let name = ["/a", "/b", "/c"][rng.random_range(0..3)];
                let us = 10u64.pow(rng.random_range(1..7)) * rng.random_range(1..10) + rng.random_range(0..10);
                let corrected = us + rng.random_range(0..50_000);
                let failure = rng.random_bool(0.2).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
                let sample = Sample {
                    latency: Duration::from_micros(us),
                    corrected: Some(Duration::from_micros(corrected)),
                    bytes: rng.random_range(0..100),
                    failure,
                    ..Default::default()
                };
                r.request("GET", name, sample);
                let c = counts.entry((name.to_owned(), "GET".to_owned())).or_default();
                c.record(sample.latency, sample.corrected);
                c.bytes += sample.bytes;
                c.failures += u64::from(failure.is_some());
            }
            let mut d = r.take();
            (d.second, d.users, d.dropped) = (second, rng.random_range(0..9), rng.random_range(0..2));
            originals.insert(second, (d.users, d.dropped, counts));
            agg.merge(d);
            agg.seal_before(second);
        }
        agg.seal_before(u64::MAX);
        originals
    }

    fn buckets(l: &Latency) -> Vec<(u64, u64)> {
        l.histogram.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }

    /// Count, failures, bytes, sum, min and max, then every bucket of the raw and the corrected histogram.
    type Figures = ([u64; 6], Vec<(u64, u64)>, Option<Vec<(u64, u64)>>);

    fn figures(c: &RequestCounts) -> Figures {
        let l = &c.latency;
        let counts = [c.count, c.failures, c.bytes, l.sum_us, l.min_us, l.max_us];
        (counts, buckets(l), c.corrected.as_ref().map(buckets))
    }

    #[test]
    fn compacted_points_are_the_exact_sums_of_their_seconds() {
        for seed in 0..12u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let max_points = rng.random_range(2..12);
            let seconds = rng.random_range(1..160);
            let mut agg = Aggregate::with_max_points(max_points);
            let originals = record_random(&mut agg, &mut rng, seconds);
            let step = agg.step();
            assert!(agg.timeline.len() <= max_points, "seed {seed}: {} points", agg.timeline.len());
            assert!(step.is_power_of_two() && (seconds as usize).div_ceil(step as usize) <= max_points, "seed {seed}");
            let mut seen = 0;
            for (&t, point) in &agg.timeline {
                let (end, width) = (t + point.seconds.max(1), point.seconds.max(1));
                assert!(t % step == 0 && width <= step, "seed {seed}: point at {t} s, {width} s wide, step {step}");
                let parts: Vec<_> = originals.range(t..end).map(|(_, o)| o).collect();
                seen += parts.len();
                let mut sum: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
                for (key, c) in parts.iter().flat_map(|(_, _, counts)| counts) {
                    sum.entry(key.clone()).or_default().merge(c);
                }
                let rows: BTreeMap<_, _> = point
                    .rows
                    .iter()
                    .map(|row| ((row.name.clone(), row.method.clone()), figures(&row.counts().unwrap())))
                    .collect();
                let expected: BTreeMap<_, _> =
                    sum.iter().filter(|(_, c)| c.count > 0).map(|(k, c)| (k.clone(), figures(c))).collect();
                assert_eq!(rows, expected, "seed {seed}: point at {t} s, every bucket");
                assert_eq!(point.dropped, parts.iter().map(|p| p.1).sum::<u64>(), "seed {seed}");
                assert_eq!(point.users, parts.iter().map(|p| p.0).max().unwrap_or(0), "seed {seed}");
            }
            assert_eq!(seen, originals.len(), "seed {seed}: every second in exactly one point");
        }
    }
}
