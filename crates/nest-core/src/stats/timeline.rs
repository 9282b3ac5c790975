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
        let ms = |us: u64| us as f64 / 1000.0;
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
