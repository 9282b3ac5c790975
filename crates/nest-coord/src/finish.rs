//! The central verdict: the segments' results merged exactly, judged on the whole, marked when incomplete.
//!
//! Each segment hands in the report its own `--json` would have written. They are merged with
//! [`nest_report::merge::merge_named`] (counts added, histograms bucket for bucket), the coordinator's thresholds
//! are evaluated on the merged figures (the segments' own when it has none), and a run that went on without a
//! segment says so: which segments, when, and what share of the plan is missing. It never passes as complete.

use nest_report::identity::{MissingReason, MissingSegment, mark_incomplete};
use nest_report::merge::{MergeError, merge_segments};
use nest_report::model::Report;
use nest_report::thresholds;

use crate::state::{End, Lost, Settings};

/// How the run is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Complete, every threshold held: exit 0.
    Passed,
    /// Complete, some threshold failed: exit 99 (the default gate: its own code).
    Failed {
        /// Failed verdicts.
        failed: usize,
        /// All verdicts.
        total: usize,
        /// Whether only the default gate failed.
        gate_only: bool,
    },
    /// A segment's share is missing, or the run never started: exit 4, whatever the thresholds say.
    Incomplete,
}

/// What the coordinator hands back.
#[derive(Debug, Clone)]
pub struct Conclusion {
    /// The merged report, when any segment handed one in; marked incomplete (`run.incomplete`) when a segment is
    /// missing.
    pub report: Option<Report>,
    /// What the merge ignored (exact duplicates).
    pub warnings: Vec<String>,
    /// The segments the run went on without.
    pub lost: Vec<Lost>,
    /// Before the start: the segments that never became ready; and why it was cancelled.
    pub cancelled: Option<(String, Vec<u32>)>,
    /// N.
    pub segments: u32,
    /// The verdict.
    pub verdict: Verdict,
}

impl Conclusion {
    /// The missing share in words: `segment 2 (1 of 3 segments, 33.3% of the plan) lost at 4.0s: silent for 10s`.
    pub fn incomplete_lines(&self) -> Vec<String> {
        let n = self.segments.max(1);
        let mut lines: Vec<String> =
            self.lost.iter().map(|l| format!("segment {} lost at {:.1}s: {}", l.index, l.at_s, l.reason)).collect();
        if !self.lost.is_empty() {
            let k = self.lost.len() as u32;
            let pct = f64::from(k) * 100.0 / f64::from(n);
            lines.push(format!("incomplete: {k} of {n} segments missing, {pct:.1}% of the plan not in this report"));
        }
        if let Some((reason, missing)) = &self.cancelled {
            let missing: Vec<String> = missing.iter().map(u32::to_string).collect();
            let not_ready = match missing.len() {
                0 => String::new(),
                1 => format!(" (segment {} was not ready)", missing[0]),
                _ => format!(" (segments {} were not ready)", missing.join(", ")),
            };
            lines.push(format!("incomplete: {reason}{not_ready}; nothing was sent"));
        }
        lines
    }
}

/// Merges and judges the run's end.
pub fn conclude(end: End, settings: &Settings) -> Result<Conclusion, MergeError> {
    let segments = settings.segments;
    let (results, lost, aborted) = match end {
        End::Cancelled { reason, missing } => {
            let cancelled = Some((reason, missing));
            return Ok(Conclusion {
                report: None,
                warnings: Vec::new(),
                lost: Vec::new(),
                cancelled,
                segments,
                verdict: Verdict::Incomplete,
            });
        }
        End::Ran { results, lost, aborted } => (results, lost, aborted),
    };
    let names: Vec<String> = results.iter().map(|(i, _)| format!("segment {i}")).collect();
    let inputs: Vec<(&str, &Report)> = names.iter().map(String::as_str).zip(results.iter().map(|(_, r)| r)).collect();
    let (mut report, warnings) = match inputs.is_empty() {
        true => (None, Vec::new()),
        false => {
            let merged = merge_segments(&inputs)?;
            (Some(merged.report), merged.warnings)
        }
    };
    if let Some(report) = &mut report {
        if !settings.thresholds.is_empty() {
            report.thresholds = thresholds::evaluate(&settings.thresholds, &report.summary, &aborted);
        }
        let missing = lost
            .iter()
            .map(|l| MissingSegment { index: l.index, reason: MissingReason::Lost, at: Some(l.at_unix) })
            .collect();
        mark_incomplete(report, segments, missing);
    }
    let verdict = match &report {
        _ if !lost.is_empty() => Verdict::Incomplete,
        None => Verdict::Incomplete,
        Some(r) => {
            let failed: Vec<_> = r.thresholds.iter().filter(|v| !v.passed).collect();
            if failed.is_empty() {
                Verdict::Passed
            } else {
                let gate_only = failed.iter().all(|v| v.default_gate);
                Verdict::Failed { failed: failed.len(), total: r.thresholds.len(), gate_only }
            }
        }
    };
    Ok(Conclusion { report, warnings, lost, cancelled: None, segments, verdict })
}
