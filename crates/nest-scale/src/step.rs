//! One step's figures, measured from its run report: only the timeline's seconds after the settle time count.
//!
//! Each timeline point carries exact per-name histograms, so the measured window is those points merged (counts
//! added, histograms added bucket by bucket), and its percentiles are exact. The step is then checked: its SLOs
//! (the one threshold evaluator, over the window), Little's law (is the generator, not the system, the limit?),
//! nest's own CPU and dropped starts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use nest_core::TasksetSpec;
use nest_core::WaitTime;
use nest_core::stats::{LatencyMs, RequestCounts};
use nest_report::model::Report;
use nest_report::thresholds::{self, Threshold, Verdict};
use nest_report::thresholds::{Observed, RequestEntry};
use serde::{Deserialize, Serialize};

use crate::error::ScaleError;
use crate::spec::Load;

/// Little's law may be off by this fraction before a step is flagged.
pub const LITTLE_TOLERANCE: f64 = 0.10;
/// nest's own CPU, as a fraction of all cores, above which a step is flagged.
pub const CPU_SATURATED: f64 = 0.90;
/// An SLO breached by this ratio or more is breached "by far": the steps stop there.
pub const FAR: f64 = 2.0;
/// Errors above this fraction stop the steps.
pub const ERRORS_STOP: f64 = 0.5;

/// How the users of a closed model pause between tasks, for Little's law.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cycle {
    /// A think time of this mean, in seconds, after each task.
    Think(f64),
    /// Each task starts this many seconds after the previous one (pacing).
    Pacing(f64),
}

/// The mix's cycle, weighted by the tasksets' weights; `None` when a script computes its own pauses or pacing and
/// think times are mixed (Little's law is then not checked).
pub fn cycle(specs: &[TasksetSpec]) -> Option<Cycle> {
    let enabled: Vec<&TasksetSpec> = specs.iter().filter(|t| t.weight > 0).collect();
    let total: f64 = enabled.iter().map(|t| t.weight as f64).sum();
    let (mut think, mut pacing) = (0.0, 0.0);
    let (mut thinks, mut paced) = (0, 0);
    for t in &enabled {
        let w = t.weight as f64 / total;
        match t.wait {
            WaitTime::Constant(d) => (think, thinks) = (think + w * d.as_secs_f64(), thinks + 1),
            WaitTime::Between(a, b) => (think, thinks) = (think + w * (a + b).as_secs_f64() / 2.0, thinks + 1),
            WaitTime::ConstantPacing(d) => (pacing, paced) = (pacing + w * d.as_secs_f64(), paced + 1),
            WaitTime::ConstantThroughput(n) if n > 0.0 => (pacing, paced) = (pacing + w / n, paced + 1),
            _ => return None,
        }
    }
    match (thinks, paced) {
        (_, 0) if total > 0.0 => Some(Cycle::Think(think)),
        (0, _) => Some(Cycle::Pacing(pacing)),
        _ => None,
    }
}

/// Why a step is not a clean measurement of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The concurrency implied by X·(R+Z) is off from the configured users by more than 10%.
    LittlesLaw,
    /// nest's own CPU was near 100% of the machine.
    NestSaturated,
    /// Open model: task starts were dropped (no free VU in time).
    Dropped,
    /// More than half of the requests failed.
    Errors,
}

impl Flag {
    /// The flag in words, for the tables.
    pub fn words(self) -> &'static str {
        match self {
            Flag::LittlesLaw => "Little's law off: the generator or think time limits",
            Flag::NestSaturated => "nest's CPU saturated",
            Flag::Dropped => "dropped starts",
            Flag::Errors => "over 50% errors",
        }
    }
}

/// Latency percentiles of the measured window, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Exact mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    fn of(l: &LatencyMs) -> Percentiles {
        Percentiles { mean: l.mean, p50: l.p50, p95: l.p95, p99: l.p99 }
    }
}

/// Little's law at one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Little {
    /// The concurrency the figures imply: X·(R+Z) (closed model) or X·R (open model).
    pub implied: f64,
    /// What it is compared with: the users (closed model) or the VU pool (open model).
    pub expected: f64,
    /// (implied − expected) / expected, in percent; absent when not checked.
    pub off_pct: Option<f64>,
}

/// nest's own use of the machine during a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// CPU seconds nest used (user + system).
    pub busy_s: f64,
    /// Wall seconds of the step.
    pub wall_s: f64,
    /// Cores of the machine.
    pub cores: usize,
}

impl CpuUse {
    /// Busy time over wall time × cores, in percent.
    pub fn pct(&self) -> f64 {
        if self.wall_s > 0.0 { 100.0 * self.busy_s / (self.wall_s * self.cores.max(1) as f64) } else { 0.0 }
    }
}

/// One step's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// From 1.
    pub step: usize,
    /// The offered load.
    pub load: Load,
    /// Seconds measured (after the settle time).
    pub measured_s: f64,
    /// Requests completed in the window.
    pub requests: u64,
    /// Requests failed in the window.
    pub failures: u64,
    /// Throughput X: completed requests per second.
    pub throughput_rps: f64,
    /// Completed tasks per second (the window's requests/s times the step's tasks per request).
    pub tasks_per_s: f64,
    /// Service time percentiles (raw).
    pub latency_ms: Percentiles,
    /// Open model: response time from each task's scheduled start (corrected for coordinated omission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_latency_ms: Option<Percentiles>,
    /// Failures over requests, in percent.
    pub error_pct: f64,
    /// Task starts dropped in the window (open model).
    pub dropped: u64,
    /// Requests in flight on average, X·R: the USL's N in the open model.
    pub concurrency: f64,
    /// Little's law, when it could be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub little: Option<Little>,
    /// nest's own CPU over the whole step (settle included).
    pub cpu: CpuUse,
    /// Why the step is not a clean measurement (empty when it is).
    pub flags: Vec<Flag>,
    /// The SLOs over the window.
    pub slos: Vec<Verdict>,
    /// Every SLO held.
    pub meets_slos: bool,
    /// An SLO was breached by far (by [`FAR`] or more).
    pub far_breach: bool,
    /// The step's whole run report, settle included, with its mergeable histograms.
    pub report: Report,
}

/// What the measurement of a step needs besides its report.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Unmeasured start.
    pub settle: Duration,
    /// Measured time.
    pub step_time: Duration,
    /// The SLOs.
    pub slos: &'a [Threshold],
    /// The users' cycle, for Little's law.
    pub cycle: Option<Cycle>,
}

/// Measures step `step` (from 1) at `load` from its run's `report`.
pub fn measure(step: usize, load: Load, report: Report, w: &Window<'_>, cpu: CpuUse) -> Result<StepResult, ScaleError> {
    let s = &report.summary;
    let (from, to) = (w.settle.as_secs(), w.settle.as_secs() + w.step_time.as_secs());
    let mut groups: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
    let mut dropped = 0;
    for point in s.timeline.iter().filter(|p| p.t >= from && p.t < to) {
        dropped += point.dropped;
        for row in &point.requests {
            let counts = row.counts().map_err(|reason| ScaleError::Step {
                step,
                load: load.to_string(),
                reason: format!("the timeline at {}s has a broken histogram: {reason}", point.t),
            })?;
            groups.entry((row.method.clone(), row.name.clone())).or_default().merge(&counts);
        }
    }
    let measured_s = (s.duration_s - w.settle.as_secs_f64()).clamp(0.0, w.step_time.as_secs_f64());
    let mut all = RequestCounts::default();
    for c in groups.values() {
        all.merge(c);
    }
    let per_s = |n: f64| if measured_s > 0.0 { n / measured_s } else { 0.0 };
    let throughput = per_s(all.count as f64);
    let (runs, requests_all) = (s.tasks.iter().map(|t| t.runs).sum::<u64>(), s.totals.requests);
    let tasks_per_s = if requests_all > 0 { throughput * runs as f64 / requests_all as f64 } else { 0.0 };
    let latency = LatencyMs::of(&all.latency);
    let mean_s = latency.mean / 1000.0;
    let concurrency = throughput * mean_s;
    let little = little(load, s.users, concurrency, tasks_per_s, w.cycle);
    let error_pct = if all.count > 0 { 100.0 * all.failures as f64 / all.count as f64 } else { 0.0 };
    let observed = Observed {
        elapsed_s: measured_s.max(1e-9),
        requests: groups
            .iter()
            .map(|((method, name), c)| RequestEntry {
                method,
                name,
                counts: Some(Cow::Borrowed(c)),
                transport_failures: 0,
            })
            .collect(),
        checks: Cow::Borrowed(&s.checks),
        metrics: Cow::Borrowed(&s.metrics),
        script_errors: s.script_errors(),
    };
    let verdicts = thresholds::evaluate_observed(w.slos, &observed, &[]);
    let far_breach = w.slos.iter().zip(&verdicts).any(|(t, v)| !v.passed && t.excess(v).is_none_or(|r| r >= FAR));
    let mut flags = Vec::new();
    if little.and_then(|l| l.off_pct).is_some_and(|off| off.abs() > LITTLE_TOLERANCE * 100.0) {
        flags.push(Flag::LittlesLaw);
    }
    if cpu.pct() >= CPU_SATURATED * 100.0 {
        flags.push(Flag::NestSaturated);
    }
    if dropped > 0 {
        flags.push(Flag::Dropped);
    }
    if error_pct > ERRORS_STOP * 100.0 {
        flags.push(Flag::Errors);
    }
    Ok(StepResult {
        step,
        load,
        measured_s,
        requests: all.count,
        failures: all.failures,
        throughput_rps: throughput,
        tasks_per_s,
        latency_ms: Percentiles::of(&latency),
        corrected_latency_ms: all.corrected.as_ref().map(|c| Percentiles::of(&LatencyMs::of(c))),
        error_pct,
        dropped,
        concurrency,
        little,
        cpu,
        flags,
        meets_slos: verdicts.iter().all(|v| v.passed),
        far_breach,
        slos: verdicts,
        report,
    })
}

/// Little's law: closed model, users ≈ X_req·R + X_task·Z (or X_task × the pacing); open model, the requests in
/// flight against the VU pool (flagged only when the pool is nearly full).
fn little(load: Load, pool: u64, concurrency: f64, tasks_per_s: f64, cycle: Option<Cycle>) -> Option<Little> {
    match load {
        Load::Users(users) => {
            let implied = match cycle? {
                Cycle::Think(z) => concurrency + tasks_per_s * z,
                Cycle::Pacing(p) => tasks_per_s * p,
            };
            let expected = users as f64;
            Some(Little { implied, expected, off_pct: Some(100.0 * (implied - expected) / expected) })
        }
        Load::Rate(_) => {
            let expected = pool as f64;
            let full = expected > 0.0 && concurrency > (1.0 - LITTLE_TOLERANCE) * expected;
            Some(Little {
                implied: concurrency,
                expected,
                off_pct: full.then(|| 100.0 * (concurrency - expected) / expected),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(weight: u32, wait: WaitTime) -> TasksetSpec {
        TasksetSpec { weight, wait, ..TasksetSpec::default() }
    }

    #[test]
    fn the_cycle_is_the_weighted_think_time_or_pacing() {
        let s = Duration::from_secs;
        let mix =
            [spec(1, WaitTime::Constant(s(1))), spec(3, WaitTime::Between(s(1), s(3))), spec(0, WaitTime::Custom)];
        assert_eq!(cycle(&mix), Some(Cycle::Think(0.25 * 1.0 + 0.75 * 2.0)));
        assert_eq!(cycle(&[spec(1, WaitTime::ConstantThroughput(2.0))]), Some(Cycle::Pacing(0.5)));
        assert_eq!(cycle(&[spec(1, WaitTime::Custom)]), None);
        assert_eq!(cycle(&[spec(1, WaitTime::Constant(s(1))), spec(1, WaitTime::ConstantPacing(s(1)))]), None);
    }

    #[test]
    fn littles_law_compares_the_implied_concurrency_with_the_users() {
        // 10 users, 100 req/s at 50 ms and 50 ms think time: 100 × 0.1 = 10.
        let ok = little(Load::Users(10), 10, 5.0, 100.0, Some(Cycle::Think(0.05))).unwrap();
        assert!(ok.off_pct.unwrap().abs() < 1e-9);
        // Only 60 req/s got through: the generator limits.
        let off = little(Load::Users(10), 10, 3.0, 60.0, Some(Cycle::Think(0.05))).unwrap();
        assert!((off.off_pct.unwrap() + 40.0).abs() < 1e-9);
        assert_eq!(little(Load::Users(10), 10, 5.0, 100.0, None), None);
        let open = little(Load::Rate(100.0), 50, 10.0, 100.0, None).unwrap();
        assert_eq!(open.off_pct, None);
        assert!(little(Load::Rate(100.0), 50, 48.0, 100.0, None).unwrap().off_pct.is_some());
    }

    #[test]
    fn cpu_use_is_a_share_of_all_cores() {
        assert_eq!(CpuUse { busy_s: 1.0, wall_s: 2.0, cores: 2 }.pct(), 25.0);
        assert_eq!(CpuUse::default().pct(), 0.0);
    }
}
