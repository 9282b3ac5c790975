//! The one owner of merged results.
//!
//! Workers send [`Delta`]s over a channel; the aggregator adds them up here. Nothing else writes to these totals,
//! so no locks are needed and the merge is exact: counters add, histograms add bucket by bucket.

use std::collections::{BTreeMap, HashMap};

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
    /// Per-second figures, by second since the start.
    pub timeline: BTreeMap<u64, Second>,
    /// The script's checks by name.
    pub checks: BTreeMap<String, CheckCounts>,
    /// The script's custom metrics by name.
    pub metrics: BTreeMap<String, MetricValue>,
}

impl Aggregate {
    /// Adds one worker's delta.
    pub fn merge(&mut self, delta: Delta) {
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

    /// Seals every second before `second`: no worker will report them again.
    pub fn seal_before(&mut self, second: u64) {
        for (_, s) in self.timeline.range_mut(..second) {
            if !s.sealed {
                s.seal();
            }
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
}
