//! The final report as data: the shape of `--json` and the source of every printed table.
//!
//! Field names are a contract with other tools (`totals.latency_ms.p95`, `requests[].rps`, ...): change them only
//! with a deprecation path. Percentiles come from merged histograms and are clamped to the exact min and max, so a
//! p99.9 can never exceed the slowest request.

use serde::{Deserialize, Serialize};

use super::custom::{check_rows, metric_rows};
use super::{
    Aggregate, CheckRow, FailureKind, Latency, MetricRow, RequestCounts, TimelineRow, TimelineTotal, encode_histogram,
};
use crate::taskset::{Slot, TasksetSpec};

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Fastest.
    pub min: f64,
    /// Exact mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl LatencyMs {
    /// The figures of one distribution.
    pub fn of(latency: &Latency) -> LatencyMs {
        let count = latency.count;
        if count == 0 {
            return LatencyMs::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let [p50, p90, p95, p99, p999] = latency.quantiles_us([0.50, 0.90, 0.95, 0.99, 0.999]).map(ms);
        LatencyMs {
            min: ms(latency.min_us),
            mean: latency.sum_us as f64 / count as f64 / 1000.0,
            p50,
            p90,
            p95,
            p99,
            p999,
            max: ms(latency.max_us),
        }
    }

    fn raw(c: &RequestCounts) -> LatencyMs {
        LatencyMs::of(&c.latency)
    }

    fn corrected(c: &RequestCounts) -> Option<LatencyMs> {
        c.corrected.as_ref().map(LatencyMs::of)
    }
}

/// All requests together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Requests completed.
    pub requests: u64,
    /// Requests failed.
    pub failures: u64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Service time figures (raw).
    pub latency_ms: LatencyMs,
    /// Open model: response time from each task's scheduled start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_latency_ms: Option<LatencyMs>,
    /// Response body bytes received.
    #[serde(default)]
    pub bytes: u64,
    /// Response body bytes as they came off the wire, before decoding (less than `bytes` for compressed bodies).
    #[serde(default)]
    pub wire_bytes: u64,
    /// The service-time histogram (µs, 3 significant figures), HdrHistogram V2 + DEFLATE, base64: merge these to
    /// combine runs exactly.
    #[serde(default)]
    pub histogram: String,
    /// Open model: the corrected histogram, in the same encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_histogram: Option<String>,
}

/// One (method, name) group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    /// HTTP method.
    pub method: String,
    /// The stats group name (the `name` option, or the path).
    pub name: String,
    /// Requests completed.
    pub requests: u64,
    /// Requests failed.
    pub failures: u64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Service time figures (raw).
    pub latency_ms: LatencyMs,
    /// Open model: response time from each task's scheduled start (coordinated omission corrected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_latency_ms: Option<LatencyMs>,
    /// Response body bytes received (decoded).
    #[serde(default)]
    pub bytes: u64,
    /// Response body bytes as they came off the wire, before decoding.
    #[serde(default)]
    pub wire_bytes: u64,
    /// The service-time histogram of all requests, encoded as in `requests[].histogram`.
    #[serde(default)]
    pub histogram: String,
    /// Open model: the corrected histogram of all requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_histogram: Option<String>,
}

/// Runs and errors of one task or hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    /// The taskset's name.
    pub taskset: String,
    /// The task's function name, or `on_start`/`on_stop`.
    pub task: String,
    /// Calls that ran to an end.
    pub runs: u64,
    /// Calls that raised an error.
    pub errors: u64,
    /// Times the task overran its pacing interval (`constant_pacing`, `constant_throughput`).
    #[serde(default)]
    pub pacing_missed: u64,
}

/// A failure reason of one request group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRow {
    /// `transport` (no response), `status` (unexpected status) or `check` (the script's `fail()`).
    pub kind: FailureKind,
    /// HTTP method.
    pub method: String,
    /// Request group name.
    pub name: String,
    /// Why it failed (`HTTP 500`, `connection refused`, or the script's `fail()` reason).
    pub reason: String,
    /// How many times.
    pub count: u64,
}

/// A script error and where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// `file:line:col`.
    pub location: String,
    /// The error message.
    pub message: String,
    /// How many times.
    pub count: u64,
}

/// One second of the run, or in a long run, a few neighbouring seconds (see `seconds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the start (this point covers `[t, t + seconds)`).
    pub t: u64,
    /// Seconds this point covers: 1, except in runs longer than 24 minutes, whose points are merged to keep the
    /// timeline at most 1,440 points (written only when not 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub seconds: u64,
    /// Active users at the end of the second.
    pub users: u64,
    /// Task starts dropped in the second (open model).
    #[serde(default)]
    pub dropped: u64,
    /// One row per request name that completed requests in the second.
    pub requests: Vec<TimelineRow>,
    /// All requests of the second together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<TimelineTotal>,
}

/// The whole report of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Wall time of the run, in seconds; after a reset of the statistics, the time counted (from `counted_from_s`
    /// to the end), which every rate is over.
    pub duration_s: f64,
    /// The planned number of users (the most at once; the pool limit in the open model).
    pub users: u64,
    /// When the load started, in seconds since the Unix epoch (0 if unknown).
    #[serde(default)]
    pub started_at: f64,
    /// `closed` (users with think time) or `open` (tasks started at a rate).
    #[serde(default = "closed")]
    pub model: String,
    /// Open model: task starts dropped because no VU was free within `--max-delay` (see `timeline[].dropped`).
    #[serde(default)]
    pub dropped_iterations: u64,
    /// All requests together.
    pub totals: Totals,
    /// One row per (method, name), sorted by name then method.
    pub requests: Vec<RequestRow>,
    /// One row per task and hook that ran.
    pub tasks: Vec<TaskRow>,
    /// Failure reasons, most frequent first.
    pub failures: Vec<FailureRow>,
    /// Script errors, most frequent first.
    pub errors: Vec<ErrorRow>,
    /// Per-second figures.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    /// One row per test data pool, by name.
    #[serde(default)]
    pub pools: Vec<PoolRow>,
    /// The global hook a stop came in (`setup`: the load did not run; `teardown`: it was cancelled); absent when
    /// the run was not stopped in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_in: Option<String>,
    /// The script's `check()` results, one row per check name, by name.
    #[serde(default)]
    pub checks: Vec<CheckRow>,
    /// The script's custom metrics, one row per name, by name.
    #[serde(default)]
    pub metrics: Vec<MetricRow>,
    /// After a reset of the statistics during the run: the seconds since the load's start they count from (the
    /// timeline's `t` stay seconds since the start). Absent when they were not reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_from_s: Option<f64>,
}

impl Summary {
    /// Script errors of the run (the sum of `errors[].count`).
    pub fn script_errors(&self) -> u64 {
        self.errors.iter().map(|e| e.count).sum()
    }
}

/// What happened to one test data pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    /// The pool's name (`users`).
    pub name: String,
    /// Rows in the pool.
    pub rows: u64,
    /// Claims that got a row.
    pub claims: u64,
    /// Rows given back (by `release`, on leaving the taskset, or when the VU stopped).
    pub releases: u64,
    /// The most rows held at once.
    pub max_held: u64,
    /// Claims that found every row held and waited.
    pub waits: u64,
    /// The longest wait of a claim, in milliseconds.
    pub longest_wait_ms: f64,
    /// Claims that gave up after their timeout ("pool exhausted").
    pub timeouts: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

fn closed() -> String {
    "closed".to_owned()
}

/// Everything a [`Summary`] says besides the statistics: what ran, for how long, how it ended, and the data pools'
/// counters (which the caller owns). [`crate::RunResult::summary`] fills it from a finished run.
#[derive(Debug, Clone, Default)]
pub struct SummaryParts<'a> {
    /// The plan's tasksets, by index (the task rows name their taskset and task from them).
    pub tasksets: &'a [TasksetSpec],
    /// Wall time of the run, in seconds (after a reset of the statistics, the time counted).
    pub duration_s: f64,
    /// When the load started, in seconds since the Unix epoch (0 if unknown).
    pub started_at: f64,
    /// After a reset of the statistics: the seconds since the load's start they count from.
    pub counted_from_s: Option<f64>,
    /// The planned number of users (the most at once).
    pub users: u64,
    /// The open model (tasks started at a rate).
    pub open: bool,
    /// The global hook a stop came in, if any, as [`crate::Phase::name`] names it.
    pub stopped_in: Option<&'static str>,
    /// One row per test data pool, by name.
    pub pools: Vec<PoolRow>,
}

impl Summary {
    /// Builds the whole summary, in one step, from merged results (seal the aggregate's timeline first) and the
    /// rest of what it says.
    pub fn new(aggregate: &Aggregate, parts: SummaryParts<'_>) -> Summary {
        let SummaryParts { tasksets, duration_s, started_at, counted_from_s, users, open, stopped_in, pools } = parts;
        let rps = |n: u64| {
            if duration_s > 0.0 { n as f64 / duration_s } else { 0.0 }
        };
        let total = aggregate.total();
        let requests = aggregate
            .requests
            .iter()
            .map(|((name, method), c)| RequestRow {
                method: method.clone(),
                name: name.clone(),
                requests: c.count,
                failures: c.failures,
                rps: rps(c.count),
                latency_ms: LatencyMs::raw(c),
                corrected_latency_ms: LatencyMs::corrected(c),
                bytes: c.bytes,
                wire_bytes: c.wire_bytes,
                histogram: encode_histogram(&c.latency.histogram),
                corrected_histogram: c.corrected.as_ref().map(|l| encode_histogram(&l.histogram)),
            })
            .collect();
        let mut tasks = Vec::new();
        for (ts_index, slots) in aggregate.slots.iter().enumerate() {
            let Some(ts) = tasksets.get(ts_index) else {
                continue;
            };
            // Hooks first, as they run, then tasks in declaration order.
            let order = [Slot::OnStart].into_iter().chain((0..ts.tasks.len()).map(Slot::Task)).chain([Slot::OnStop]);
            for slot in order {
                if let Some(c) = slots.get(slot.index(ts)).filter(|c| c.runs > 0) {
                    tasks.push(TaskRow {
                        taskset: ts.name.clone(),
                        task: slot.name(ts).to_owned(),
                        runs: c.runs,
                        errors: c.errors,
                        pacing_missed: c.pacing_missed,
                    });
                }
            }
        }
        let mut failures: Vec<FailureRow> = aggregate
            .failures
            .iter()
            .map(|((method, name, reason), &(kind, count))| FailureRow {
                kind,
                method: method.clone(),
                name: name.clone(),
                reason: reason.clone(),
                count,
            })
            .collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.name, &a.reason).cmp(&(&b.name, &b.reason))));
        let mut errors: Vec<ErrorRow> = aggregate
            .errors
            .iter()
            .map(|((location, message), &count)| ErrorRow {
                location: location.clone(),
                message: message.clone(),
                count,
            })
            .collect();
        errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.location.cmp(&b.location)));
        let timeline = aggregate
            .timeline
            .iter()
            .map(|(&t, s)| TimelinePoint {
                t,
                seconds: s.seconds.max(1),
                users: s.users,
                dropped: s.dropped,
                requests: s.rows.clone(),
                total: s.total.clone(),
            })
            .collect();
        Summary {
            duration_s,
            users,
            started_at,
            model: if open { "open" } else { "closed" }.to_owned(),
            dropped_iterations: aggregate.dropped,
            totals: Totals {
                requests: total.count,
                failures: total.failures,
                rps: rps(total.count),
                latency_ms: LatencyMs::raw(&total),
                corrected_latency_ms: LatencyMs::corrected(&total),
                bytes: total.bytes,
                wire_bytes: total.wire_bytes,
                histogram: encode_histogram(&total.latency.histogram),
                corrected_histogram: total.corrected.as_ref().map(|l| encode_histogram(&l.histogram)),
            },
            requests,
            tasks,
            failures,
            errors,
            timeline,
            pools,
            stopped_in: stopped_in.map(str::to_owned),
            checks: check_rows(&aggregate.checks),
            metrics: metric_rows(&aggregate.metrics, duration_s),
            counted_from_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Failure, Recorder, Sample};
    use std::time::Duration;

    #[test]
    fn percentiles_are_clamped_and_rates_use_the_duration() {
        let r = Recorder::new();
        for ms in 1..=100u64 {
            let failure = (ms > 98).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
            r.request(
                "GET",
                "/a",
                Sample { latency: Duration::from_millis(ms), bytes: 2, failure, wire_bytes: 1, ..Default::default() },
            );
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        agg.seal_before(u64::MAX);
        let s = Summary::new(&agg, SummaryParts { duration_s: 10.0, users: 5, ..SummaryParts::default() });
        assert_eq!(s.totals.requests, 100);
        assert_eq!(s.totals.failures, 2);
        assert_eq!((s.totals.bytes, s.totals.wire_bytes), (200, 100));
        assert_eq!((s.requests[0].bytes, s.requests[0].wire_bytes), (200, 100));
        assert_eq!(s.totals.rps, 10.0);
        let l = s.totals.latency_ms;
        assert_eq!((l.min, l.max), (1.0, 100.0));
        assert!((l.mean - 50.5).abs() < 1e-9);
        assert!((l.p50 - 50.0).abs() <= 0.05, "p50 {}", l.p50);
        assert!(l.p999 <= l.max && l.p99 <= l.p999);
        assert_eq!(s.failures[0].reason, "HTTP 500");
        assert_eq!(s.failures[0].count, 2);
        assert_eq!(s.failures[0].kind, FailureKind::Status);
        assert_eq!(s.totals.bytes, 200);
        let back = crate::stats::decode_histogram(&s.totals.histogram).unwrap();
        assert_eq!(back, agg.total().latency.histogram, "the encoded histogram round-trips exactly");
        let second = s.timeline[0].total.as_ref().unwrap();
        assert_eq!((second.count, second.failures), (100, 2));
        assert!(s.totals.corrected_latency_ms.is_none());
        assert_eq!(s.model, "closed");
        assert_eq!(s.timeline.len(), 1);
        assert_eq!(s.timeline[0].requests[0].count, 100);
    }
}
