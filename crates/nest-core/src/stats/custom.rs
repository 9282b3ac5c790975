//! k6-style checks and custom metrics: what scripts record beyond the built-in request figures.
//!
//! A script's `check(value, #{ name: |v| ... })` counts passes and fails per check name; `metric.counter`,
//! `metric.trend`, `metric.rate` and `metric.gauge` record values under a name the script chooses. Both are
//! recorded per worker in the [`Delta`](super::Delta) (a map lookup by name, no allocation once a name is known)
//! and merged exactly by the aggregator: counters add, trends merge their histograms bucket by bucket, rates add
//! passes and totals, and gauges keep the value set last (by time) with the smallest and largest ever set.
//!
//! Trend values are milliseconds as the script gives them, stored like latencies: an HdrHistogram in µs with 3
//! significant figures (so 1 µs resolution at best, 0.1% relative precision).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Latency, LatencyMs, encode_histogram};

/// Distinct custom metric names one worker accepts in a run.
pub const MAX_METRICS: usize = 1000;
/// Distinct check names one worker accepts in a run.
pub const MAX_CHECKS: usize = 1000;
/// The longest metric or check name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The kind of a custom metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A sum (`metric.counter(name).add(n)`).
    Counter,
    /// A distribution of values in ms (`metric.trend(name).add(ms)`).
    Trend,
    /// A share of true values (`metric.rate(name).add(bool)`).
    Rate,
    /// The last value set (`metric.gauge(name).set(v)`).
    Gauge,
}

impl MetricKind {
    /// The word scripts and thresholds use.
    pub fn word(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Trend => "trend",
            MetricKind::Rate => "rate",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// The recorded state of one custom metric.
#[derive(Debug, Clone)]
pub enum MetricValue {
    /// Sum and number of adds.
    Counter {
        /// Sum of the values added.
        sum: f64,
        /// Number of adds.
        adds: u64,
    },
    /// Values in µs.
    Trend(Latency),
    /// True values and all values.
    Rate {
        /// Values that were true.
        passes: u64,
        /// Values added.
        total: u64,
    },
    /// The last value with when it was set, and the extremes.
    Gauge {
        /// The value set last.
        value: f64,
        /// When it was set (`None` for a gauge declared but never set).
        at: Option<Instant>,
        /// Smallest value set.
        min: f64,
        /// Largest value set.
        max: f64,
        /// Number of sets.
        sets: u64,
    },
}

impl MetricValue {
    /// An empty metric of a kind.
    pub fn new(kind: MetricKind) -> MetricValue {
        match kind {
            MetricKind::Counter => MetricValue::Counter { sum: 0.0, adds: 0 },
            MetricKind::Trend => MetricValue::Trend(Latency::default()),
            MetricKind::Rate => MetricValue::Rate { passes: 0, total: 0 },
            MetricKind::Gauge => {
                MetricValue::Gauge { value: 0.0, at: None, min: f64::INFINITY, max: f64::NEG_INFINITY, sets: 0 }
            }
        }
    }

    /// Its kind.
    pub fn kind(&self) -> MetricKind {
        match self {
            MetricValue::Counter { .. } => MetricKind::Counter,
            MetricValue::Trend(_) => MetricKind::Trend,
            MetricValue::Rate { .. } => MetricKind::Rate,
            MetricValue::Gauge { .. } => MetricKind::Gauge,
        }
    }

    /// Adds another record of the same metric; a record of another kind is ignored (the recorder refuses a name
    /// used with two kinds, so that only happens when two workers disagree).
    pub fn merge(&mut self, other: &MetricValue) {
        match (self, other) {
            (MetricValue::Counter { sum, adds }, MetricValue::Counter { sum: s, adds: a }) => {
                *sum += s;
                *adds += a;
            }
            (MetricValue::Trend(mine), MetricValue::Trend(theirs)) => mine.merge(theirs),
            (MetricValue::Rate { passes, total }, MetricValue::Rate { passes: p, total: t }) => {
                *passes += p;
                *total += t;
            }
            (
                MetricValue::Gauge { value, at, min, max, sets },
                MetricValue::Gauge { value: v, at: a, min: lo, max: hi, sets: n },
            ) => {
                if a.is_some() && (at.is_none() || *a >= *at) {
                    (*value, *at) = (*v, *a);
                }
                *min = min.min(*lo);
                *max = max.max(*hi);
                *sets += n;
            }
            _ => {}
        }
    }
}

impl MetricValue {
    /// `counter.add(n)` (n ≥ 0) or `trend.add(ms)` (ms ≥ 0).
    pub fn add(&mut self, n: f64) -> Result<(), CustomError> {
        match self {
            MetricValue::Counter { sum, adds } if n >= 0.0 && n.is_finite() => {
                *sum += n;
                *adds += 1;
            }
            MetricValue::Counter { .. } => {
                return Err(CustomError::BadValue(format!("a counter only grows: add(n) needs n >= 0, not {n}")));
            }
            MetricValue::Trend(l) if n >= 0.0 && n.is_finite() => l.record((n * 1000.0).round() as u64),
            MetricValue::Trend(_) => {
                return Err(CustomError::BadValue(format!("a trend takes durations in ms >= 0, not {n}")));
            }
            other => return Err(CustomError::BadValue(format!("a {} has no add(number)", other.kind().word()))),
        }
        Ok(())
    }

    /// `rate.add(bool)`.
    pub fn add_bool(&mut self, yes: bool) -> Result<(), CustomError> {
        match self {
            MetricValue::Rate { passes, total } => {
                *passes += u64::from(yes);
                *total += 1;
                Ok(())
            }
            other => Err(CustomError::BadValue(format!("a {} has no add(true/false)", other.kind().word()))),
        }
    }

    /// `gauge.set(v)`.
    pub fn set(&mut self, v: f64) -> Result<(), CustomError> {
        match self {
            MetricValue::Gauge { value, at, min, max, sets } if v.is_finite() => {
                (*value, *at) = (v, Some(Instant::now()));
                *min = min.min(v);
                *max = max.max(v);
                *sets += 1;
                Ok(())
            }
            MetricValue::Gauge { .. } => Err(CustomError::BadValue(format!("a gauge takes a finite number, not {v}"))),
            other => Err(CustomError::BadValue(format!("a {} has no set(value)", other.kind().word()))),
        }
    }
}

/// Why a script's metric or check call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomError {
    /// The name is empty or too long.
    #[error("a {what} name must be 1 to {MAX_NAME_LEN} bytes long, not {len}")]
    BadName {
        /// `metric` or `check`.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Too many distinct names.
    #[error("too many distinct {what} names (at most {max} per run): `{name}` is one too many")]
    TooMany {
        /// `metric` or `check`.
        what: &'static str,
        /// The limit.
        max: usize,
        /// The refused name.
        name: String,
    },
    /// The name is already a metric of another kind.
    #[error("metric `{name}` is a {existing}, not a {wanted}")]
    KindClash {
        /// The name.
        name: String,
        /// Its kind so far.
        existing: &'static str,
        /// The kind asked for.
        wanted: &'static str,
    },
    /// A value the metric cannot take.
    #[error("{0}")]
    BadValue(String),
}

/// Validates a metric or check name.
pub fn check_name(what: &'static str, name: &str) -> Result<(), CustomError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(CustomError::BadName { what, len: name.len() });
    }
    Ok(())
}

/// A worker's record of the names it has seen, kept across deltas, so limits and kinds hold for the whole run.
#[derive(Debug, Default)]
pub(super) struct Names {
    metrics: HashMap<Box<str>, MetricKind>,
    checks: HashSet<Box<str>>,
}

impl Names {
    /// Admits a metric name of a kind: known with that kind, or new, valid and under the limit.
    pub(super) fn metric(&mut self, name: &str, kind: MetricKind) -> Result<(), CustomError> {
        match self.metrics.get(name) {
            Some(&k) if k == kind => Ok(()),
            Some(&k) => Err(CustomError::KindClash { name: name.to_owned(), existing: k.word(), wanted: kind.word() }),
            None => {
                check_name("metric", name)?;
                if self.metrics.len() >= MAX_METRICS {
                    return Err(CustomError::TooMany { what: "metric", max: MAX_METRICS, name: name.to_owned() });
                }
                self.metrics.insert(name.into(), kind);
                Ok(())
            }
        }
    }

    /// Admits a check name.
    pub(super) fn check(&mut self, name: &str) -> Result<(), CustomError> {
        if self.checks.contains(name) {
            return Ok(());
        }
        check_name("check", name)?;
        if self.checks.len() >= MAX_CHECKS {
            return Err(CustomError::TooMany { what: "check", max: MAX_CHECKS, name: name.to_owned() });
        }
        self.checks.insert(name.into());
        Ok(())
    }
}

/// Passes and fails of one named check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Times it held.
    pub passes: u64,
    /// Times it did not (or raised an error).
    pub fails: u64,
}

/// One check in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// The check's name.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not (a closure that raised an error counts as a fail).
    pub fails: u64,
}

/// One custom metric in the report. Which fields are present depends on `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// The name the script gave.
    pub name: String,
    /// `counter`, `trend`, `rate` or `gauge`.
    pub kind: MetricKind,
    /// Counter: the sum. Trend: the mean (ms). Rate: the share of true values, 0 to 1. Gauge: the value set last.
    pub value: f64,
    /// Counter: adds. Trend: values. Rate: values added. Gauge: sets.
    pub count: u64,
    /// Counter: the sum per second of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// Rate: the values that were true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// Gauge: the smallest value set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Gauge: the largest value set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Trend: its figures in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend_ms: Option<LatencyMs>,
    /// Trend: the histogram (µs, as `totals.histogram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

impl MetricRow {
    /// The row of one merged metric; `duration_s` gives a counter's rate.
    pub fn of(name: &str, value: &MetricValue, duration_s: f64) -> MetricRow {
        let row = MetricRow {
            name: name.to_owned(),
            kind: value.kind(),
            value: 0.0,
            count: 0,
            per_second: None,
            passes: None,
            min: None,
            max: None,
            trend_ms: None,
            histogram: None,
        };
        match value {
            MetricValue::Counter { sum, adds } => MetricRow {
                value: *sum,
                count: *adds,
                per_second: Some(if duration_s > 0.0 { sum / duration_s } else { 0.0 }),
                ..row
            },
            MetricValue::Trend(l) => {
                let ms = LatencyMs::of(l);
                MetricRow {
                    value: ms.mean,
                    count: l.count,
                    trend_ms: Some(ms),
                    histogram: Some(encode_histogram(&l.histogram)),
                    ..row
                }
            }
            MetricValue::Rate { passes, total } => MetricRow {
                value: if *total == 0 { 0.0 } else { *passes as f64 / *total as f64 },
                count: *total,
                passes: Some(*passes),
                ..row
            },
            MetricValue::Gauge { value, min, max, sets, .. } => MetricRow {
                value: *value,
                count: *sets,
                min: (*sets > 0).then_some(*min),
                max: (*sets > 0).then_some(*max),
                ..row
            },
        }
    }
}

/// The check rows of merged counts, by name.
pub fn check_rows(checks: &BTreeMap<String, CheckCounts>) -> Vec<CheckRow> {
    checks.iter().map(|(name, c)| CheckRow { name: name.clone(), passes: c.passes, fails: c.fails }).collect()
}

/// The metric rows of merged metrics, by name.
pub fn metric_rows(metrics: &BTreeMap<String, MetricValue>, duration_s: f64) -> Vec<MetricRow> {
    metrics.iter().map(|(name, v)| MetricRow::of(name, v, duration_s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Aggregate, Recorder};

    #[test]
    fn merged_workers_equal_one_worker() {
        let (a, b, all) = (Recorder::new(), Recorder::new(), Recorder::new());
        for i in 0..200u32 {
            let r = if i % 3 == 0 { &a } else { &b };
            for rec in [r, &all] {
                rec.metric("looked", MetricKind::Counter, |m| m.add(2.0)).unwrap();
                rec.metric("cart", MetricKind::Trend, |m| m.add(f64::from(i) * 1.5)).unwrap();
                rec.metric("hit", MetricKind::Rate, |m| m.add_bool(i % 4 != 0)).unwrap();
                rec.check("is 200", i % 5 != 0).unwrap();
            }
        }
        let mut merged = Aggregate::default();
        merged.merge(a.take());
        merged.merge(b.take());
        let mut single = Aggregate::default();
        single.merge(all.take());
        let (m, s) = (metric_rows(&merged.metrics, 10.0), metric_rows(&single.metrics, 10.0));
        assert_eq!(m, s);
        let looked = m.iter().find(|r| r.name == "looked").unwrap();
        assert_eq!((looked.value, looked.count, looked.per_second), (400.0, 200, Some(40.0)));
        let hit = m.iter().find(|r| r.name == "hit").unwrap();
        assert_eq!((hit.passes, hit.count, hit.value), (Some(150), 200, 0.75));
        let cart = m.iter().find(|r| r.name == "cart").unwrap().trend_ms.unwrap();
        assert_eq!((cart.min, cart.max), (0.0, 298.5));
        assert_eq!(check_rows(&merged.checks), vec![CheckRow { name: "is 200".into(), passes: 160, fails: 40 }]);
    }

    #[test]
    fn a_gauge_keeps_the_last_value_set_and_its_extremes() {
        let (a, b) = (Recorder::new(), Recorder::new());
        a.metric("q", MetricKind::Gauge, |m| m.set(5.0)).unwrap();
        b.metric("q", MetricKind::Gauge, |m| m.set(-1.0)).unwrap();
        a.metric("q", MetricKind::Gauge, |m| m.set(3.0)).unwrap();
        let mut agg = Aggregate::default();
        // Merged in the other order than set: the latest set still wins.
        agg.merge(a.take());
        agg.merge(b.take());
        let row = &metric_rows(&agg.metrics, 1.0)[0];
        assert_eq!((row.value, row.min, row.max, row.count), (3.0, Some(-1.0), Some(5.0), 3));
    }

    #[test]
    fn names_are_validated_and_kinds_kept() {
        let r = Recorder::new();
        assert!(matches!(r.metric("", MetricKind::Counter, |_| Ok(())), Err(CustomError::BadName { .. })));
        assert!(r.metric(&"x".repeat(129), MetricKind::Counter, |_| Ok(())).is_err());
        r.metric("x", MetricKind::Counter, |_| Ok(())).unwrap();
        let _ = r.take();
        let clash = r.metric("x", MetricKind::Trend, |_| Ok(())).unwrap_err();
        assert_eq!(clash.to_string(), "metric `x` is a counter, not a trend", "kinds outlive a flush");
        for i in 1..MAX_METRICS {
            r.metric(&format!("m{i}"), MetricKind::Rate, |_| Ok(())).unwrap();
        }
        let e = r.metric("one more", MetricKind::Rate, |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("at most 1000"), "{e}");
        assert!(r.metric("x", MetricKind::Counter, |m| m.add(-1.0)).is_err(), "a counter only grows");
        assert!(r.metric("t", MetricKind::Trend, |m| m.add(f64::NAN)).is_err());
    }
}
