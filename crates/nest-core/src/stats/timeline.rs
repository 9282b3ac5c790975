//! The per-second view of a run: requests, failures and percentiles of each second, and active users.
//!
//! Deltas arrive from every worker tagged with the second they cover. A second keeps full histograms only until
//! every worker has reported a later second; it is then *sealed* into a few numbers per request name, so a long run
//! does not hold a histogram per name per second.

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

/// One second of the run, merged across workers.
#[derive(Debug, Default)]
pub struct Second {
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

    /// Whether the second still holds unsealed histograms.
    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }
}
