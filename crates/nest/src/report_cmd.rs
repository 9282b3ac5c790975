//! `nest report RESULT.json`: render a saved run again, without sending a request.
//!
//! The JSON report holds everything the other formats need (histograms included), so a run in CI can keep only
//! its JSON and anyone can produce the HTML, CSV or JUnit files later, identical to what `--html`, `--csv` and
//! `--junit` would have written; `--json` writes the report again in nest's own form (normalised). Rendering a
//! report is not judging it: a failed threshold in the file does not change the exit code here.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::ReportArgs;
use crate::plan::UsageError;
use nest_report::model::Report;
use nest_report::output::write_atomic;
use nest_report::render::Outputs;

/// Runs `nest report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let path = &args.result;
    let bytes = std::fs::read(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let report: Report = serde_json::from_slice(&bytes).map_err(|e| {
        UsageError(format!("{}: not a nest JSON report (written by `nest run --json`): {e}", path.display()))
    })?;
    let outputs = Outputs { csv: args.csv, html: args.html, junit: args.junit };
    if let Some(json) = &args.json {
        let bytes = serde_json::to_vec_pretty(&report)?;
        write_atomic(json, &bytes).with_context(|| format!("could not write {}", json.display()))?;
        eprintln!("report written to {}", json.display());
    }
    if outputs.is_empty() && args.json.is_some() {
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
    for written in outputs.write(&report)? {
        eprintln!("report written to {}", written.display());
    }
    Ok(())
}
