//! Test fixtures: steps with chosen figures and an empty run report.

use nest_core::stats::{Aggregate, Summary, SummaryParts};
use nest_report::model::{Report, RunInfo};

use crate::spec::Load;
use crate::step::{CpuUse, Percentiles, StepResult};

/// An empty report.
pub(crate) fn report() -> Report {
    let run = RunInfo {
        nest_version: "0.0.0".into(),
        command: "nest scale".into(),
        host: "http://127.0.0.1:1".into(),
        load: "1 user".into(),
        workers: 1,
        run_time_s: Some(1.0),
        iterations: None,
        mix: Vec::new(),
        identity: None,
        segments: Vec::new(),
        incomplete: None,
        stats_reset: None,
    };
    Report {
        summary: Summary::new(
            &Aggregate::default(),
            SummaryParts {
                tasksets: &[],
                duration_s: 1.0,
                started_at: 0.0,
                counted_from_s: None,
                users: 1,
                open: false,
                stopped_in: None,
                pools: Vec::new(),
            },
        ),
        run,
        thresholds: Vec::new(),
    }
}

/// Step `step` at `users`, with throughput `x` and whether it met its SLOs.
pub(crate) fn step(step: usize, users: u64, x: f64, meets: bool) -> StepResult {
    StepResult {
        step,
        load: Load::Users(users),
        measured_s: 1.0,
        requests: x as u64,
        failures: 0,
        throughput_rps: x,
        tasks_per_s: x,
        latency_ms: Percentiles { mean: 10.0, p50: 10.0, p95: 12.0, p99: 13.0 },
        corrected_latency_ms: None,
        error_pct: 0.0,
        dropped: 0,
        concurrency: users as f64,
        little: None,
        cpu: CpuUse { busy_s: 0.1, wall_s: 1.0, cores: 2 },
        flags: Vec::new(),
        slos: Vec::new(),
        meets_slos: meets,
        far_breach: false,
        report: report(),
    }
}
