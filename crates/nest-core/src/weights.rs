//! Weighted choice, as a pure function.
//!
//! Tasksets are picked by taskset weight and tasks by task weight. Both use the same table: weights are validated
//! when they are declared (an integer >= 1, or 0 to disable), reduced by their greatest common divisor so that `6:2`
//! and `3:1` build the same table, and then picked with one random number. Keeping the choice a pure function of
//! `(weights, random value)` makes the mix testable without running anything.
//!
//! A VU's *first* taskset is not drawn at random: [`SmoothRoundRobin`] hands VU `j` its taskset as a pure function of
//! `j` and the weights (nginx's smooth weighted round-robin), so that every prefix of the users is as close to the
//! weights as it can be, whatever the run, the worker count or the process a VU lands on.

use rand::Rng;

/// A table of cumulative weights that maps a uniform random number onto an index.
///
/// Entries with weight 0 are kept in place (indices stay stable) but are never picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedTable {
    /// Cumulative sums of the reduced weights; `cumulative[i]` is the exclusive upper bound of entry `i`.
    cumulative: Vec<u64>,
    total: u64,
}

impl WeightedTable {
    /// Builds a table from weights. Returns `None` when no weight is positive (nothing could ever be picked).
    pub fn new(weights: &[u32]) -> Option<WeightedTable> {
        let divisor = weights.iter().fold(0u32, |g, &w| gcd(g, w));
        if divisor == 0 {
            return None;
        }
        let mut total = 0u64;
        let cumulative = weights
            .iter()
            .map(|&w| {
                total += u64::from(w / divisor);
                total
            })
            .collect();
        Some(WeightedTable { cumulative, total })
    }

    /// The sum of the reduced weights: the period of a sequential walk, and the denominator of every share.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The number of entries, including disabled ones.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Whether the table has no entries (never true for a table built by [`WeightedTable::new`]).
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The entry that owns the point `r`, for `r` in `0..total()`; values past the end wrap around.
    ///
    /// This is the pure core of every choice: picking with `r` uniform in `0..total()` picks entry `i` with
    /// probability `weight[i] / sum(weights)`.
    pub fn index_at(&self, r: u64) -> usize {
        let r = r % self.total;
        self.cumulative.partition_point(|&upper| upper <= r)
    }

    /// Picks an entry at random, in proportion to its weight.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.index_at(rng.random_range(0..self.total))
    }

    /// The share of entry `index` in the whole table, in `[0, 1]`.
    pub fn share(&self, index: usize) -> f64 {
        let lower = if index == 0 { 0 } else { self.cumulative[index - 1] };
        (self.cumulative[index] - lower) as f64 / self.total as f64
    }
}

/// Smooth weighted round-robin (nginx's algorithm) over reduced weights: position `j` of the sequence is a pure
/// function of `j` and the weights, and every prefix of the sequence is as close to the weights as it can be
/// (20 positions at `3:1` give exactly 15 and 5).
///
/// At each step every entry gains its weight, the entry with the largest sum (the first one on a tie) is chosen,
/// and the chosen entry loses the total. The sequence repeats with a period of the total reduced weight; one period
/// is computed up front, up to [`SmoothRoundRobin::MAX_PERIOD`] positions.
#[derive(Clone, PartialEq, Eq)]
pub struct SmoothRoundRobin {
    period: Vec<u32>,
    table: WeightedTable,
}

impl std::fmt::Debug for SmoothRoundRobin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmoothRoundRobin").field("period", &self.table.total()).finish()
    }
}

impl SmoothRoundRobin {
    /// The longest period kept. Past it (a total reduced weight above a million), positions repeat the first
    /// `MAX_PERIOD` ones, which still follow the weights to within a millionth.
    pub const MAX_PERIOD: u64 = 1 << 20;

    /// The sequence over these weights; `None` when no weight is positive.
    pub fn new(weights: &[u32]) -> Option<SmoothRoundRobin> {
        let table = WeightedTable::new(weights)?;
        let divisor = weights.iter().fold(0u32, |g, &w| gcd(g, w));
        let reduced: Vec<i64> = weights.iter().map(|&w| i64::from(w / divisor)).collect();
        let total: i64 = reduced.iter().sum();
        let length = table.total().min(Self::MAX_PERIOD) as usize;
        let mut current = vec![0i64; reduced.len()];
        let mut period = Vec::with_capacity(length);
        for _ in 0..length {
            let mut best: Option<usize> = None;
            for i in 0..reduced.len() {
                current[i] += reduced[i];
                if reduced[i] > 0 && best.is_none_or(|b| current[i] > current[b]) {
                    best = Some(i);
                }
            }
            let best = best.unwrap_or_else(|| unreachable!("a table has a positive weight"));
            current[best] -= total;
            period.push(best as u32);
        }
        Some(SmoothRoundRobin { period, table })
    }

    /// The entry at position `j` (VU `j`'s first taskset).
    pub fn at(&self, j: u64) -> usize {
        self.period[(j % self.period.len() as u64) as usize] as usize
    }

    /// How many of the positions `0..n` each entry gets.
    pub fn counts(&self, n: u64) -> Vec<u64> {
        let len = self.period.len() as u64;
        let mut counts = vec![0u64; self.table.len()];
        for &i in &self.period {
            counts[i as usize] += n / len;
        }
        for &i in &self.period[..(n % len) as usize] {
            counts[i as usize] += 1;
        }
        counts
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn reduces_by_gcd() {
        assert_eq!(WeightedTable::new(&[6, 2]), WeightedTable::new(&[3, 1]));
        assert_eq!(WeightedTable::new(&[6, 2]).unwrap().total(), 4);
    }

    #[test]
    fn all_zero_or_empty_is_none() {
        assert!(WeightedTable::new(&[0, 0]).is_none());
        assert!(WeightedTable::new(&[]).is_none());
    }

    #[test]
    fn index_at_covers_each_entry_in_proportion() {
        let table = WeightedTable::new(&[3, 0, 1]).unwrap();
        let picks: Vec<usize> = (0..table.total()).map(|r| table.index_at(r)).collect();
        assert_eq!(picks, vec![0, 0, 0, 2]);
        assert_eq!(table.share(1), 0.0);
        assert_eq!(table.share(2), 0.25);
    }

    #[test]
    fn wraps_past_the_end() {
        let table = WeightedTable::new(&[1, 1]).unwrap();
        assert_eq!(table.index_at(2), 0);
        assert_eq!(table.index_at(3), 1);
    }

    #[test]
    fn round_robin_gives_exact_prefixes() {
        let rr = SmoothRoundRobin::new(&[3, 1]).unwrap();
        assert_eq!(rr.counts(20), [15, 5]);
        assert_eq!((0..4).map(|j| rr.at(j)).collect::<Vec<_>>(), [0, 0, 1, 0]);
        assert_eq!(SmoothRoundRobin::new(&[6, 2]), SmoothRoundRobin::new(&[3, 1]));
        let off = SmoothRoundRobin::new(&[0, 2, 0, 1]).unwrap();
        assert_eq!(off.counts(9), [0, 6, 0, 3]);
        for weights in [&[3u32, 1][..], &[5, 3, 1], &[1, 1, 1], &[7, 0, 2, 2], &[10, 1], &[2, 3, 5, 7, 11]] {
            let rr = SmoothRoundRobin::new(weights).unwrap();
            let total: u32 = weights.iter().sum();
            let mut seen = vec![0u64; weights.len()];
            for n in 1..=300u64 {
                seen[rr.at(n - 1)] += 1;
                assert_eq!(seen, rr.counts(n), "counts of the first {n} in {weights:?}");
                for (i, &w) in weights.iter().enumerate() {
                    let ideal = n as f64 * f64::from(w) / f64::from(total);
                    assert!((seen[i] as f64 - ideal).abs() < 1.0, "{weights:?} prefix {n}: entry {i} {seen:?}");
                }
            }
        }
    }

    #[test]
    fn random_picks_follow_the_weights() {
        // 5:3:1 over 90,000 draws: each count within 4 standard deviations of its expectation.
        let table = WeightedTable::new(&[5, 3, 1]).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0u64; 3];
        let n = 90_000u64;
        for _ in 0..n {
            counts[table.pick(&mut rng)] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            let p = table.share(i);
            let expected = p * n as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!((c as f64 - expected).abs() < 4.0 * sd, "entry {i}: {c} vs {expected}");
        }
    }
}
