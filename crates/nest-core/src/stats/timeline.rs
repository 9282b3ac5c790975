//! The per-second view of a run: requests, failures and percentiles of each second, and active users.
//!
//! Deltas arrive from every worker tagged with the second they cover. A second keeps full histograms only until
//! every worker has reported a later second; it is then *sealed* into a few numbers per request name, so a long run
//! does not hold a histogram per name per second.
//!
//! A sealed row keeps its counts and its histograms *encoded* (V2 + DEFLATE, base64, as the report's rows), with
//! the exact sum, min and max, so two points (or two reports' timelines) add up exactly and every percentile of a
//! merged point comes from the merged histogram. A sealed row still costs a few hundred bytes, so a day-long run
//! would grow without end. The timeline therefore holds at most [`MAX_POINTS`] points: when it would hold more,
//! neighbouring points are merged two by two and every later point covers twice as many seconds (1 s for the
//! first 24 minutes, then 2 s, 4 s..., 64 s in a 24-hour run). Point widths are powers of two seconds and points
//! start at multiples of their width, counted from the load's start, so the points of two runs or segments align
//! and `nest merge` adds them at the coarser width. The live view does not see the merged points: the newest
//! sealed second is kept apart for it ([`super::Aggregate::last_second`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Latency, RequestCounts, decode_histogram, encode_histogram};

/// One distribution of a timeline row, exactly: what [`Latency`] holds, with the histogram encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineLatency {
    /// Sum of the values, µs.
    pub sum_us: u64,
    /// Smallest value, µs.
    pub min_us: u64,
    /// Largest value, µs.
    pub max_us: u64,
    /// The histogram (µs), encoded as `requests[].histogram`.
    pub histogram: String,
}

impl TimelineLatency {
    /// The distribution with its histogram encoded.
    pub fn of(l: &Latency) -> TimelineLatency {
        TimelineLatency {
            sum_us: l.sum_us,
            min_us: l.min_us,
            max_us: l.max_us,
            histogram: encode_histogram(&l.histogram),
        }
    }

    /// The distribution back, exactly; its count is its histogram's.
    pub fn decode(&self) -> Result<Latency, String> {
        let histogram = decode_histogram(&self.histogram)?;
        Ok(Latency { count: histogram.len(), sum_us: self.sum_us, min_us: self.min_us, max_us: self.max_us, histogram })
    }
}

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
    /// Response body bytes of these requests.
    #[serde(default)]
    pub bytes: u64,
    /// The service times, exactly (absent in older reports, whose timelines are not merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<TimelineLatency>,
    /// Open model: the corrected response times, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected: Option<TimelineLatency>,
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

/// The most points the timeline holds (24 minutes at one per second, a day at 64 s a point); see the module docs.
pub const MAX_POINTS: usize = 1440;

/// One sealed point of the timeline, copied out of it: its figures are final.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Its first second, since the load's start.
    pub start: u64,
    /// Seconds it covers.
    pub seconds: u64,
    /// Active VUs at its end.
    pub users: u64,
    /// Task starts dropped in it (open model).
    pub dropped: u64,
    /// Per request name.
    pub rows: Vec<TimelineRow>,
    /// All requests together.
    pub total: Option<TimelineTotal>,
}

impl Interval {
    /// A copy of the sealed point at `start` (its rows encoded now if the point is still being filled).
    pub fn of(start: u64, point: &Second) -> Interval {
        let (rows, total) = if point.pending.is_empty() {
            (point.rows.clone(), point.total.clone())
        } else {
            seal_rows(&point.pending)
        };
        Interval { start, seconds: point.seconds.max(1), users: point.users, dropped: point.dropped, rows, total }
    }
}

/// One second of the run, merged across workers, or after merging, a run of neighbouring seconds.
#[derive(Debug, Default)]
pub struct Second {
    /// Seconds this point covers, from its key on: 1 unless merged (0 reads as 1).
    pub seconds: u64,
    /// Active VUs at the end of the second, over all workers.
    pub users: u64,
    /// Task starts dropped in this second (open model).
    pub dropped: u64,
    /// What workers reported for this second, not sealed yet.
    open: BTreeMap<(String, String), RequestCounts>,
    /// Sealed counts not encoded into `rows` yet: the point is still being filled with later seconds (it is
    /// encoded once, when complete, rather than decoded and encoded again with each second it absorbs).
    pending: BTreeMap<(String, String), RequestCounts>,
    /// The sealed figures: final once the point is complete ([`Second::is_final`]; every point is after
    /// `Aggregate::seal_before(u64::MAX)`), empty while it is still being filled.
    pub rows: Vec<TimelineRow>,
    /// The sealed figures of all requests together (as `rows`).
    pub total: Option<TimelineTotal>,
    /// Every worker has reported this second (its figures are complete).
    pub sealed: bool,
}

impl Second {
    /// A sealed point holding a copied-out point's figures: for a timeline kept outside the runner (a live
    /// follower's, from each snapshot's newest second), bounded by [`super::Aggregate::seal_before`] as the
    /// runner's is.
    pub fn of_interval(interval: &Interval) -> Second {
        Second {
            seconds: interval.seconds.max(1),
            users: interval.users,
            dropped: interval.dropped,
            rows: interval.rows.clone(),
            total: interval.total.clone(),
            sealed: true,
            ..Second::default()
        }
    }

    pub(crate) fn add(&mut self, name: &str, method: &str, counts: &RequestCounts) {
        match self.open.get_mut(&(name.to_owned(), method.to_owned())) {
            Some(c) => c.merge(counts),
            None => {
                self.open.insert((name.to_owned(), method.to_owned()), counts.clone());
            }
        }
    }

    /// Marks the second sealed and moves what was reported into the point's counts (encoded by
    /// [`Second::finish`]). A late report for a point already encoded is added to it exactly.
    pub(crate) fn seal(&mut self) {
        self.sealed = true;
        self.thaw();
        add_counts(&mut self.pending, std::mem::take(&mut self.open));
    }

    /// Folds the sealed point that follows this sealed one into it: counts and histograms add up exactly (the
    /// caller sets the width it then covers). The rows are encoded again by [`Second::finish`].
    pub(crate) fn absorb(&mut self, mut next: Second) {
        self.seconds = self.seconds.max(1) + next.seconds.max(1);
        self.users = self.users.max(next.users);
        self.dropped += next.dropped;
        self.thaw();
        next.thaw();
        add_counts(&mut self.pending, next.pending);
    }

    /// Encodes the point's counts into its rows: it is complete.
    pub(crate) fn finish(&mut self) {
        if !self.pending.is_empty() {
            (self.rows, self.total) = seal_rows(&std::mem::take(&mut self.pending));
        }
    }

    /// Turns encoded rows back into counts, to add more to them.
    fn thaw(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        self.total = None;
        for row in rows {
            // Rows sealed in this process always carry their histograms, which always decode.
            if let Ok(c) = row.counts() {
                self.pending.entry((row.name, row.method)).or_default().merge(&c);
            }
        }
    }

    /// Whether the second still holds unsealed histograms.
    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether the point is sealed and its rows encoded: complete.
    pub fn is_final(&self) -> bool {
        self.sealed && self.open.is_empty() && self.pending.is_empty()
    }
}

fn add_counts(into: &mut BTreeMap<(String, String), RequestCounts>, from: BTreeMap<(String, String), RequestCounts>) {
    for (key, c) in from {
        match into.get_mut(&key) {
            Some(mine) => mine.merge(&c),
            None => {
                into.insert(key, c);
            }
        }
    }
}

/// The rows (by name, then method) and the total of one point's counts, keyed by (name, method).
pub fn seal_rows(counts: &BTreeMap<(String, String), RequestCounts>) -> (Vec<TimelineRow>, Option<TimelineTotal>) {
    let rows = counts.iter().map(|((name, method), c)| TimelineRow::of(method, name, c)).collect();
    // One name's counts are the total as they are: no histogram copied and added.
    if let (1, Some(only)) = (counts.len(), counts.values().next()) {
        return (rows, TimelineTotal::of(only));
    }
    let mut all = RequestCounts::default();
    for c in counts.values() {
        all.merge(c);
    }
    (rows, TimelineTotal::of(&all))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl TimelineRow {
    /// The row of one request name's counts.
    pub fn of(method: &str, name: &str, c: &RequestCounts) -> TimelineRow {
        let [p50, p95, p99] = c.latency.quantiles_us([0.50, 0.95, 0.99]).map(ms);
        TimelineRow {
            method: method.to_owned(),
            name: name.to_owned(),
            count: c.count,
            failures: c.failures,
            p50,
            p95,
            p99,
            corrected_p99: c.corrected.as_ref().map(|l| ms(l.quantile_us(0.99))),
            bytes: c.bytes,
            latency: Some(TimelineLatency::of(&c.latency)),
            corrected: c.corrected.as_ref().map(TimelineLatency::of),
        }
    }

    /// The row's counts back, exactly (wire bytes are not kept per point); an error if its histograms are absent
    /// (an older report) or do not decode.
    pub fn counts(&self) -> Result<RequestCounts, String> {
        let latency = self.latency.as_ref().ok_or("no histogram (a report of an older nest)")?.decode()?;
        Ok(RequestCounts {
            count: self.count,
            failures: self.failures,
            bytes: self.bytes,
            latency,
            corrected: self.corrected.as_ref().map(TimelineLatency::decode).transpose()?,
            wire_bytes: 0,
            statuses: Default::default(),
        })
    }
}

impl TimelineTotal {
    /// The figures of all requests of a point together; `None` when it has none.
    pub fn of(all: &RequestCounts) -> Option<TimelineTotal> {
        let l = &all.latency;
        (all.count > 0).then(|| TimelineTotal {
            count: all.count,
            failures: all.failures,
            mean: l.sum_us as f64 / l.count.max(1) as f64 / 1000.0,
            min: ms(l.min_us),
            max: ms(l.max_us),
            bytes: all.bytes,
            percentiles: l.quantiles_us(TOTAL_QUANTILES).map(ms).to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(latencies_ms: &[u64]) -> RequestCounts {
        let mut c = RequestCounts::default();
        for &l in latencies_ms {
            c.record(std::time::Duration::from_millis(l), None);
        }
        c.failures = 1;
        c
    }

    fn point(seconds: u64, users: u64, dropped: u64, latencies_ms: &[u64]) -> Second {
        let rows = vec![TimelineRow::of("GET", "/x", &counts(latencies_ms))];
        Second { seconds, users, dropped, rows, sealed: true, ..Default::default() }
    }

    #[test]
    fn merged_points_add_counts_and_histograms_exactly() {
        let mut a = point(1, 3, 1, &[10]);
        a.absorb(point(2, 5, 2, &[20, 30, 40]));
        assert!(a.rows.is_empty() && !a.is_final(), "encoded once complete");
        a.finish();
        assert!(a.is_final());
        assert_eq!((a.seconds, a.users, a.dropped), (3, 5, 3));
        assert_eq!(a.rows.len(), 1);
        assert_eq!((a.rows[0].count, a.rows[0].failures), (4, 2));
        let whole = TimelineRow::of("GET", "/x", &counts(&[10, 20, 30, 40]));
        assert_eq!(a.rows[0].p50, whole.p50, "the median of the merged histogram, not a mean of medians");
        assert!((a.rows[0].p50 - 20.0).abs() < 0.05, "not the weighted mean of medians, 25");
        let total = a.total.unwrap();
        assert_eq!((total.count, total.min, total.max, total.mean), (4, 10.0, 40.0, 25.0));
        let back = a.rows[0].counts().unwrap().latency;
        assert_eq!(back.histogram, counts(&[10, 20, 30, 40]).latency.histogram);
    }
}
