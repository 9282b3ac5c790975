//! Counters that never go down, whatever the totals they are read from do.
//!
//! The exporter reads cumulative totals from each snapshot it sees (a slow reader skips snapshots, so it never
//! adds up per-second figures). A Prometheus counter must not go down except when the process restarts; but the
//! run's totals can restart from zero mid-run ("reset stats"). So each series keeps a base: whenever a total is
//! lower than the one seen before, what had been counted until then is added to the base, and the counter reads
//! base + total. A series absent from a later snapshot (its requests were before the reset) keeps its value.

use std::collections::BTreeMap;

use crate::buckets::Buckets;

/// A cumulative figure that a reset makes go down.
pub trait Cumulative: Clone + Default {
    /// The figure whose decrease reveals a reset.
    fn total(&self) -> u64;
    /// Adds `other` to this one.
    fn add(&mut self, other: &Self);
}

impl Cumulative for u64 {
    fn total(&self) -> u64 {
        *self
    }
    fn add(&mut self, other: &Self) {
        *self += other;
    }
}

impl Cumulative for Buckets {
    fn total(&self) -> u64 {
        Buckets::total(self)
    }
    fn add(&mut self, other: &Self) {
        Buckets::add(self, other);
    }
}

/// The carried state of a set of series keyed by `K`.
#[derive(Debug, Clone)]
pub struct Monotonic<K, V> {
    /// Per series: (the base carried over resets, the last total seen).
    series: BTreeMap<K, (V, V)>,
}

impl<K, V> Default for Monotonic<K, V> {
    fn default() -> Self {
        Monotonic { series: BTreeMap::new() }
    }
}

impl<K: Ord + Clone, V: Cumulative> Monotonic<K, V> {
    /// Takes the totals of a new snapshot and returns every series' monotonic value (series seen before and absent
    /// now included).
    pub fn update(&mut self, now: BTreeMap<K, V>) -> BTreeMap<K, V> {
        for (key, total) in &now {
            if !self.series.contains_key(key) {
                self.series.insert(key.clone(), (V::default(), V::default()));
            }
            let Some((base, last)) = self.series.get_mut(key) else { unreachable!("inserted above") };
            if total.total() < last.total() {
                base.add(last);
            }
            *last = total.clone();
        }
        let mut out = BTreeMap::new();
        for (key, (base, last)) in &mut self.series {
            if !now.contains_key(key) && last.total() > 0 {
                // Counted before a reset, nothing since.
                base.add(last);
                *last = V::default();
            }
            let mut value = base.clone();
            value.add(last);
            out.insert(key.clone(), value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_never_makes_a_counter_go_down() {
        let mut m: Monotonic<&str, u64> = Monotonic::default();
        fn seen(m: &mut Monotonic<&'static str, u64>, pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
            m.update(pairs.iter().copied().collect())
        }
        assert_eq!(seen(&mut m, &[("a", 5), ("b", 2)]), BTreeMap::from([("a", 5), ("b", 2)]));
        assert_eq!(seen(&mut m, &[("a", 9), ("b", 2)]), BTreeMap::from([("a", 9), ("b", 2)]));
        // Reset: `a` restarts at 1, `b` is gone (no request since), `c` is new.
        assert_eq!(seen(&mut m, &[("a", 1), ("c", 4)]), BTreeMap::from([("a", 10), ("b", 2), ("c", 4)]));
        assert_eq!(seen(&mut m, &[("a", 3), ("c", 6), ("b", 1)]), BTreeMap::from([("a", 12), ("b", 3), ("c", 6)]));
        // A second reset, to zero everywhere.
        assert_eq!(seen(&mut m, &[]), BTreeMap::from([("a", 12), ("b", 3), ("c", 6)]));
        assert_eq!(seen(&mut m, &[("a", 2)]), BTreeMap::from([("a", 14), ("b", 3), ("c", 6)]));
    }
}
