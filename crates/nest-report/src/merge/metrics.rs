//! Custom metrics merged by name: counters and rates added up, gauges keeping the value set last, trends merged
//! histogram by histogram, then the derived figures (a counter's rate, a rate's share, a trend's statistics)
//! computed again.
//!
//! Each kind merges differently, and a name with two kinds in two inputs makes them reports of different plans.

use std::collections::BTreeMap;

use nest_core::stats::{Latency, LatencyMs, MetricKind, MetricRow, encode_histogram};

use super::MergeError;
use crate::model::Report;
use crate::thresholds::observed::latency_of;

/// Custom metrics by name. A name with different kinds in two inputs is a different plan.
pub(super) fn metrics(inputs: &[(&str, &Report)], duration_s: f64) -> Result<Vec<MetricRow>, MergeError> {
    let mut by_name: BTreeMap<String, (MetricRow, Option<Latency>)> = BTreeMap::new();
    // Inputs in the order they ended, so that a gauge keeps the value set last.
    let mut ordered: Vec<&(&str, &Report)> = inputs.iter().collect();
    ordered.sort_by(|a, b| end(a.1).total_cmp(&end(b.1)));
    for &&(name, report) in &ordered {
        for row in &report.summary.metrics {
            let trend = match (&row.trend_ms, &row.histogram) {
                (Some(ms), Some(h)) => Some(latency_of(ms, h).map_err(|reason| MergeError::BrokenHistogram {
                    input: name.into(),
                    place: format!("metric \"{}\"", row.name),
                    reason,
                })?),
                _ => None,
            };
            match by_name.get_mut(&row.name) {
                None => {
                    by_name.insert(row.name.clone(), (row.clone(), trend));
                }
                Some((m, _)) if m.kind != row.kind => {
                    let first = inputs[0].0.into();
                    return Err(MergeError::DifferentPlan { first, other: name.into(), what: "custom metrics" });
                }
                Some((m, merged)) => add_metric(m, merged, row, trend),
            }
        }
    }
    Ok(by_name.into_values().map(|(row, trend)| finish_metric(row, trend.as_ref(), duration_s)).collect())
}

fn end(r: &Report) -> f64 {
    r.summary.started_at + r.summary.duration_s
}

fn add_metric(m: &mut MetricRow, merged: &mut Option<Latency>, row: &MetricRow, trend: Option<Latency>) {
    m.count += row.count;
    match m.kind {
        MetricKind::Counter => m.value += row.value,
        MetricKind::Rate => m.passes = Some(m.passes.unwrap_or(0) + row.passes.unwrap_or(0)),
        MetricKind::Gauge => {
            if row.count > 0 {
                m.value = row.value;
            }
            m.min = [m.min, row.min].into_iter().flatten().reduce(f64::min);
            m.max = [m.max, row.max].into_iter().flatten().reduce(f64::max);
        }
        MetricKind::Trend => {
            if let Some(t) = trend {
                merged.get_or_insert_with(Latency::default).merge(&t);
            }
        }
    }
}

/// The figures derived from the sums: a counter's rate, a rate's share, a trend's statistics and histogram.
fn finish_metric(mut m: MetricRow, trend: Option<&Latency>, duration_s: f64) -> MetricRow {
    match m.kind {
        MetricKind::Counter => m.per_second = Some(if duration_s > 0.0 { m.value / duration_s } else { 0.0 }),
        MetricKind::Rate => {
            m.value = if m.count == 0 { 0.0 } else { m.passes.unwrap_or(0) as f64 / m.count as f64 };
        }
        MetricKind::Trend => {
            if let Some(l) = trend {
                let ms = LatencyMs::of(l);
                (m.value, m.trend_ms, m.histogram) = (ms.mean, Some(ms), Some(encode_histogram(&l.histogram)));
            }
        }
        MetricKind::Gauge => {}
    }
    m
}
