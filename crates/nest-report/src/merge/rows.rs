//! The summary's rows merged: requests and totals rebuilt from their histograms, and the task, failure, error, pool
//! and check rows added up in the order the engine's own `Summary::new` gives them.
//!
//! These are the plain sums of the merge, each a short function of the inputs' rows; the timeline and the custom
//! metrics, which need alignment or a kind per name, have modules of their own.

use std::collections::BTreeMap;

use nest_core::stats::{
    CheckRow, ErrorRow, FailureKind, FailureRow, LatencyMs, PoolRow, RequestCounts, RequestRow, Summary, TaskRow,
    Totals, encode_histogram,
};

use crate::model::RunInfo;
use crate::thresholds::observed::rebuild;

fn per_second(n: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 { n as f64 / duration_s } else { 0.0 }
}

pub(super) fn totals_counts(t: &Totals) -> Result<RequestCounts, String> {
    let corrected = t.corrected_latency_ms.as_ref().zip(t.corrected_histogram.as_deref());
    rebuild(t.requests, t.failures, (t.bytes, t.wire_bytes), (&t.latency_ms, &t.histogram), corrected)
}

pub(super) fn totals_row(c: &RequestCounts, duration_s: f64) -> Totals {
    Totals {
        requests: c.count,
        failures: c.failures,
        rps: per_second(c.count, duration_s),
        latency_ms: LatencyMs::of(&c.latency),
        corrected_latency_ms: c.corrected.as_ref().map(LatencyMs::of),
        bytes: c.bytes,
        wire_bytes: c.wire_bytes,
        histogram: encode_histogram(&c.latency.histogram),
        corrected_histogram: c.corrected.as_ref().map(|l| encode_histogram(&l.histogram)),
    }
}

pub(super) fn request_row(method: &str, name: &str, c: &RequestCounts, duration_s: f64) -> RequestRow {
    let t = totals_row(c, duration_s);
    RequestRow {
        method: method.to_owned(),
        name: name.to_owned(),
        requests: t.requests,
        failures: t.failures,
        rps: t.rps,
        latency_ms: t.latency_ms,
        corrected_latency_ms: t.corrected_latency_ms,
        bytes: t.bytes,
        wire_bytes: t.wire_bytes,
        histogram: t.histogram,
        corrected_histogram: t.corrected_histogram,
    }
}

/// Task rows added up, in the plan's order (tasksets as in the mix; `on_start`, the tasks, `on_stop`).
pub(super) fn tasks(run: &RunInfo, summaries: &[&Summary]) -> Vec<TaskRow> {
    let mut merged: Vec<TaskRow> = Vec::new();
    for row in summaries.iter().flat_map(|s| &s.tasks) {
        match merged.iter_mut().find(|m| m.taskset == row.taskset && m.task == row.task) {
            Some(m) => {
                m.runs += row.runs;
                m.errors += row.errors;
                m.pacing_missed += row.pacing_missed;
            }
            None => merged.push(row.clone()),
        }
    }
    let place = |row: &TaskRow| {
        let Some((i, ts)) = run.mix.iter().enumerate().find(|(_, m)| m.name == row.taskset) else {
            return (usize::MAX, usize::MAX);
        };
        let slot = match row.task.as_str() {
            "on_start" => 0,
            "on_stop" => usize::MAX,
            task => ts.tasks.iter().position(|t| t.name == task).map_or(usize::MAX - 1, |j| j + 1),
        };
        (i, slot)
    };
    merged.sort_by_key(place);
    merged
}

/// Failure rows added up, in the order of `Summary::new`: most frequent first.
pub(super) fn failures(summaries: &[&Summary]) -> Vec<FailureRow> {
    let mut by_key: BTreeMap<(String, String, String), (FailureKind, u64)> = BTreeMap::new();
    for f in summaries.iter().flat_map(|s| &s.failures) {
        by_key.entry((f.method.clone(), f.name.clone(), f.reason.clone())).or_insert((f.kind, 0)).1 += f.count;
    }
    let mut rows: Vec<FailureRow> = by_key
        .into_iter()
        .map(|((method, name, reason), (kind, count))| FailureRow { kind, method, name, reason, count })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.name, &a.reason).cmp(&(&b.name, &b.reason))));
    rows
}

pub(super) fn errors(summaries: &[&Summary]) -> Vec<ErrorRow> {
    let mut by_key: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in summaries.iter().flat_map(|s| &s.errors) {
        *by_key.entry((e.location.clone(), e.message.clone())).or_default() += e.count;
    }
    let mut rows: Vec<ErrorRow> =
        by_key.into_iter().map(|((location, message), count)| ErrorRow { location, message, count }).collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.location.cmp(&b.location)));
    rows
}

pub(super) fn pools(summaries: &[&Summary]) -> Vec<PoolRow> {
    let mut merged: Vec<PoolRow> = Vec::new();
    for p in summaries.iter().flat_map(|s| &s.pools) {
        match merged.iter_mut().find(|m| m.name == p.name) {
            Some(m) => {
                m.rows += p.rows;
                m.claims += p.claims;
                m.releases += p.releases;
                m.max_held += p.max_held;
                m.waits += p.waits;
                m.longest_wait_ms = m.longest_wait_ms.max(p.longest_wait_ms);
                m.timeouts += p.timeouts;
            }
            None => merged.push(p.clone()),
        }
    }
    merged
}

pub(super) fn checks(summaries: &[&Summary]) -> Vec<CheckRow> {
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in summaries.iter().flat_map(|s| &s.checks) {
        let entry = by_name.entry(c.name.clone()).or_default();
        entry.0 += c.passes;
        entry.1 += c.fails;
    }
    by_name.into_iter().map(|(name, (passes, fails))| CheckRow { name, passes, fails }).collect()
}
