//! `nest report RESULT.json` and `nest merge A.json B.json ...`: render saved runs again, without sending a request.
//!
//! The JSON report holds everything the other formats need (histograms included), so a run in CI can keep only
//! its JSON and anyone can produce the HTML, CSV or JUnit files later, identical to what `--html`, `--csv` and
//! `--junit` would have written; `--json` writes the report again in nest's own form (normalised). Rendering a
//! report is not judging it: a failed threshold in the file does not change the exit code here. `nest merge`
//! combines the reports of one plan first (`nest_report::merge::merge_segments`: the segments of one run, each
//! once), then renders the same way, and judges like `nest run`: 99 for a failed threshold on the merged figures,
//! 4 for a set that lacks a segment (its reports are still written, marked incomplete).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nest_report::merge::merge_segments;
use nest_report::model::Report;
use nest_report::output::write_atomic;
use nest_report::render::Outputs;
use nest_report::thresholds::{Threshold, ThresholdsFailed};

use crate::cli::{MergeArgs, ReportArgs};
use nest_config::parse::{ExitWith, UsageError};

/// Runs `nest report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let report = read(&args.result)?;
    let outputs = Outputs { csv: args.csv, html: args.html, junit: args.junit };
    emit(&report, &outputs, args.json.as_deref())
}

/// Runs `nest merge`: the reports are written even when the set is incomplete (exit 4) or a threshold failed
/// (exit 99).
pub fn merge(args: MergeArgs) -> Result<()> {
    let targets = crate::notify::targets(&args.notify, None)?;
    let thresholds = args
        .threshold
        .iter()
        .map(|t| Threshold::parse(t).map_err(|e| UsageError(format!("--threshold: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let reports = args.results.iter().map(read).collect::<Result<Vec<Report>>>()?;
    let names: Vec<String> = args.results.iter().map(|p| p.display().to_string()).collect();
    let inputs: Vec<(&str, &Report)> = names.iter().map(String::as_str).zip(&reports).collect();
    let merged = merge_segments(&inputs).map_err(|e| UsageError(e.to_string()))?;
    for warning in &merged.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    let mut report = merged.report;
    if !thresholds.is_empty() {
        report.thresholds = nest_report::thresholds::evaluate(&thresholds, &report.summary, &[]);
    }
    emit(&report, &args.outputs.outputs(), args.outputs.json.as_deref())?;
    crate::notify::send(&targets, &report, "nest merge");
    if let Some(incomplete) = &report.run.incomplete {
        let missing: Vec<String> = incomplete.missing.iter().map(|m| m.index.to_string()).collect();
        let message = format!(
            "incomplete: segment{} {} of {} missing ({:.1}% of the {}); the reports are marked incomplete",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            incomplete.missing.len() + report.run.segments.len(),
            incomplete.missing_pct,
            incomplete.share_of,
        );
        return Err(ExitWith { code: 4, message }.into());
    }
    let failed = report.thresholds.iter().filter(|v| !v.passed).count();
    if failed > 0 {
        return Err(ThresholdsFailed { failed, total: report.thresholds.len() }.into());
    }
    Ok(())
}

/// Reads a saved report; a missing or foreign file is a usage error.
fn read(path: &PathBuf) -> Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| {
        UsageError(format!("{}: not a nest JSON report (written by `nest run --json`): {e}", path.display()))
    })?)
}

/// Writes the files asked for, or prints the summary tables when none is.
fn emit(report: &Report, outputs: &Outputs, json: Option<&Path>) -> Result<()> {
    if let Some(json) = json {
        let bytes = serde_json::to_vec_pretty(report)?;
        write_atomic(json, &bytes).with_context(|| format!("could not write {}", json.display()))?;
        eprintln!("report written to {}", json.display());
    }
    if outputs.is_empty() && json.is_some() {
        return Ok(());
    }
    if outputs.is_empty() {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        nest_report::table::print_summary(&mut out, &report.summary)?;
        nest_report::thresholds::print_verdicts(&mut out, &report.thresholds)?;
        out.flush()?;
        return Ok(());
    }
    for path in outputs.paths() {
        crate::run::check_writable(&path)?;
    }
    for written in outputs.write(report)? {
        eprintln!("report written to {}", written.display());
    }
    Ok(())
}
