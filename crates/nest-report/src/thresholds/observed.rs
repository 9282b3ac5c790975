//! What thresholds look at: one type, built from live statistics or from a finished run's summary.
//!
//! The abort check during a run and the verdicts at its end used to read different figures: the end rebuilt
//! counts from the report's rows, derived latency sums from the mean and dropped the corrected latency, so the two
//! could disagree on the same data. Both now build an [`Observed`] (exact counts and histograms per request name,
//! the run-wide rows, the seconds elapsed) and one evaluator reads it, so a threshold that aborted a run also fails
//! its verdict, and the reverse.

use std::borrow::Cow;
use std::time::Duration;

use nest_core::stats::{
    Aggregate, CheckRow, FailureKind, Latency, LatencyMs, MetricRow, RequestCounts, RequestRow, Summary, check_rows,
    decode_histogram, metric_rows,
};

use super::custom::RunWide;

/// The figures thresholds are evaluated on: per request name, the run-wide rows, and the time they cover.
///
/// Build it with [`Observed::from_aggregate`] during a run or [`Observed::from_summary`] at its end; the
/// evaluators ([`super::evaluate_observed`], [`super::breached`]) read nothing else.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// Seconds of run so far (live) or the run's duration (final): the denominator of every per-second rate.
    pub elapsed_s: f64,
    /// Each (method, name) group with its exact counts.
    pub requests: Vec<RequestEntry<'a>>,
    /// The script's checks.
    pub checks: Cow<'a, [CheckRow]>,
    /// The script's custom metrics.
    pub metrics: Cow<'a, [MetricRow]>,
    /// Script errors, all locations together.
    pub script_errors: u64,
}

/// One (method, name) group of requests.
#[derive(Debug, Clone)]
pub struct RequestEntry<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request name.
    pub name: &'a str,
    /// Its counts and histograms; `None` when a saved report's histogram does not decode (the group has no data).
    pub counts: Option<Cow<'a, RequestCounts>>,
    /// Its failures that got no response, so had no status to check (`GET /a: checks` leaves them out).
    pub transport_failures: u64,
}

/// The request figures one threshold reads: the merged groups it selects.
pub(super) struct Selected {
    pub requests: u64,
    pub failures: u64,
    pub transport_failures: u64,
    pub rps: f64,
    pub latency: LatencyMs,
    pub corrected: Option<LatencyMs>,
}

impl<'a> Observed<'a> {
    /// The live figures of a run `elapsed` in, borrowing the aggregator's counts.
    pub fn from_aggregate(aggregate: &'a Aggregate, elapsed: Duration) -> Observed<'a> {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Observed {
            elapsed_s: secs,
            requests: aggregate
                .requests
                .iter()
                .map(|((name, method), counts)| RequestEntry {
                    method,
                    name,
                    counts: Some(Cow::Borrowed(counts)),
                    transport_failures: aggregate
                        .failures
                        .iter()
                        .filter(|((m, n, _), (kind, _))| *kind == FailureKind::Transport && m == method && n == name)
                        .map(|(_, (_, count))| count)
                        .sum(),
                })
                .collect(),
            checks: Cow::Owned(check_rows(&aggregate.checks)),
            metrics: Cow::Owned(metric_rows(&aggregate.metrics, secs)),
            script_errors: aggregate.errors.values().sum(),
        }
    }

    /// The figures of a finished run, with each row's counts rebuilt exactly from its histograms.
    pub fn from_summary(summary: &'a Summary) -> Observed<'a> {
        Observed {
            elapsed_s: summary.duration_s,
            requests: summary
                .requests
                .iter()
                .map(|r| RequestEntry {
                    method: &r.method,
                    name: &r.name,
                    counts: counts_of(r).ok().map(Cow::Owned),
                    transport_failures: summary
                        .failures
                        .iter()
                        .filter(|f| f.kind == FailureKind::Transport && f.method == r.method && f.name == r.name)
                        .map(|f| f.count)
                        .sum(),
                })
                .collect(),
            checks: Cow::Borrowed(&summary.checks),
            metrics: Cow::Borrowed(&summary.metrics),
            script_errors: summary.script_errors(),
        }
    }

    /// The run-wide figures.
    pub(super) fn run_wide(&self) -> RunWide<'_> {
        RunWide { checks: &self.checks, metrics: &self.metrics, script_errors: self.script_errors }
    }

    /// The groups `matches` selects, merged. `None` when a selector (`any`) matches nothing, or when a selected
    /// group has no usable counts.
    pub(super) fn select(&self, any: bool, matches: impl Fn(&str, &str) -> bool) -> Option<Selected> {
        let mut merged = RequestCounts::default();
        let (mut found, mut transport_failures) = (false, 0);
        for entry in self.requests.iter().filter(|e| matches(e.method, e.name)) {
            merged.merge(entry.counts.as_deref()?);
            transport_failures += entry.transport_failures;
            found = true;
        }
        if any && !found {
            return None;
        }
        let rps = if self.elapsed_s > 0.0 { merged.count as f64 / self.elapsed_s } else { 0.0 };
        Some(Selected {
            requests: merged.count,
            failures: merged.failures,
            transport_failures,
            rps,
            latency: LatencyMs::of(&merged.latency),
            corrected: merged.corrected.as_ref().map(LatencyMs::of),
        })
    }
}

/// A report row's counts, rebuilt: the histograms decode exactly; min and max are whole microseconds; the sum is
/// the mean times the count, rounded (exact below 2^50 µs, about 35 years of latency).
pub(crate) fn counts_of(row: &RequestRow) -> Result<RequestCounts, String> {
    let corrected = row.corrected_latency_ms.as_ref().zip(row.corrected_histogram.as_deref());
    rebuild(row.requests, row.failures, (row.bytes, row.wire_bytes), (&row.latency_ms, &row.histogram), corrected)
}

/// Counts rebuilt from a row's figures (see [`counts_of`]): `bytes` is (decoded, wire).
pub(crate) fn rebuild(
    count: u64,
    failures: u64,
    bytes: (u64, u64),
    latency: (&LatencyMs, &str),
    corrected: Option<(&LatencyMs, &str)>,
) -> Result<RequestCounts, String> {
    Ok(RequestCounts {
        count,
        failures,
        bytes: bytes.0,
        latency: latency_of(latency.0, latency.1)?,
        corrected: corrected.map(|(ms, h)| latency_of(ms, h)).transpose()?,
        wire_bytes: bytes.1,
        statuses: Default::default(),
    })
}

/// One distribution rebuilt; its count is its histogram's (every recorded value is in it).
pub(crate) fn latency_of(ms: &LatencyMs, histogram: &str) -> Result<Latency, String> {
    let histogram = decode_histogram(histogram)?;
    let count = histogram.len();
    let us = |v: f64| (v * 1000.0).round() as u64;
    Ok(Latency {
        count,
        sum_us: (ms.mean * 1000.0 * count as f64).round() as u64,
        min_us: if count == 0 { u64::MAX } else { us(ms.min) },
        max_us: us(ms.max),
        histogram,
    })
}
