//! The default gate: what decides the exit code of a run that has no thresholds.
//!
//! Locust exits 1 when any request failed, so CI jobs migrated from it expect a dead target to fail the job. With
//! no threshold configured, nest applies the same rule, shown as a verdict of its own: no failed request and no
//! script error. `--exit-code-on-error N` picks its exit code (0 turns it off, as in Locust), `--no-default-gate`
//! turns it off, and any configured threshold replaces it.

use nest_core::stats::Summary;

use super::Verdict;

/// The gate as the verdicts show it.
pub const DEFAULT_GATE: &str = "default gate: no failed request and no script error";

/// The exit code of a failed default gate unless `--exit-code-on-error` says otherwise (Locust's).
pub const DEFAULT_EXIT_CODE: u8 = 1;

/// The gate's verdict on a finished run.
pub fn gate_verdict(summary: &Summary) -> Verdict {
    let (failed, errors) = (summary.totals.failures, summary.script_errors());
    let plural = |n: u64, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    Verdict {
        expr: DEFAULT_GATE.to_owned(),
        passed: failed == 0 && errors == 0,
        observed: Some((failed + errors) as f64),
        unit: String::new(),
        abort: false,
        aborted_at_s: None,
        message: format!("{failed} of {} requests failed, {}", summary.totals.requests, plural(errors, "script error")),
        default_gate: true,
    }
}

/// The default gate failed: exit with this code.
#[derive(Debug)]
pub struct GateFailed {
    /// The exit code.
    pub code: u8,
}

impl std::fmt::Display for GateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the default gate failed (exit code {})", self.code)
    }
}

impl std::error::Error for GateFailed {}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Aggregate, Failure, FailureKind, Recorder, Sample, SummaryParts};

    #[test]
    fn the_gate_fails_on_a_failed_request_or_a_script_error() {
        let r = Recorder::new();
        r.request("GET", "/", Sample::default());
        let summary = |r: &Recorder| {
            let mut agg = Aggregate::default();
            agg.merge(r.take());
            Summary::new(&agg, SummaryParts { duration_s: 1.0, users: 1, ..SummaryParts::default() })
        };
        let v = gate_verdict(&summary(&r));
        assert!(v.passed && v.default_gate && v.message == "0 of 1 requests failed, 0 script errors", "{v:?}");
        let failure = Some(Failure { kind: FailureKind::Transport, reason: "connection refused" });
        r.request("GET", "/", Sample { failure, ..Default::default() });
        r.request("GET", "/", Sample::default());
        assert!(!gate_verdict(&summary(&r)).passed);
        r.error("a.rhai:1:1", "boom");
        let v = gate_verdict(&summary(&r));
        assert!(!v.passed && v.message == "0 of 0 requests failed, 1 script error", "{v:?}");
    }
}
