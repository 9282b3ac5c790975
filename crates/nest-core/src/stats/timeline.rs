//! The per-second view of a run: requests, failures and percentiles of each second, and active users.
//!
//! Deltas arrive from every worker tagged with the second they cover. A second keeps full histograms only until
//! every worker has reported a later second; it is then *sealed* into a few numbers per request name, so a long run
//! does not hold a histogram per name per second.
//!
//! A sealed second still costs a few hundred bytes per request name, so a day-long run would grow without end. The
//! timeline therefore holds at most [`MAX_POINTS`] points: when it would hold more, neighbouring points are merged
//! two by two and every later point covers twice as many seconds (1 s for the first hour, then 2 s, 4 s...). Counts
//! add up exactly; the percentiles of a merged point are the count-weighted mean of its parts' (the run's totals
//! keep exact percentiles from full histograms).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RequestCounts;

/// One request name's figures in one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// HTTP method.
    pub method: String,
    /// Request group name.
    pub name: String,
    /// Requests completed in this second.
    pub count: u64,
    /// Of which failed.
    pub failures: u64,
    /// Median service time, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Open model: 99th percentile of the corrected response time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_p99: Option<f64>,
}

/// All requests of one second together, with the percentiles Locust's history file has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineTotal {
    /// Requests completed in the second.
    pub count: u64,
    /// Of which failed.
    pub failures: u64,
    /// Mean service time, ms.
    pub mean: f64,
    /// Fastest, ms.
    pub min: f64,
    /// Slowest, ms.
    pub max: f64,
    /// Response body bytes.
    pub bytes: u64,
    /// Service time at the 50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99 and 100th percentiles, ms.
    pub percentiles: Vec<f64>,
}

/// The quantiles of [`TimelineTotal::percentiles`].
pub const TOTAL_QUANTILES: [f64; 11] = [0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0];

/// The most points the timeline holds (an hour at one per second); see the module docs.
pub const MAX_POINTS: usize = 3600;

/// One second of the run, merged across workers, or after merging, a run of neighbouring seconds.
#[derive(Debug, Default)]
pub struct Second {
    /// Seconds this point covers, from its key on: 1 unless merged (0 reads as 1).
    pub seconds: u64,
    /// Active VUs at the end of the second, over all workers.
    pub users: u64,
    /// Task starts dropped in this second (open model).
    pub dropped: u64,
    open: BTreeMap<(String, String), RequestCounts>,
    /// The sealed figures, once every worker has moved past this second.
    pub rows: Vec<TimelineRow>,
    /// The sealed figures of all requests together.
    pub total: Option<TimelineTotal>,
    /// Every worker has reported this second (its figures are complete).
    pub sealed: bool,
}

impl Second {
    pub(crate) fn add(&mut self, name: &str, method: &str, counts: &RequestCounts) {
        match self.open.get_mut(&(name.to_owned(), method.to_owned())) {
            Some(c) => c.merge(counts),
            None => {
                self.open.insert((name.to_owned(), method.to_owned()), counts.clone());
            }
        }
    }

    /// Turns the histograms of this second into figures and frees them.
    pub(crate) fn seal(&mut self) {
        self.sealed = true;
        let ms = |us: u64| us as f64 / 1000.0;
        let mut all = RequestCounts::default();
        for c in self.open.values() {
            all.merge(c);
        }
        if all.count > 0 {
            let l = &all.latency;
            self.total = Some(TimelineTotal {
                count: all.count,
                failures: all.failures,
                mean: l.sum_us as f64 / l.count.max(1) as f64 / 1000.0,
                min: ms(l.min_us),
                max: ms(l.max_us),
                bytes: all.bytes,
                percentiles: TOTAL_QUANTILES.iter().map(|&q| ms(l.quantile_us(q))).collect(),
            });
        }
        for ((name, method), c) in std::mem::take(&mut self.open) {
            self.rows.push(TimelineRow {
                method,
                name,
                count: c.count,
                failures: c.failures,
                p50: ms(c.latency.quantile_us(0.50)),
                p95: ms(c.latency.quantile_us(0.95)),
                p99: ms(c.latency.quantile_us(0.99)),
                corrected_p99: c.corrected.as_ref().map(|l| ms(l.quantile_us(0.99))),
            });
        }
        self.rows.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
    }

    /// Folds the sealed point that follows this sealed one into it.
    pub(crate) fn absorb(&mut self, next: Second) {
        self.seconds = self.seconds.max(1) + next.seconds.max(1);
        self.users = self.users.max(next.users);
        self.dropped += next.dropped;
        for row in next.rows {
            match self.rows.iter_mut().find(|r| (&r.name, &r.method) == (&row.name, &row.method)) {
                Some(mine) => mine.absorb(&row),
                None => self.rows.push(row),
            }
        }
        self.rows.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
        self.total = match (self.total.take(), next.total) {
            (Some(mut mine), Some(theirs)) => {
                mine.absorb(&theirs);
                Some(mine)
            }
            (mine, theirs) => mine.or(theirs),
        };
    }

    /// Whether the second still holds unsealed histograms.
    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }
}

/// The count-weighted mean of two figures: what a merged point keeps of its parts' percentiles.
fn weighted(a: f64, a_count: u64, b: f64, b_count: u64) -> f64 {
    match a_count + b_count {
        0 => a.max(b),
        n => (a * a_count as f64 + b * b_count as f64) / n as f64,
    }
}

impl TimelineRow {
    fn absorb(&mut self, other: &TimelineRow) {
        let (a, b) = (self.count, other.count);
        self.p50 = weighted(self.p50, a, other.p50, b);
        self.p95 = weighted(self.p95, a, other.p95, b);
        self.p99 = weighted(self.p99, a, other.p99, b);
        self.corrected_p99 = match (self.corrected_p99, other.corrected_p99) {
            (Some(x), Some(y)) => Some(weighted(x, a, y, b)),
            (x, y) => x.or(y),
        };
        self.count += other.count;
        self.failures += other.failures;
    }
}

impl TimelineTotal {
    fn absorb(&mut self, other: &TimelineTotal) {
        let (a, b) = (self.count, other.count);
        self.mean = weighted(self.mean, a, other.mean, b);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        let last = self.percentiles.len().saturating_sub(1);
        for (i, (mine, theirs)) in self.percentiles.iter_mut().zip(&other.percentiles).enumerate() {
            // The 100th percentile is the maximum: exact.
            *mine = if i == last { mine.max(*theirs) } else { weighted(*mine, a, *theirs, b) };
        }
        self.count += other.count;
        self.failures += other.failures;
        self.bytes += other.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(count: u64, p50: f64) -> TimelineRow {
        TimelineRow {
            method: "GET".into(),
            name: "/x".into(),
            count,
            failures: 1,
            p50,
            p95: p50,
            p99: p50,
            corrected_p99: None,
        }
    }

    #[test]
    fn merged_points_add_counts_and_weigh_percentiles_by_count() {
        let mut a =
            Second { seconds: 1, users: 3, dropped: 1, rows: vec![row(1, 10.0)], sealed: true, ..Default::default() };
        let b =
            Second { seconds: 2, users: 5, dropped: 2, rows: vec![row(3, 20.0)], sealed: true, ..Default::default() };
        a.absorb(b);
        assert_eq!((a.seconds, a.users, a.dropped), (3, 5, 3));
        assert_eq!(a.rows.len(), 1);
        assert_eq!((a.rows[0].count, a.rows[0].failures), (4, 2));
        assert_eq!(a.rows[0].p50, 17.5);
    }
}
