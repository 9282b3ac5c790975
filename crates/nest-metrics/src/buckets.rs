//! The latency histogram's buckets, and their counts read exactly from nest's own histograms.
//!
//! Prometheus estimates a quantile by finding the bucket that holds it and interpolating linearly inside it, so
//! its error is bounded by the width of that bucket. The ladder is 1, 1.5, 2, 3, 5, 7 per decade from 1 ms to 60 s:
//! neighbouring bounds are never more than 1.67 times apart, so p50/p95/p99 land within a factor 1.67 of the truth
//! anywhere in that range (much closer in practice), with 30 buckets a series. nest records every latency in an
//! HdrHistogram (microseconds, 3 significant figures); the count at each bound is the number of recorded values at
//! or below it, exact to that precision (exact to the microsecond below 2 ms).

use nest_core::stats::Latency;

/// The upper bounds of the buckets, in seconds (the `+Inf` bucket comes after them).
pub const BOUNDS: [f64; 30] = [
    0.001, 0.0015, 0.002, 0.003, 0.005, 0.007, //
    0.01, 0.015, 0.02, 0.03, 0.05, 0.07, //
    0.1, 0.15, 0.2, 0.3, 0.5, 0.7, //
    1.0, 1.5, 2.0, 3.0, 5.0, 7.0, //
    10.0, 15.0, 20.0, 30.0, 50.0, 60.0,
];

/// The bounds in microseconds, the unit of nest's histograms.
const BOUNDS_US: [u64; 30] = [
    1_000, 1_500, 2_000, 3_000, 5_000, 7_000, //
    10_000, 15_000, 20_000, 30_000, 50_000, 70_000, //
    100_000, 150_000, 200_000, 300_000, 500_000, 700_000, //
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_000_000, //
    10_000_000, 15_000_000, 20_000_000, 30_000_000, 50_000_000, 60_000_000,
];

/// A histogram as Prometheus sees it: cumulative counts at each of [`BOUNDS`], the count (`+Inf`) and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    /// Values at or below each bound of [`BOUNDS`], cumulative (empty: all zero).
    pub cumulative: Vec<u64>,
    /// Every value: the `+Inf` bucket and `_count`.
    pub count: u64,
    /// The exact sum of the values, in microseconds.
    pub sum_us: u64,
}

impl Buckets {
    /// The buckets of one latency distribution, in one pass over its recorded values. A value is at or below a
    /// bound when the highest value equivalent to it (the one nest's own percentiles report) is.
    pub fn of(latency: &Latency) -> Buckets {
        let mut cumulative = vec![0; BOUNDS_US.len()];
        let mut at = 0;
        let mut below = 0;
        for v in latency.histogram.iter_recorded() {
            let value = v.value_iterated_to();
            while at < BOUNDS_US.len() && value > BOUNDS_US[at] {
                cumulative[at] = below;
                at += 1;
            }
            below += v.count_at_value();
        }
        for c in &mut cumulative[at..] {
            *c = below;
        }
        Buckets { cumulative, count: latency.count, sum_us: latency.sum_us }
    }

    /// How many values: what goes down when the statistics are reset.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// Adds another histogram's counts to these.
    pub fn add(&mut self, other: &Buckets) {
        if self.cumulative.len() < other.cumulative.len() {
            self.cumulative.resize(other.cumulative.len(), 0);
        }
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// The count at bound `i` of [`BOUNDS`] (0 for an empty histogram).
    pub fn at(&self, i: usize) -> u64 {
        self.cumulative.get(i).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Recorder, Sample};
    use std::time::Duration;

    fn latency(us: &[u64]) -> Latency {
        let r = Recorder::new();
        for &u in us {
            r.request("GET", "/", Sample { latency: Duration::from_micros(u), ..Default::default() });
        }
        r.take().requests.remove("/").unwrap().remove(0).1.latency
    }

    #[test]
    fn bounds_in_seconds_and_microseconds_agree_and_rise_by_at_most_five_thirds() {
        for (s, us) in BOUNDS.iter().zip(BOUNDS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
        assert!(BOUNDS.windows(2).all(|w| w[1] > w[0] && w[1] / w[0] <= 5.0 / 3.0 + 1e-9), "{BOUNDS:?}");
        assert_eq!((BOUNDS[0], BOUNDS[29]), (0.001, 60.0));
    }

    #[test]
    fn counts_are_cumulative_and_exact_at_the_bounds() {
        // Exactly at a bound counts as below it; one microsecond more does not.
        let b = Buckets::of(&latency(&[500, 1_000, 1_001, 1_500, 2_999, 45_000, 90_000_000]));
        assert_eq!((b.at(0), b.at(1), b.at(2), b.at(3)), (2, 4, 4, 5));
        assert_eq!(b.at(10), 6, "45 ms is below 50 ms");
        assert_eq!(b.at(29), 6, "90 s is above every bound");
        assert_eq!(b.count, 7);
        assert_eq!(b.sum_us, 500 + 1_000 + 1_001 + 1_500 + 2_999 + 45_000 + 90_000_000);
        assert!(b.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(Buckets::of(&Latency::default()).cumulative, vec![0; 30]);
    }

    #[test]
    fn adding_buckets_adds_each_count() {
        let (a, b) = (Buckets::of(&latency(&[1_000, 8_000])), Buckets::of(&latency(&[2_000])));
        let mut sum = Buckets::default();
        sum.add(&a);
        sum.add(&b);
        assert_eq!(sum, Buckets::of(&latency(&[1_000, 8_000, 2_000])));
    }
}
