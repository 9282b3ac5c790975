//! The thresholds' verdicts in the terminal: the one line `--quiet` prints and the verdict table.
//!
//! Printing is apart from the language and its evaluator: it reads finished [`Verdict`]s only, written to any
//! `Write` so tests capture it.

use super::Verdict;

/// The one line `--quiet` prints: the verdict of the thresholds, or the totals when there are none.
pub fn print_verdict_line(out: &mut impl std::io::Write, report: &crate::model::Report) -> std::io::Result<()> {
    let failed: Vec<&Verdict> = report.thresholds.iter().filter(|v| !v.passed).collect();
    let t = &report.summary.totals;
    if let [gate] = report.thresholds.as_slice()
        && gate.default_gate
    {
        let word = if gate.passed { "PASS" } else { "FAIL" };
        return writeln!(out, "{word}: {} ({}, {:.1} req/s)", gate.expr, gate.message, t.rps);
    }
    match (report.thresholds.len(), failed.len()) {
        (0, _) => writeln!(out, "DONE: {} requests, {} failed, {:.1} req/s", t.requests, t.failures, t.rps),
        (n, 0) => writeln!(out, "PASS: {n} of {n} thresholds held"),
        (n, k) => {
            let which: Vec<String> = failed.iter().map(|v| format!("`{}` ({})", v.expr, v.message)).collect();
            writeln!(out, "FAIL: {k} of {n} thresholds failed: {}", which.join("; "))
        }
    }
}

/// Prints the verdict table.
pub fn print_verdicts(out: &mut impl std::io::Write, verdicts: &[Verdict]) -> std::io::Result<()> {
    if verdicts.is_empty() {
        return Ok(());
    }
    let width = verdicts.iter().map(|v| v.expr.chars().count()).max().unwrap_or(0);
    let title = if verdicts.iter().all(|v| v.default_gate) { "Verdict" } else { "Thresholds" };
    writeln!(out, "\n{title}")?;
    for v in verdicts {
        let abort = if v.abort { " (abort)" } else { "" };
        let mark = if v.passed { "PASS" } else { "FAIL" };
        writeln!(out, "  {mark}  {:<width$}{abort}  {}", v.expr, v.message)?;
    }
    Ok(())
}
