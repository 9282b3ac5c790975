//! The steps, one after another, and what follows them: the tables, the files, the history line and the gate.
//!
//! Each step is a fresh run of the same plan at that step's load, run by the caller ([`StepRunner`]: the binary
//! runs it through the same path as `nest run`), for the settle time plus the step time. A fresh run per step keeps
//! each step's report a complete, ordinary run report (mergeable, renderable) and the step boundaries exact; the
//! settle time absorbs the start (connections, warm-up). nest's CPU is measured around each run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nest_report::model::Report;

use crate::analysis;
use crate::doc::ScaleDoc;
use crate::error::{Regressed, ScaleError};
use crate::history::{self, Entry, GitInfo};
use crate::spec::{Load, Spec};
use crate::step::{self, CpuUse, Cycle, Flag, StepResult, Window};
use crate::sys;

/// One step's run, as the caller ran it.
#[derive(Debug, Clone)]
pub struct StepRun {
    /// Its run report, settle time included.
    pub report: Report,
    /// It was stopped by a signal: the steps end here.
    pub interrupted: bool,
}

/// Runs one step: the plan at `load` for `run_time`.
pub trait StepRunner {
    /// Runs step `step` (from 1).
    fn run_step(&mut self, step: usize, load: Load, run_time: Duration) -> Result<StepRun, ScaleError>;
}

impl<F: FnMut(usize, Load, Duration) -> Result<StepRun, ScaleError>> StepRunner for F {
    fn run_step(&mut self, step: usize, load: Load, run_time: Duration) -> Result<StepRun, ScaleError> {
        self(step, load, run_time)
    }
}

/// What a `nest scale` run needs besides its steps.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The checked spec.
    pub spec: Spec,
    /// The users' cycle, for Little's law (see [`step::cycle`]).
    pub cycle: Option<Cycle>,
    /// The plan hash (see [`crate::plan_hash`]).
    pub plan_hash: String,
    /// The target, redacted.
    pub target: String,
    /// nest's version.
    pub nest_version: String,
    /// The folder whose git state is recorded.
    pub dir: PathBuf,
}

/// Runs the steps in order and builds the document; `progress` gets a line per step.
pub fn run(setup: &Setup, runner: &mut dyn StepRunner, progress: &mut dyn Write) -> Result<ScaleDoc, ScaleError> {
    let spec = &setup.spec;
    let started_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let window = Window { settle: spec.settle, step_time: spec.step_time, slos: &spec.slos, cycle: setup.cycle };
    let (mut steps, mut stopped) = (Vec::new(), None);
    for (i, &load) in spec.steps.iter().enumerate() {
        let (cpu0, wall0) = (sys::cpu_seconds(), Instant::now());
        let ran = runner.run_step(i + 1, load, spec.settle + spec.step_time)?;
        let cpu =
            CpuUse { busy_s: sys::cpu_seconds() - cpu0, wall_s: wall0.elapsed().as_secs_f64(), cores: sys::cores() };
        let result = step::measure(i + 1, load, ran.report, &window, cpu)?;
        let _ = writeln!(progress, "{}", progress_line(&result, spec.steps.len()));
        let why = stop_reason(&result, spec.stop_on_breach, ran.interrupted);
        steps.push(result);
        if why.is_some() && i + 1 < spec.steps.len() || ran.interrupted {
            stopped = why;
            break;
        }
    }
    let slo = spec.slos.iter().map(|t| t.expr.as_str()).collect::<Vec<_>>().join(" and ");
    Ok(ScaleDoc {
        nest_version: setup.nest_version.clone(),
        started_at,
        model: if spec.is_open() { "open" } else { "closed" }.to_owned(),
        step_time_s: spec.step_time.as_secs(),
        settle_s: spec.settle.as_secs(),
        slos: spec.slos.iter().map(|t| t.expr.clone()).collect(),
        plan_hash: setup.plan_hash.clone(),
        host: sys::hostname(),
        target: setup.target.clone(),
        git: GitInfo::of(&setup.dir),
        stopped,
        capacity: analysis::capacity(&steps, slo),
        scalability: analysis::scalability(&steps),
        steps,
    })
}

/// Why the steps stop after this one, if they do.
fn stop_reason(s: &StepResult, stop_on_breach: bool, interrupted: bool) -> Option<String> {
    if interrupted {
        return Some(format!("interrupted during step {}", s.step));
    }
    if s.flags.contains(&Flag::Errors) {
        return Some(format!("step {} ({}) failed {:.0}% of its requests", s.step, s.load, s.error_pct));
    }
    if stop_on_breach && s.far_breach {
        let failed: Vec<&str> = s.slos.iter().filter(|v| !v.passed).map(|v| v.expr.as_str()).collect();
        return Some(format!("step {} ({}) breached {} by far (--stop-on-breach)", s.step, s.load, failed.join(", ")));
    }
    None
}

fn progress_line(s: &StepResult, of: usize) -> String {
    let slo = match (s.slos.is_empty(), s.meets_slos) {
        (true, _) => String::new(),
        (false, true) => ", SLO met".to_owned(),
        (false, false) => ", SLO failed".to_owned(),
    };
    let flags = s.flags.iter().map(|f| f.words()).collect::<Vec<_>>();
    let flags = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join("; ")) };
    format!(
        "step {}/{of}: {}: {:.1} req/s, p95 {:.1} ms, {:.2}% errors{slo}{flags}",
        s.step, s.load, s.throughput_rps, s.latency_ms.p95, s.error_pct
    )
}

/// The files `nest scale` writes.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The JSON document.
    pub json: Option<PathBuf>,
    /// The HTML page.
    pub html: Option<PathBuf>,
}

/// Prints the tables, writes the files, compares with the history (`--gate`) and appends this run to it. A
/// regression is [`ScaleError::Regressed`], after everything else was done.
pub fn conclude(
    doc: &ScaleDoc,
    spec: &Spec,
    outputs: &Outputs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ScaleError> {
    let io = |e| ScaleError::file(Path::new("<stdout>"), e);
    crate::table::print_doc(out, doc).map_err(io)?;
    if let Some(path) = &outputs.json {
        let json = serde_json::to_vec_pretty(doc).map_err(|e| ScaleError::file(path, std::io::Error::other(e)))?;
        nest_report::output::write_atomic(path, &json).map_err(|e| ScaleError::file(path, e))?;
        let _ = writeln!(err, "scalability report written to {}", path.display());
    }
    if let Some(path) = &outputs.html {
        nest_report::output::write_atomic(path, crate::html::render(doc).as_bytes())
            .map_err(|e| ScaleError::file(path, e))?;
        let _ = writeln!(err, "scalability page written to {}", path.display());
    }
    if doc.stopped.as_deref().is_some_and(|s| s.starts_with("interrupted")) {
        let _ = writeln!(err, "interrupted: nothing was added to the history, and no gate was applied");
        return Ok(());
    }
    let (entries, warnings) = history::read(&spec.history)?;
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    let entry = Entry::of(doc);
    let comparison = spec.gate.map(|gate| (crate::gate::compare(&entries, &entry, &gate), gate));
    history::append(&spec.history, &entry)?;
    let _ = writeln!(err, "history: appended to {}", spec.history.display());
    if let Some((c, gate)) = comparison {
        writeln!(out).map_err(io)?;
        crate::gate::print(out, &c, &gate).map_err(io)?;
        if c.regressed() {
            return Err(Regressed { now: c.now, baseline: c.baseline }.into());
        }
    }
    Ok(())
}

/// `nest scale history`: the series across commits as a table, and as a page with `html`.
pub fn show_history(
    path: &Path,
    html: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ScaleError> {
    let (entries, warnings) = history::read(path)?;
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    if entries.is_empty() {
        let _ = writeln!(err, "{}: no history yet (`nest scale` appends a line per run)", path.display());
    } else {
        crate::table::print_history(out, &entries).map_err(|e| ScaleError::file(Path::new("<stdout>"), e))?;
    }
    if let Some(page) = html {
        nest_report::output::write_atomic(page, crate::html::render_history(&entries).as_bytes())
            .map_err(|e| ScaleError::file(page, e))?;
        let _ = writeln!(err, "history page written to {}", page.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::step;

    #[test]
    fn the_steps_stop_on_a_far_breach_errors_or_an_interrupt() {
        let mut s = step(3, 16, 700.0, false);
        assert_eq!(stop_reason(&s, true, false), None);
        s.far_breach = true;
        assert!(stop_reason(&s, true, false).unwrap().contains("step 3 (16 users) breached"));
        assert_eq!(stop_reason(&s, false, false), None);
        s.flags.push(Flag::Errors);
        s.error_pct = 80.0;
        assert_eq!(stop_reason(&s, false, false).unwrap(), "step 3 (16 users) failed 80% of its requests");
        assert_eq!(stop_reason(&s, false, true).unwrap(), "interrupted during step 3");
    }

    #[test]
    fn the_steps_run_in_order_and_stop_at_a_far_breach() {
        let spec = crate::spec::Spec::layered(
            &crate::spec::ScaleConfig {
                steps: Some(vec![1, 2, 4, 8]),
                step_time: Some(Duration::from_secs(1)),
                settle: Some(Duration::ZERO),
                slo: Some(vec!["p95 < 1ms".into()]),
                ..Default::default()
            },
            None,
            false,
        )
        .unwrap();
        let setup = Setup {
            spec,
            cycle: None,
            plan_hash: "sha256:x".into(),
            target: "t".into(),
            nest_version: "0".into(),
            dir: std::env::temp_dir(),
        };
        let mut seen = Vec::new();
        let mut runner = |n: usize, load: Load, run_time: Duration| {
            seen.push((n, load, run_time));
            Ok(StepRun { report: crate::fixtures::report(), interrupted: false })
        };
        let mut progress = Vec::new();
        let doc = run(&setup, &mut runner, &mut progress).unwrap();
        // An empty report observes no latency at all: `p95 < 1ms` fails with nothing to compare, which counts as a
        // far breach, so the steps stop after the first.
        assert_eq!(seen, [(1, Load::Users(1), Duration::from_secs(1))]);
        assert_eq!(doc.steps.len(), 1);
        assert_eq!(doc.stopped.as_deref(), Some("step 1 (1 users) breached p95 < 1ms by far (--stop-on-breach)"));
        assert!(String::from_utf8(progress).unwrap().starts_with("step 1/4: 1 users: 0.0 req/s"));
        assert_eq!(doc.scalability.status, crate::analysis::FitStatus::TooFewSteps);
    }
}
