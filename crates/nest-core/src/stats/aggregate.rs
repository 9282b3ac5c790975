//! The one owner of merged results.
//!
//! Workers send [`Delta`]s over a channel; the aggregator adds them up here. Nothing else writes to these totals,
//! so no locks are needed and the merge is exact: counters add, histograms add bucket by bucket.

use std::collections::{BTreeMap, HashMap};

use super::{Delta, RequestCounts, SlotCounts};

/// Everything recorded in a run so far, merged across workers.
#[derive(Debug, Default)]
pub struct Aggregate {
    /// Request groups keyed by (name, method), in report order.
    pub requests: BTreeMap<(String, String), RequestCounts>,
    /// Failed requests by (method, name, reason).
    pub failures: BTreeMap<(String, String, String), u64>,
    /// Script errors by (location, message).
    pub errors: HashMap<(String, String), u64>,
    /// Slot counters: `slots[taskset][slot index]`.
    pub slots: Vec<Vec<SlotCounts>>,
}

impl Aggregate {
    /// Adds one worker's delta.
    pub fn merge(&mut self, delta: Delta) {
        for (name, methods) in delta.requests {
            for (method, counts) in methods {
                match self
                    .requests
                    .get_mut(&(name.to_string(), method.to_string()))
                {
                    Some(total) => total.merge(&counts),
                    None => {
                        self.requests
                            .insert((name.to_string(), method.into()), counts);
                    }
                }
            }
        }
        for (key, n) in delta.failures {
            *self.failures.entry(key).or_default() += n;
        }
        for (key, n) in delta.errors {
            *self.errors.entry(key).or_default() += n;
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
    use crate::stats::Recorder;
    use std::time::Duration;

    #[test]
    fn merging_deltas_equals_recording_everything_in_one() {
        let (a, b, all) = (Recorder::new(), Recorder::new(), Recorder::new());
        for i in 1..=500u64 {
            let r = if i % 2 == 0 { &a } else { &b };
            let d = Duration::from_micros(i * 37);
            r.request("GET", "/x", d, None);
            all.request("GET", "/x", d, None);
        }
        a.slot(0, 0, Some(("f:1:1", "m")));
        b.slot(0, 0, Some(("f:1:1", "m")));
        let mut merged = Aggregate::default();
        merged.merge(a.take());
        merged.merge(b.take());
        let mut single = Aggregate::default();
        single.merge(all.take());
        let (m, s) = (
            &merged.requests[&("/x".into(), "GET".into())],
            &single.requests[&("/x".into(), "GET".into())],
        );
        assert_eq!(
            (m.count, m.sum_us, m.min_us, m.max_us),
            (s.count, s.sum_us, s.min_us, s.max_us)
        );
        assert_eq!(
            m.histogram, s.histogram,
            "histograms merge bucket for bucket"
        );
        assert_eq!(merged.errors[&("f:1:1".into(), "m".into())], 2);
        assert_eq!(merged.slots[0][0], SlotCounts { runs: 2, errors: 2 });
    }
}
